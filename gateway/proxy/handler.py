"""The proxy: every request for a proxied host name, as DESIGN.md's request flow.

patron asks -> which origin, do the rules allow it -> session (or AnonymousURL) -> the vendor is
asked, with the session's cookies -> headers rewritten, cookies kept -> body streamed through
decode, rewrite, encode -> access log line.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import weakref
from typing import Any, NamedTuple

import aiohttp
from aiohttp import hdrs, web
from yarl import URL

from gateway.appkeys import (
    ACCESS_LOG,
    JARS,
    METRICS,
    RULES,
    SESSIONS,
    SETTINGS,
    TRACKER,
    UPSTREAM,
)
from gateway.auth import onsite
from gateway.companion import cookie as page_cookie
from gateway.companion import serve as companion
from gateway.companion.inject import Plan, Role, role_of
from gateway.config import Settings
from gateway.edge.client import client_address
from gateway.edge.request_cookie import request_cookie
from gateway.logsafe import printable
from gateway.proxy import escapes
from gateway.proxy.access_log import Entry
from gateway.proxy.exchange import (
    Arrival,
    ChangePin,
    ErrorPage,
    Exchange,
    ForgetAndReload,
    Forward,
    Handover,
    SubmitForm,
    Suspended,
    ToLogin,
    UnknownHost,
    WorkerRefused,
    decide,
    locate,
)
from gateway.proxy.jar_store import JarStore
from gateway.proxy.upstream import BlockedAddress
from gateway.redis_client import REDIS_ERRORS
from gateway.rewrite.body import BodyRewriter, Chain, Mode, Passthrough, choose_mode
from gateway.rewrite.compression import (
    ACCEPTED,
    GzipEncoder,
    UnreadableBody,
    accepts_gzip,
    decoder_for,
)
from gateway.rewrite.cookies import CookieJar, parse_set_cookie, vendor_may_set
from gateway.rewrite.cors import cors_request, cors_response, preflight_method
from gateway.rewrite.headers import (
    Unproxy,
    body_changed,
    rewrite_request_headers,
    rewrite_response_headers,
)
from gateway.rewrite.select import database_rewriter, header_context
from gateway.rewrite.target import HostIndex, ProxyTarget
from gateway.rules.model import CookieMode, Database
from gateway.rules.ruleset import RuleSet, login_link
from gateway.sessions import Session
from gateway.web import named_start, pages
from gateway.web.cookie_names import cookie_names
from gateway.web.handover import PATHS as HANDOVER_PATHS
from gateway.web.handover import ask_login_host
from gateway.web.handover import serve as serve_handover
from gateway.web.patron import clear_session_cookie
from gateway.web.pin_first import change_first
from gateway.web.refusals import staff_hint

log = logging.getLogger(__name__)

CHUNK = 65536
HOLD = 256 * 1024
"""Rewritten bodies up to this size are sent whole, with a length (see ``_hold``)."""
TOUCH_EVERY = 10.0
"""Seconds between writes of a session's last activity (every request would be wasteful)."""
FORM_BODY_LIMIT = 1 << 20
CLEAR_SITE_DATA = "Clear-Site-Data"
SERVICE_WORKER = "Service-Worker"
SERVER_SIDE_COOKIES = frozenset({CookieMode.COOKIE, CookieMode.DOMAIN_COOKIE_ONLY})
"""Cookie modes in which the vendor's cookies live in the session's jar in Redis."""


_INDEXES: weakref.WeakKeyDictionary[RuleSet, tuple[Settings, HostIndex]] = (
    weakref.WeakKeyDictionary()
)
"""The rewriting index of each live rule set, with the settings (gateway address) it was built
for; old rule sets drop out."""
_LAST: list[tuple[RuleSet, Settings, HostIndex]] = []
"""The index the last request used: a process serves one rule set until the rules reload, and a
weak dictionary's lookup makes a weak reference on every request."""


def host_index(request: web.Request) -> HostIndex:
    """The rewriters' index for the live rule set (rebuilt when the rules reload)."""
    # request.app, not config_dict: the proxy is the main application's route, and
    # config_dict builds a chain of mappings on every use.
    app = request.app
    ruleset = app[RULES].ruleset
    settings = app[SETTINGS]
    if _LAST and _LAST[0][0] is ruleset and _LAST[0][1] is settings:
        return _LAST[0][2]
    built = _INDEXES.get(ruleset)
    if built is None or built[0] is not settings:
        built = _INDEXES[ruleset] = (settings, HostIndex(ruleset, ProxyTarget.of(settings)))
    _LAST[:] = [(ruleset, settings, built[1])]
    return built[1]


def _refuse(request: web.Request, status: int, **context: Any) -> web.Response:
    return pages.error_page(request, status, **context)


async def _session(
    request: web.Request, db: Database, raw: str | None, address: str
) -> tuple[Session | None, CookieJar | None]:
    """The patron's session and, for databases whose cookies the gateway keeps, its jar (kept
    in the session's hash): one Redis read. An on-site session used from ``address`` off the
    site is ended instead."""
    store = request.app[SESSIONS]
    session, data = await store.load(raw)
    session = await onsite.keep_on_site(store, session, address, request.app[SETTINGS])
    if session is None:
        return None, None
    if store.clock() - session.last > TOUCH_EVERY:
        await store.touch(session)
    server_side = db.cookie_mode in SERVER_SIDE_COOKIES
    return session, JarStore.from_data(data) if server_side else None


def _suspended_page(request: web.Request, reason: str, session: Session | None) -> web.Response:
    """What a patron paused by a usage limit sees instead of the database: what and why."""
    until = session.suspended_until if session is not None else float("inf")
    return pages.render(
        request, "suspended.html", 429, reason=reason,
        until=time.strftime("%H:%M UTC", time.gmtime(until)) if until != float("inf") else "",
    )  # fmt: skip


def _to_login(request: web.Request, plan: ToLogin) -> web.Response:
    """No session on this host: over TLS, ask the login host to hand one over; over http, the
    login page."""
    if cookie_names(request.app[SETTINGS]).tls:
        response = ask_login_host(request, plan.url)
    else:
        location = login_link(request.app[SETTINGS].public_url, plan.url)
        response = web.Response(status=302, headers={hdrs.LOCATION: location})
    if plan.forget:
        _forget(request, response)
    return response


def _forget(request: web.Request, response: web.StreamResponse) -> None:
    """After a session ends, the first answer each proxied host gives that browser clears what
    the vendor's pages kept on that host: storage, caches and service workers (``"storage"``;
    ``"cookies"`` would reach the login host's cookies too), and the ended session's cookie."""
    response.headers[CLEAR_SITE_DATA] = '"storage"'
    clear_session_cookie(request, response)


def _forget_and_reload(request: web.Request) -> web.Response:
    response = web.Response(status=302, headers={hdrs.LOCATION: request.raw_path})
    _forget(request, response)
    return response


def _change_pin(request: web.Request, plan: ChangePin) -> web.Response:
    raise change_first(request, plan.url, proxied=True)


def _cookie_header(request: web.Request, exchange: Exchange) -> str:
    mode = exchange.database.cookie_mode
    if mode is CookieMode.PASS_THROUGH:  # the browser keeps the vendor's cookies
        gateway = cookie_names(request.app[SETTINGS]).gateway
        return "; ".join(
            f"{name}={value}" for name, value in request.cookies.items() if name not in gateway
        )
    if mode is CookieMode.NO_COOKIE or exchange.jar is None:
        return ""
    return exchange.jar.header(exchange.origin, exchange.path)


async def _request_body(request: web.Request, unproxy: Unproxy) -> Any:
    if request.method in ("GET", "HEAD") or not request.can_read_body:
        return None
    kind = request.headers.get(hdrs.CONTENT_TYPE, "")
    length = request.content_length or 0
    if kind.startswith("application/x-www-form-urlencoded") and length <= FORM_BODY_LIMIT:
        # Form values that hold proxied URLs go back to the vendor as the vendor's URLs.
        body = await request.read()
        return unproxy.text(body.decode("latin-1")).encode("latin-1")
    return request.content.iter_chunked(CHUNK)


class Pipeline(NamedTuple):
    """Decode -> rewrite -> encode for one response body (httpx's decoders, chained)."""

    stream: BodyRewriter
    encoding: str | None
    """The Content-Encoding of what comes out."""

    @classmethod
    def of(
        cls,
        exchange: Exchange,
        upstream: aiohttp.ClientResponse,
        gzip_ok: bool,
        extra: BodyRewriter | None,
    ) -> Pipeline | None:
        """The pipeline for a text body, ``extra`` after the rewriting (the companion); None
        when the body passes untouched."""
        kind = upstream.headers.get(hdrs.CONTENT_TYPE, "")
        located = exchange.located
        rewriter = database_rewriter(
            exchange.index, located.url, located.origin, kind, located.database
        )
        if isinstance(rewriter, Passthrough):
            return None
        decoder = decoder_for(upstream.headers.get(hdrs.CONTENT_ENCODING, ""))
        if decoder is None:
            return None
        stages = [rewriter] if isinstance(decoder, Passthrough) else [decoder, rewriter]
        if extra is not None:
            stages.append(extra)
        if gzip_ok:
            stages.append(GzipEncoder())
        return cls(stages[0] if len(stages) == 1 else Chain(stages), "gzip" if gzip_ok else None)


def _arrival(request: web.Request, tls: bool) -> Arrival:
    headers = request.headers
    # Positional, in Arrival's field order: method, raw_path, host, service_worker_script,
    # websocket, tls, handover_paths, preflight.
    return Arrival(
        request.method,
        request.raw_path,
        request.host,
        headers.get(SERVICE_WORKER) == "script",
        headers.get(hdrs.UPGRADE, "").lower() == "websocket",
        tls,
        HANDOVER_PATHS,
        preflight_method(request.method, headers),
    )


async def proxy(request: web.Request) -> web.StreamResponse:
    """Serve one request for a proxied host: locate, read the session, decide, then act."""
    app = request.app
    index = host_index(request)
    settings = app[SETTINGS]
    names = cookie_names(settings)
    arrival = _arrival(request, names.tls)
    located = locate(arrival, index)
    match located:
        case ErrorPage(status):
            return _refuse(request, status)
        case UnknownHost(host, refused):
            hint = staff_hint(request, refused) if refused else {"hint": ""}
            return pages.render(request, "unknown_host.html", 404, host=host, **hint)
        case Handover(origin):
            return await serve_handover(request, origin, Unproxy(index).text)
        case WorkerRefused(url):
            log.info("service worker refused: %s", printable(url[:300]))
            return _refuse(request, 403)
    reserved = escapes.ENDPOINTS.get(arrival.raw_path.partition("?")[0])
    if reserved is not None:  # a CSP report or a companion beacon, for this host's database
        return await escapes.receive(request, located.database, index, reserved)
    cookie = request_cookie(request, names.session)
    address = client_address(request, settings)
    session, jar = await _session(request, located.database, cookie, address)
    cors = cors_request(request.method, request.headers, located.origin, located.database, index)
    exchange = Exchange(arrival, located, index, session, jar, cookie is not None, address,
                        app[SESSIONS].clock(), cors)  # fmt: skip
    match decide(exchange):
        case Forward(exchange, websocket=True):
            return await _websocket(request, exchange)
        case Forward(exchange) if arrival.raw_path.partition("?")[0] == page_cookie.PATH:
            return await page_cookie.store(request, exchange)  # a page script's cookie
        case Forward(exchange):
            return await _forward(request, exchange)
        case ToLogin() as plan:
            return _to_login(request, plan)
        case ForgetAndReload():
            return _forget_and_reload(request)
        case Suspended(reason):
            return _suspended_page(request, reason, session)
        case ChangePin() as plan:
            return _change_pin(request, plan)
        case ErrorPage(status):
            return _refuse(request, status)
        case SubmitForm(exchange, label) if exchange.session is not None:
            return await named_start.on_vendor_host(request, exchange.origin, label,
                                                    exchange.session.pid)  # fmt: skip
    raise AssertionError("every decision is handled")


@functools.lru_cache(maxsize=64)
def _without_encoding(blocked: frozenset[str]) -> frozenset[str]:
    """A database's blocked request headers and ``Accept-Encoding`` (a few per rule set)."""
    return blocked | {"accept-encoding"}


def _upstream_headers(
    request: web.Request, exchange: Exchange, unproxy: Unproxy
) -> list[tuple[str, str]]:
    db, session = exchange.database, exchange.session
    # The patron's Accept-Encoding goes too: the gateway asks for what it can decode.
    blocked = _without_encoding(db.header_policy.request)
    headers = rewrite_request_headers(request.headers.items(), unproxy, blocked)
    headers.append(("Accept-Encoding", ACCEPTED))
    # Not for preflights, nor for another database's page (gateway.rewrite.cors).
    credentials = exchange.cors.vendor_credentials
    cookie = _cookie_header(request, exchange) if credentials else ""
    if cookie:
        headers.append(("Cookie", cookie))
    if db.x_forwarded_for:
        headers.append(("X-Forwarded-For", exchange.address))
    if session is not None and credentials:
        headers.extend((name, session.pid) for name in db.user_headers)
    return headers


async def _forward(request: web.Request, exchange: Exchange) -> web.StreamResponse:
    started = time.time()
    unproxy = Unproxy(exchange.index)
    headers = _upstream_headers(request, exchange, unproxy)
    client = request.app[UPSTREAM]
    body = await _request_body(request, unproxy)
    if isinstance(body, bytes):  # rewritten: aiohttp sets the new length
        headers = [(n, v) for n, v in headers if n.lower() != "content-length"]
    try:
        upstream = await client.request(
            request.method, URL(exchange.url, encoded=True), headers=headers, data=body,
            allow_redirects=False,
        )  # fmt: skip
    except aiohttp.ClientConnectorError as exc:  # aiohttp wraps what the resolver raised
        if isinstance(exc.os_error, BlockedAddress):
            log.warning("upstream refused: %s", printable(str(exc.os_error)))
        else:
            log.warning("upstream failed: %s %s: %s", request.method, exchange.origin.url(),
                        printable(str(exc)))  # fmt: skip
        return _failed(request, exchange.database, 502)
    except (TimeoutError, aiohttp.ServerTimeoutError):
        return _failed(request, exchange.database, 504)
    except (aiohttp.ClientError, OSError) as exc:
        log.warning("upstream failed: %s %s: %s", request.method, exchange.origin.url(),
                    printable(str(exc)))  # fmt: skip
        return _failed(request, exchange.database, 502)
    metrics = request.app[METRICS]
    metrics.observe("carrel_upstream_seconds", time.time() - started)
    metrics.inc("carrel_requests_total", database=exchange.database.title,
                status=str(upstream.status))  # fmt: skip
    async with upstream:
        return await _respond(request, exchange, upstream, started)


def _failed(request: web.Request, db: Database, status: int) -> web.Response:
    """The gateway's own 502/504 page, counted like any answer."""
    request.app[METRICS].inc("carrel_requests_total", database=db.title, status=str(status))
    return _refuse(request, status)


async def _keep_cookies(
    request: web.Request, exchange: Exchange, upstream: aiohttp.ClientResponse, started: float
) -> list[tuple[str, str]]:
    """The vendor's Set-Cookie headers into the session's jar, or (cookies passed through) the
    ones to send on to the browser."""
    set_cookies = upstream.headers.getall(hdrs.SET_COOKIE, [])
    if not set_cookies:
        return []
    db, session, jar = exchange.database, exchange.session, exchange.jar
    gateway = cookie_names(request.app[SETTINGS]).gateway  # in every cookie mode, none of these
    to_browser = db.cookie_mode is CookieMode.PASS_THROUGH
    set_cookies = [c for c in set_cookies if vendor_may_set(c, gateway, to_browser)]
    if set_cookies and session is not None and jar is not None:  # a server-side jar
        await request.app[JARS].update(session, jar, set_cookies, exchange.origin, exchange.path)
    elif to_browser:
        return [
            ("Set-Cookie", _passed_cookie(c, exchange.index))
            for c in set_cookies
            if parse_set_cookie(c, exchange.origin, exchange.path, started) is not None
        ]  # only what a browser talking to the vendor would keep (no public suffixes)
    return []


_COMPANION_MODES = {Role.PAGE: Mode.HTML, Role.CLASSIC_WORKER: Mode.JAVASCRIPT,
                    Role.MODULE_WORKER: Mode.JAVASCRIPT}  # fmt: skip
"""The body a response must have to get the companion in each role."""


def _companion(
    request: web.Request, exchange: Exchange, upstream: aiohttp.ClientResponse
) -> Plan | None:
    """The companion for a page or worker script, when it is switched on."""
    headers = request.headers
    role = role_of(headers.get("Sec-Fetch-Dest", ""), headers.get("Sec-Fetch-Mode", ""))
    if role is None:
        return None
    scripts = companion.scripts(request.app)
    kind = upstream.headers.get(hdrs.CONTENT_TYPE, "")
    mode = choose_mode(kind, exchange.url, exchange.database.mime_filters)
    if scripts is None or mode is not _COMPANION_MODES[role]:
        return None
    return Plan(scripts, role, companion.nonce())


async def _respond(
    request: web.Request, exchange: Exchange, upstream: aiohttp.ClientResponse, started: float
) -> web.StreamResponse:
    db, session = exchange.database, exchange.session
    ctx = header_context(exchange.index, exchange.origin, db)
    headers = cors_response(rewrite_response_headers(upstream.headers.items(), ctx), exchange.cors)
    plan = _companion(request, exchange, upstream)
    if plan is not None:
        headers = plan.headers(headers)
    # After the companion's changes: a nonce in the gateway's own Report-Only policy would
    # switch its 'unsafe-inline' off, and every inline script would be reported.
    headers.extend(
        escapes.net_headers(request, upstream.headers.get(hdrs.CONTENT_TYPE, ""), exchange.index)
    )
    if hdrs.SET_COOKIE in upstream.headers:
        headers.extend(await _keep_cookies(request, exchange, upstream, started))
    has_body = request.method != "HEAD" and upstream.status not in (204, 304)
    pipeline = None
    if has_body and upstream.status != 206:
        gzip_ok = accepts_gzip(request.headers.get(hdrs.ACCEPT_ENCODING, ""))
        pipeline = Pipeline.of(exchange, upstream, gzip_ok, plan.stage() if plan else None)
    if pipeline is not None:
        headers = body_changed(headers, pipeline.encoding)
    tracker = request.app[TRACKER]
    download = tracker.is_download(upstream.headers.get(hdrs.CONTENT_TYPE, ""))
    stop = await tracker.at_response(session, db.title, db.usage_limits, exchange.address,
                                     download)  # fmt: skip
    if stop is not None and session is not None:
        return _suspended_page(request, stop, await request.app[SESSIONS].find(session.hash))
    stream: BodyRewriter = pipeline.stream if pipeline else Passthrough()
    held, whole = b"", False
    if pipeline is not None and upstream.content_length is not None:
        try:
            held, whole = await _hold(upstream, stream)
        except (aiohttp.ClientError, TimeoutError, UnreadableBody) as exc:
            log.warning("stream from %s broke off: %s", exchange.origin.url(), printable(str(exc)))
            return _failed(request, db, 502)
    # A whole body goes out with its length, headers and body in one write.
    response = (
        web.Response(status=upstream.status, reason=upstream.reason, body=held)
        if whole
        else web.StreamResponse(status=upstream.status, reason=upstream.reason)
    )
    for name, value in headers:
        response.headers.add(name, value)
    sent = Sent()
    try:
        await response.prepare(request)
        if whole:
            sent.count = len(held)
        elif has_body:
            if held:
                await sent.write(response, held)
            await _send_streamed(response, upstream, stream, sent)
        await response.write_eof()
    except ConnectionError:  # reset, broken pipe, or aiohttp's "Connection lost" while draining
        log.info("patron went away during %s %s", request.method, exchange.origin.url())
        response.force_close()
    except (aiohttp.ClientError, TimeoutError, UnreadableBody) as exc:
        log.warning("stream from %s broke off: %s", exchange.origin.url(), printable(str(exc)))
        # Headers are out, so the status cannot change: cut the connection, the browser sees
        # an incomplete response rather than a truncated one that looks whole. (force_close
        # alone is not enough: aiohttp would still end the body properly after we return.)
        response.force_close()
        if request.transport is not None:
            request.transport.close()
    _log_access(request, exchange, upstream.status, sent.count, started)
    request.app[METRICS].inc("carrel_bytes_total", sent.count, database=db.title)
    try:
        await tracker.after_request(
            session, db.title, db.usage_limits, exchange.address, sent.count, download
        )
    except REDIS_ERRORS as exc:  # the response is out: nothing left to refuse, only to log
        log.error("usage not counted, Redis: %s", exc)
    return response


class Sent:
    """Bytes of body sent to the patron so far (counted even when the patron leaves midway,
    so that a usage limit in MB cannot be dodged by cutting downloads short)."""

    count = 0

    async def write(self, response: web.StreamResponse, data: bytes) -> None:
        """Send ``data`` as the next piece of the body."""
        self.count += len(data)
        await response.write(data)


async def _send_streamed(
    response: web.StreamResponse, upstream: aiohttp.ClientResponse, stream: BodyRewriter,
    sent: Sent,
) -> None:  # fmt: skip
    """Pass the body on as it comes, through ``stream``."""
    async for chunk in upstream.content.iter_chunked(CHUNK):
        out = stream.feed(chunk)
        if out:
            await sent.write(response, out)
    tail = stream.flush()
    if tail:
        await sent.write(response, tail)


async def _hold(upstream: aiohttp.ClientResponse, stream: BodyRewriter) -> tuple[bytes, bool]:
    """Read a rewritten body of known upstream length until it ends or passes ``HOLD``: the
    output so far, and whether that is all of it.

    Most pages are smaller than that, and then they go out as one write with a
    Content-Length, instead of a write per piece in chunked encoding, which costs as much as
    the rewriting. Bigger ones stream from there on. Only bodies with a length are held: a page
    the vendor sends in pieces as it makes them (no length) reaches the patron piece by piece.
    """
    held: list[bytes] = []
    size = 0
    async for chunk in upstream.content.iter_chunked(CHUNK):
        out = stream.feed(chunk)
        held.append(out)
        size += len(out)
        if size > HOLD:
            return b"".join(held), False
    held.append(stream.flush())
    return b"".join(held), True


def _passed_cookie(header: str, index: HostIndex) -> str:
    """A vendor cookie the rules pass to the browser: valid for the proxied hosts instead."""
    parts = [p for p in header.split(";") if not p.strip().lower().startswith("domain=")]
    parts.append(f" Domain={index.target.proxy_domain}")
    if index.target.scheme != "https":
        parts = [p for p in parts if p.strip().lower() != "secure"]
    return ";".join(parts)


def _log_access(
    request: web.Request, exchange: Exchange, status: int, size: int, started: float
) -> None:
    log_file = request.app[ACCESS_LOG]
    if not log_file.isEnabledFor(logging.INFO):
        return  # access_log = "-": no line to build
    session = exchange.session
    version = f"{request.version.major}.{request.version.minor}"
    pid = session.pid if session else ""
    entry = Entry(exchange.address, pid, started, request.method, exchange.origin,
                  exchange.target, version, status, size)  # fmt: skip
    log_file.info(entry.line())


async def _websocket(request: web.Request, exchange: Exchange) -> web.StreamResponse:
    started = time.time()
    headers = _upstream_headers(request, exchange, Unproxy(exchange.index))
    skip = {"sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
            "sec-websocket-protocol", "accept-encoding"}  # fmt: skip
    headers = [(n, v) for n, v in headers if n.lower() not in skip]
    protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",")
                 if p.strip()]  # fmt: skip
    origin = exchange.origin
    ws_url = URL(exchange.url, encoded=True).with_scheme(
        "wss" if origin.scheme == "https" else "ws"
    )
    try:
        upstream = await request.app[UPSTREAM].ws_connect(
            ws_url, headers=headers, protocols=protocols, autoclose=False, autoping=True
        )
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        log.warning("websocket to %s failed: %s", origin.url(), printable(str(exc)))
        return _refuse(request, 502)
    patron = web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else ())
    await patron.prepare(request)

    async def pump(source: Any, sink: Any) -> None:
        async for message in source:
            if message.type == aiohttp.WSMsgType.TEXT:
                await sink.send_str(message.data)
            elif message.type == aiohttp.WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            else:
                break
        await sink.close()

    tasks = [
        asyncio.create_task(pump(patron, upstream)),
        asyncio.create_task(pump(upstream, patron)),
    ]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for task in tasks:
        task.cancel()
    await upstream.close()
    await patron.close()
    _log_access(request, exchange, 101, 0, started)
    return patron
