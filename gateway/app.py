"""Builds the aiohttp application: wires settings, Redis, rules, pages and the proxy together.

Requests are routed by Host: ``login.<proxy_domain>`` gets the gateway's own pages (a sub-app
added with ``add_domain``), every other name goes to the proxy entry point.
"""

from __future__ import annotations

import asyncio
import codecs
import hmac
import logging
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import hdrs, web

from gateway import config, health
from gateway.admin.app import admin_app, admin_ctx
from gateway.appkeys import (
    ACCESS_LOG,
    AUDIT,
    BACKGROUND,
    CLOCK,
    DIRECTORY,
    ESCAPES,
    HANDOVERS,
    JARS,
    KEYRING,
    LOCKOUTS,
    MAILER,
    METRICS,
    REDIS,
    RESETS,
    RULES,
    SECRET,
    SESSIONS,
    SETTINGS,
    SIGNIN_FLOWS,
    SIGNIN_METHODS,
    SPU_LOG,
    TRACKER,
    UPSTREAM,
)
from gateway.audit import AuditLog
from gateway.auth.cas import CasMethod
from gateway.auth.ldap import LdapMethod
from gateway.auth.local import LocalDirectory
from gateway.auth.lockout import Lockouts
from gateway.auth.oidc import OidcMethod
from gateway.auth.reset import ResetTokens
from gateway.auth.saml import SamlMethod
from gateway.auth.secrets import Keyring
from gateway.auth.signin import AnyMethod, Flows, SigninUnavailable
from gateway.auth.sip2 import Sip2Directory
from gateway.background import Background
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.companion import serve as companion
from gateway.edge.client import address_in, bearer_token, client_address
from gateway.edge.log_files import open_log_file
from gateway.edge.request_cookie import DuplicateCookie
from gateway.embedded_redis import EmbeddedRedis
from gateway.escapes.store import EscapeStore
from gateway.handover import Handovers
from gateway.logsafe import printable
from gateway.mail import Mailer
from gateway.metrics import Metrics, collect, metrics_ctx
from gateway.proxy.access_log import open_access_log
from gateway.proxy.handler import proxy
from gateway.proxy.jar_store import JarStore
from gateway.proxy.upstream import make_session
from gateway.redis_client import REDIS_ERRORS, connect, describe
from gateway.rules.loader import RuleStore
from gateway.rules.sync import RuleSync
from gateway.sessions import SessionStore
from gateway.usage.tracker import Tracker
from gateway.web import handover, named_start, pages, patron, pin, signin
from gateway.web.cookie_names import HOST_PREFIX
from gateway.web.targets import BadTarget

log = logging.getLogger(__name__)

USAGE_FLUSH_SECONDS = 1.0
"""How often each process writes the usage counts it gathered (reports, the console)."""
BACKGROUND_GRACE = 10.0
"""Seconds a stopping gateway gives mail still being sent."""
STARTUP_REDIS_WAIT = 5.0
"""Seconds start-up waits for Redis before giving up with a clear message."""

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ResponseHook = Callable[[web.Request, web.StreamResponse], Awaitable[None]]

BAD_INPUT: tuple[type[Exception], ...] = (BadTarget, web.RequestPayloadError)
"""Exceptions that mean the request itself cannot be read (a login link to no URL, a body
that is not in its Content-Encoding): a 400 page, no traceback."""
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
"""Letters and digits of error references: none that read alike (0/O, 1/I/L) or spell (U)."""
HOST_HEADER = re.compile(r"[!-~]+")
"""What a Host header may hold: printable ASCII, no spaces (host names, IP literals, ports)."""
UNDECODABLE = re.compile("[\udc80-\udcff]")
"""What header bytes that are not UTF-8 become in aiohttp's text (surrogate escapes)."""
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


class StartupError(RuntimeError):
    """The gateway cannot start; the message says why, in one line."""


async def _wait_for_redis(app: web.Application, url_for_people: str) -> None:
    redis = app[REDIS]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STARTUP_REDIS_WAIT
    while True:
        try:
            await redis.ping()
            return
        except REDIS_ERRORS as exc:
            if loop.time() > deadline:
                raise StartupError(f"Redis at {url_for_people} does not answer: {exc}") from None
            await asyncio.sleep(0.2)


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start the embedded Redis when no URL is configured, connect, and clean up after."""
    settings = app[SETTINGS]
    embedded: EmbeddedRedis | None = None
    url = settings.redis.url
    if settings.redis.embedded:
        embedded = EmbeddedRedis(settings.state_path / "redis")
        await embedded.start()
        url = embedded.url
    app[REDIS] = connect(url, settings.redis)
    try:
        where = "embedded redis-server" if embedded else describe(url, settings.redis)
        await _wait_for_redis(app, where)
        yield
    finally:
        await app[REDIS].aclose()
        if embedded is not None:
            await embedded.stop()


async def background_ctx(app: web.Application) -> AsyncIterator[None]:
    """Background work (mail, notices): at shutdown, waited for before Redis closes."""
    app[BACKGROUND] = Background()
    yield
    await app[BACKGROUND].close(BACKGROUND_GRACE)


async def auth_ctx(app: web.Application) -> AsyncIterator[None]:
    """Sessions and lockouts on Redis; the patron directory."""
    settings = app[SETTINGS]
    app[SESSIONS] = SessionStore(
        app[REDIS], settings.sessions, settings.redis.wait_replicas, app[CLOCK]
    )
    app[JARS] = JarStore(app[REDIS])
    app[ESCAPES] = EscapeStore(app[REDIS], app[CLOCK])
    app[HANDOVERS] = Handovers(app[REDIS])
    app[RESETS] = ResetTokens(
        app[REDIS], app[KEYRING], app[SECRET], settings.pin.reset_minutes, app[CLOCK]
    )
    audit_path = settings.admin.audit_log or str(settings.state_path / "audit.log")
    app[AUDIT] = AuditLog(app[REDIS], audit_path, settings.admin.audit_keep)
    app[LOCKOUTS] = Lockouts(
        app[REDIS], settings.lockout, app[KEYRING], app[AUDIT], app[METRICS], clock=app[CLOCK]
    )
    sip2: Sip2Directory | None = None
    if DIRECTORY not in app:
        if settings.patrons.backend == "sip2":
            sip2 = Sip2Directory(settings.sip2, settings.patrons, app[KEYRING])
            app[DIRECTORY] = sip2
        else:
            app[DIRECTORY] = LocalDirectory(
                settings.patrons_path, app[KEYRING], settings.patrons.card_pattern
            )
    app[TRACKER] = Tracker(app[REDIS], settings, app[SESSIONS], app[AUDIT], app[MAILER],
                           app[DIRECTORY], app[BACKGROUND])  # fmt: skip
    flusher = asyncio.create_task(app[TRACKER].flush_every(USAGE_FLUSH_SECONDS))
    yield
    flusher.cancel()
    await asyncio.wait([flusher], timeout=3.0)  # its last flush keeps what was counted
    for handler in app[AUDIT].file.handlers:
        handler.close()
    if sip2 is not None:
        await sip2.close()


async def signin_ctx(app: web.Application) -> AsyncIterator[None]:
    """The federated sign-in methods (``[[oidc]]``, ``[[cas]]``, ``[[saml]]``, ``[[ldap]]``) and
    the flows under way in Redis. Each OIDC provider's discovery document and each SAML IdP's
    metadata is asked for once at start (a provider that is down then is asked again at the
    first sign-in): the login page's policy names its sign-in origin; each LDAP directory's
    service account binds once."""
    settings = app[SETTINGS]
    methods: dict[str, AnyMethod] = {p.id: OidcMethod(p, app[CLOCK]) for p in settings.oidc}
    methods.update({p.id: CasMethod(p) for p in settings.cas})
    methods.update({p.id: SamlMethod(p, settings.public_url, app[REDIS], app[CLOCK])
                    for p in settings.saml})  # fmt: skip
    methods.update({p.id: LdapMethod(p) for p in settings.ldap})
    app[SIGNIN_METHODS] = methods
    app[SIGNIN_FLOWS] = Flows(
        app[REDIS], settings.signin.flow_timeout, settings.signin.starts_per_address
    )
    for method in methods.values():
        try:
            await method.prepare()
        except SigninUnavailable as exc:
            log.warning("signin %s: provider not reachable at start: %s", method.id,
                        printable(str(exc))[:300])  # fmt: skip
    yield
    for method in methods.values():
        await method.close()


async def upstream_ctx(app: web.Application) -> AsyncIterator[None]:
    """The pooled upstream client and the access log, for the life of the process."""
    settings = app[SETTINGS]
    logging_settings = settings.logging
    path = logging_settings.access_log or str(settings.state_path / "access.log")
    app[ACCESS_LOG] = open_access_log(
        path, logging_settings.access_log_max_mb, logging_settings.access_log_backups
    )
    spu = logging_settings.spu_log or str(settings.state_path / "spu.log")
    app[SPU_LOG] = open_log_file("gateway.spu", spu, logging_settings.access_log_max_mb,
                                 logging_settings.access_log_backups)  # fmt: skip
    app[UPSTREAM] = make_session(settings.upstream)
    yield
    await app[UPSTREAM].close()
    for logger in (app[ACCESS_LOG], app[SPU_LOG]):
        for handler in logger.handlers:
            handler.close()


async def rules_ctx(app: web.Application) -> AsyncIterator[None]:
    """Load the rules and reload them whenever the rules directory changes."""
    settings = app[SETTINGS]
    store = RuleStore(Path(settings.rules.dir))
    app[RULES] = store
    sync = RuleSync(app[REDIS], Path(settings.rules.dir), settings.rules.reload_interval)
    tasks = [
        asyncio.create_task(store.watch(settings.rules.reload_interval)),
        asyncio.create_task(sync.run()),
    ]
    yield
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks, timeout=3.0)  # a stuck task must not hold up the shutdown


def error_reference() -> str:
    """A short random reference for one unexpected error, for the log and the patron's page."""
    return "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(6))


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn errors into the gateway's own readable pages; Redis down is a 503, never a pass.

    An unexpected error is one log entry (its traceback included) under a short reference that
    the 500 page shows, so a patron's "reference 7F3K2Q" finds it; HTTP answers raised on
    purpose pass unchanged."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type in ("text/html", "application/json"):
            raise
        return pages.error_page(request, exc.status)
    except REDIS_ERRORS as exc:
        log.error("redis unavailable: %s", exc)
        request.config_dict[METRICS].inc("carrel_redis_errors_total")
        return pages.error_page(request, 503)
    except DuplicateCookie as exc:
        return _conflicting_cookie(request, exc.name)
    except BAD_INPUT:
        return pages.error_page(request, 400)
    except Exception:
        reference = error_reference()
        log.exception("unexpected error, reference %s: %s %s", reference, request.method,
                      printable(request.path))  # fmt: skip
        if request.writer.output_size and request.transport is not None:
            # Part of the answer is out: cut the connection (the browser sees it incomplete)
            # rather than write a second answer into the same stream.
            request.transport.close()
        return pages.error_page(request, 500, reference=reference)


def _conflicting_cookie(request: web.Request, name: str) -> web.Response:
    """Two values for one of the gateway's cookies: refused, never one picked, and both
    removed (the host's own and the parent domain's) so that logging in again works."""
    log.warning("request refused: two values for cookie %s on %s", printable(name),
                printable(request.headers.get(hdrs.HOST, "")[:100]))  # fmt: skip
    settings = request.config_dict[SETTINGS]
    response = pages.render(request, "message.html", 400, title_key="cookies_conflict_title",
                            text_key="cookies_conflict_text", link=f"{settings.public_url}/login",
                            link_key="login_again")  # fmt: skip
    secure = "; Secure" if settings.server.public_scheme == "https" else ""
    scopes = (
        ("",) if name.startswith(HOST_PREFIX) else ("", f"; Domain={settings.server.proxy_domain}")
    )
    for scope in scopes:
        response.headers.add(hdrs.SET_COOKIE, f"{name}=; Max-Age=0; Path=/{scope}{secure}")
    return response


@web.middleware
async def readable_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request whose headers are not text is a 400 page: a Host that is not printable ASCII
    names no host of the gateway's, and bytes that are not UTF-8 (in a cookie, a Referer) can
    be neither hashed, shown nor passed on to a vendor."""
    host = request.headers.get(hdrs.HOST, "")
    if not HOST_HEADER.fullmatch(host) or any(
        not value.isascii() and UNDECODABLE.search(value) for value in request.headers.values()
    ):
        return pages.error_page(request, 400)
    return await handler(request)


@web.middleware
async def readable_body(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A body the gateway's own pages cannot decode (bytes outside its charset, a charset that
    does not exist) is a 400 page. Read once here; the handler gets the same parsed body."""
    if request.body_exists:
        try:
            codecs.lookup(request.charset or "utf-8")
            if request.content_type in FORM_TYPES:
                await request.post()
            else:
                await request.text()
        except (LookupError, ValueError):  # no such charset; not in it, or no boundary
            return pages.error_page(request, 400)
    return await handler(request)


def transport_headers(settings: config.Settings) -> ResponseHook:
    """What every response gets, the gateway's pages and proxied ones: HSTS where patrons use
    https, and no ``Server`` header (aiohttp's names its version; a vendor's names the vendor's
    software on what is the library's host, and tells a patron nothing)."""
    hsts = settings.hsts

    async def prepare(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.popall(hdrs.SERVER, None)
        # The header, not request.host: without one, that would ask DNS for this machine's name.
        if hsts and settings.serves_https(request.headers.get(hdrs.HOST, "")):
            response.headers[hdrs.STRICT_TRANSPORT_SECURITY] = hsts

    return prepare


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Headers every response of the gateway's own host carries, redirects included."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(pages.SECURITY_HEADERS)
        raise
    for name, value in pages.SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


async def metrics_page(request: web.Request) -> web.Response:
    """GET /metrics: for a scraper with the token or from an allowed address."""
    settings = request.config_dict[SETTINGS].metrics
    if not settings.token and not settings.allow:
        raise web.HTTPNotFound()
    token = bearer_token(request) or ""
    by_token = bool(settings.token) and hmac.compare_digest(token, settings.token)
    if not by_token and not address_in(client_address(request), settings.allow):
        raise web.HTTPForbidden()
    body = await collect(request.config_dict[METRICS], request.config_dict[REDIS])
    return web.Response(text=body, content_type="text/plain", charset="utf-8")


def _add_static(app: web.Application) -> None:
    static = resources.files("gateway.web").joinpath("static")
    app.router.add_static("/static", Path(str(static)))


def login_app(settings: config.Settings) -> web.Application:
    """The gateway's own pages on ``login.<proxy_domain>`` (and the console, by default)."""
    app = web.Application(middlewares=[security_headers, readable_body])
    health.add_routes(app)
    app.router.add_get("/metrics", metrics_page)
    patron.add_routes(app)
    named_start.add_routes(app)
    pin.add_routes(app)
    signin.add_routes(app)
    handover.add_routes(app)
    companion.add_routes(app)
    _add_static(app)
    if not settings.admin.origin:
        app.router.add_get("/admin", _to_console)
        app.add_subapp("/admin", admin_app())
    return app


async def _to_console(request: web.Request) -> web.Response:
    raise web.HTTPFound("/admin/")


def console_origin_app() -> web.Application:
    """The console alone, for ``admin.origin``."""
    app = web.Application(middlewares=[security_headers, readable_body])
    app.router.add_get("/", _to_console)
    app.router.add_get("/admin", _to_console)
    _add_static(app)
    app.add_subapp("/admin", admin_app())
    return app


def build_app(settings: config.Settings, clock: Clock = SYSTEM_CLOCK) -> web.Application:
    """The whole gateway application for ``settings`` (``clock``: what time it is, for
    sessions, reset links and usage windows)."""
    app = web.Application(middlewares=[error_pages, readable_headers])
    app.on_response_prepare.append(transport_headers(settings))
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[SECRET] = config.secret_key(settings)
    app[KEYRING] = Keyring(app[SECRET])
    app[MAILER] = Mailer(settings.mail)
    app[METRICS] = Metrics()
    app.cleanup_ctx.append(redis_ctx)
    app.cleanup_ctx.append(background_ctx)
    app.cleanup_ctx.append(auth_ctx)
    app.cleanup_ctx.append(signin_ctx)
    app.cleanup_ctx.append(admin_ctx)
    app.cleanup_ctx.append(rules_ctx)
    app.cleanup_ctx.append(upstream_ctx)
    app.cleanup_ctx.append(metrics_ctx(app[METRICS], lambda: app[REDIS]))
    app.add_domain(settings.login_host, login_app(settings))
    if settings.admin.origin:
        app.add_domain(urlsplit(settings.admin.origin).hostname or "", console_origin_app())
    app.router.add_route("*", "/{tail:.*}", proxy)
    return app
