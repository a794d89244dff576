"""Single-use PIN reset links: a JWT signed with authlib, consumed atomically in Redis.

The token carries a random id (``jti``), the card's pseudonym (``sub``), the PIN version
(``pv``) and an expiry of at most 30 minutes. Redis keeps ``jti -> card`` for as long as the
token lives; using the token is one ``GETDEL``, so of any number of simultaneous submissions
exactly one gets the card, and a token is dead once the PIN version moves on.
"""

from __future__ import annotations

import secrets
import warnings
from dataclasses import dataclass

from redis.asyncio import Redis

from gateway.auth.secrets import Keyring
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.redis_keys import PREFIX, text

with warnings.catch_warnings():
    # authlib.jose warns that it will move to joserfc; it stays in authlib 1.x, which we pin.
    # authlib sets its own "always" filter for it, so silence the display instead.
    warnings.showwarning = lambda *args, **kwargs: None
    from authlib.jose import JoseError, jwt

MAX_MINUTES = 30
PURPOSE = "carrel-pin-reset"


@dataclass(frozen=True)
class ResetClaim:
    """What a valid token says."""

    jti: str
    pid: str
    pin_version: int
    expires: int


class ResetTokens:
    """Issue, read and use reset tokens."""

    def __init__(
        self, redis: Redis, keyring: Keyring, secret: bytes, minutes: int,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:  # fmt: skip
        self.clock = clock
        self.redis = redis
        self.keyring = keyring
        self.key = secret
        self.minutes = min(minutes, MAX_MINUTES)

    @staticmethod
    def _redis_key(jti: str) -> str:
        return f"{PREFIX}:pin-reset:{jti}"

    async def issue(self, card: str, pin_version: int, now: float | None = None) -> str:
        """A new token for ``card``; Redis remembers its id until it expires."""
        now = self.clock() if now is None else now
        jti = secrets.token_urlsafe(16)
        expires = int(now + self.minutes * 60)
        claims = {"jti": jti, "sub": self.keyring.pseudonym(card), "pv": pin_version,
                  "exp": expires, "aud": PURPOSE}  # fmt: skip
        token = jwt.encode({"alg": "HS256"}, claims, self.key)
        ttl = max(1, int(expires - self.clock()))
        await self.redis.set(self._redis_key(jti), card, ex=ttl)
        return token.decode() if isinstance(token, bytes) else str(token)

    def read(self, token: str) -> ResetClaim | None:
        """The claims of a well-signed, unexpired token (nothing is used up), else None."""
        if not token or len(token) > 2048:
            return None
        try:
            options = {"aud": {"essential": True, "value": PURPOSE}}
            claims = jwt.decode(token, self.key, claims_options=options)
            claims.validate(now=int(self.clock()))
            return ResetClaim(str(claims["jti"]), str(claims["sub"]), int(claims["pv"]),
                              int(claims["exp"]))  # fmt: skip
        except (JoseError, KeyError, ValueError, TypeError):
            return None

    async def use(self, claim: ResetClaim) -> str | None:
        """Use the token up: the card it was for, or None when it was already used or expired."""
        card = await self.redis.getdel(self._redis_key(claim.jti))
        if card is None:
            return None
        card_text = text(card)
        return card_text if self.keyring.pseudonym(card_text) == claim.pid else None
