"""The CSP net and the escape endpoints on every proxied host.

Pages and workers get a ``Content-Security-Policy-Report-Only`` header of the gateway's own
(beside any the vendor sends: every policy a response carries is checked on its own, and the
vendor's keeps reporting where it did), so the browser reports each request that leaves the
proxy. Those reports, and the companion's beacons, arrive at reserved paths of the proxied host
the page is on; the database whose rules allow that host is the one the escape is counted for.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from aiohttp import hdrs, web

from gateway.appkeys import ESCAPES, SETTINGS
from gateway.edge.client import client_address
from gateway.edge.request_cookie import request_cookie
from gateway.escapes.reports import (
    BEACON_PATH,
    CSP_REPORT_PATH,
    BadReport,
    Escaped,
    beacon,
    csp_reports,
    policy,
    reporting_endpoints,
    worth_recording,
)
from gateway.rewrite.body import Mode, choose_mode
from gateway.rewrite.target import HostIndex
from gateway.rules.model import Database
from gateway.web.cookie_names import cookie_names

MAX_BODY = 64 * 1024
"""A report batch or a beacon is a few KB; more is not one."""
REPORT_ONLY = "Content-Security-Policy-Report-Only"
REPORTING_ENDPOINTS = "Reporting-Endpoints"
WORKER_DESTINATIONS = frozenset({"worker", "sharedworker", "serviceworker"})

Parser = Callable[[bytes], list[Escaped]]
ENDPOINTS: dict[str, Parser] = {CSP_REPORT_PATH: csp_reports, BEACON_PATH: beacon}
"""Reserved paths of every proxied host -> what reads their bodies."""


@cache
def _net(scheme: str, domain: str, port_suffix: str) -> tuple[tuple[str, str], ...]:
    net: tuple[tuple[str, str], ...] = ((REPORT_ONLY, policy(scheme, domain, port_suffix)),)
    if scheme == "https":  # the Reporting API delivers to secure endpoints only
        net += ((REPORTING_ENDPOINTS, reporting_endpoints()),)
    return net


def net_headers(
    request: web.Request, content_type: str, index: HostIndex
) -> tuple[tuple[str, str], ...]:
    """The CSP net's headers for a response of ``content_type`` to ``request``: for pages and
    worker scripts, nothing for other responses."""
    worker = request.headers.get("Sec-Fetch-Dest", "") in WORKER_DESTINATIONS
    if choose_mode(content_type) is not Mode.HTML and not worker:
        return ()
    target = index.target
    return _net(target.scheme, target.proxy_domain, target.port_suffix)


async def _body(request: web.Request) -> bytes | None:
    """The body, or None when it is longer than ``MAX_BODY``."""
    if (request.content_length or 0) > MAX_BODY:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(8192):
        size += len(chunk)
        if size > MAX_BODY:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _status(status: int) -> web.Response:
    return web.Response(status=status, headers={hdrs.CACHE_CONTROL: "no-store"})


async def receive(
    request: web.Request, database: Database, index: HostIndex, parse: Parser
) -> web.Response:
    """POST a CSP report or a beacon: count the hosts no rule covers for ``database``, 204.

    Not a POST: 405; over ``MAX_BODY``: 413; over the rate: 429; not a report: 400."""
    if request.method != "POST":
        return web.Response(status=405, headers={hdrs.ALLOW: "POST"})
    body = await _body(request)
    if body is None:
        return _status(413)
    store = request.app[ESCAPES]
    cookie = request_cookie(request, cookie_names(request.app[SETTINGS]).session)
    if not await store.allowed(client_address(request), cookie):
        return _status(429)
    try:
        escapes = parse(body)
    except BadReport:
        return _status(400)
    domain = index.target.proxy_domain
    await store.record(
        database.title, [e for e in escapes if worth_recording(e, index.ruleset, domain)]
    )
    return _status(204)
