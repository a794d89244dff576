"""Who is asking the console, and may they: staff sessions, API tokens, CSRF and fetch checks.

One middleware guards every console route. It finds the staff member (session cookie or
``Authorization: Bearer``), re-reads the account on every request (so a disabled account or
a changed role takes effect at once), refuses cross-site state changes (``Sec-Fetch-Site``,
``Origin``), checks the CSRF token of cookie-authenticated state changes, and checks the
route's permission from the table the routes were registered with.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import quote

from aiohttp import web
from redis.asyncio import Redis
from redis.typing import EncodableT, FieldT

from gateway.admin.staff import Permission, Staff, StaffStore
from gateway.appkeys import SETTINGS
from gateway.auth.signin import TEST_RESULT
from gateway.clock import Clock
from gateway.config import Settings
from gateway.edge.client import bearer_token
from gateway.edge.request_cookie import request_cookie
from gateway.redis_client import REDIS_ERRORS
from gateway.redis_keys import PREFIX, text
from gateway.web import csrf, pages
from gateway.web.cookie_names import cookie_names

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STAFF = web.RequestKey("carrel.staff", Staff)
"""The authenticated staff member of a console request."""
BY_TOKEN = web.RequestKey("carrel.staff-by-token", bool)
ROUTE_PERMISSIONS = web.AppKey("carrel.route-permissions", dict[Handler, Permission | None])
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def origin(settings: Settings) -> str:
    """The console's origin, as browsers send it in ``Origin``."""
    return settings.admin.origin or settings.public_url


class StaffSessions:
    """Staff sessions in Redis: random ids, only their SHA-256 stored, idle and absolute expiry."""

    def __init__(self, redis: Redis, idle: int, absolute: int, clock: Clock) -> None:
        self.clock = clock
        self.redis = redis
        self.idle = idle
        self.absolute = absolute

    @staticmethod
    def key(raw: str) -> str:
        """The Redis key of a session cookie value."""
        return f"{PREFIX}:staff-session:{hashlib.sha256(raw.encode()).hexdigest()}"

    async def create(self, user: str, address: str) -> str:
        """A new session; returns the cookie value."""
        raw = secrets.token_urlsafe(32)
        now = repr(self.clock())
        fields: dict[FieldT, EncodableT] = {
            "user": user,
            "created": now,
            "last": now,
            "address": address,
        }
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.key(raw), mapping=fields)
            pipe.expire(self.key(raw), self.idle)
            await pipe.execute()
        return raw

    async def user(self, raw: str | None) -> str | None:
        """The user of a live session (and the idle clock starts again), or None."""
        if not raw or len(raw) > 100:
            return None
        data = {text(k): text(v) for k, v in (await self.redis.hgetall(self.key(raw))).items()}
        if "user" not in data:
            return None
        now = self.clock()
        idle = now - float(data.get("last", data["created"]))
        if idle > self.idle or now - float(data["created"]) > self.absolute:
            await self.end(raw)  # checked here too: the key's TTL is Redis's clock, not ours
            return None
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.key(raw), "last", repr(now))
            pipe.expire(self.key(raw), self.idle)
            await pipe.execute()
        return data["user"]

    async def end(self, raw: str) -> None:
        """End a session."""
        await self.redis.delete(self.key(raw))


STAFF_SESSIONS = web.AppKey("carrel.staff-sessions", StaffSessions)
STAFF_STORE = web.AppKey("carrel.staff-store", StaffStore)


def wants_json(request: web.Request) -> bool:
    """Whether the answer should be JSON (the API) rather than a page."""
    return request.path.startswith("/admin/api/")


def json_error(status: int, message: str, **extra: Any) -> web.Response:
    """An API error: ``{"error": ...}`` with the status."""
    return web.json_response({"error": message, **extra}, status=status)


def _refuse(request: web.Request, status: int, message: str) -> web.StreamResponse:
    if wants_json(request):
        return json_error(status, message)
    return pages.error_page(request, status)


def cross_site(request: web.Request) -> bool:
    """Whether a state-changing request comes from another origin (by what the browser says)."""
    return csrf.foreign(request, origin(request.config_dict[SETTINGS]))


async def authenticate(request: web.Request) -> Staff | None:
    """The staff member behind a request (token or session), enabled, or None."""
    store = request.config_dict[STAFF_STORE]
    token = bearer_token(request)
    if token is not None:
        request[BY_TOKEN] = True
        return await asyncio.to_thread(store.by_token, token)
    request[BY_TOKEN] = False
    raw = request_cookie(request, cookie_names(request.config_dict[SETTINGS]).staff)
    user = await request.config_dict[STAFF_SESSIONS].user(raw)
    if user is None:
        return None
    staff = await asyncio.to_thread(store.get, user)
    return staff if staff is not None and not staff.disabled else None


async def csrf_ok(request: web.Request) -> bool:
    """The token of a cookie-authenticated state change: a header (API) or a form field."""
    token = request.headers.get(CSRF_HEADER, "")
    if not token and request.content_type in (
        "application/x-www-form-urlencoded", "multipart/form-data"
    ):  # fmt: skip
        token = str((await request.post()).get(csrf.TOKEN_FIELD, ""))
    return csrf.valid(request, token, csrf.Purpose.CONSOLE)


PUBLIC = frozenset({"/admin/login", f"/admin{TEST_RESULT}"})
"""Paths the guard lets through unauthenticated: the login form, and a test sign-in's result,
which checks its own cookie and account (``gateway.admin.signin_test``)."""


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Authenticate, refuse cross-site changes, check CSRF and the route's permission."""
    try:
        return await _guarded(request, handler)
    except REDIS_ERRORS:
        if not wants_json(request):
            raise  # the gateway's 503 page
        return json_error(503, "Redis is not answering; try again in a moment")


async def _guarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    changing = request.method not in SAFE_METHODS
    if changing and cross_site(request):
        return _refuse(request, 403, "cross-site request refused")
    if request.path in PUBLIC:
        return await handler(request)
    staff = await authenticate(request)
    if staff is None:
        if wants_json(request):
            return json_error(401, "staff authentication required")
        raise web.HTTPFound(f"/admin/login?next={quote(request.path_qs, safe='')}")
    request[STAFF] = staff
    if changing and not request[BY_TOKEN] and not await csrf_ok(request):
        return _refuse(request, 403, "missing or wrong CSRF token")
    needed = request.app[ROUTE_PERMISSIONS].get(request.match_info.handler)
    if needed is not None and not staff.may(needed):
        return _refuse(request, 403, f"the {staff.role.value} role may not use {needed.value}")
    return await handler(request)


Route = tuple[str, str, Handler, Permission | None]
"""Method, path, handler, and the permission it needs (None: any staff member)."""


def add_routes(app: web.Application, routes: Iterable[Route]) -> None:
    """Register console routes with the permissions the guard checks."""
    for method, path, handler, needs in routes:
        app.router.add_route(method, path, handler)
        app[ROUTE_PERMISSIONS][handler] = needs
