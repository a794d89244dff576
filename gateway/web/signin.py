"""Federated sign-in on the login host: ``POST /signin/<id>`` starts a flow at the provider,
``GET /signin/<id>/callback`` finishes it and ends as a card login does (``open_session``).
A SAML provider also has ``POST /signin/<id>/callback`` (its ACS) and ``GET
/signin/<id>/metadata`` (the SP metadata to register at the IdP).

Starting is a POST with the patron form's CSRF token: no other site, and no vendor page (a
sibling origin of this host), can start a sign-in in the patron's browser. Login CSRF (a
callback URL with the attacker's own code and state, opened in the patron's browser so that
the patron browses as the attacker) is refused because the flow is bound to the browser that
started it: a random value in a host-only ``SameSite=Lax`` cookie (Lax: it must come back with
the provider's cross-site redirect), of which the flow keeps only a hash. Where the patron was
going is kept with the flow in Redis, never taken from the provider, and checked against the
rules at the end like any login target (no open redirect). The provider's attributes become
a patron id and groups, or a denial, in one shared step (``identity_from_attributes``). A
console test sign-in's answer (its state starts with ``TEST_STATE``) is not finished here: it
is passed on to the console (``gateway.admin.signin_test``) and never opens a session.

A form method (LDAP) posts its username and password to the same ``POST /signin/<id>``, with
the same token; it has no flow and no callback (``gateway.web.signin_password``).

A SAML IdP answers with a cross-site POST to the ACS (the HTTP-POST binding), and a browser
sends no ``SameSite=Lax`` cookie with a cross-site POST, so the ACS cannot tell whose browser it
is. It does not try: it only holds the posted Response in Redis for a minute, under the hash of
the flow's state (its RelayState; nothing is kept for a state with no flow under way), and
answers 303 to ``GET /signin/<id>/callback?state=...``. That GET is a top-level navigation
with a safe method, which the Lax cookie does accompany, and from there the sign-in ends exactly
as an OIDC callback does: the flow taken once, the browser cookie compared with the flow's, the
held Response checked. An attacker who posts their own Response into the patron's browser
gets the patron sent to that GET with the patron's cookie, which is not the flow's: refused,
as a forged OIDC callback is. Nothing weaker than the OIDC flow, and no JavaScript needed.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from urllib.parse import quote

from aiohttp import web
from yarl import URL

from gateway.appkeys import KEYRING, METRICS, SETTINGS, SIGNIN_FLOWS, SIGNIN_METHODS
from gateway.auth.saml import MAX_RESPONSE, SamlMethod
from gateway.auth.signin import (
    TEST_RESULT,
    TEST_STATE,
    AnyMethod,
    Flow,
    PasswordMethod,
    SigninDenied,
    SigninMethod,
    SigninRefused,
    SigninUnavailable,
    identity_from_attributes,
    token_hash,
)
from gateway.edge.client import client_address
from gateway.edge.request_cookie import request_cookie
from gateway.logsafe import printable
from gateway.netblocks import host_key
from gateway.web import csrf
from gateway.web.cookie_names import cookie_names
from gateway.web.patron import login_page
from gateway.web.signed_in import denied_page, unavailable, welcome
from gateway.web.signin_password import password_signin
from gateway.web.targets import clean_target

log = logging.getLogger(__name__)

COOKIE_PATH = "/signin/"


def _method(request: web.Request) -> AnyMethod:
    method = request.config_dict[SIGNIN_METHODS].get(request.match_info["method"])
    if method is None:
        raise web.HTTPNotFound()
    return method


def redirect_uri(request: web.Request, method: SigninMethod) -> str:
    """Where the provider sends the patron back: registered at the provider as it is."""
    return f"{request.config_dict[SETTINGS].public_url}/signin/{method.id}/callback"


def _set_browser_cookie(request: web.Request, response: web.StreamResponse, value: str) -> None:
    settings = request.config_dict[SETTINGS]
    names = cookie_names(settings)
    response.set_cookie(
        names.signin, value, path=COOKIE_PATH, httponly=True, samesite="Lax", secure=names.tls,
        max_age=settings.signin.flow_timeout,
    )  # fmt: skip


def _clear_browser_cookie(request: web.Request, response: web.StreamResponse) -> None:
    names = cookie_names(request.config_dict[SETTINGS])
    response.del_cookie(names.signin, path=COOKIE_PATH, secure=names.tls, httponly=True,
                        samesite="Lax")  # fmt: skip


async def start(request: web.Request) -> web.Response:
    """POST /signin/<id>: a new flow, kept in Redis, and the patron sent to the provider (a
    form method, LDAP, checks the username and password it posts instead)."""
    method = _method(request)
    form = await request.post()
    target = clean_target(str(form.get("url", "")))
    if not csrf.valid(request, str(form.get(csrf.TOKEN_FIELD, "")), csrf.Purpose.PATRON):
        return login_page(request, target, 400, error="signin_form_expired")
    if isinstance(method, PasswordMethod):
        return await password_signin(request, method, form, target)
    address = host_key(client_address(request))
    if not await request.config_dict[SIGNIN_FLOWS].may_start(
        request.config_dict[KEYRING].counter_key(f"signin:{address}")
    ):
        log.warning("signin %s refused: too many sign-ins started from one address", method.id)
        return login_page(request, target, 429, error="pin_throttled")
    browser = secrets.token_urlsafe(32)
    flow = Flow.new(method.id, target, browser)
    try:
        location = await method.begin(flow, redirect_uri(request, method))
    except SigninUnavailable as exc:
        return unavailable(request, method.id, exc)
    await request.config_dict[SIGNIN_FLOWS].put(flow)
    redirect = web.HTTPFound(location)
    _set_browser_cookie(request, redirect, browser)
    raise redirect


FORWARDED = ("state", "code", "iss", "error", "ticket")
"""What the callback passes on to the console for a test sign-in: the provider's answer (OIDC's
code, iss or error; CAS's ticket)."""


def _to_console(request: web.Request, method: SigninMethod) -> web.HTTPSeeOther:
    """A test sign-in's answer, passed to the console, which finishes it in the browser of the
    staff member who started it (its own cookie; this host cannot check that)."""
    query = {k: request.query[k][:2048] for k in FORWARDED if k in request.query}
    url = URL(f"{request.config_dict[SETTINGS].admin_url}{TEST_RESULT}")
    return web.HTTPSeeOther(url.with_query({**query, "provider": method.id}))


async def callback(request: web.Request) -> web.Response:
    """GET /signin/<id>/callback: the provider's answer, checked; a session like a card's (a
    console test sign-in's answer goes on to the console)."""
    method = _method(request)
    if isinstance(method, PasswordMethod):
        raise web.HTTPNotFound()  # a form method has no callback
    state = request.query.get("state", "")
    if state.startswith(TEST_STATE):
        raise _to_console(request, method)
    flows = request.config_dict[SIGNIN_FLOWS]
    flow = await flows.take(state)
    posted = await flows.take_posted(state)  # a SAML Response the ACS held (see above)
    browser = request_cookie(request, cookie_names(request.config_dict[SETTINGS]).signin) or ""
    metrics = request.config_dict[METRICS]
    if (
        flow is None
        or flow.test
        or flow.provider != method.id
        or not hmac.compare_digest(token_hash(browser), flow.browser)
    ):
        log.warning("signin %s refused: unknown, used or expired state, or another browser",
                    method.id)  # fmt: skip
        metrics.inc("carrel_logins_total", result="refused")
        return login_page(request, flow.target if flow else "", 400, error="signin_expired")
    try:
        attributes = await method.finish(flow, redirect_uri(request, method),
                                         {**request.query, **posted})  # fmt: skip
        identity = identity_from_attributes(f"{method.kind}:{method.id}", attributes,
                                            method.policy)  # fmt: skip
    except SigninUnavailable as exc:
        return unavailable(request, method.id, exc)
    except SigninRefused as exc:
        log.warning("signin %s refused: %s", method.id, printable(str(exc))[:300])
        metrics.inc("carrel_logins_total", result="wrong")
        return login_page(request, flow.target, 403, error="signin_failed")
    except SigninDenied as exc:
        log.info("signin %s denied by an attribute rule", method.id)  # no values: see README
        metrics.inc("carrel_logins_total", result="denied")
        return denied_page(request, exc.message)
    try:
        response = await welcome(request, identity, flow.target)
    except web.HTTPException as redirect:
        _clear_browser_cookie(request, redirect)
        raise
    _clear_browser_cookie(request, response)
    return response


def _saml(request: web.Request) -> SamlMethod:
    method = _method(request)
    if not isinstance(method, SamlMethod):
        raise web.HTTPNotFound()
    return method


async def assertion_consumer(request: web.Request) -> web.Response:
    """POST /signin/<id>/callback: a SAML IdP's Response, held for the browser's next step
    (the module's docstring says why), which the answer sends it to."""
    method = _saml(request)
    form = await request.post()
    state = str(form.get("RelayState", ""))
    response = str(form.get("SAMLResponse", ""))
    if len(response) > MAX_RESPONSE or not await request.config_dict[SIGNIN_FLOWS].hold(
        state, {"SAMLResponse": response}
    ):
        log.warning("signin %s refused: a Response for no sign-in under way", method.id)
        request.config_dict[METRICS].inc("carrel_logins_total", result="refused")
        return login_page(request, "", 400, error="signin_expired")
    raise web.HTTPSeeOther(f"/signin/{method.id}/callback?state={quote(state, safe='')}")


async def sp_metadata(request: web.Request) -> web.Response:
    """GET /signin/<id>/metadata: the SP metadata of a SAML provider, for its IdP."""
    method = _saml(request)
    return web.Response(body=method.sp_metadata().encode(),
                        content_type="application/samlmetadata+xml")  # fmt: skip


def add_routes(app: web.Application) -> None:
    """Register the sign-in routes (every configured method answers at its own id)."""
    app.router.add_post("/signin/{method}", start)
    app.router.add_get("/signin/{method}/callback", callback)
    app.router.add_post("/signin/{method}/callback", assertion_consumer)
    app.router.add_get("/signin/{method}/metadata", sp_metadata)
