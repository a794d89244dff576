"""One cookie of a request, without parsing all of them.

aiohttp's ``request.cookies`` parses every cookie of the header into ``Morsel`` objects, which
costs a proxied request more than looking up its session. The proxy needs only the session
cookie. A header made of plain tokens (letters, digits, ``-_.=``, ``;`` and a space after it,
as browsers send the gateway's own cookies) is split on ``;``, which gives what aiohttp's parser
gives; any other header (quotes, dates, other spaces) goes to aiohttp's parser.
"""

from __future__ import annotations

import re

from aiohttp import hdrs, web

_PLAIN = re.compile(r"[A-Za-z0-9_.=;-]*")


def plain_cookie(header: str, name: str) -> str | None:
    """The value of cookie ``name`` in a header of plain tokens without spaces (the last one
    wins, as in aiohttp's parser; a name without ``=`` has the value ""), or None."""
    found = None
    for part in header.split(";"):
        key, _, value = part.partition("=")
        if key == name:
            found = value
    return found


def request_cookie(request: web.Request, name: str) -> str | None:
    """The value of the request's cookie ``name``, or None."""
    header = request.headers.get(hdrs.COOKIE, "").replace("; ", ";")
    if _PLAIN.fullmatch(header):
        return plain_cookie(header, name)
    return request.cookies.get(name)
