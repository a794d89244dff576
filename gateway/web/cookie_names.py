"""The gateway's own cookies, named in one place: what no vendor may set or read."""

from __future__ import annotations

from gateway.admin.access import cookie_name as staff_cookie
from gateway.config import Settings
from gateway.rewrite.cookies import GatewayCookies
from gateway.web.csrf import FORM_COOKIE
from gateway.web.i18n import LANG_COOKIE


def gateway_cookies(settings: Settings) -> GatewayCookies:
    """Every cookie name the gateway uses under ``settings`` (and, by prefix, every ``carrel_``,
    ``__Host-`` and ``__Secure-`` name): a new cookie of the gateway's is one more line here."""
    return GatewayCookies.of(
        settings.sessions.cookie_name,
        staff_cookie(settings),
        FORM_COOKIE,
        LANG_COOKIE,
    )
