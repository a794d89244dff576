"""Lockouts and throttles, counted atomically in Redis: a four-digit PIN is only 10,000 guesses.

An attempt is *reserved* before the directory is asked (one Lua script: check the locks, count
the attempt, lock when over the limit), so concurrent attempts cannot slip past the limit. A
right PIN clears the card's count; a wrong one may lock the card at once.

- per card: ``card_failures`` attempts within ``card_window`` seconds, then ``card_lock`` seconds
  locked;
- per client address: the same with the address limits (an IPv6 host counts per /64);
- per PIN and address block: a PIN that failed on ``pin_spray_cards`` different cards within
  ``pin_spray_window`` from one block (IPv4 /24, IPv6 /48) is not checked for anyone in that
  block for the rest of the window (one PIN sprayed over many cards). Counted for everyone
  together, the same limit would let anyone deny a PIN of their choosing to every patron; so
  over all addresses it is only an alarm: one audit entry and one metric count per PIN and
  window, never a refusal.

Counter names are keyed hashes: Redis never holds card numbers, addresses or PINs here.
"""

from __future__ import annotations

import enum
import logging

from redis.asyncio import Redis

from gateway.audit import AuditLog
from gateway.auth.secrets import Keyring
from gateway.config import LockoutSettings
from gateway.metrics import Metrics
from gateway.netblocks import block_key, host_key
from gateway.redis_keys import PREFIX

log = logging.getLogger(__name__)


class Gate(enum.Enum):
    """The answer to "may this attempt be checked?"."""

    OK = "ok"
    CARD_LOCKED = "card_locked"
    ADDRESS_LOCKED = "address_locked"
    PIN_THROTTLED = "pin_throttled"


_RESERVE = """
if redis.call('EXISTS', KEYS[2]) == 1 then return 'card_locked' end
if redis.call('EXISTS', KEYS[4]) == 1 then return 'address_locked' end
if redis.call('SCARD', KEYS[6]) >= tonumber(ARGV[7]) then return 'pin_throttled' end
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

# Returns the PIN's count of cards over all addresses when this failure raises the alarm (once
# per PIN and window: the alarm key), else 0.
_FAIL = """
if tonumber(redis.call('GET', KEYS[1]) or '0') >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[2])
end
for i = 3, 4 do
  redis.call('SADD', KEYS[i], ARGV[3])
  if redis.call('TTL', KEYS[i]) < 0 then redis.call('EXPIRE', KEYS[i], ARGV[4]) end
end
local cards = redis.call('SCARD', KEYS[3])
if cards >= tonumber(ARGV[5]) and redis.call('SET', KEYS[5], '1', 'NX', 'EX', ARGV[4]) then
  return cards
end
return 0
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
        self,
        redis: Redis,
        settings: LockoutSettings,
        keyring: Keyring,
        audit: AuditLog,
        metrics: Metrics,
        scope: str = "",
    ) -> None:
        """``scope`` keeps another kind of account's counters apart (staff: ``"staff"``);
        ``audit`` and ``metrics`` hear of the PIN-spray alarm."""
        self.redis = redis
        self.scope = scope
        self.settings = settings
        self.keyring = keyring
        self.audit = audit
        self.metrics = metrics
        self._reserve = redis.register_script(_RESERVE)
        self._fail = redis.register_script(_FAIL)
        self._succeed = redis.register_script(_SUCCEED)

    def _keys(self, card: str, address: str, pin: str) -> list[str]:
        c = self.keyring.counter_key("card:" + card)
        a = self.keyring.counter_key("address:" + host_key(address))
        p = self.keyring.counter_key("pin:" + pin)
        b = self.keyring.counter_key("block:" + block_key(address) + ":pin:" + pin)
        # One hash tag for every lockout key: the scripts touch several at once, and on Redis
        # Cluster a script's keys must share a slot (login traffic is light enough for one).
        tag = f"{PREFIX}:{{lockout}}" + (f":{self.scope}" if self.scope else "")
        return [
            f"{tag}:fail:card:{c}",
            f"{tag}:lock:card:{c}",
            f"{tag}:fail:address:{a}",
            f"{tag}:lock:address:{a}",
            f"{tag}:spray:{p}",
            f"{tag}:spray:block:{b}",
            f"{tag}:spray:alarm:{p}",
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
        """A wrong PIN: lock the card now if it used its last attempt; note the PIN's card
        (for the address block, and for everyone: the alarm)."""
        keys = self._keys(card, address, pin)
        s = self.settings
        cards = await self._fail(
            keys=[keys[0], keys[1], keys[4], keys[5], keys[6]],
            args=[s.card_failures, s.card_lock, self.keyring.counter_key(card),
                  s.pin_spray_window, s.pin_spray_cards],
        )  # fmt: skip
        if cards:
            scope = self.scope or "patron"
            log.warning("PIN-spray alarm: one %s PIN failed on %s cards", scope, cards)
            self.metrics.inc("carrel_pin_spray_alarms_total", scope=scope)
            await self.audit.record(
                "pin_spray_alarm", cards=int(cards), window=s.pin_spray_window, scope=scope
            )

    async def succeed(self, card: str, address: str, pin: str) -> None:
        """A right PIN: the card's count starts again, and the address's count goes down."""
        keys = self._keys(card, address, pin)
        await self._succeed(keys=[keys[0], keys[2]], args=[])

    async def tries_left(self, card: str) -> int:
        """Attempts the card has before it locks. The count is kept for whatever card number
        was typed, so a card that does not exist gets the same answer as one that does."""
        count = await self.redis.get(self._keys(card, "", "")[0])
        return max(0, self.settings.card_failures - int(count or 0))

    async def locked(self, card: str) -> bool:
        """Whether the card is locked now."""
        return bool(await self.redis.exists(self._keys(card, "", "")[1]))

    async def unlock(self, card: str) -> None:
        """Lift a card's lock and count (a librarian at the desk)."""
        keys = self._keys(card, "", "")
        await self.redis.delete(keys[0], keys[1])
