"""The patron's pages on ``login.<proxy_domain>``: log in, the database menu, log out, help.

The login handler reads like the request flow: target -> form -> CSRF -> lockout gate ->
directory -> card status -> new session -> redirect to the proxied database (or the menu).
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web
from yarl import URL

from gateway.appkeys import (
    AUDIT,
    DIRECTORY,
    KEYRING,
    LOCKOUTS,
    MAILER,
    METRICS,
    RULES,
    SESSIONS,
    SETTINGS,
    SIGNIN_METHODS,
    SPU_LOG,
)
from gateway.auth import onsite
from gateway.auth.directory import DirectoryUnavailable, PatronStatus, Verdict
from gateway.auth.lockout import Gate
from gateway.auth.signin import form_origins, password_methods, redirect_methods
from gateway.edge.client import client_address
from gateway.edge.request_cookie import request_cookie
from gateway.logsafe import printable
from gateway.rules.model import Database
from gateway.rules.ruleset import Refused, Start, proxied_url, vendor_url
from gateway.sessions import Session
from gateway.web import csrf, pages
from gateway.web.cookie_names import cookie_names
from gateway.web.pin_first import change_first
from gateway.web.refusals import staff_hint
from gateway.web.targets import NAMED_START, clean_target, named_start_path, target_from_query

log = logging.getLogger(__name__)

MAX_FIELD = 64

GATE_MESSAGES = {
    Gate.CARD_LOCKED: "card_locked",
    Gate.ADDRESS_LOCKED: "address_locked",
    Gate.PIN_THROTTLED: "pin_throttled",
}
STATUS_MESSAGES = {PatronStatus.BLOCKED: "card_blocked", PatronStatus.EXPIRED: "card_expired"}


def session_cookie(request: web.Request) -> str | None:
    """The raw session id the browser sent (``DuplicateCookie`` when it sent two)."""
    return request_cookie(request, cookie_names(request.config_dict[SETTINGS]).session)


async def current_session(request: web.Request) -> Session | None:
    """The patron's live session, from the session cookie (an on-site one used from elsewhere
    ends here)."""
    settings = request.config_dict[SETTINGS]
    sessions = request.config_dict[SESSIONS]
    session = await sessions.get(session_cookie(request))
    return await onsite.keep_on_site(sessions, session, client_address(request, settings), settings)


def _starting_point(request: web.Request, target: str) -> Start | web.Response:
    """The database ``target`` starts, or the page saying that no rule lets it start one."""
    start = request.config_dict[RULES].ruleset.starting_point(target)
    if isinstance(start, Refused):
        host = urlsplit(target).hostname or target[:100]
        log.info("login target not configured: %s (%s)", printable(host), printable(start.reason))
        return pages.render(
            request, "not_configured.html", status=404, host=host, **staff_hint(request, start)
        )  # fmt: skip
    return start


def destination(request: web.Request, target: str, pid: str) -> web.Response:
    """Where a logged-in patron goes: the proxied target, the menu, or a page saying why not.

    A starting point that opens a database is a line in the starting-point log."""
    if not target:
        raise web.HTTPFound("/menu")
    settings = request.config_dict[SETTINGS]
    named = named_start_path(target, settings.public_url)
    if named is not None:
        raise web.HTTPFound(URL(named, encoded=True))
    start = _starting_point(request, target)
    if isinstance(start, web.Response):
        return start
    hostmap = request.config_dict[RULES].ruleset.hostmap(settings.server.proxy_domain)
    proxied = proxied_url(target, hostmap, settings.server.public_scheme, settings.port_suffix)
    assert proxied is not None  # a starting point is always an http(s) URL
    log_start(request, start.database.title, target, pid)
    raise web.HTTPFound(URL(proxied, encoded=True))  # as built: no re-encoding of the query


async def last_try_warning(request: web.Request, card: str) -> dict[str, bool]:
    """``last_try`` for the page when the card's next wrong PIN locks it, else nothing.
    Counted for any card number typed, so it says nothing about whether the card exists."""
    lockouts = request.config_dict[LOCKOUTS]
    if await lockouts.tries_left(card) != 1:
        return {}
    return {"last_try": True}


def form_start_path(db: Database) -> str | None:
    """``/login/LABEL`` when the database starts with a vendor login form (``URL -Form``):
    its URL is where the form posts to, not a page to open."""
    first = db.starts[0] if db.starts else None
    if first is not None and first.method is not None and first.url == db.url:
        return NAMED_START + quote(first.label, safe="")
    return None


def log_start(request: web.Request, title: str, url: str, pid: str) -> None:
    """A line in the starting-point log: a patron opened ``title`` at ``url``."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    title = title.replace('"', "'")
    request.config_dict[SPU_LOG].info(printable(f'{stamp} {pid or "-"} "{title}" {url}'))


def login_page(
    request: web.Request, target: str, status: int = 200, **context: Any
) -> web.Response:
    """The login page: a button per redirect sign-in method, a username and password form per
    form method (LDAP), then (unless ``signin.card`` is false) the card form; ``context``
    carries its error, if any (``signin_form``: the id of the form method it is about)."""
    host = urlsplit(target).hostname if target else ""
    action = f"/login?qurl={quote(target, safe='')}" if target else "/login"
    context.setdefault("card", "")
    lang = pages.language(request)
    methods = request.config_dict[SIGNIN_METHODS].values()
    return csrf.form_page(
        request, "login.html", status, target=target, target_host=host or "", action=action,
        methods=[{"id": m.id, "label": m.label(lang)} for m in redirect_methods(methods)],
        password_methods=[{"id": m.id, "label": m.label(lang)} for m in password_methods(methods)],
        card_login=request.config_dict[SETTINGS].signin.card,
        form_origins=form_origins(methods), **context,
    )  # fmt: skip


def unproxied(request: web.Request, target: str) -> web.Response:
    """ExcludeIP: the vendor's own URL for a starting point that the rules cover, and for no
    other (that would be an open redirect)."""
    start = _starting_point(request, target)
    if isinstance(start, web.Response):
        return start
    url = vendor_url(target)
    assert url is not None  # a starting point is always an http(s) URL
    log_start(request, start.database.title, url, "")
    raise web.HTTPFound(URL(url, encoded=True))


async def open_onsite_session(request: web.Request, target: str) -> web.Response:
    """AutoLoginIP: a session without the form, a patron of its own (``gateway.auth.onsite``)
    in ``onsite.auto_login_groups``, and the patron sent on as after any login."""
    settings = request.config_dict[SETTINGS]
    pid = request.config_dict[KEYRING].pseudonym(onsite.new_account())
    groups = frozenset(settings.onsite.auto_login_groups)
    return await open_session(request, target, pid, "", groups, method=onsite.METHOD)


async def login_form(request: web.Request) -> web.Response:
    """GET /login: the form (or, for a patron already logged in, straight on). From an
    ExcludeIP address a starting point goes straight to the vendor, session or not (as in
    EZproxy); from an AutoLoginIP address a patron without a session gets one, with no form."""
    target = target_from_query(request.query_string)
    settings = request.config_dict[SETTINGS]
    address = client_address(request, settings)
    named = target and named_start_path(target, settings.public_url) is not None
    if target and not named and onsite.excluded(address, settings):
        return unproxied(request, target)  # a named start decides at /login/LABEL itself
    session = await current_session(request)
    if session is not None and session.must_change_pin:
        raise change_first(request, target)
    if session is not None:
        return destination(request, target, session.pid)
    if onsite.auto_login(address, settings):
        return await open_onsite_session(request, target)
    return login_page(request, target)


async def login_submit(request: web.Request) -> web.Response:
    """POST /login: check the card and PIN, start a session, send the patron on."""
    if not request.config_dict[SETTINGS].signin.card:
        raise web.HTTPNotFound()  # card login is switched off: only the providers sign in
    form = await request.post()
    target = clean_target(str(form.get("url", ""))) or target_from_query(request.query_string)
    card = str(form.get("card", "")).strip()[:MAX_FIELD]
    pin = str(form.get("pin", ""))[:MAX_FIELD]
    if not csrf.valid(request, str(form.get(csrf.TOKEN_FIELD, "")), csrf.Purpose.PATRON):
        return login_page(request, target, 400, error="form_expired", card=card)
    if not card:
        return login_page(request, target, 400, card_error="card_missing")
    directory = request.config_dict[DIRECTORY]
    if not directory.card_pattern.fullmatch(card):
        return login_page(request, target, 400, card=card, card_error="card_format")
    if not pin:
        return login_page(request, target, 400, card=card, pin_error="pin_missing")

    lockouts = request.config_dict[LOCKOUTS]
    address = client_address(request)
    gate = await lockouts.reserve(card, address, pin)
    pid = request.config_dict[KEYRING].pseudonym(card)
    metrics = request.config_dict[METRICS]
    if gate is not Gate.OK:
        log.warning("login refused before checking: %s patron=%s", gate.value, pid)
        metrics.inc("carrel_lockouts_total", kind=gate.value)
        metrics.inc("carrel_logins_total", result="refused")
        return login_page(request, target, 429, card=card, error=GATE_MESSAGES[gate])
    try:
        result = await directory.verify(card, pin)
    except DirectoryUnavailable:
        log.error("patron directory unavailable during login")
        metrics.inc("carrel_logins_total", result="unavailable")
        return pages.render(request, "error.html", 503, title_key="error_503_title",
                            text_key="directory_unavailable")  # fmt: skip
    if result.verdict is not Verdict.OK or result.patron is None:
        await lockouts.fail(card, address, pin)
        log.info("login failed: patron=%s", pid)
        metrics.inc("carrel_logins_total", result="wrong")
        if await lockouts.locked(card):  # this failure set the lock: later ones stop at the gate
            await request.config_dict[AUDIT].record("patron_locked", patron=pid)
            return login_page(request, target, 401, card=card, error="card_locked")
        warning = await last_try_warning(request, card)
        return login_page(request, target, 401, card=card, error="login_wrong",
                           error_field="pin", **warning)  # fmt: skip
    await lockouts.succeed(card, address, pin)
    patron = result.patron
    status = patron.usable_status(datetime.date.today())
    if status is PatronStatus.ACTIVE and await request.config_dict[SESSIONS].is_blocked(pid):
        status = PatronStatus.BLOCKED  # blocked through Redis (another instance, the CLI)
    if status is PatronStatus.ACTIVE and await request.config_dict[SESSIONS].is_suspended(pid):
        log.info("login refused: card suspended by a usage limit, patron=%s", pid)
        return login_page(request, target, 429, card=card, error="card_suspended")
    if status is not PatronStatus.ACTIVE:
        log.info("login refused: card %s patron=%s", status.value, pid)
        metrics.inc("carrel_logins_total", result=status.value)
        return login_page(request, target, 403, card=card, error=STATUS_MESSAGES[status],
                           screen_messages=patron.screen_messages)  # fmt: skip

    return await open_session(request, target, pid, card, patron.groups,
                              pin_version=patron.pin_version,
                              must_change_pin=patron.must_change_pin)  # fmt: skip


async def open_session(
    request: web.Request, target: str, pid: str, card: str, groups: frozenset[str], *,
    pin_version: int = 1, must_change_pin: bool = False, method: str = "card",
) -> web.Response:  # fmt: skip
    """The end of every login, card or federated: a new session (a new id: the browser's old
    one ends), its cookie, and the patron sent on to ``target`` (``destination``)."""
    sessions = request.config_dict[SESSIONS]
    old = session_cookie(request)
    if old:
        await sessions.end_raw(old)  # a new id at every login
    raw = await sessions.create(pid, card, groups, client_address(request), pin_version,
                                must_change_pin, method=method)  # fmt: skip
    log.info("login: patron=%s method=%s", pid, method)
    request.config_dict[METRICS].inc("carrel_logins_total", result="ok")
    if must_change_pin:  # a desk reset: the patron chooses a PIN before going on
        redirect = change_first(request, target)
        set_session_cookie(request, redirect, raw)
        raise redirect
    try:
        response = destination(request, target, pid)
    except web.HTTPFound as redirect:
        set_session_cookie(request, redirect, raw)
        raise
    set_session_cookie(request, response, raw)
    return response


def _session_domain(request: web.Request) -> str | None:
    """Over TLS the session cookie is host-only (``__Host-``: each proxied host gets its own
    copy by handover); over http it is one cookie for ``Domain=<proxy_domain>``."""
    settings = request.config_dict[SETTINGS]
    return None if cookie_names(settings).tls else settings.server.proxy_domain


def set_session_cookie(request: web.Request, response: web.StreamResponse, raw: str) -> None:
    """The session cookie for this host (over TLS) or every proxied host (over http)."""
    names = cookie_names(request.config_dict[SETTINGS])
    response.set_cookie(
        names.session, raw, domain=_session_domain(request), path="/", httponly=True,
        samesite="Lax", secure=names.tls,
    )  # fmt: skip


def clear_session_cookie(request: web.Request, response: web.StreamResponse) -> None:
    """Remove the session cookie (of this host, over TLS) from the browser."""
    names = cookie_names(request.config_dict[SETTINGS])
    response.del_cookie(
        names.session, domain=_session_domain(request), path="/", secure=names.tls,
        httponly=True, samesite="Lax",
    )  # fmt: skip


async def menu(request: web.Request) -> web.Response:
    """GET /menu: the databases this patron may use, linked through the gateway."""
    session = await current_session(request)
    if session is None:
        raise web.HTTPFound("/login")
    if session.must_change_pin:
        raise change_first(request)
    await request.config_dict[SESSIONS].touch(session)
    settings = request.config_dict[SETTINGS]
    ruleset = request.config_dict[RULES].ruleset
    hostmap = ruleset.hostmap(settings.server.proxy_domain)
    groups = session.access_groups
    entries = sorted(
        (
            db.title,
            form_start_path(db)
            or proxied_url(db.url, hostmap, settings.server.public_scheme, settings.port_suffix),
        )
        for db in ruleset.databases
        if not db.hidden and db.url and db.groups & groups
    )
    return csrf.form_page(request, "menu.html", databases=[(t, u) for t, u in entries if u])


async def logout_form(request: web.Request) -> web.Response:
    """GET /logout: a page with the button. Ending a session by GET would let any page (an
    ``<img>`` on a vendor's page) log the patron out."""
    return csrf.form_page(request, "logout.html")


async def logout(request: web.Request) -> web.Response:
    """POST /logout: end the session everywhere and forget the cookie."""
    form = await request.post()
    if not csrf.valid(request, str(form.get(csrf.TOKEN_FIELD, "")), csrf.Purpose.PATRON):
        return csrf.form_page(request, "logout.html", 400, error="form_expired_logout")
    raw = session_cookie(request)
    if raw:
        await request.config_dict[SESSIONS].end_raw(raw)
    response = pages.render(
        request, "message.html", title_key="logged_out_title", text_key="logged_out_text",
        link="/login", link_key="login_again",
    )  # fmt: skip
    clear_session_cookie(request, response)
    return response


async def help_page(request: web.Request) -> web.Response:
    """GET /help: login problems, the PIN format, where to reset it (by email only when the
    gateway can send one); the lockout's numbers come from ``[lockout]``, and the PIN is named
    as the ILS's only when the ILS checks it."""
    settings = request.config_dict[SETTINGS]
    lockout = settings.lockout
    return pages.render(
        request, "help.html", mail=request.config_dict[MAILER].configured,
        tries=lockout.card_failures, window=pages.minutes(request, lockout.card_window),
        ils_pin=settings.patrons.backend == "sip2",
    )  # fmt: skip


async def root(request: web.Request) -> web.Response:
    """GET /: the menu for a patron with a session, else the login page."""
    raise web.HTTPFound("/menu" if await current_session(request) else "/login")


def add_routes(app: web.Application) -> None:
    """Register the patron pages."""
    app.router.add_get("/", root)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login_submit)
    app.router.add_get("/menu", menu)
    app.router.add_get("/logout", logout_form)
    app.router.add_post("/logout", logout)
    app.router.add_get("/help", help_page)
