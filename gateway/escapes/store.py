"""Escaped hosts counted in Redis: per database, per host, count, first and last seen, and a
count for the last seven days.

"This week" is a rolling window of seven UTC days (today and the six before it): each day has a
hash of counts that expires after eight days, and the week's count is their sum. Each
database keeps at most ``cap`` hosts (the ones reported least recently make room), and a
database's keys expire ``KEEP_DAYS`` after its last report. Nothing here names a patron, a
page or a path: the members are host names.

Reports are rate-limited per client address and, when the request carries one, per session
cookie (both hashed in the key).
"""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from gateway.clock import Clock
from gateway.escapes.reports import Escaped
from gateway.redis_keys import ESCAPED_DATABASES, escaped_rate, escaped_tag, text

DAY = 86400
WEEK_DAYS = 7
KEEP_DAYS = 90
HOSTS_PER_DATABASE = 200
DATABASES = 10_000
RATE_WINDOW = 60
RATE_PER_SESSION = 30
RATE_PER_ADDRESS = 300
"""Report requests per minute: a page with many escapes sends a report for each, and one
address may be a whole library's network."""
SCHEME_BITS = {"https": 1, "http": 2, "": 0}

_RECORD = """
local now, cap, day_ttl, keep = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4])
for i = 5, #ARGV, 2 do
  local host, bits = ARGV[i], tonumber(ARGV[i + 1])
  redis.call('ZADD', KEYS[1], now, host)
  redis.call('HSETNX', KEYS[2], host, now)
  redis.call('HINCRBY', KEYS[3], host, 1)
  local old = tonumber(redis.call('HGET', KEYS[4], host) or '0')
  redis.call('HSET', KEYS[4], host, bit.bor(old, bits))
  redis.call('HINCRBY', KEYS[5], host, 1)
end
redis.call('EXPIRE', KEYS[5], day_ttl)
local over = redis.call('ZCARD', KEYS[1]) - cap
if over > 0 then
  local gone = redis.call('ZRANGE', KEYS[1], 0, over - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
  for _, host in ipairs(gone) do
    for k = 2, #KEYS do redis.call('HDEL', KEYS[k], host) end
  end
end
for k = 1, 4 do redis.call('EXPIRE', KEYS[k], keep) end
return 1
"""


@dataclass(frozen=True)
class Row:
    """One escaped host of one database, as the console lists it."""

    database: str
    host: str
    schemes: tuple[str, ...]
    """The schemes reports said (``https``, ``http``); empty when only beacons named it."""
    count: int
    week: int
    first: float
    last: float


def _keys(database: str, day: int) -> list[str]:
    tag = escaped_tag(database)
    fixed = [f"{tag}:last", f"{tag}:first", f"{tag}:count", f"{tag}:schemes"]
    return fixed + [f"{tag}:day:{day - back}" for back in range(WEEK_DAYS + 1)]


class EscapeStore:
    """Counts escaped hosts per database and lists them."""

    def __init__(self, redis: Redis, clock: Clock, cap: int = HOSTS_PER_DATABASE) -> None:
        self.redis = redis
        self.clock = clock
        self.cap = cap
        self._record = redis.register_script(_RECORD)

    def _day(self) -> int:
        return int(self.clock() // DAY)

    async def allowed(self, address: str, session_cookie: str | None) -> bool:
        """Count one report request against the address's (and the cookie's) limit for this
        minute (a fixed window of the clock's minutes); False when either is over it."""
        window = int(self.clock() // RATE_WINDOW)
        subjects = [("address:" + address, RATE_PER_ADDRESS)]
        if session_cookie:
            subjects.append(("session:" + session_cookie, RATE_PER_SESSION))
        # A pipeline, not one script: the keys lie in different slots on Redis Cluster.
        async with self.redis.pipeline(transaction=False) as pipe:
            for subject, _ in subjects:
                key = f"{escaped_rate(subject)}:{window}"
                pipe.incr(key)
                pipe.expire(key, RATE_WINDOW * 2)
            counts = (await pipe.execute())[::2]
        return all(int(n) <= limit for n, (_, limit) in zip(counts, subjects, strict=True))

    async def record(self, database: str, escapes: list[Escaped]) -> None:
        """Count each of ``escapes`` once for ``database``, now."""
        if not escapes:
            return
        now = self.clock()
        merged: dict[str, int] = {}
        for escaped in escapes:
            merged[escaped.host] = merged.get(escaped.host, 0) | SCHEME_BITS[escaped.scheme]
        args: list[str | float | int] = [now, self.cap, (WEEK_DAYS + 1) * DAY, KEEP_DAYS * DAY]
        for host, bits in sorted(merged.items()):
            args.extend([host, bits])
        await self._record(keys=_keys(database, self._day()), args=args)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zadd(ESCAPED_DATABASES, {database: now})
            pipe.zremrangebyrank(ESCAPED_DATABASES, 0, -DATABASES - 1)
            await pipe.execute()

    async def rows(self) -> list[Row]:
        """Every database's escaped hosts, the most reported this week first."""
        databases = [text(d) for d in await self.redis.zrevrange(ESCAPED_DATABASES, 0, -1)]
        rows: list[Row] = []
        for database in databases:
            rows.extend(await self.of_database(database))
        return sorted(rows, key=lambda r: (-r.week, -r.count, r.database, r.host))

    async def of_database(self, database: str) -> list[Row]:
        """One database's escaped hosts."""
        keys = _keys(database, self._day())
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrange(keys[0], 0, -1, withscores=True)
            for key in keys[1:4]:
                pipe.hgetall(key)
            for key in keys[4 : 4 + WEEK_DAYS]:
                pipe.hgetall(key)
            found = await pipe.execute()
        last = {text(host): float(score) for host, score in found[0]}
        first, count, schemes = ({text(k): text(v) for k, v in h.items()} for h in found[1:4])
        week: dict[str, int] = {}
        for day in found[4:]:
            for host, n in day.items():
                week[text(host)] = week.get(text(host), 0) + int(n)
        bits = {name: value for name, value in SCHEME_BITS.items() if value}
        return [
            Row(database, host, tuple(s for s, b in bits.items() if int(schemes.get(host, 0)) & b),
                int(count.get(host, 0)), week.get(host, 0), float(first.get(host, seen)), seen)
            for host, seen in last.items()
        ]  # fmt: skip

    async def row(self, database: str, host: str) -> Row | None:
        """One database's escaped host, or None when it is not (or no longer) listed."""
        return next((r for r in await self.of_database(database) if r.host == host), None)

    async def forget(self, database: str, host: str) -> None:
        """Drop one host from a database's list (added to its rules, or dismissed)."""
        keys = _keys(database, self._day())
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrem(keys[0], host)
            for key in keys[1:]:
                pipe.hdel(key, host)
            await pipe.execute()
