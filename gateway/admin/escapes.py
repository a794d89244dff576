"""Escaped hosts in the console: what each database's pages reached outside its rules, with an
Add that puts the ``HJ`` line into the database's file through the rule editor's own path
(check, save with history, audit, reload here and, through rule sharing, on every instance).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from gateway.admin.access import STAFF
from gateway.admin.api import RULE_FILES, after_save
from gateway.admin.pages import page
from gateway.admin.rule_files import BadName, Checked, NoSuchFile
from gateway.admin.staff import Permission
from gateway.appkeys import ESCAPES, RULES, SETTINGS
from gateway.escapes.lines import host_line, with_line
from gateway.escapes.reports import Escaped, worth_recording
from gateway.escapes.store import Row
from gateway.rules.model import Database
from gateway.web import pages as web_pages

NOTICES = {
    "added": "admin_escapes_added",
    "covered": "admin_escapes_covered",
    "gone": "admin_escapes_gone",
    "no_database": "admin_escapes_no_database",
}
"""``?done=`` after an Add -> what the page says."""


def _database(request: web.Request, title: str) -> Database | None:
    databases = request.config_dict[RULES].ruleset.databases
    return next((db for db in databases if db.title == title), None)


def _covered(request: web.Request, row: Row) -> bool:
    ruleset = request.config_dict[RULES].ruleset
    domain = request.config_dict[SETTINGS].server.proxy_domain
    schemes = row.schemes or ("",)
    return not any(worth_recording(Escaped(row.host, s), ruleset, domain) for s in schemes)


def _view(request: web.Request, row: Row) -> dict[str, Any]:
    db = _database(request, row.database)
    start = db.url if db is not None else ""
    return {
        "database": row.database, "host": row.host, "week": row.week, "count": row.count,
        "first": row.first, "last": row.last, "line": host_line(row.host, row.schemes),
        "page_host": _host_of(start), "file": Path(db.file).name if db else "",
    }  # fmt: skip


def _host_of(url: str) -> str:
    """The host of a database's start URL, for "www.jstor.org pages loaded ..."."""
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


async def escapes_page(request: web.Request, **context: Any) -> web.Response:
    """GET /admin/escapes: every database's escaped hosts, most reported this week first."""
    rows = [r for r in await request.config_dict[ESCAPES].rows() if not _covered(request, r)]
    done = NOTICES.get(request.query.get("done", ""))
    context.setdefault("notice", web_pages.text(request, done) if done else "")
    context.setdefault("problem", "")
    return page(request, "admin/escapes.html", rows=[_view(request, r) for r in rows], **context)


async def add_submit(request: web.Request) -> web.Response:
    """POST /admin/escapes/add: the listed host's ``HJ`` line into its database's file."""
    form = await request.post()
    title, host = str(form.get("database", ""))[:300], str(form.get("host", ""))[:300]
    store = request.config_dict[ESCAPES]
    row = await store.row(title, host)
    if row is None:
        raise web.HTTPFound("/admin/escapes?done=gone")
    if _covered(request, row):  # another file or an edit covers it since it was reported
        await store.forget(title, host)
        raise web.HTTPFound("/admin/escapes?done=covered")
    db = _database(request, title)
    if db is None:
        raise web.HTTPFound("/admin/escapes?done=no_database")
    files = request.config_dict[RULE_FILES]
    name = Path(db.file).name
    line = host_line(row.host, row.schemes)
    try:
        new = with_line(files.read(name), db.source.line, line)
        saved = await files.save(name, new, request[STAFF].user, f"added {line}")
    except (BadName, NoSuchFile, ValueError) as exc:
        return await escapes_page(request, problem=f"{name}: {exc}")
    if isinstance(saved, Checked):
        problems = "; ".join(f"{f.source.line}: {f.message}" for f in saved.errors)
        return await escapes_page(request, problem=f"{name}: {problems}")
    await after_save(request, name, saved)
    await store.forget(title, host)
    raise web.HTTPFound("/admin/escapes?done=added")


ROUTES = (
    ("GET", "/escapes", escapes_page, Permission.RULES),
    ("POST", "/escapes/add", add_submit, Permission.RULES),
)
