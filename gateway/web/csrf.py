"""CSRF protection for the gateway's forms: a token bound to a host-only form cookie, to a
purpose, and to what the browser says about where the form came from.

The form cookie holds random bytes; the token in every form is an HMAC of them with a key
derived from the gateway's secret and the form's purpose, so a patron page's token is never
accepted by the console, nor the console's by a patron page. Over TLS the cookie is
``__Host-carrel_form``, which no sibling origin can set; over http a sibling could plant a
parent-domain form cookie whose token it knows, so every post is also refused when the browser
says it comes from another origin (``Sec-Fetch-Site`` other than ``same-origin``/``none``, or a
foreign ``Origin``): a vendor page is ``same-site`` to the login host, never ``same-origin``.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from typing import Any

from aiohttp import web

from gateway.appkeys import SECRET, SETTINGS
from gateway.edge.request_cookie import request_cookie
from gateway.web import pages
from gateway.web.cookie_names import cookie_names

TOKEN_FIELD = "csrf_token"
SAME_ORIGIN = frozenset({"same-origin", "none"})
"""``Sec-Fetch-Site`` values of a request the gateway's own page (or the patron) started."""


class Purpose(enum.Enum):
    """Whose forms a token is for."""

    PATRON = "patron"
    CONSOLE = "console"


def _token(secret: bytes, purpose: Purpose, value: str) -> str:
    key = hmac.new(secret, f"csrf:{purpose.value}".encode(), hashlib.sha256).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def _cookie(request: web.Request) -> str:
    return request_cookie(request, cookie_names(request.config_dict[SETTINGS]).form) or ""


def form_value(request: web.Request) -> str:
    """The form cookie's value for this request (a new one when the browser has none)."""
    value = _cookie(request)
    if len(value) < 20 or len(value) > 64:
        value = secrets.token_urlsafe(24)
    return value


def token_for(secret: bytes, value: str, purpose: Purpose) -> str:
    """The token that goes into ``purpose``'s forms for a given form cookie value."""
    return _token(secret, purpose, value)


def set_form_cookie(request: web.Request, response: web.StreamResponse, value: str) -> None:
    """Send the form cookie (host-only: no Domain attribute; ``__Host-`` over TLS)."""
    names = cookie_names(request.config_dict[SETTINGS])
    response.set_cookie(
        names.form, value, httponly=True, secure=names.tls, samesite="Strict", path="/"
    )


def form_page(
    request: web.Request,
    template: str,
    status: int = 200,
    purpose: Purpose = Purpose.PATRON,
    **context: Any,
) -> web.Response:
    """Render a page that holds a form: CSRF token in the page, form cookie on the response."""
    value = form_value(request)
    token = token_for(request.config_dict[SECRET], value, purpose)
    response = pages.render(request, template, status, csrf_token=token, **context)
    set_form_cookie(request, response, value)
    return response


def foreign(request: web.Request, origin: str) -> bool:
    """Whether the browser says this request comes from somewhere other than ``origin``."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in SAME_ORIGIN:
        return True
    sent_origin = request.headers.get("Origin")
    return sent_origin is not None and sent_origin != origin


def valid(request: web.Request, token: str, purpose: Purpose) -> bool:
    """Whether a submitted ``purpose`` form is the gateway's own: the token matches the form
    cookie, and (for patron forms; the console's guard checks its own origin) the browser does
    not say it came from another origin."""
    if purpose is Purpose.PATRON and foreign(request, request.config_dict[SETTINGS].public_url):
        return False
    value = _cookie(request)
    if not value or not token:
        return False
    return hmac.compare_digest(_token(request.config_dict[SECRET], purpose, value), token)
