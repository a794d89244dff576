"""Patrons in the library's ILS, checked over SIP2: a patron directory backend.

The ILS owns the PIN: the gateway asks 63 (or 23) with the card and PIN, and reads valid patron
(BL), valid PIN (CQ), the status flags, name, email, screen messages and, where the ILS sends
one, the expiry date. Flags listed in ``sip2.deny_flags`` block database access. The lockouts in
front of the directory still apply, so the gateway is never a way to guess PINs at the ILS.
"""

from __future__ import annotations

import re
import time

from gateway.auth import sip2_codec as codec
from gateway.auth.directory import (
    DirectoryUnavailable,
    Patron,
    PatronStatus,
    Verdict,
    Verification,
)
from gateway.auth.secrets import Keyring
from gateway.auth.sip2_client import Sip2Pool
from gateway.config import PatronsSettings, Sip2Settings

MESSAGES = {"63": codec.patron_information, "23": codec.patron_status}


class Sip2Directory:
    """Checks cards and PINs against the ILS; PINs are changed there, not here."""

    can_change_pin = False

    def __init__(self, settings: Sip2Settings, patrons: PatronsSettings, keyring: Keyring) -> None:
        self.settings = settings
        self.card_pattern = re.compile(patrons.card_pattern)
        self.keyring = keyring
        self.pool = Sip2Pool(settings)
        self.deny = frozenset(codec.FLAG_NAMES[name] for name in settings.deny_flags)
        self._cache: dict[str, tuple[float, Patron]] = {}

    def _patron(self, card: str, answer: codec.PatronAnswer) -> Patron:
        status = PatronStatus.BLOCKED if answer.flags & self.deny else PatronStatus.ACTIVE
        return Patron(
            card=card,
            name=answer.name,
            email=answer.email,
            status=status,
            expires=answer.expires,
            screen_messages=answer.screen_messages,
        )

    async def _ask(self, card: str, pin: str) -> codec.PatronAnswer:
        s = self.settings
        body = MESSAGES[s.message](s.institution_id, card, pin, s.terminal_password)
        response = await self.pool.request(body)
        if response.command not in ("64", "24"):
            raise DirectoryUnavailable(f"the ILS answered {response.command} to {s.message}")
        return codec.patron_answer(response, s.expiry_field)

    async def verify(self, card: str, pin: str) -> Verification:
        """Valid patron and valid PIN, as the ILS says (or the short cache of right answers)."""
        key = self.keyring.counter_key(f"sip2:{card}:{pin}")
        cached = self._cache.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return Verification(Verdict.OK, cached[1])
        answer = await self._ask(card, pin)
        if not (answer.valid_patron and answer.valid_pin):
            return Verification(Verdict.WRONG)
        patron = self._patron(card, answer)
        if self.settings.cache_seconds:
            self._cache[key] = (time.monotonic() + self.settings.cache_seconds, patron)
        return Verification(Verdict.OK, patron)

    async def lookup(self, card: str) -> Patron | None:
        """The patron without a PIN check (the ILS answers BL without CQ)."""
        answer = await self._ask(card, "")
        return self._patron(card, answer) if answer.valid_patron else None

    async def change_pin(self, card: str, new_pin: str, must_change: bool = False) -> Patron:
        """SIP2 has no standard message for it: PINs are changed in the ILS."""
        raise DirectoryUnavailable("PINs are changed in the library's own system")

    async def note_status(self, card: str, status: PatronStatus) -> None:
        """The ILS keeps its own blocks: the gateway's, in Redis, are not written there."""

    async def close(self) -> None:
        """Close the connections to the ILS."""
        await self.pool.close()
