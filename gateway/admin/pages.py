"""The console's pages: staff login, sessions, cards, the rules editor, history and audit.

Plain server-rendered forms (they work without JavaScript, with a keyboard, on a tablet);
every change goes through the same actions as the JSON API and is audited there.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from aiohttp import web
from yarl import URL

from gateway.admin import actions
from gateway.admin.access import (
    STAFF,
    STAFF_SESSIONS,
    STAFF_STORE,
)
from gateway.admin.api import RULE_FILES, after_save, audit_filter, file_summaries, month_or_400
from gateway.admin.rule_files import BadName, Checked, NoSuchFile
from gateway.admin.staff import Permission, StaffError
from gateway.appkeys import AUDIT, REDIS, RULES, SETTINGS
from gateway.audit import KINDS
from gateway.auth.lockout import Gate, Lockouts
from gateway.edge.client import client_address
from gateway.edge.request_cookie import request_cookie
from gateway.rules.commands import explain_for
from gateway.rules.explain import Explanation
from gateway.usage import report
from gateway.web import csrf, pages
from gateway.web.cookie_names import cookie_names

PAGE_ROWS = 500
"""Sessions shown on the page, newest first (the API lists them all; Cards finds any card)."""

_CONSOLE_PATH = re.compile(r"/admin/[A-Za-z0-9._~/?=&%+-]{0,500}")
"""Where a login may send a staff member on: console paths, in plain URL characters."""

STAFF_LOCKOUTS = web.AppKey("carrel.staff-lockouts", Lockouts)

NAV = (
    ("/admin/sessions", "admin_nav_sessions", Permission.SESSIONS),
    ("/admin/cards", "admin_nav_cards", Permission.CARDS),
    ("/admin/rules", "admin_nav_rules", Permission.RULES),
    ("/admin/escapes", "admin_nav_escapes", Permission.RULES),
    ("/admin/limits", "admin_nav_limits", Permission.SESSIONS),
    ("/admin/usage", "admin_nav_usage", Permission.USAGE),
    ("/admin/audit", "admin_nav_audit", Permission.AUDIT),
    ("/admin/staff", "admin_nav_staff", Permission.STAFF),
    ("/admin/signin-test", "admin_nav_signin_test", Permission.SIGNIN),
)


def when(stamp: float) -> str:
    """A time for staff: UTC, to the minute."""
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(stamp))


def size(count: int) -> str:
    """Bytes for people."""
    value = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """A console page with the navigation the staff member's role allows."""
    staff = request[STAFF]
    nav = [(href, key, staff.may(needed)) for href, key, needed in NAV]
    return csrf.form_page(
        request, template, status, csrf.Purpose.CONSOLE, staff=staff, nav=nav, when=when,
        size=size, **context,
    )  # fmt: skip


# -- login and logout -------------------------------------------------------------------------
def _next(request: web.Request) -> str:
    """Where to go after login: a console path only (never another site)."""
    wanted = request.query.get("next", "")
    return wanted if _CONSOLE_PATH.fullmatch(wanted) else "/admin/"


def _login_page(request: web.Request, status: int = 200, **context: Any) -> web.Response:
    context.setdefault("user", "")
    return csrf.form_page(
        request, "admin/login.html", status, csrf.Purpose.CONSOLE, next=_next(request), **context
    )


async def login_form(request: web.Request) -> web.Response:
    """GET /admin/login."""
    return _login_page(request)


async def login_submit(request: web.Request) -> web.Response:
    """POST /admin/login: lockout gate, password, new staff session."""
    form = await request.post()
    user = str(form.get("user", "")).strip().lower()[:64]
    password = str(form.get("password", ""))[:256]
    if not csrf.valid(request, str(form.get(csrf.TOKEN_FIELD, "")), csrf.Purpose.CONSOLE):
        return _login_page(request, 400, user=user, error="form_expired")
    if not user or not password:
        return _login_page(request, 400, user=user, error="admin_login_missing")
    audit = request.config_dict[AUDIT]
    lockouts = request.config_dict[STAFF_LOCKOUTS]
    address = client_address(request)
    gate = await lockouts.reserve(user, address, password)
    if gate is not Gate.OK:
        await audit.record("staff_locked", user, address=address, gate=gate.value)
        return _login_page(request, 429, user=user, error="admin_locked")
    staff = await asyncio.to_thread(request.config_dict[STAFF_STORE].verify, user, password)
    if staff is None:
        await lockouts.fail(user, address, password)
        await audit.record("staff_login_failed", user, address=address)
        return _login_page(request, 401, user=user, error="admin_login_wrong")
    await lockouts.succeed(user, address, password)
    raw = await request.config_dict[STAFF_SESSIONS].create(staff.user, address)
    await audit.record("staff_login", staff.user, address=address)
    redirect = web.HTTPFound(URL(_next(request), encoded=True))
    name = cookie_names(request.config_dict[SETTINGS]).staff
    redirect.set_cookie(
        name, raw, path="/", httponly=True, samesite="Strict", secure=name.startswith("__Host-")
    )
    raise redirect


async def logout(request: web.Request) -> web.Response:
    """POST /admin/logout."""
    settings = request.config_dict[SETTINGS]
    name = cookie_names(settings).staff
    raw = request_cookie(request, name)
    if raw:
        await request.config_dict[STAFF_SESSIONS].end(raw)
    await request.config_dict[AUDIT].record("staff_logout", request[STAFF].user)
    redirect = web.HTTPFound("/admin/login")
    redirect.del_cookie(name, path="/", secure=name.startswith("__Host-"))
    raise redirect


async def home(request: web.Request) -> web.Response:
    """GET /admin/: the first area this role may use."""
    staff = request[STAFF]
    first = next(href for href, _, needed in NAV if staff.may(needed))
    raise web.HTTPFound(first)


# -- sessions and cards -----------------------------------------------------------------------
async def sessions_page(request: web.Request) -> web.Response:
    """GET /admin/sessions."""
    notice = request.query.get("done", "")
    known = {"ended": "admin_done_ended"}
    sessions = await actions.live_sessions(request)
    return page(
        request, "admin/sessions.html", sessions=sessions[:PAGE_ROWS], total=len(sessions),
        notice=pages.text(request, known[notice]) if notice in known else "",
    )  # fmt: skip


async def end_session(request: web.Request) -> web.Response:
    """POST /admin/sessions/end."""
    form = await request.post()
    await actions.end_session(request, str(form.get("id", "")))
    raise web.HTTPFound("/admin/sessions?done=ended")


async def cards_page(request: web.Request, **context: Any) -> web.Response:
    """GET /admin/cards?card=N: a card's standing and what can be done."""
    card = (context.pop("card", None) or request.query.get("card", "")).strip()[:300]
    state = None
    problem = context.pop("problem", "")
    if card:
        if actions.patron_name(request, card):
            state = await actions.card_state(request, card)
        else:
            problem = pages.text(request, "card_format")
    return page(request, "admin/cards.html", card=card, state=state, problem=problem, **context)


CARD_ACTIONS = {
    "block": (actions.block_card, "admin_done_blocked"),
    "unblock": (actions.unblock_card, "admin_done_unblocked"),
    "unlock": (actions.unlock_card, "admin_done_unlocked"),
    "end_sessions": (actions.end_card_sessions, "admin_done_ended"),
}


async def card_action(request: web.Request) -> web.Response:
    """POST /admin/cards: block, unblock, unlock, end sessions, or reset the PIN."""
    form = await request.post()
    card = str(form.get("card", "")).strip()[:300]
    action = str(form.get("action", ""))
    if not actions.patron_name(request, card):
        return await cards_page(request, card=card)
    if actions.federated(request, card) and action not in actions.FEDERATED_ACTIONS:
        raise web.HTTPBadRequest()  # no PIN to reset or lock to lift
    if action == "reset_pin":
        try:
            pin = await actions.reset_pin(request, card)
        except actions.CannotDo as exc:
            return await cards_page(request, card=card, problem=str(exc))
        return await cards_page(request, card=card, new_pin=pin)
    if action not in CARD_ACTIONS:
        raise web.HTTPBadRequest()
    run, done = CARD_ACTIONS[action]
    await run(request, card)
    return await cards_page(request, card=card, notice=pages.text(request, done))


# -- rules ------------------------------------------------------------------------------------
async def rules_page(request: web.Request) -> web.Response:
    """GET /admin/rules: every database file."""
    return page(request, "admin/rules.html", files=await file_summaries(request))


def _editor(request: web.Request, name: str, text: str, status: int = 200,
            **context: Any) -> web.Response:  # fmt: skip
    context.setdefault("checked", None)
    context.setdefault("explanation", None)
    context.setdefault("url", "")
    heading = (
        pages.text(request, "admin_edit_title", name=name)
        if name
        else pages.text(request, "admin_new_title")
    )
    action = f"/admin/rules/{name}" if name else "/admin/rules/new"
    return page(request, "admin/edit.html", status, name=name, text=text, heading=heading,
                action=action, **context)  # fmt: skip


async def edit_page(request: web.Request) -> web.Response:
    """GET /admin/rules/{name}."""
    name = request.match_info["name"]
    try:
        text = request.config_dict[RULE_FILES].read(name)
    except (BadName, NoSuchFile):
        raise web.HTTPNotFound() from None
    return _editor(request, name, text)


async def new_page(request: web.Request) -> web.Response:
    """GET /admin/rules/new: paste an EZproxy stanza."""
    return _editor(request, "", "")


async def edit_submit(request: web.Request) -> web.Response:
    """POST /admin/rules/{name} or /admin/rules/new: check, save or test a URL."""
    files = request.config_dict[RULE_FILES]
    form = await request.post()
    text = str(form.get("text", "")).replace("\r\n", "\n")
    url = str(form.get("url", "")).strip()[:4096]
    action = str(form.get("action", "check"))
    existing = request.match_info.get("name", "")
    if existing:
        try:
            files.read(existing)
        except (BadName, NoSuchFile):
            raise web.HTTPNotFound() from None
    checked = files.check(existing or "new.txt", text)
    name = existing or files.new_name(checked)
    if action == "test":
        ruleset = request.config_dict[RULES].ruleset
        if not checked.errors:  # try the text as it stands in the editor
            ruleset = request.config_dict[RULES].with_file(name, checked.result)
        answer: Explanation = explain_for(request.config_dict[SETTINGS], ruleset, url)
        return _editor(request, existing, text, checked=checked, explanation=answer, url=url)
    if action != "save" or checked.errors:
        status = 422 if action == "save" else 200
        return _editor(request, existing, text, status, checked=checked, url=url)
    saved = await files.save(name, text, request[STAFF].user, "saved" if existing else "created")
    if isinstance(saved, Checked):  # an included file changed in between
        return _editor(request, existing, text, 422, checked=saved, url=url)
    await after_save(request, name, saved)
    raise _to_history(request, name, "saved")


SAVED_NOTICES = {"saved": "admin_saved_live", "restored": "admin_restored_live"}
"""What the history page says once after a Save or a Restore (told by the ``DONE`` cookie)."""
DONE = "carrel_rules_done"


def _to_history(request: web.Request, name: str, done: str) -> web.HTTPFound:
    """The redirect to the file's history, which then says once that the change is live."""
    path = f"/admin/rules/{name}/history"
    redirect = web.HTTPFound(path)
    secure = request.config_dict[SETTINGS].server.public_scheme == "https"
    redirect.set_cookie(DONE, done, path=path, max_age=60, httponly=True, samesite="Strict",
                        secure=secure)  # fmt: skip
    return redirect


async def history_page(request: web.Request) -> web.Response:
    """GET /admin/rules/{name}/history: every saved version, with diffs and Restore."""
    name = request.match_info["name"]
    try:
        versions = await request.config_dict[RULE_FILES].history(name)
    except BadName:
        raise web.HTTPNotFound() from None
    done = SAVED_NOTICES.get(request_cookie(request, DONE) or "")
    notice = pages.text(request, done) if done else ""
    response = page(request, "admin/history.html", name=name, versions=versions, notice=notice)
    if done:
        response.del_cookie(DONE, path=request.path)
    return response


async def restore(request: web.Request) -> web.Response:
    """POST /admin/rules/{name}/restore: an earlier version becomes the newest."""
    name = request.match_info["name"]
    form = await request.post()
    try:
        number = int(str(form.get("version", "")))
        saved = await request.config_dict[RULE_FILES].restore(name, number, request[STAFF].user)
    except (ValueError, BadName, NoSuchFile):
        raise web.HTTPNotFound() from None
    if isinstance(saved, Checked):
        text = (await request.config_dict[RULE_FILES].version(name, number)).text
        return _editor(request, name, text, 422, checked=saved)
    await after_save(request, name, saved)
    raise _to_history(request, name, "restored")


# -- audit ------------------------------------------------------------------------------------
async def audit_page(request: web.Request) -> web.Response:
    """GET /admin/audit, with filters."""
    try:
        wanted = audit_filter(request.query)
    except web.HTTPBadRequest:
        wanted = audit_filter({})
    entries = await request.config_dict[AUDIT].query(wanted)
    return page(request, "admin/audit.html", entries=entries, kinds=KINDS, query=request.query)


# -- limits and usage -------------------------------------------------------------------------
async def limits_page(request: web.Request, notice: str = "") -> web.Response:
    """GET /admin/limits: suspended sessions and limits passed, with Lift."""
    view = await actions.limits_view(request)
    return page(request, "admin/limits.html", view=view, notice=notice)


async def lift_submit(request: web.Request) -> web.Response:
    """POST /admin/limits/lift."""
    form = await request.post()
    if not await actions.lift_trip(request, str(form.get("id", ""))):
        raise web.HTTPNotFound()
    return await limits_page(request, notice=pages.text(request, "admin_done_lifted"))


async def _usage_rows(request: web.Request) -> tuple[str, list[report.Row]]:
    try:
        month = month_or_400(request.query)
    except web.HTTPBadRequest:
        month = report.month_of(time.time())
    return month, await report.report(request.config_dict[REDIS], month)


async def usage_page(request: web.Request) -> web.Response:
    """GET /admin/usage?month=YYYY-MM: a chart and a table per database."""
    month, rows = await _usage_rows(request)
    top = max((r.requests for r in rows), default=1) or 1
    return page(request, "admin/usage.html", month=month, rows=rows, top=top)


async def usage_csv(request: web.Request) -> web.Response:
    """GET /admin/usage.csv?month=YYYY-MM."""
    month, rows = await _usage_rows(request)
    return web.Response(
        text=report.as_csv(rows), content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="usage-{month}.csv"'},
    )  # fmt: skip


# -- staff accounts ---------------------------------------------------------------------------
async def staff_page(request: web.Request, **context: Any) -> web.Response:
    """GET /admin/staff: every account, with add, disable, enable and new password."""
    accounts = await asyncio.to_thread(request.config_dict[STAFF_STORE].all)
    return page(request, "admin/staff.html", accounts=accounts, **context)


async def staff_submit(request: web.Request) -> web.Response:
    """POST /admin/staff."""
    form = await request.post()
    user = str(form.get("user", "")).strip().lower()[:64]
    action = str(form.get("action", ""))
    try:
        password = await actions.manage_staff(request, action, user, str(form.get("role", "")))
    except StaffError as exc:
        return await staff_page(request, problem=str(exc))
    return await staff_page(request, new_user=user, new_password=password,
                            notice="" if password else f"{user}: {action}")  # fmt: skip


ROUTES = (
    ("GET", "/login", login_form, None),
    ("POST", "/login", login_submit, None),
    ("POST", "/logout", logout, None),
    ("GET", "/", home, None),
    ("GET", "/sessions", sessions_page, Permission.SESSIONS),
    ("POST", "/sessions/end", end_session, Permission.SESSIONS),
    ("GET", "/cards", cards_page, Permission.CARDS),
    ("POST", "/cards", card_action, Permission.CARDS),
    ("GET", "/rules", rules_page, Permission.RULES),
    ("GET", "/rules/new", new_page, Permission.RULES),
    ("POST", "/rules/new", edit_submit, Permission.RULES),
    ("GET", "/rules/{name}", edit_page, Permission.RULES),
    ("POST", "/rules/{name}", edit_submit, Permission.RULES),
    ("GET", "/rules/{name}/history", history_page, Permission.RULES),
    ("POST", "/rules/{name}/restore", restore, Permission.RULES),
    ("GET", "/audit", audit_page, Permission.AUDIT),
    ("GET", "/limits", limits_page, Permission.SESSIONS),
    ("POST", "/limits/lift", lift_submit, Permission.SESSIONS),
    ("GET", "/usage", usage_page, Permission.USAGE),
    ("GET", "/usage.csv", usage_csv, Permission.USAGE),
    ("GET", "/staff", staff_page, Permission.STAFF),
    ("POST", "/staff", staff_submit, Permission.STAFF),
)
