"""The console as an aiohttp sub-application, and what it needs at start-up."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from gateway.admin import api, escapes, pages, signin_test
from gateway.admin.access import (
    ROUTE_PERMISSIONS,
    STAFF_SESSIONS,
    STAFF_STORE,
    StaffSessions,
    add_routes,
    guard,
)
from gateway.admin.api import RULE_FILES
from gateway.admin.pages import STAFF_LOCKOUTS
from gateway.admin.rule_files import RuleFiles
from gateway.admin.staff import StaffStore
from gateway.appkeys import AUDIT, CLOCK, KEYRING, METRICS, REDIS, SETTINGS
from gateway.auth.lockout import Lockouts
from gateway.config import LockoutSettings


async def admin_ctx(app: web.Application) -> AsyncIterator[None]:
    """Staff accounts, staff sessions and lockout, and the rule files, on the root app."""
    settings = app[SETTINGS]
    admin = settings.admin
    app[STAFF_STORE] = StaffStore(settings.staff_path)
    app[STAFF_SESSIONS] = StaffSessions(
        app[REDIS], admin.idle_timeout, admin.absolute_timeout, app[CLOCK]
    )
    limits = LockoutSettings(
        card_failures=admin.login_failures, card_window=admin.login_window,
        card_lock=admin.login_lock, address_failures=admin.address_failures,
        address_window=admin.login_window, address_lock=admin.login_lock,
    )  # fmt: skip
    app[STAFF_LOCKOUTS] = Lockouts(
        app[REDIS], limits, app[KEYRING], app[AUDIT], app[METRICS], "staff", app[CLOCK]
    )
    app[RULE_FILES] = RuleFiles(Path(settings.rules.dir), app[REDIS], admin.history_versions)
    yield


def admin_app() -> web.Application:
    """The console's routes (pages and API), behind the staff guard; mount it at ``/admin``."""
    app = web.Application(middlewares=[guard])
    app[ROUTE_PERMISSIONS] = {}
    add_routes(app, pages.ROUTES)
    add_routes(app, api.ROUTES)
    add_routes(app, escapes.ROUTES)
    add_routes(app, signin_test.ROUTES)
    return app
