"""Patrons in the library's own buildings, known by their address.

EZproxy's ``AutoLoginIP``: a browser at one of these addresses gets a session without logging
in. ``ExcludeIP``: a starting-point link opened at one of these addresses goes straight to the
vendor, unproxied, since the vendor knows the building's addresses itself. The address is the
one ``gateway.edge.client.client_address`` gives: behind a front listed in
``server.trusted_proxies``, what the front says, and never the front's own address.

Each on-site session is a patron of its own, with a random account (``onsite:<random>``) and
the pseudonym of that account: the building is not one card, so the cap on sessions per card,
usage limits ``-per=card`` and blocks hold for the one browser session, and a suspension or a
block never shuts the building out. An on-site session ends as soon as it is used from an
address outside ``auto_login_ip`` (a laptop carried home keeps no on-site access).
"""

from __future__ import annotations

import logging
import secrets

from gateway.config import Settings
from gateway.edge.client import address_in
from gateway.sessions import Session, SessionStore

log = logging.getLogger(__name__)

METHOD = "onsite"
"""The method of on-site sessions, as the console's sessions list shows it."""


def auto_login(address: str, settings: Settings) -> bool:
    """Whether ``address`` gets a session without logging in: it is in ``auto_login_ip`` and
    is not a trusted front's own (a front that sent no X-Forwarded-For speaks for nobody)."""
    onsite = settings.onsite
    return address_in(address, onsite.auto_login_ip) and not address_in(
        address, settings.server.trusted_proxies
    )


def excluded(address: str, settings: Settings) -> bool:
    """Whether starting-point links from ``address`` go straight to the vendor."""
    return address_in(address, settings.onsite.exclude_ip)


def left_site(method: str, address: str, settings: Settings) -> bool:
    """Whether a session of ``method`` used from ``address`` must end: an on-site session away
    from the addresses that started it (or after they were taken out of the configuration)."""
    return method == METHOD and not auto_login(address, settings)


def new_account() -> str:
    """A fresh on-site patron: ``onsite:<random>``, pseudonymised like any account."""
    return f"{METHOD}:{secrets.token_urlsafe(18)}"


async def keep_on_site(
    sessions: SessionStore, session: Session | None, address: str, settings: Settings
) -> Session | None:
    """``session``, or None once it is ended for having left the site (``left_site``)."""
    if session is None or not left_site(session.method, address, settings):
        return session
    await sessions.end(session.hash, session.pid)
    log.info("on-site session ended: used from outside onsite.auto_login_ip, patron=%s",
             session.pid)  # fmt: skip
    return None
