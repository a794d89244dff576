"""The end of every federated sign-in, whatever the method: the provider's answer is an
``Identity``, the patron's pseudonym is checked against blocks and usage suspensions, and the
session opens as a card login's does (``open_session``). A provider that cannot answer gets the
friendly 503 page, never access."""

from __future__ import annotations

import logging

from aiohttp import web

from gateway.appkeys import KEYRING, METRICS, SESSIONS
from gateway.auth.signin import Identity
from gateway.logsafe import printable
from gateway.web import pages
from gateway.web.patron import login_page, open_session

log = logging.getLogger(__name__)


def unavailable(request: web.Request, method_id: str, exc: Exception) -> web.Response:
    """The 503 page for a provider that is down, slow, or answers nonsense."""
    log.error("signin %s: provider unavailable: %s", method_id, printable(str(exc))[:300])
    request.config_dict[METRICS].inc("carrel_logins_total", result="unavailable")
    return pages.render(
        request, "error.html", 503, title_key="error_503_title", text_key="signin_unavailable"
    )


def denied_page(request: web.Request, message: str) -> web.Response:
    """What a patron whom an attribute rule denies sees: the standard words, then the rule's
    own message (as the library wrote it), and no session."""
    return pages.render(request, "error.html", 403, title_key="signin_denied_title",
                        text_key="signin_denied_text", detail=message)  # fmt: skip


async def welcome(request: web.Request, identity: Identity, target: str) -> web.Response:
    """A session for ``identity`` and the patron sent on to ``target`` (a redirect, raised),
    or the login page saying why not (blocked, suspended)."""
    account = f"{identity.method}:{identity.patron_id}"
    pid = request.config_dict[KEYRING].pseudonym(account)
    sessions = request.config_dict[SESSIONS]
    if await sessions.is_blocked(pid):
        log.info("signin refused: blocked, patron=%s", pid)
        request.config_dict[METRICS].inc("carrel_logins_total", result="blocked")
        return login_page(request, target, 403, error="signin_blocked")
    if await sessions.is_suspended(pid):
        log.info("signin refused: suspended by a usage limit, patron=%s", pid)
        return login_page(request, target, 429, error="signin_suspended")
    return await open_session(request, target, pid, account, identity.groups,
                              method=identity.method)  # fmt: skip
