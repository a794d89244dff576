"""One cookie of a request, without parsing all of them, and never one of two.

aiohttp's ``request.cookies`` parses every cookie of the header into ``Morsel`` objects, which
costs a proxied request more than looking up its session. The gateway needs only its own
cookies. A header made of plain tokens (letters, digits, ``-_.=``, ``;`` and a space after it,
as browsers send the gateway's own cookies) is split on ``;``, which gives what aiohttp's parser
gives; any other header (quotes, dates, other spaces) goes to aiohttp's parser.

A browser sends two cookies of one name when two scopes hold it: the gateway's own and one that
a sibling origin (a vendor page under the same parent domain) set for the parent domain. Which
comes first depends on path length and age, which the sibling controls, so the gateway never
picks one: ``DuplicateCookie`` refuses the request instead.
"""

from __future__ import annotations

import re

from aiohttp import hdrs, web

_PLAIN = re.compile(r"[A-Za-z0-9_.=;-]*")


class DuplicateCookie(Exception):
    """The request carries two values for one of the gateway's cookies."""

    def __init__(self, name: str) -> None:
        super().__init__(f"two values for cookie {name}")
        self.name = name


def plain_cookie(header: str, name: str) -> str | None:
    """The value of cookie ``name`` in a header of plain tokens without spaces (a name without
    ``=`` has the value ""), or None; ``DuplicateCookie`` when it is there twice."""
    found = None
    for part in header.split(";"):
        key, _, value = part.partition("=")
        if key == name:
            if found is not None:
                raise DuplicateCookie(name)
            found = value
    return found


def _count(header: str, name: str) -> int:
    return sum(1 for part in header.split(";") if part.partition("=")[0].strip() == name)


def request_cookie(request: web.Request, name: str) -> str | None:
    """The value of the request's cookie ``name``, or None; ``DuplicateCookie`` when the
    header holds it twice."""
    header = request.headers.get(hdrs.COOKIE, "").replace("; ", ";")
    if _PLAIN.fullmatch(header):
        return plain_cookie(header, name)
    if _count(header, name) > 1:
        raise DuplicateCookie(name)
    return request.cookies.get(name)
