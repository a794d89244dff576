"""The console's test sign-in (EZproxy's ``msgauth``): a staff member signs in at a provider
and sees exactly the attributes it sent, which attribute rules matched and what the outcome
would be, and no session is opened.

The round trip: ``POST /admin/signin-test/<id>`` (the console's CSRF and the ``signin``
permission, checked by the guard) keeps a test flow in Redis that names the staff member, binds
it to this browser with a cookie of the console's own host, and sends the browser to the
provider with the login host's registered callback. The callback sees the test flow's state
(``TEST_STATE``) and passes the provider's answer on, untouched, to
``GET /admin/signin-test/result`` on the console, which takes the flow, checks that it is a test
flow, that this browser started it and that its staff member may still test, finishes the sign-in
at the provider and renders the page. The attributes live only in that request: the flow is all
Redis holds, and the audit says only who tested which provider.

The result is not behind the staff session: that cookie is ``SameSite=Strict`` and does not
come back with the provider's cross-site redirect. The test cookie (``Lax``, host-only, path
``/admin/signin-test/``, a hash of it in the flow) and the account re-read from the staff store
stand in for it; a patron's sign-in has no test flow, so it can never be shown here.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from typing import Any

from aiohttp import web

from gateway.admin.access import STAFF, STAFF_STORE
from gateway.admin.pages import page
from gateway.admin.staff import Permission
from gateway.appkeys import AUDIT, LOCKOUTS, SETTINGS, SIGNIN_FLOWS, SIGNIN_METHODS
from gateway.auth.attribute_rules import Attributes, decide
from gateway.auth.lockout import Gate
from gateway.auth.signin import (
    TEST_RESULT,
    AnyMethod,
    Flow,
    PasswordMethod,
    SigninRefused,
    SigninUnavailable,
    WrongCredentials,
    form_origins,
    redirect_methods,
    token_hash,
)
from gateway.edge.client import client_address
from gateway.edge.request_cookie import request_cookie
from gateway.logsafe import printable
from gateway.web import pages
from gateway.web.cookie_names import HOST_PREFIX, cookie_names
from gateway.web.signin import redirect_uri
from gateway.web.signin_password import GATE_MESSAGES, MAX_USERNAME

log = logging.getLogger(__name__)

COOKIE_PATH = "/admin/signin-test/"


async def providers_page(
    request: web.Request, problem: str = "", status: int = 200
) -> web.Response:
    """GET /admin/signin-test: every provider, each with a "Test sign-in" button (a directory,
    LDAP, with a username and password form)."""
    lang = pages.language(request)
    methods = list(request.config_dict[SIGNIN_METHODS].values())
    listed = [{"id": m.id, "kind": m.kind, "label": m.label(lang),
               "password": isinstance(m, PasswordMethod)} for m in methods]  # fmt: skip
    response = page(request, "admin/signin_test.html", providers=listed, problem=problem,
                    form_origins=form_origins(redirect_methods(methods)))  # fmt: skip
    response.set_status(status)
    return response


def _set_cookie(request: web.Request, response: web.StreamResponse, value: str) -> None:
    """The test cookie on the console's host (``value`` empty: removed)."""
    name = cookie_names(request.config_dict[SETTINGS]).signin_test
    secure = name.startswith(HOST_PREFIX)
    if not value:
        response.del_cookie(name, path=COOKIE_PATH, secure=secure, httponly=True, samesite="Lax")
        return
    response.set_cookie(
        name, value, path=COOKIE_PATH, httponly=True, samesite="Lax", secure=secure,
        max_age=request.config_dict[SETTINGS].signin.flow_timeout,
    )  # fmt: skip


def _unavailable(request: web.Request, method: AnyMethod, exc: Exception) -> str:
    log.error("signin test %s: provider unavailable: %s", method.id, printable(str(exc))[:300])
    return pages.text(request, "admin_signin_test_unavailable")


async def start(request: web.Request) -> web.Response:
    """POST /admin/signin-test/<id>: a test flow for this staff member and browser, and the
    browser sent to the provider."""
    method = request.config_dict[SIGNIN_METHODS].get(request.match_info["method"])
    if method is None:
        raise web.HTTPNotFound()
    if isinstance(method, PasswordMethod):
        return await _check_password(request, method)
    user = request[STAFF].user
    browser = secrets.token_urlsafe(32)
    flow = Flow.new(method.id, "", browser, staff=user)
    try:
        location = await method.begin(flow, redirect_uri(request, method))
    except SigninUnavailable as exc:
        return await providers_page(request, problem=_unavailable(request, method, exc))
    await request.config_dict[SIGNIN_FLOWS].put(flow)
    await request.config_dict[AUDIT].record("signin_test", user, provider=method.id)
    redirect = web.HTTPFound(location)
    _set_cookie(request, redirect, browser)
    raise redirect


def _plain(request: web.Request, status: int, text_key: str) -> web.Response:
    """A page without the console's navigation (no staff member is known yet)."""
    return pages.render(request, "error.html", status, title_key="admin_signin_test_title",
                        text_key=text_key)  # fmt: skip


async def result(request: web.Request) -> web.Response:
    """GET /admin/signin-test/result: the provider's answer (passed on by the callback) for a
    test flow of this browser, finished and shown; no session, nothing kept."""
    method = request.config_dict[SIGNIN_METHODS].get(request.query.get("provider", ""))
    flows = request.config_dict[SIGNIN_FLOWS]
    state = request.query.get("state", "")
    flow = await flows.take(state)
    posted = await flows.take_posted(state)  # a SAML Response the ACS held for the flow
    raw = request_cookie(request, cookie_names(request.config_dict[SETTINGS]).signin_test) or ""
    if (
        method is None
        or isinstance(method, PasswordMethod)
        or flow is None
        or not flow.test
        or flow.provider != method.id
        or not hmac.compare_digest(token_hash(raw), flow.browser)
    ):
        log.warning("signin test refused: unknown, used or expired state, or another browser")
        return _plain(request, 400, "admin_signin_test_expired")
    staff = await asyncio.to_thread(request.config_dict[STAFF_STORE].get, flow.staff)
    if staff is None or not staff.may(Permission.SIGNIN):  # disabled or demoted meanwhile
        return _plain(request, 403, "admin_signin_test_forbidden")
    request[STAFF] = staff
    refused, attributes = "", None
    try:
        attributes = await method.finish(flow, redirect_uri(request, method),
                                         {**request.query, **posted})  # fmt: skip
    except SigninUnavailable as exc:
        refused = _unavailable(request, method, exc)
    except SigninRefused as exc:  # for staff, the reason (never a value the provider vouched)
        refused = pages.text(request, "admin_signin_test_refused", reason=printable(str(exc)))
    response = _result_page(request, method, attributes, refused)
    _set_cookie(request, response, "")
    return response


def _result_page(
    request: web.Request, method: AnyMethod, attributes: Attributes | None, refused: str
) -> web.Response:
    """What the provider sent and what the rules make of it (or why it was refused), never
    cached."""
    lang = pages.language(request)
    context: dict[str, Any] = {
        "provider": method.label(lang), "method": f"{method.kind}:{method.id}",
        "refused": refused, "policy": method.policy,
    }  # fmt: skip
    if attributes is not None:
        outcome = decide(method.policy, attributes)
        context.update(attributes=sorted(attributes.items()), outcome=outcome,
                       matched=set(outcome.matched))  # fmt: skip
    response = page(request, "admin/signin_test_result.html", **context)
    response.headers["Cache-Control"] = "no-store"
    return response


async def _check_password(request: web.Request, method: PasswordMethod) -> web.Response:
    """A directory's test: the staff member types a (test) account's username and password
    here, the directory checks them as at the login page (the same lockouts count), and the
    result page shows the entry's attributes. Neither is logged or kept; the audit says who
    tested which directory."""
    form = await request.post()
    username = str(form.get("username", "")).strip()[:MAX_USERNAME]
    password = str(form.get("password", ""))
    if not username or not password:
        problem = pages.text(request, "admin_signin_test_credentials_missing")
        return await providers_page(request, problem=problem, status=400)
    user = request[STAFF].user
    await request.config_dict[AUDIT].record("signin_test", user, provider=method.id)
    account = f"{method.kind}:{method.id}:{username.lower()}"
    lockouts, address = request.config_dict[LOCKOUTS], client_address(request)
    attributes, refused = None, ""
    gate = await lockouts.reserve(account, address, password)
    if gate is not Gate.OK:
        refused = pages.text(request, GATE_MESSAGES[gate])
    else:
        try:
            attributes = await method.check(username, password)
            await lockouts.succeed(account, address, password)
        except SigninUnavailable as exc:
            refused = _unavailable(request, method, exc)
        except WrongCredentials:
            await lockouts.fail(account, address, password)
            refused = pages.text(request, "signin_password_wrong")
    return _result_page(request, method, attributes, refused)


ROUTES = (
    ("GET", "/signin-test", providers_page, Permission.SIGNIN),
    ("GET", TEST_RESULT, result, None),  # public to the guard: see the module's note
    ("POST", "/signin-test/{method}", start, Permission.SIGNIN),
)
