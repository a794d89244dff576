"""What a patron directory does, whatever keeps the patrons (local store, SIP2 ILS, ...)."""

from __future__ import annotations

import datetime
import enum
import re
from dataclasses import dataclass
from typing import Protocol

from gateway.rules.model import DEFAULT_GROUPS


class PatronStatus(enum.Enum):
    """Whether a card may be used."""

    ACTIVE = "active"
    BLOCKED = "blocked"
    EXPIRED = "expired"


@dataclass(frozen=True)
class Patron:
    """A card holder, as the gateway needs to know them (never the PIN)."""

    card: str
    name: str = ""
    email: str = ""
    status: PatronStatus = PatronStatus.ACTIVE
    expires: datetime.date | None = None
    groups: frozenset[str] = DEFAULT_GROUPS
    pin_version: int = 1
    must_change_pin: bool = False
    screen_messages: tuple[str, ...] = ()
    """What the ILS asks to show the patron (SIP2 AF), e.g. why a card is blocked."""

    def usable_status(self, today: datetime.date) -> PatronStatus:
        """The status, with a past expiry date counted as expired."""
        if self.status is PatronStatus.ACTIVE and self.expires and self.expires < today:
            return PatronStatus.EXPIRED
        return self.status


class Verdict(enum.Enum):
    """The outcome of checking a card and PIN."""

    OK = "ok"
    WRONG = "wrong"
    """Unknown card or wrong PIN: deliberately the same answer."""


@dataclass(frozen=True)
class Verification:
    """A checked card and PIN; ``patron`` only when the PIN was right."""

    verdict: Verdict
    patron: Patron | None = None


class DirectoryUnavailable(Exception):
    """The directory (an ILS, a database) cannot answer now: fail closed, say so."""


class PatronDirectory(Protocol):
    """Checks cards and PINs; looks up and, where allowed, changes them."""

    can_change_pin: bool
    card_pattern: re.Pattern[str]
    """What a card number looks like; others are refused before any check."""

    async def verify(self, card: str, pin: str) -> Verification:
        """Check a card and PIN, taking the same time whether or not the card exists."""
        ...

    async def lookup(self, card: str) -> Patron | None:
        """The patron with this card, or None."""
        ...

    async def change_pin(self, card: str, new_pin: str, must_change: bool = False) -> Patron:
        """Set a new PIN (and raise the PIN version); raises KeyError for an unknown card."""
        ...

    async def note_status(self, card: str, status: PatronStatus) -> None:
        """Keep the directory's own record in step with a block or unblock the gateway set in
        Redis (which alone decides): a local directory stores it so that ``gateway patrons
        show`` tells the truth; an ILS keeps its own and is left alone."""
        ...
