"""The console's JSON API under ``/admin/api/``: what the pages use and what scripts call.

Authenticated by a staff session (plus ``X-CSRF-Token`` for changes) or by
``Authorization: Bearer <token>`` from ``gateway staff token USER``. Errors are
``{"error": "..."}`` with a 4xx status; rules with errors come back with their findings.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from gateway.admin import actions
from gateway.admin.access import STAFF, STAFF_STORE, json_error
from gateway.admin.rule_files import (
    BadName,
    Checked,
    NoSuchFile,
    RuleFiles,
    Version,
    finding_dict,
)
from gateway.admin.staff import Permission, StaffError
from gateway.appkeys import AUDIT, REDIS, RULES, SETTINGS
from gateway.audit import KINDS, AuditFilter
from gateway.redis_keys import text
from gateway.rules.commands import explain_for
from gateway.rules.model import Severity
from gateway.usage import report

RULE_FILES = web.AppKey("carrel.rule-files", RuleFiles)
MAX_BODY = 1_100_000


# -- shared by the API and the pages ----------------------------------------------------------
def card_or_400(request: web.Request, card: str) -> str:
    """A card number the directory could hold (or a federated patron, ``oidc:campus:<id>``);
    400 otherwise."""
    card = card.strip()
    if not actions.patron_name(request, card):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "not a card number"}), content_type="application/json"
        )
    return card


async def file_summaries(request: web.Request) -> list[dict[str, Any]]:
    """Every rule file: its databases, hosts, last change, and how many findings it has."""
    files = request.config_dict[RULE_FILES]
    loaded = request.config_dict[RULES].current
    names = files.names()
    redis = files.redis
    async with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.lindex(files.history_key(name), 0)
        latest = await pipe.execute()
    rows = []
    for name, newest in zip(names, latest, strict=True):
        mine = [db for db in loaded.ruleset.databases if Path(db.source.file).name == name]
        findings = [f for f in loaded.findings if Path(f.source.file).name == name]
        changed = json.loads(text(newest)) if newest else None
        rows.append({
            "name": name,
            "titles": [db.title for db in mine],
            "hosts": sorted({h.origin.host for db in mine for h in db.hosts}),
            "changed": changed["time"] if changed else (files.directory / name).stat().st_mtime,
            "changed_by": changed["staff"] if changed else "",
            "errors": sum(f.severity is Severity.ERROR for f in findings),
            "warnings": sum(f.severity is Severity.WARNING for f in findings),
        })  # fmt: skip
    return rows


def checked_dict(checked: Checked) -> dict[str, Any]:
    """A check's answer as plain values."""
    return {
        "errors": len(checked.errors),
        "findings": [finding_dict(f) for f in checked.findings],
        "databases": [db.title for db in checked.result.databases],
    }


async def save_rules(request: web.Request, name: str, body: str, kind: str) -> web.Response:
    """Save (or create) a rule file for the API; 422 with findings when it has errors."""
    files = request.config_dict[RULE_FILES]
    try:
        saved = await files.save(name, body, request[STAFF].user, kind=kind)
    except BadName as exc:
        return json_error(400, str(exc))
    if isinstance(saved, Checked):
        return json_error(422, "the rules have errors; nothing was saved", **checked_dict(saved))
    await after_save(request, name, saved)
    return web.json_response({"name": name, **saved.as_dict()})


async def after_save(request: web.Request, name: str, saved: Version) -> None:
    """Live here at once (other instances follow through rule sharing), and audited."""
    request.config_dict[RULES].reload()
    kind = "rules_created" if saved.kind == "created" else "rules_saved"
    if saved.kind.startswith("restored"):
        kind = "rules_restored"
    await request.config_dict[AUDIT].record(
        kind, request[STAFF].user, file=name, version=saved.number, diff=saved.diff[:20000]
    )


async def body_text(request: web.Request, key: str) -> str:
    """The request body as text: raw, or the ``key`` member of a JSON object."""
    if (request.content_length or 0) > MAX_BODY:
        raise web.HTTPRequestEntityTooLarge(MAX_BODY, request.content_length or 0)
    raw = await request.text()
    if request.content_type == "application/json":
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get(key), str):
            raise web.HTTPBadRequest(
                text=json.dumps({"error": f"expects a JSON object with a string {key!r}"}),
                content_type="application/json",
            )
        return str(data[key])
    return raw


# -- sessions and cards -----------------------------------------------------------------------
async def get_sessions(request: web.Request) -> web.Response:
    """GET sessions."""
    return web.json_response({"sessions": await actions.live_sessions(request)})


async def delete_session(request: web.Request) -> web.Response:
    """DELETE sessions/{id}."""
    if await actions.end_session(request, request.match_info["id"]):
        return web.json_response({"ended": 1})
    return json_error(404, "no live session with this id")


async def get_card(request: web.Request) -> web.Response:
    """GET cards/{card}."""
    card = card_or_400(request, request.match_info["card"])
    return web.json_response((await actions.card_state(request, card)).as_dict())


async def block(request: web.Request) -> web.Response:
    """POST cards/{card}/block."""
    card = card_or_400(request, request.match_info["card"])
    ended = await actions.block_card(request, card)
    return web.json_response({"blocked": True, "sessions_ended": ended})


async def unblock(request: web.Request) -> web.Response:
    """POST cards/{card}/unblock."""
    await actions.unblock_card(request, card_or_400(request, request.match_info["card"]))
    return web.json_response({"blocked": False})


async def unlock(request: web.Request) -> web.Response:
    """POST cards/{card}/unlock."""
    await actions.unlock_card(request, card_or_400(request, request.match_info["card"]))
    return web.json_response({"locked": False})


async def end_card(request: web.Request) -> web.Response:
    """DELETE cards/{card}/sessions."""
    card = card_or_400(request, request.match_info["card"])
    return web.json_response({"ended": await actions.end_card_sessions(request, card)})


async def reset_pin(request: web.Request) -> web.Response:
    """POST cards/{card}/reset-pin: the new PIN, once; the patron must change it."""
    card = card_or_400(request, request.match_info["card"])
    try:
        pin = await actions.reset_pin(request, card)
    except actions.CannotDo as exc:
        return json_error(409, str(exc))
    return web.json_response({"pin": pin, "must_change": True})


# -- rules ------------------------------------------------------------------------------------
async def get_rules(request: web.Request) -> web.Response:
    """GET rules."""
    return web.json_response({"files": await file_summaries(request)})


def _name(request: web.Request) -> str:
    return request.match_info["name"]


async def get_rule_file(request: web.Request) -> web.Response:
    """GET rules/{name}."""
    files = request.config_dict[RULE_FILES]
    try:
        body = files.read(_name(request))
    except (BadName, NoSuchFile):
        return json_error(404, "no such rule file")
    return web.json_response(
        {"name": _name(request), "text": body, **checked_dict(files.check(_name(request), body))}
    )


async def put_rule_file(request: web.Request) -> web.Response:
    """PUT rules/{name}: refused (422, with the findings) when the text has errors."""
    return await save_rules(request, _name(request), await body_text(request, "text"), "saved")


async def check_rules(request: web.Request) -> web.Response:
    """POST rules/check: findings for a text (body: the text, or JSON {"text", "name"})."""
    body = await body_text(request, "text")
    name = "check.txt"
    if request.content_type == "application/json":  # body_text checked it is an object
        name = str(json.loads(await request.text()).get("name") or name)
    try:
        checked = request.config_dict[RULE_FILES].check(name, body)
    except BadName as exc:
        return json_error(400, str(exc))
    return web.json_response(checked_dict(checked))


async def rule_history(request: web.Request) -> web.Response:
    """GET rules/{name}/history."""
    try:
        versions = await request.config_dict[RULE_FILES].history(_name(request))
    except BadName:
        return json_error(404, "no such rule file")
    return web.json_response({"versions": [v.as_dict() for v in versions]})


async def restore_rules(request: web.Request) -> web.Response:
    """POST rules/{name}/restore (body: {"version": N})."""
    try:
        number = int(json.loads(await request.text())["version"])
    except (ValueError, KeyError, TypeError):
        return json_error(400, 'expects {"version": N}')
    files = request.config_dict[RULE_FILES]
    try:
        saved = await files.restore(_name(request), number, request[STAFF].user)
    except (BadName, NoSuchFile):
        return json_error(404, "no such version")
    if isinstance(saved, Checked):
        return json_error(422, "that version has errors now", **checked_dict(saved))
    await after_save(request, _name(request), saved)
    return web.json_response({"name": _name(request), **saved.as_dict()})


async def explain(request: web.Request) -> web.Response:
    """POST explain (body: a URL, or JSON {"url"})."""
    url = (await body_text(request, "url")).strip()
    ruleset = request.config_dict[RULES].ruleset
    answer = explain_for(request.config_dict[SETTINGS], ruleset, url)
    return web.json_response(answer.as_dict())


# -- audit, staff -----------------------------------------------------------------------------
def audit_filter(query: Any) -> AuditFilter:
    """Filters from a query string: since/until (epoch seconds or hours=N), kind, staff, patron."""

    def number(key: str) -> float | None:
        try:
            return float(query[key]) if query.get(key) else None
        except ValueError:
            raise web.HTTPBadRequest(text=f"{key} expects epoch seconds") from None

    since = number("since")
    hours = number("hours")
    if hours is not None:
        since = time.time() - hours * 3600
    kind = query.get("kind", "")
    if kind and kind not in KINDS:
        raise web.HTTPBadRequest(text=f"kind expects one of {', '.join(KINDS)}")
    limit = int(number("limit") or 200)
    return AuditFilter(since, number("until"), kind, query.get("staff", ""),
                       query.get("patron", ""), max(1, min(limit, 5000)))  # fmt: skip


async def get_audit(request: web.Request) -> web.Response:
    """GET audit."""
    entries = await request.config_dict[AUDIT].query(audit_filter(request.query))
    return web.json_response({"entries": [e.as_dict() for e in entries]})


async def get_staff(request: web.Request) -> web.Response:
    """GET staff (admins)."""
    accounts = await asyncio.to_thread(request.config_dict[STAFF_STORE].all)
    return web.json_response({"staff": [
        {"user": s.user, "role": s.role.value, "disabled": s.disabled} for s in accounts
    ]})  # fmt: skip


async def post_staff(request: web.Request) -> web.Response:
    """POST staff (body {"user", "role"}): a new account; its password is in the answer, once."""
    try:
        data = json.loads(await request.text())
        user, role = str(data["user"]).strip().lower(), str(data["role"])
    except (ValueError, KeyError, TypeError):
        return json_error(400, 'expects {"user": ..., "role": "desk|editor|admin"}')
    try:
        password = await actions.manage_staff(request, "add", user, role)
    except StaffError as exc:
        return json_error(422, str(exc))
    return web.json_response({"user": user, "role": role, "password": password})


async def staff_state(request: web.Request) -> web.Response:
    """POST staff/{user}/disable or staff/{user}/enable."""
    action = request.path.rsplit("/", 1)[1]
    try:
        await actions.manage_staff(request, action, request.match_info["user"])
    except StaffError as exc:
        return json_error(422, str(exc))
    return web.json_response({"user": request.match_info["user"], "disabled": action == "disable"})


async def me(request: web.Request) -> web.Response:
    """GET me: who is asking, and what they may do."""
    staff = request[STAFF]
    allowed = sorted(p.value for p in Permission if staff.may(p))
    return web.json_response({"user": staff.user, "role": staff.role.value, "may": allowed})


async def get_limits(request: web.Request) -> web.Response:
    """GET limits: limits passed, and the sessions they paused."""
    return web.json_response(await actions.limits_view(request))


async def lift(request: web.Request) -> web.Response:
    """POST limits/{id}/lift."""
    if await actions.lift_trip(request, request.match_info["id"]):
        return web.json_response({"lifted": True})
    return json_error(404, "no such limit trip")


def month_or_400(query: Any) -> str:
    """``month=YYYY-MM`` from a query (default: this month, UTC)."""
    month = str(query.get("month") or report.month_of(time.time()))
    if not report.MONTH.fullmatch(month):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "month expects YYYY-MM"}), content_type="application/json"
        )
    return month


async def get_usage(request: web.Request) -> web.Response:
    """GET usage?month=YYYY-MM: sessions, patrons, requests, downloads, bytes per database."""
    month = month_or_400(request.query)
    rows = await report.report(request.config_dict[REDIS], month)
    return web.json_response(json.loads(report.as_json(month, rows)))


ROUTES = (
    ("GET", "/api/me", me, None),
    ("GET", "/api/sessions", get_sessions, Permission.SESSIONS),
    ("DELETE", "/api/sessions/{id}", delete_session, Permission.SESSIONS),
    ("GET", "/api/cards/{card}", get_card, Permission.CARDS),
    ("POST", "/api/cards/{card}/block", block, Permission.CARDS),
    ("POST", "/api/cards/{card}/unblock", unblock, Permission.CARDS),
    ("POST", "/api/cards/{card}/unlock", unlock, Permission.CARDS),
    ("DELETE", "/api/cards/{card}/sessions", end_card, Permission.CARDS),
    ("POST", "/api/cards/{card}/reset-pin", reset_pin, Permission.CARDS),
    ("GET", "/api/rules", get_rules, Permission.RULES),
    ("POST", "/api/rules/check", check_rules, Permission.RULES),
    ("GET", "/api/rules/{name}", get_rule_file, Permission.RULES),
    ("PUT", "/api/rules/{name}", put_rule_file, Permission.RULES),
    ("GET", "/api/rules/{name}/history", rule_history, Permission.RULES),
    ("POST", "/api/rules/{name}/restore", restore_rules, Permission.RULES),
    ("POST", "/api/explain", explain, Permission.RULES),
    ("GET", "/api/audit", get_audit, Permission.AUDIT),
    ("GET", "/api/staff", get_staff, Permission.STAFF),
    ("POST", "/api/staff", post_staff, Permission.STAFF),
    ("POST", "/api/staff/{user}/disable", staff_state, Permission.STAFF),
    ("POST", "/api/staff/{user}/enable", staff_state, Permission.STAFF),
    ("GET", "/api/limits", get_limits, Permission.SESSIONS),
    ("POST", "/api/limits/{id}/lift", lift, Permission.SESSIONS),
    ("GET", "/api/usage", get_usage, Permission.USAGE),
)
"""Every API route with the permission it needs (None: any staff member)."""
