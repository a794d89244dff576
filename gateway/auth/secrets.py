"""Keyed hashes for identities and PINs: pseudonyms for logs, peppered Argon2id for PINs."""

from __future__ import annotations

import hashlib
import hmac
from functools import cached_property

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# OWASP's minimum for Argon2id: 19 MiB, 2 passes, 1 lane.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


class Keyring:
    """Everything derived from the gateway's secret key."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _derive(self, purpose: str) -> bytes:
        return hmac.new(self._secret, purpose.encode(), hashlib.sha256).digest()

    @cached_property
    def _pseudonym_key(self) -> bytes:
        return self._derive("patron pseudonym")

    @cached_property
    def _pepper(self) -> bytes:
        return self._derive("pin pepper")

    @cached_property
    def _counter_key(self) -> bytes:
        return self._derive("counter keys")

    @cached_property
    def _dummy_hash(self) -> str:
        return _HASHER.hash(self._peppered("0000"))

    def pseudonym(self, card: str) -> str:
        """A stable pseudonymous id for a card (logs, usage, session index); never the card."""
        return hmac.new(self._pseudonym_key, card.encode(), hashlib.sha256).hexdigest()[:20]

    def counter_key(self, value: str) -> str:
        """A keyed hash for Redis counter names (a card, an address, a PIN tried)."""
        return hmac.new(self._counter_key, value.encode(), hashlib.sha256).hexdigest()[:32]

    def _peppered(self, pin: str) -> str:
        return hmac.new(self._pepper, pin.encode(), hashlib.sha256).hexdigest()

    def hash_pin(self, pin: str) -> str:
        """The stored form of a PIN: Argon2id over a keyed hash (a stolen file alone is useless)."""
        return _HASHER.hash(self._peppered(pin))

    def verify_pin(self, stored: str | None, pin: str) -> bool:
        """Whether ``pin`` matches ``stored``; with None, the same work is done and it fails."""
        try:
            return _HASHER.verify(stored or self._dummy_hash, self._peppered(pin)) and bool(stored)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
