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
from gateway.clock import SYSTEM_CLOCK, Clock
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


# The times are the gateway's clock, passed in (``now``), not Redis's: a lock or window ends
# when the clock says so, and tests move the clock instead of waiting. Redis's own expiry
# only forgets keys whose time is over anyway.
_HELPERS = """
local now = tonumber(ARGV[1])
local function locked(key)
  return tonumber(redis.call('GET', key) or '0') > now
end
-- A lock; the count that led to it starts again once the lock is over.
local function lock(key, seconds, counted)
  redis.call('SET', key, now + seconds, 'EX', seconds)
  if counted then redis.call('DEL', counted) end
end
-- A count over a window that starts with its first attempt.
local function count(key)
  if tonumber(redis.call('HGET', key, 'ends') or '0') > now then
    return tonumber(redis.call('HGET', key, 'n') or '0')
  end
  return 0
end
local function add(key, window)
  if count(key) == 0 then
    redis.call('HSET', key, 'n', 1, 'ends', now + window)
    redis.call('EXPIRE', key, window)
    return 1
  end
  return redis.call('HINCRBY', key, 'n', 1)
end
-- The distinct cards a PIN failed on within the last window: card -> time of the last failure.
local function cards(key, window)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  return redis.call('ZCARD', key)
end
"""

_RESERVE = (
    _HELPERS
    + """
if locked(KEYS[2]) then return 'card_locked' end
if locked(KEYS[4]) then return 'address_locked' end
if cards(KEYS[6], tonumber(ARGV[9])) >= tonumber(ARGV[8]) then return 'pin_throttled' end
if add(KEYS[1], tonumber(ARGV[3])) > tonumber(ARGV[2]) then
  lock(KEYS[2], tonumber(ARGV[4]), KEYS[1])
  return 'card_locked'
end
if add(KEYS[3], tonumber(ARGV[6])) > tonumber(ARGV[5]) then
  lock(KEYS[4], tonumber(ARGV[7]), KEYS[3])
  return 'address_locked'
end
return 'ok'
"""
)

# Returns the PIN's count of cards over all addresses when this failure raises the alarm (once
# per PIN and window: the alarm key), else 0.
_FAIL = (
    _HELPERS
    + """
if count(KEYS[1]) >= tonumber(ARGV[2]) then lock(KEYS[2], tonumber(ARGV[3]), KEYS[1]) end
local window = tonumber(ARGV[5])
for i = 3, 4 do
  redis.call('ZADD', KEYS[i], now, ARGV[4])
  redis.call('EXPIRE', KEYS[i], window)
end
local spread = cards(KEYS[3], window)
if spread >= tonumber(ARGV[6]) and not locked(KEYS[5]) then
  lock(KEYS[5], window)
  return spread
end
return 0
"""
)

_SUCCEED = (
    _HELPERS
    + """
redis.call('DEL', KEYS[1])
if count(KEYS[2]) > 0 then redis.call('HINCRBY', KEYS[2], 'n', -1) end
return 1
"""
)


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
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """``scope`` keeps another kind of account's counters apart (staff: ``"staff"``);
        ``audit`` and ``metrics`` hear of the PIN-spray alarm; windows and locks end by
        ``clock``."""
        self.redis = redis
        self.clock = clock
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
        # Names new with the clock-kept windows (hashes and sorted sets, locks holding their
        # end): counters of the earlier layout are not read, and Redis forgets them.
        return [
            f"{tag}:tries:card:{c}",
            f"{tag}:until:card:{c}",
            f"{tag}:tries:address:{a}",
            f"{tag}:until:address:{a}",
            f"{tag}:sprayed:{p}",
            f"{tag}:sprayed:block:{b}",
            f"{tag}:spray-alarm:{p}",
        ]

    async def reserve(self, card: str, address: str, pin: str) -> Gate:
        """Count an attempt before it is checked; anything but OK means: do not check it."""
        s = self.settings
        answer = await self._reserve(
            keys=self._keys(card, address, pin),
            args=[self.clock(), s.card_failures, s.card_window, s.card_lock, s.address_failures,
                  s.address_window, s.address_lock, s.pin_spray_cards, s.pin_spray_window],
        )  # fmt: skip
        return Gate(answer.decode() if isinstance(answer, bytes) else answer)

    async def fail(self, card: str, address: str, pin: str) -> None:
        """A wrong PIN: lock the card now if it used its last attempt; note the PIN's card
        (for the address block, and for everyone: the alarm)."""
        keys = self._keys(card, address, pin)
        s = self.settings
        cards = await self._fail(
            keys=[keys[0], keys[1], keys[4], keys[5], keys[6]],
            args=[self.clock(), s.card_failures, s.card_lock, self.keyring.counter_key(card),
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
        await self._succeed(keys=[keys[0], keys[2]], args=[self.clock()])

    async def tries_left(self, card: str) -> int:
        """Attempts the card has before it locks. The count is kept for whatever card number
        was typed, so a card that does not exist gets the same answer as one that does."""
        count, ends = await self.redis.hmget(self._keys(card, "", "")[0], ["n", "ends"])
        live = ends is not None and float(ends) > self.clock()
        return max(0, self.settings.card_failures - (int(count or 0) if live else 0))

    async def locked(self, card: str) -> bool:
        """Whether the card is locked now."""
        until = await self.redis.get(self._keys(card, "", "")[1])
        return until is not None and float(until) > self.clock()

    async def unlock(self, card: str) -> None:
        """Lift a card's lock and count (a librarian at the desk)."""
        keys = self._keys(card, "", "")
        await self.redis.delete(keys[0], keys[1])
