"""Usage counted atomically in Redis over sliding windows, one Lua call per counted subject.

Sums (bytes, transfers, downloads) live in a hash of ten buckets per window, so the window
slides in tenths and memory stays bounded; distinct networks live in a sorted set scored by
last use. All keys of a subject share a hash tag, so one script may touch them on Redis
Cluster. A limit trips once per window: a ``SET NX`` marker stops repeated actions.
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from gateway.limits import Limit, Metric, Per
from gateway.redis_keys import PREFIX

_COUNT = """
local now = tonumber(ARGV[1])
local out = {}
for i, key in ipairs(KEYS) do
  local kind = ARGV[(i - 1) * 3 + 2]
  local interval = tonumber(ARGV[(i - 1) * 3 + 3])
  local value = ARGV[(i - 1) * 3 + 4]
  if kind == 'distinct' then
    redis.call('ZADD', key, now, value)
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now - interval)
    out[i] = redis.call('ZCARD', key)
  else
    local bucket = math.floor(now * 10 / interval)
    if tonumber(value) > 0 then redis.call('HINCRBY', key, bucket, value) end
    local total = 0
    local fields = redis.call('HGETALL', key)
    for j = 1, #fields, 2 do
      if tonumber(fields[j]) <= bucket - 10 then
        redis.call('HDEL', key, fields[j])
      else
        total = total + tonumber(fields[j + 1])
      end
    end
    out[i] = total
  end
  redis.call('EXPIRE', key, interval + 60)
end
return out
"""


@dataclass(frozen=True)
class Use:
    """One proxied request, as the limits see it."""

    size: int
    download: bool
    network: str


@dataclass(frozen=True)
class Over:
    """A limit passed for the first time in its window."""

    limit: Limit
    subject: str
    """The session hash or the card pseudonym, per the limit."""
    found: tuple[tuple[Metric, int, int], ...]
    """(metric, count, allowed) for each threshold passed."""


def subject_tag(per: Per, subject: str) -> str:
    """The hash tag shared by every key of one counted subject."""
    return f"{PREFIX}:{{usage:{per.value}:{subject}}}"


def _amount(metric: Metric, use: Use) -> tuple[str, str]:
    if metric is Metric.NETWORKS:
        return "distinct", use.network
    amount = {Metric.MB: use.size, Metric.TRANSFERS: 1, Metric.DOWNLOADS: int(use.download)}
    return "sum", str(amount[metric])


class Counters:
    """Counts uses against limits and reports the limits passed."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._count = redis.register_script(_COUNT)

    async def count(
        self, limits: list[Limit], session_hash: str, pid: str, use: Use, now: float,
        metrics: frozenset[Metric],
    ) -> tuple[list[Over], list[Limit]]:  # fmt: skip
        """Count ``use`` in ``metrics`` for every limit that has them.

        Returns the limits passed now and not yet acted on, and every limit over its
        threshold (those already acted on too)."""
        passed: list[Over] = []
        over: list[Limit] = []
        for per in Per:
            mine = [
                limit for limit in limits
                if limit.per is per and any(m in metrics for m, _ in limit.thresholds)
            ]  # fmt: skip
            if not mine:
                continue
            subject = session_hash if per is Per.SESSION else pid
            tag = subject_tag(per, subject)
            keys: list[str] = []
            args: list[str | float] = [now]
            for limit in mine:
                for metric, _ in limit.thresholds:
                    if metric in metrics:
                        kind, value = _amount(metric, use)
                        keys.append(f"{tag}:{limit.name}:{metric.value}")
                        args.extend([kind, limit.interval, value])
            totals = iter(await self._count(keys=keys, args=args))
            for limit in mine:
                counted = {m: int(next(totals)) for m, _ in limit.thresholds if m in metrics}
                found = limit.over(counted)
                if not found:
                    continue
                over.append(limit)
                marker = f"{tag}:{limit.name}:tripped"
                if await self.redis.set(marker, "1", nx=True, ex=limit.interval):
                    passed.append(Over(limit, subject, tuple(found)))
        return passed, over

    async def forget(self, per: Per, subject: str, limit: str, metrics: list[str]) -> None:
        """Start a limit's counts and trip marker again (staff lifted it)."""
        tag = subject_tag(per, subject)
        await self.redis.delete(f"{tag}:{limit}:tripped", *(f"{tag}:{limit}:{m}" for m in metrics))
