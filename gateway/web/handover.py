"""The two ends of the session handover (``gateway.handover``), used over TLS only.

A proxied host with no session of its own asks the login host (``ask_login_host``); the login
host's ``GET /handover`` mints a code for the session its own cookie names and sends the
browser back to ``<proxied host>/__carrel/handover?code=...`` (``redeem``), which sets the
host's ``__Host-`` session cookie. A browser that does not keep cookies would go round for
ever, so after ``TRIES`` rounds the patron gets a page that says what to do instead.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Callable
from urllib.parse import quote, urlsplit

from aiohttp import hdrs, web
from yarl import URL

from gateway.appkeys import HANDOVERS, RULES, SESSIONS, SETTINGS
from gateway.edge.request_cookie import request_cookie
from gateway.handover import CODE_SECONDS, Handover
from gateway.hostmap import Origin
from gateway.rules.ruleset import Allowed, proxied_url
from gateway.web import pages
from gateway.web.cookie_names import cookie_names
from gateway.web.patron import current_session, session_cookie, set_session_cookie
from gateway.web.pin_first import change_first
from gateway.web.refusals import staff_hint
from gateway.web.targets import target_from_query

PATH = "/__carrel/handover"
"""Where a proxied host takes its code (a path vendors do not use)."""
WARM_PATH = "/__carrel/warm"
"""A proxied host's answer once it has the session: 204. The hand-over page asks each of the
database's other hosts for it (as an image), which runs their hand-over too."""
PATHS = frozenset({PATH, WARM_PATH})
MAX_WARM = 8
"""Other hosts of a database handed the session at once (the rules' URL, Host and HJ hosts)."""
TRIES = 2
PAGE_DESTINATIONS = frozenset({"document", "iframe", "frame"})
"""``Sec-Fetch-Dest`` of requests whose answer the browser shows as a page."""
NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={hdrs.LOCATION: location})


def _tries(value: str | None) -> int:
    return int(value) if value and value.isdigit() and len(value) < 3 else 0


def _same_host_path(path: str) -> str:
    """A path on the host itself: never ``//other`` (a network-path reference)."""
    return "/" + path.lstrip("/") if path.startswith("/") else "/"


def ask_login_host(request: web.Request, url: str, tries: int = 0) -> web.Response:
    """A proxied host without a session of its own: to the login host for a code for ``url``.

    The nonce cookie is kept while it lasts, so that the many requests a page sends at once to
    a new host (images, scripts) all wait for the same nonce rather than each replacing it."""
    settings = request.config_dict[SETTINGS]
    names = cookie_names(settings)
    nonce = request_cookie(request, names.handover) or ""
    if not NONCE.fullmatch(nonce):
        nonce = secrets.token_urlsafe(24)
    query = f"n={nonce}&t={tries}&qurl={quote(url, safe='')}"  # qurl last: it may hold '&'
    response = _redirect(str(URL(f"{settings.public_url}/handover?{query}", encoded=True)))
    response.set_cookie(
        names.handover, nonce, max_age=5 * CODE_SECONDS, path="/", secure=True, httponly=True,
        samesite="Lax",
    )  # fmt: skip
    return response


async def login_host_handover(request: web.Request) -> web.StreamResponse:
    """GET /handover on the login host: a code for the proxied host of ``qurl``, for the
    session this host's cookie names; no session: the login page first."""
    settings = request.config_dict[SETTINGS]
    nonce = request.query.get("n", "")
    target = target_from_query(request.query_string)
    origin = Origin.from_url(target) if target else None
    if not NONCE.fullmatch(nonce) or origin is None or not cookie_names(settings).tls:
        return pages.error_page(request, 400)
    ruleset = request.config_dict[RULES].ruleset
    found = ruleset.lookup(origin)
    if not isinstance(found, Allowed):
        return pages.render(request, "unknown_host.html", 404, host=origin.url(),
                            **staff_hint(request, found))  # fmt: skip
    raw = session_cookie(request)
    session = await current_session(request)
    if raw is None or session is None:
        raise web.HTTPFound(URL(f"/login?qurl={quote(target, safe='')}", encoded=True))
    if session.must_change_pin:  # no proxied host gets this session before the change
        raise change_first(request, target)
    hostmap = ruleset.hostmap(settings.server.proxy_domain)
    proxied = proxied_url(target, hostmap, settings.server.public_scheme, settings.port_suffix)
    assert proxied is not None  # an allowed origin is http(s)
    parts = urlsplit(proxied)
    path = _same_host_path(parts.path) + (f"?{parts.query}" if parts.query else "")
    code = await request.config_dict[HANDOVERS].mint(
        Handover(raw=raw, host=(parts.hostname or "").lower(), nonce=nonce, path=path)
    )
    tries = _tries(request.query.get("t"))
    raise web.HTTPFound(
        URL(f"{parts.scheme}://{parts.netloc}{PATH}?code={code}&t={tries}", encoded=True)
    )


async def serve(
    request: web.Request, vendor_origin: Origin, to_vendor: Callable[[str], str]
) -> web.Response:
    """The gateway's own paths on a proxied host (``PATHS``)."""
    if request.path == WARM_PATH:
        return await warm(request, vendor_origin)
    return await redeem(request, vendor_origin, to_vendor)


async def warm(request: web.Request, vendor_origin: Origin) -> web.Response:
    """``<proxied host>/__carrel/warm``: 204 once this host has a live session of its own,
    else a hand-over round for it (whose code comes back to this path)."""
    if await request.config_dict[SESSIONS].get(session_cookie(request)) is not None:
        return web.Response(status=204)
    return ask_login_host(request, vendor_origin.url() + WARM_PATH)


def _siblings(request: web.Request, vendor_origin: Origin) -> list[str]:
    """The warm-up URLs of the other hosts the database of ``vendor_origin`` names, so that
    the vendor's first ``fetch()`` to its API host finds a session there (a credentialed
    cross-origin fetch cannot follow a hand-over through the login host)."""
    settings = request.config_dict[SETTINGS]
    ruleset = request.config_dict[RULES].ruleset
    found = ruleset.lookup(vendor_origin)
    if not isinstance(found, Allowed):
        return []
    hostmap = ruleset.hostmap(settings.server.proxy_domain)
    urls: list[str] = []
    for rule in found.database.hosts:
        if rule.origin == vendor_origin or not isinstance(ruleset.lookup(rule.origin), Allowed):
            continue
        url = f"{settings.server.public_scheme}://{hostmap.proxied_host(rule.origin)}"
        url += f"{settings.port_suffix}{WARM_PATH}"
        if url not in urls:
            urls.append(url)
    return urls[:MAX_WARM]


def _handed_over(request: web.Request, record: Handover, vendor_origin: Origin) -> web.Response:
    """The host's session cookie on the answer: a warm-up is done (204); a page goes on, by
    way of the hand-over page when the database has other hosts to warm up."""
    siblings = [] if record.path == WARM_PATH else _siblings(request, vendor_origin)
    if request.headers.get("Sec-Fetch-Dest", "document") not in PAGE_DESTINATIONS:
        # An image or a script cannot be a page (the browser blocks HTML for it, ORB): it
        # goes straight on. This happens when a host joins a database mid-session (an
        # escaped host added), after the page's own hand-over warmed the hosts it had.
        siblings = []
    if record.path == WARM_PATH:
        response = web.Response(status=204)
    elif siblings:
        response = pages.render(request, "handover.html", next_path=record.path, warm=siblings)
        settings = request.config_dict[SETTINGS]
        proxied = f"{settings.server.public_scheme}://*.{settings.server.proxy_domain}"
        policy = response.headers["Content-Security-Policy"]
        response.headers["Content-Security-Policy"] = policy.replace(
            "img-src 'self' data:", f"img-src 'self' data: {proxied}{settings.port_suffix}"
        )
    else:
        response = _redirect(record.path)
    set_session_cookie(request, response, record.raw)
    names = cookie_names(request.config_dict[SETTINGS])
    response.del_cookie(names.handover, path="/", secure=True, httponly=True, samesite="Lax")
    return response


async def redeem(
    request: web.Request, vendor_origin: Origin, to_vendor: Callable[[str], str]
) -> web.Response:
    """``<proxied host>/__carrel/handover?code=``: the host's session cookie, then on.

    ``to_vendor`` turns a proxied path into the vendor's, for starting a new round. A host
    that already has a live session keeps it: a code someone sent the patron (for that
    someone's own session) changes nothing."""
    settings = request.config_dict[SETTINGS]
    names = cookie_names(settings)
    record = await request.config_dict[HANDOVERS].redeem(request.query.get("code", ""))
    host = (request.host.rpartition(":")[0] if ":" in request.host else request.host).lower()
    mine = record is not None and record.host == host
    path = _same_host_path(record.path) if record is not None and mine else "/"
    if await request.config_dict[SESSIONS].get(session_cookie(request)) is not None:
        return _redirect(path)
    nonce = request_cookie(request, names.handover) or ""
    if record is not None and mine and nonce and hmac.compare_digest(nonce, record.nonce):
        return _handed_over(request, record, vendor_origin)
    tries = _tries(request.query.get("t"))
    if tries >= TRIES:
        return pages.render(
            request, "message.html", 403, title_key="handover_failed_title",
            text_key="handover_failed_text", link=path, link_key="try_again",
        )  # fmt: skip
    return ask_login_host(request, vendor_origin.url() + to_vendor(path), tries + 1)


def add_routes(app: web.Application) -> None:
    """Register the login host's end."""
    app.router.add_get("/handover", login_host_handover)
