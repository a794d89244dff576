"""``POST /__carrel/cookie`` on a proxied host: a cookie a vendor page's script wrote with
``document.cookie``, kept in the session's server-side jar as if the vendor host had set it.

In the cookie modes where the gateway keeps the vendor's cookies (``Option Cookie``, the
default, and ``DomainCookieOnly``), the vendor only ever sees the jar's cookies, so a cookie its
script sets in the browser would never reach it. The companion (js/dom.js) sends each such write
here; the jar then holds it under the vendor host's own rules (RFC 6265: a ``Domain`` the host
domain-matches, no public suffix, none of the gateway's names), so ``Domain=.vendor.com`` reaches
every ``vendor.com`` host of the session through the gateway and no other database's host. In
the other modes the browser keeps the vendor's cookies itself, and this is a no-op.

Only the page's own origin may write here: the request must carry the session cookie, come
from the same origin (``Origin`` and ``Sec-Fetch-Site``), and have a header that a page of any
other origin could send only after a CORS preflight, which this path never grants. A sibling
proxied host (another vendor) cannot put cookies into this host's jar.
"""

from __future__ import annotations

import json

from aiohttp import hdrs, web

from gateway.appkeys import JARS, SETTINGS
from gateway.proxy.exchange import Exchange
from gateway.rewrite.cookies import MAX_COOKIE_BYTES, vendor_may_set
from gateway.web.cookie_names import cookie_names

PATH = "/__carrel/cookie"
HEADER = "X-Carrel-Cookie"
MAX_BODY = 2 * MAX_COOKIE_BYTES
MAX_PATH = 2048


def _same_origin(request: web.Request, exchange: Exchange) -> bool:
    headers = request.headers
    own = f"{exchange.index.target.scheme}://{request.host}"
    return (
        headers.get(HEADER) == "1"
        and headers.get(hdrs.ORIGIN) == own
        and headers.get("Sec-Fetch-Site", "same-origin") == "same-origin"
    )


def _written(data: object) -> tuple[str, str] | None:
    """The cookie text and the document path from a request body, or None if malformed."""
    if not isinstance(data, dict):
        return None
    text, path = data.get("cookie"), data.get("path", "/")
    if not isinstance(text, str) or not isinstance(path, str):
        return None
    if not text or len(text) > MAX_COOKIE_BYTES or any(c in text for c in "\r\n\0"):
        return None
    if not path.startswith("/") or len(path) > MAX_PATH:
        path = "/"
    return text, path


async def store(request: web.Request, exchange: Exchange) -> web.Response:
    """Keep one ``document.cookie`` write of the page on ``exchange``'s host (204), or refuse
    it (403 for another origin or no session, 400 for a malformed body)."""
    if request.method != "POST":
        raise web.HTTPMethodNotAllowed(request.method, ["POST"])
    session, jar = exchange.session, exchange.jar
    if session is None or not _same_origin(request, exchange):
        raise web.HTTPForbidden()
    if (request.content_length or 0) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(MAX_BODY, request.content_length or 0)
    try:
        written = _written(json.loads(await request.content.read(MAX_BODY)))
    except ValueError:
        written = None
    if written is None:
        raise web.HTTPBadRequest()
    text, path = written
    gateway = cookie_names(request.app[SETTINGS]).gateway
    if jar is not None and vendor_may_set(text, gateway, to_browser=False):
        await request.app[JARS].update(session, jar, [text], exchange.origin, path)
    return web.Response(status=204, headers={hdrs.CACHE_CONTROL: "no-store"})
