"""CSRF protection for the gateway's forms: a token bound to a host-only form cookie.

The form cookie holds random bytes; the token in every form is an HMAC of them with a key
derived from the gateway's secret. A forged form from another site has neither the cookie
(SameSite=Strict, host-only) nor a way to compute the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from aiohttp import web

FORM_COOKIE = "carrel_form"
TOKEN_FIELD = "csrf_token"


def _token(secret: bytes, value: str) -> str:
    key = hmac.new(secret, b"csrf", hashlib.sha256).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def form_value(request: web.Request) -> str:
    """The form cookie's value for this request (a new one when the browser has none)."""
    value = request.cookies.get(FORM_COOKIE, "")
    if len(value) < 20 or len(value) > 64:
        value = secrets.token_urlsafe(24)
    return value


def token_for(secret: bytes, value: str) -> str:
    """The token that goes into forms for a given form cookie value."""
    return _token(secret, value)


def set_form_cookie(response: web.StreamResponse, value: str, secure: bool) -> None:
    """Send the form cookie (host-only: no Domain attribute)."""
    response.set_cookie(
        FORM_COOKIE, value, httponly=True, secure=secure, samesite="Strict", path="/"
    )


def valid(secret: bytes, request: web.Request, token: str) -> bool:
    """Whether a submitted token matches the request's form cookie."""
    value = request.cookies.get(FORM_COOKIE, "")
    if not value or not token:
        return False
    return hmac.compare_digest(_token(secret, value), token)
