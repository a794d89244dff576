"""Lockouts and throttles, counted atomically in Redis: a four-digit PIN is only 10,000 guesses.

An attempt is *reserved* before the directory is asked (one Lua script: check the locks, count
the attempt, lock when over the limit), so concurrent attempts cannot slip past the limit. A
right PIN clears the card's count; a wrong one may lock the card at once.

- per card: ``card_failures`` attempts within ``card_window`` seconds, then ``card_lock`` seconds
  locked;
- per client address: the same with the address limits;
- per PIN: a PIN that failed on more than ``pin_spray_cards`` different cards within
  ``pin_spray_window`` is not checked for anyone for a while (one PIN sprayed over many cards).

Counter names are keyed hashes: Redis never holds card numbers, addresses or PINs here.
"""

from __future__ import annotations

import enum

from redis.asyncio import Redis

from gateway.auth.secrets import Keyring
from gateway.config import LockoutSettings
from gateway.sessions import PREFIX


class Gate(enum.Enum):
    """The answer to "may this attempt be checked?"."""

    OK = "ok"
    CARD_LOCKED = "card_locked"
    ADDRESS_LOCKED = "address_locked"
    PIN_THROTTLED = "pin_throttled"


_RESERVE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 'card_locked' end
if redis.call('EXISTS', KEYS[4]) == 1 then return 'address_locked' end
if redis.call('SCARD', KEYS[5]) >= tonumber(ARGV[7]) then return 'pin_throttled' end
local c = redis.call('INCR', KEYS[1])
if c == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if c > tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
  return 'card_locked'
end
local a = redis.call('INCR', KEYS[3])
if a == 1 then redis.call('EXPIRE', KEYS[3], ARGV[5]) end
if a > tonumber(ARGV[4]) then
  redis.call('SET', KEYS[4], '1', 'EX', ARGV[6])
  return 'address_locked'
end
return 'ok'
"""

_FAIL = """
if tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
end
redis.call('SADD', KEYS[3], ARGV[3])
if redis.call('TTL', KEYS[3]) < 0 then redis.call('EXPIRE', KEYS[3], ARGV[4]) end
return 1
"""

_SUCCEED = """
redis.call('DEL', KEYS[1])
local a = tonumber(redis.call('GET', KEYS[2]) or '0')
if a > 0 then redis.call('DECR', KEYS[2]) end
return 1
"""


class Lockouts:
    """Reserve, fail and succeed login attempts."""

    def __init__(
        self, redis: Redis, settings: LockoutSettings, keyring: Keyring, scope: str = ""
    ) -> None:
        """``scope`` keeps another kind of account's counters apart (staff: ``"staff"``)."""
        self.redis = redis
        self.scope = scope
        self.settings = settings
        self.keyring = keyring
        self._reserve = redis.register_script(_RESERVE)
        self._fail = redis.register_script(_FAIL)
        self._succeed = redis.register_script(_SUCCEED)

    def _keys(self, card: str, address: str, pin: str) -> list[str]:
        c = self.keyring.counter_key("card:" + card)
        a = self.keyring.counter_key("address:" + address)
        p = self.keyring.counter_key("pin:" + pin)
        # One hash tag for every lockout key: the scripts touch several at once, and on Redis
        # Cluster a script's keys must share a slot (login traffic is light enough for one).
        tag = f"{PREFIX}:{{lockout}}" + (f":{self.scope}" if self.scope else "")
        return [
            f"{tag}:fail:card:{c}",
            f"{tag}:lock:card:{c}",
            f"{tag}:fail:address:{a}",
            f"{tag}:lock:address:{a}",
            f"{tag}:spray:{p}",
        ]

    async def reserve(self, card: str, address: str, pin: str) -> Gate:
        """Count an attempt before it is checked; anything but OK means: do not check it."""
        s = self.settings
        answer = await self._reserve(
            keys=self._keys(card, address, pin),
            args=[s.card_failures, s.card_window, s.card_lock,
                  s.address_failures, s.address_window, s.address_lock, s.pin_spray_cards],
        )  # fmt: skip
        return Gate(answer.decode() if isinstance(answer, bytes) else answer)

    async def fail(self, card: str, address: str, pin: str) -> None:
        """A wrong PIN: lock the card now if it used its last attempt; note the PIN's card."""
        keys = self._keys(card, address, pin)
        s = self.settings
        await self._fail(
            keys=[keys[0], keys[1], keys[4]],
            args=[s.card_failures, s.card_lock, self.keyring.counter_key(card), s.pin_spray_window],
        )

    async def succeed(self, card: str, address: str, pin: str) -> None:
        """A right PIN: the card's count starts again, and the address's count goes down."""
        keys = self._keys(card, address, pin)
        await self._succeed(keys=[keys[0], keys[2]], args=[])

    async def locked(self, card: str) -> bool:
        """Whether the card is locked now."""
        return bool(await self.redis.exists(self._keys(card, "", "")[1]))

    async def unlock(self, card: str) -> None:
        """Lift a card's lock and count (a librarian at the desk)."""
        keys = self._keys(card, "", "")
        await self.redis.delete(keys[0], keys[1])
