"""Sign-in with a username and password checked by a provider (LDAP): the form on the login
page posts to ``POST /signin/<id>`` (with the patron form's CSRF token, checked by the caller).

It is guarded as the card form is (``gateway.auth.lockout``): the attempt is reserved before
the directory is asked, so a locked account is refused even with the right password, a wrong
password counts toward the account's lock and the address's, and one password tried on many
accounts from one block is throttled. The lockout's account is ``<kind>:<id>:<username>``
(lower-cased: directories match names without regard to case), kept only as keyed hashes and
logged as its pseudonym; neither the username nor the password is logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from aiohttp import web

from gateway.appkeys import AUDIT, KEYRING, LOCKOUTS, METRICS
from gateway.auth.lockout import Gate
from gateway.auth.signin import (
    PasswordMethod,
    SigninDenied,
    SigninRefused,
    SigninUnavailable,
    WrongCredentials,
    identity_from_attributes,
)
from gateway.edge.client import client_address
from gateway.logsafe import printable
from gateway.web import patron
from gateway.web.patron import login_page
from gateway.web.signed_in import denied_page, unavailable, welcome

log = logging.getLogger(__name__)

MAX_USERNAME = 256
GATE_MESSAGES = {**patron.GATE_MESSAGES, Gate.CARD_LOCKED: "signin_account_locked"}
"""The card form's messages, but an account is not a card."""


def field_id(method: PasswordMethod, name: str) -> str:
    """The id of a field of ``method``'s form on the login page (``signin-campus-password``)."""
    return f"signin-{method.id}-{name}"


async def password_signin(
    request: web.Request, method: PasswordMethod, form: Mapping[str, object],
    target: str,
) -> web.Response:  # fmt: skip
    """Check the posted username and password with ``method``; a session, or the login page
    saying why not (the 503 page when the provider cannot answer)."""
    username = str(form.get("username", "")).strip()[:MAX_USERNAME]
    password = str(form.get("password", ""))

    def page(status: int, error: str, field: str = "") -> web.Response:
        about = {"error_field": field_id(method, field)} if field else {}
        return login_page(request, target, status, error=error, signin_form=method.id,
                          username=username, **about)  # fmt: skip

    if not username:
        return page(400, "signin_username_missing", "username")
    if not password:  # never sent: an empty password is an anonymous "success" on many servers
        return page(400, "signin_password_missing", "password")
    account = f"{method.kind}:{method.id}:{username.lower()}"
    lockouts = request.config_dict[LOCKOUTS]
    address = client_address(request)
    pid = request.config_dict[KEYRING].pseudonym(account)
    metrics = request.config_dict[METRICS]
    gate = await lockouts.reserve(account, address, password)
    if gate is not Gate.OK:
        log.warning("signin %s refused before checking: %s patron=%s", method.id, gate.value, pid)
        metrics.inc("carrel_lockouts_total", kind=gate.value)
        metrics.inc("carrel_logins_total", result="refused")
        return page(429, GATE_MESSAGES[gate])
    try:
        attributes = await method.check(username, password)
        identity = identity_from_attributes(f"{method.kind}:{method.id}", attributes,
                                            method.policy)  # fmt: skip
    except SigninUnavailable as exc:
        return unavailable(request, method.id, exc)
    except WrongCredentials as exc:
        await lockouts.fail(account, address, password)
        log.info("signin %s refused: %s patron=%s", method.id, printable(str(exc))[:200], pid)
        metrics.inc("carrel_logins_total", result="wrong")
        if await lockouts.locked(account):  # this failure set the lock
            await request.config_dict[AUDIT].record("patron_locked", patron=pid)
            return page(401, "signin_account_locked")
        return page(401, "signin_password_wrong", "password")
    except SigninRefused as exc:  # the right password, but no identity to make of the entry
        await lockouts.succeed(account, address, password)
        log.warning("signin %s refused: %s patron=%s", method.id, printable(str(exc))[:200], pid)
        metrics.inc("carrel_logins_total", result="refused")
        return page(403, "signin_failed")
    except SigninDenied as exc:  # the right password, and a rule that refuses the entry
        await lockouts.succeed(account, address, password)
        log.info("signin %s denied by an attribute rule patron=%s", method.id, pid)
        metrics.inc("carrel_logins_total", result="denied")
        return denied_page(request, exc.message)
    await lockouts.succeed(account, address, password)
    return await welcome(request, identity, target)
