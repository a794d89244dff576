"""A session opened with a desk-reset PIN goes nowhere but the Modify PIN form until the
patron chooses a PIN of their own: the menu, starting points, hand-overs and proxied pages all
send the browser to ``/pin/change`` on the login host."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import hdrs, web
from yarl import URL

from gateway.appkeys import RULES, SETTINGS
from gateway.rules.ruleset import Refused
from gateway.web.targets import named_start_path

KEPT_METHODS = frozenset({hdrs.METH_GET, hdrs.METH_HEAD})
"""Requests whose destination the form keeps: the patron goes on there after the change (a
form posted to a vendor would be replayed as a GET, so its URL is not kept)."""


def safe_target(request: web.Request, target: str) -> str:
    """``target`` when it is a starting point the rules allow (a named one on the login host
    included), else empty: the form only ever sends the patron on to a proxied database, never
    to a host of someone's choosing."""
    if not target:
        return ""
    if named_start_path(target, request.config_dict[SETTINGS].public_url) is not None:
        return target
    start = request.config_dict[RULES].ruleset.starting_point(target)
    return "" if isinstance(start, Refused) else target


def change_first(request: web.Request, target: str = "", proxied: bool = False) -> web.HTTPFound:
    """The redirect to the Modify PIN form, keeping ``target`` when it is safe. From a
    ``proxied`` host: to the login host, and only a request that can be repeated after the
    change keeps its URL."""
    repeatable = not proxied or request.method in KEPT_METHODS
    kept = safe_target(request, target) if repeatable else ""
    query = f"?qurl={quote(kept, safe='')}" if kept else ""
    base = request.config_dict[SETTINGS].public_url if proxied else ""
    return web.HTTPFound(URL(f"{base}/pin/change{query}", encoded=True))
