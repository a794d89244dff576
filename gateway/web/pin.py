"""PIN self-service: Modify PIN (logged in), Forgot PIN (email link), and the reset link.

Every page here sends ``Referrer-Policy: no-referrer`` and ``Cache-Control: no-store``: a reset
link must not leak through a Referer, and a PIN form must not come back from a cache.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from aiohttp import web
from yarl import URL

from gateway import i18n
from gateway.appkeys import (
    BACKGROUND,
    DIRECTORY,
    KEYRING,
    LOCKOUTS,
    MAILER,
    REDIS,
    RESETS,
    SESSIONS,
    SETTINGS,
)
from gateway.auth.directory import Patron, Verdict
from gateway.auth.lockout import Gate
from gateway.auth.pin_policy import check_pin
from gateway.edge.client import client_address
from gateway.mail import Message
from gateway.redis_keys import PREFIX
from gateway.sessions import Session
from gateway.web import csrf, pages
from gateway.web.patron import (
    GATE_MESSAGES,
    current_session,
    destination,
    last_try_warning,
    set_session_cookie,
)
from gateway.web.pin_first import safe_target
from gateway.web.targets import clean_target, target_from_query

log = logging.getLogger(__name__)

PRIVATE = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}
MAX_PIN_FIELD = 32


def _private(response: web.Response) -> web.Response:
    response.headers.update(PRIVATE)
    return response


def _page(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    return _private(csrf.form_page(request, template, status, **context))


def _message(request: web.Request, title: str, text: str, status: int = 200,
             **context: Any) -> web.Response:  # fmt: skip
    return _private(pages.render(request, "message.html", status, title_key=title, text_key=text,
                                 **context))  # fmt: skip


def _new_pin_problem(new: str, again: str, card: str, old: str = "") -> tuple[str, str] | None:
    """(field, message key) for the first thing wrong with a new PIN typed twice, or None."""
    refusal = check_pin(new, card)
    if refusal is not None:
        return "new_pin", refusal.value
    if new != again:
        return "new_pin2", "pin_mismatch"
    if old and new == old:
        return "new_pin", "pin_same_as_old"
    return None


def _elsewhere(request: web.Request) -> web.Response:
    settings = request.config_dict[SETTINGS]
    return _message(request, "pin_elsewhere_title", "pin_elsewhere_text",
                    detail=settings.pin.change_elsewhere)  # fmt: skip


def _compose(request: web.Request, patron: Patron, subject: str, body: str,
             **values: str) -> Message:  # fmt: skip
    lang = pages.language(request)
    text = i18n.translate(lang, body, **values)
    link = values.get("link", "")
    html_text = text.replace(link, f'<a href="{link}">{link}</a>') if link else text
    html = f'<!doctype html><html lang="{lang}"><body><p>{html_text}</p></body></html>'
    return Message(patron.email, i18n.translate(lang, subject), text, html)


# -- Modify PIN -----------------------------------------------------------------------------


async def change_form(request: web.Request) -> web.Response:
    """GET /pin/change: old PIN, new PIN twice."""
    session = await current_session(request)
    target = safe_target(request, target_from_query(request.query_string))
    if session is None:
        raise web.HTTPFound(URL("/login", encoded=True))
    if not request.config_dict[DIRECTORY].can_change_pin:
        return _elsewhere(request)
    return _page(request, "pin_change.html", target=target, must_change=session.must_change_pin)


async def change_submit(request: web.Request) -> web.Response:
    """POST /pin/change."""
    session = await current_session(request)
    if session is None:
        raise web.HTTPFound("/login")
    directory = request.config_dict[DIRECTORY]
    if not directory.can_change_pin:
        return _elsewhere(request)
    form = await request.post()
    target = clean_target(str(form.get("url", "")))
    old = str(form.get("old_pin", ""))[:MAX_PIN_FIELD]
    new = str(form.get("new_pin", ""))[:MAX_PIN_FIELD]
    again = str(form.get("new_pin2", ""))[:MAX_PIN_FIELD]
    context = {"target": target, "must_change": session.must_change_pin}
    if not csrf.valid(request, str(form.get(csrf.TOKEN_FIELD, "")), csrf.Purpose.PATRON):
        return _page(request, "pin_change.html", 400, error="form_expired", **context)
    problem = _new_pin_problem(new, again, session.card, old)
    if problem is not None:
        field, message = problem
        return _page(request, "pin_change.html", 400, error=message, error_field=field, **context)
    lockouts = request.config_dict[LOCKOUTS]
    address = client_address(request)
    gate = await lockouts.reserve(session.card, address, old)
    if gate is not Gate.OK:
        return _page(request, "pin_change.html", 429, error=GATE_MESSAGES[gate], **context)
    result = await directory.verify(session.card, old)
    if result.verdict is not Verdict.OK or result.patron is None:
        await lockouts.fail(session.card, address, old)  # the login's counter: guesses add up
        log.info("PIN change: wrong old PIN, patron=%s", session.pid)
        warning = await last_try_warning(request, session.card)
        return _page(request, "pin_change.html", 401, error="old_pin_wrong",
                     error_field="old_pin", **context, **warning)  # fmt: skip
    await lockouts.succeed(session.card, address, old)
    patron = await directory.change_pin(session.card, new)
    response = await _renew_sessions(request, session, patron, target)
    log.info("PIN changed: patron=%s", session.pid)
    if patron.email:
        notice = _compose(request, patron, "mail_changed_subject", "mail_changed_body")
        request.config_dict[BACKGROUND].run(request.config_dict[MAILER].send(notice))
    return response


async def _renew_sessions(
    request: web.Request, session: Session, patron: Patron, target: str
) -> web.Response:
    """Every session of the card ends; this browser gets a new one."""
    sessions = request.config_dict[SESSIONS]
    await sessions.end_all(session.pid)
    raw = await sessions.create(
        session.pid, session.card, patron.groups, client_address(request), patron.pin_version
    )
    if target:
        try:
            response = destination(request, target, session.pid)
        except web.HTTPFound as redirect:
            set_session_cookie(request, redirect, raw)
            raise
    else:
        response = _message(request, "pin_changed_title", "pin_changed_text", link="/menu",
                            link_key="go_to_menu")  # fmt: skip
    set_session_cookie(request, response, raw)
    return response


# -- Forgot PIN -----------------------------------------------------------------------------


def _at_the_desk(request: web.Request) -> web.Response:
    """Forgot PIN with no mail server: the one answer for every card, the library's desk."""
    return _message(request, "forgot_desk_title", "forgot_desk_text", link="/login",
                    link_key="login_again")  # fmt: skip


async def forgot_form(request: web.Request) -> web.Response:
    """GET /pin/forgot: the card number (without ``[mail]``: the way to the desk)."""
    if not request.config_dict[DIRECTORY].can_change_pin:
        return _elsewhere(request)
    if not request.config_dict[MAILER].configured:
        return _at_the_desk(request)
    return _page(request, "pin_forgot.html")


async def _under_limit(request: web.Request, kind: str, value: str, limit: int) -> bool:
    key = f"{PREFIX}:forgot:{kind}:{request.config_dict[KEYRING].counter_key(value)}"
    redis = request.config_dict[REDIS]
    count = await redis.incr(key)
    if count == 1:
        await redis.expire(key, 3600)
    return int(count) <= limit


async def forgot_submit(request: web.Request) -> web.Response:
    """POST /pin/forgot: the same answer whether or not the card exists or has an email."""
    settings = request.config_dict[SETTINGS]
    form = await request.post()
    if not request.config_dict[MAILER].configured:  # before the card is read: it changes nothing
        return _at_the_desk(request)
    card = str(form.get("card", "")).strip()[:64]
    if not csrf.valid(request, str(form.get(csrf.TOKEN_FIELD, "")), csrf.Purpose.PATRON):
        return _page(request, "pin_forgot.html", 400, error="form_expired", card=card)
    directory = request.config_dict[DIRECTORY]
    if not directory.can_change_pin:
        return _elsewhere(request)
    if not directory.card_pattern.fullmatch(card):
        return _page(request, "pin_forgot.html", 400, error="card_format", error_field="card",
                     card=card)  # fmt: skip
    address_ok = await _under_limit(
        request, "address", client_address(request), settings.pin.forgot_per_address
    )
    card_ok = await _under_limit(request, "card", card, settings.pin.forgot_per_card)
    if address_ok and card_ok:
        request.config_dict[BACKGROUND].run(_mail_reset_link(request, card))
    else:
        log.info("forgot PIN: throttled (no email sent)")
    return _message(request, "forgot_sent_title", "forgot_sent_text", link="/login",
                    link_key="login_again")  # fmt: skip


async def _mail_reset_link(request: web.Request, card: str) -> None:
    patron = await request.config_dict[DIRECTORY].lookup(card)
    if patron is None or not patron.email:
        log.info("forgot PIN: no email on record for that card (or no such card)")
        return
    token = await request.config_dict[RESETS].issue(card, patron.pin_version)
    settings = request.config_dict[SETTINGS]
    link = f"{settings.public_url}/pin/reset?token={quote(token)}"  # never the request's Host
    minutes = str(settings.pin.reset_minutes)
    message = _compose(request, patron, "mail_reset_subject", "mail_reset_body", link=link,
                       minutes=minutes)  # fmt: skip
    await request.config_dict[MAILER].send(message)
    log.info("forgot PIN: reset link sent, patron=%s", request.config_dict[KEYRING].pseudonym(card))


# -- The reset link ---------------------------------------------------------------------------


async def reset_form(request: web.Request) -> web.Response:
    """GET /pin/reset?token=...: only shows the form (mail scanners open links)."""
    token = request.query.get("token", "")
    claim = request.config_dict[RESETS].read(token)
    if claim is None or not await request.config_dict[REDIS].exists(
        f"{PREFIX}:pin-reset:{claim.jti}"
    ):
        return _message(request, "reset_invalid_title", "reset_invalid_text", 400,
                        link="/pin/forgot", link_key="forgot_pin")  # fmt: skip
    return _page(request, "pin_reset.html", token=token)


async def reset_submit(request: web.Request) -> web.Response:
    """POST /pin/reset: use the token once, set the PIN, end every session of the card."""
    form = await request.post()
    token = str(form.get("token", ""))[:2048]
    new = str(form.get("new_pin", ""))[:MAX_PIN_FIELD]
    again = str(form.get("new_pin2", ""))[:MAX_PIN_FIELD]
    if not csrf.valid(request, str(form.get(csrf.TOKEN_FIELD, "")), csrf.Purpose.PATRON):
        return _page(request, "pin_reset.html", 400, error="form_expired", token=token)
    resets = request.config_dict[RESETS]
    claim = resets.read(token)
    invalid = _message(request, "reset_invalid_title", "reset_invalid_text", 400,
                       link="/pin/forgot", link_key="forgot_pin")  # fmt: skip
    if claim is None:
        return invalid
    pending = await request.config_dict[REDIS].get(f"{PREFIX}:pin-reset:{claim.jti}")
    card_hint = pending.decode() if isinstance(pending, bytes) else str(pending or "")
    problem = _new_pin_problem(new, again, card_hint)
    if problem is not None:  # the token is not used up by a PIN the policy refuses
        field, message = problem
        return _page(request, "pin_reset.html", 400, token=token, error=message, error_field=field)
    card = await resets.use(claim)
    if card is None:
        return invalid
    directory = request.config_dict[DIRECTORY]
    patron = await directory.lookup(card)
    if patron is None or patron.pin_version != claim.pin_version:
        return invalid  # the PIN changed since the link was sent
    await directory.change_pin(card, new)
    await request.config_dict[SESSIONS].end_all(claim.pid)
    log.info("PIN reset by email link: patron=%s", claim.pid)
    return _message(request, "reset_done_title", "reset_done_text", link="/login",
                    link_key="login_button")  # fmt: skip


def add_routes(app: web.Application) -> None:
    """Register the PIN pages."""
    app.router.add_get("/pin/change", change_form)
    app.router.add_post("/pin/change", change_submit)
    app.router.add_get("/pin/forgot", forgot_form)
    app.router.add_post("/pin/forgot", forgot_submit)
    app.router.add_get("/pin/reset", reset_form)
    app.router.add_post("/pin/reset", reset_submit)
