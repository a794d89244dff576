"""The gateway's own cookies: their names and scopes, so that no sibling origin can set them.

Every proxied database is served from a sibling host of the login host, under one parent
domain. Script on any of those hosts can set cookies for the parent domain, and can push the
gateway's cookies out of the browser's jar by setting hundreds of its own. Over TLS the gateway
therefore keeps every cookie it trusts host-only with the ``__Host-`` prefix, which browsers
refuse to accept with a ``Domain`` attribute or from another host: the login host keeps its
own session cookie, and each proxied host gets its own copy through a one-time handover
(``gateway.web.handover``). Over plain http there is no ``__Host-`` prefix, so the session
cookie is one parent-domain cookie that every proxied host receives, and that a sibling can
replace; production must use TLS (README, "Security model").
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config import Settings
from gateway.i18n import LANG_COOKIE
from gateway.rewrite.cookies import GatewayCookies

HOST_PREFIX = "__Host-"


@dataclass(frozen=True)
class CookieNames:
    """The names of the gateway's cookies for one configuration."""

    tls: bool
    """Patrons reach the gateway over https: every trusted cookie is host-only ``__Host-``."""
    session: str
    form: str
    staff: str
    handover: str
    signin: str
    """Binds a federated sign-in to the browser that started it (``SameSite=Lax``: it must come
    back with the provider's cross-site redirect to the callback)."""
    signin_test: str
    """Binds a console test sign-in to the staff member's browser, on the console's host."""
    gateway: GatewayCookies
    """What no vendor may set or read: these names, and every ``carrel_``, ``__Host-`` and
    ``__Secure-`` name."""


def _named(base: str, tls: bool) -> str:
    return f"{HOST_PREFIX}{base}" if tls else base


_last: list[tuple[Settings, CookieNames]] = []
"""The names for the last settings asked about (unhashable, so by identity): a process has
one configuration, and the proxy asks on every request."""


def cookie_names(settings: Settings) -> CookieNames:
    """The cookie names that ``settings`` call for."""
    if not _last or _last[0][0] is not settings:
        _last[:] = [(settings, _build(settings))]
    return _last[0][1]


def _build(settings: Settings) -> CookieNames:
    tls = settings.server.public_scheme == "https"
    staff_tls = (settings.admin.origin or settings.public_url).startswith("https:")
    names = {
        "session": _named(settings.sessions.cookie_name, tls),
        "form": _named("carrel_form", tls),
        "staff": _named("carrel_staff", staff_tls),
        "handover": _named("carrel_handover", tls),
        "signin": _named("carrel_signin", tls),
        "signin_test": _named("carrel_signin_test", staff_tls),
    }
    # Both spellings of the configured name: a vendor may set neither on any scheme.
    every = (*names.values(), settings.sessions.cookie_name, LANG_COOKIE)
    return CookieNames(tls=tls, gateway=GatewayCookies.of(*every), **names)
