"""Patron sessions in Redis.

Pipelines here are not transactions: each touches one key, or keys whose writes need not be
atomic together, which keeps them valid on Redis Cluster, where keys live in different slots.

The cookie holds 256 random bits; Redis only ever sees their SHA-256, so a copy of Redis does
not give anyone a usable session. Idle and absolute expiry are checked on every use, and the
key's TTL follows them so Redis forgets what the gateway would refuse anyway. Every card has an
index of its sessions, so that all of them can be ended at once (logout everywhere, PIN change,
blocked card) and the number of concurrent sessions can be capped.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.typing import EncodableT, FieldT

from gateway.bounded import remember
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.config import SessionsSettings
from gateway.read_batch import ReadBatch, Row
from gateway.redis_keys import PREFIX, text
from gateway.rules.model import DEFAULT_GROUPS

WAIT_MS = 500
PARSED_REMEMBERED = 4096
"""Sessions kept parsed per process, by the row they came from (see ``SessionStore._parse``)."""
JAR_FIELD_PREFIX = "cookie:"
"""Fields of a session's hash that hold its vendor cookies (``gateway.proxy.jar_store``)."""
JAR_FIELD_PREFIXES = (JAR_FIELD_PREFIX, JAR_FIELD_PREFIX.encode())  # as written, as Redis replies


@functools.lru_cache(maxsize=4096)  # every request of a session hashes the same cookie
def session_hash(raw_id: str) -> str:
    """What Redis keys a session by."""
    return hashlib.sha256(raw_id.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    """One patron session."""

    hash: str
    pid: str
    """The card's pseudonym."""
    card: str
    groups: frozenset[str]
    created: float
    last: float
    address: str
    pin_version: int
    must_change_pin: bool
    bytes: int = 0
    """Body bytes the proxy sent in this session."""
    requests: int = 0
    databases: frozenset[str] = frozenset()
    """Titles of the databases used."""
    suspended_until: float = 0.0
    """While in the future, the proxy shows the suspension page instead of the database."""
    suspended_reason: str = ""
    method: str = "card"
    """How the patron signed in: ``card``, or a federated method and provider (``oidc:campus``)."""

    @property
    def access_groups(self) -> frozenset[str]:
        """The groups that decide which databases the patron may open: Default when the
        session names none."""
        return self.groups or DEFAULT_GROUPS

    @classmethod
    def parsed(cls, key_hash: str, data: dict[Any, Any]) -> Session | None:
        """A session from its Redis hash, or None when the hash is not a whole session."""
        return cls.from_redis(key_hash, data) if data and ({b"pid", "pid"} & set(data)) else None

    @classmethod
    def from_redis(cls, key_hash: str, data: dict[Any, Any]) -> Session:
        """A session from its Redis hash."""
        fields = {text(k): text(v) for k, v in data.items()}
        values = {
            f.name: f.decode(fields[f.name] if f.default is None else fields.get(f.name, f.default))
            for f in FIELDS
        }
        databases = frozenset(k[3:] for k in fields if k.startswith("db:"))
        return cls(hash=key_hash, databases=databases, **values)

    def to_redis(self) -> dict[FieldT, EncodableT]:
        """The session's fields as its Redis hash holds them, those at their default left out
        (the usage counts and the databases used are added as the proxy counts them)."""
        values = ((f, getattr(self, f.name)) for f in FIELDS)
        return {
            f.name: f.encode(value)
            for f, value in values
            if f.default is None or value != f.decode(f.default)
        }


@dataclass(frozen=True)
class Field:
    """One field of a session's Redis hash: how it is written and read."""

    name: str
    encode: Callable[[Any], str]
    decode: Callable[[str], Any]
    default: str | None = None
    """What a hash without the field means; None: every session has it."""


def _flag(value: bool) -> str:
    return "1" if value else "0"


def _groups(value: frozenset[str]) -> str:
    return ",".join(sorted(value))


FIELDS = (
    Field("pid", str, str),
    Field("card", str, str),
    Field("groups", _groups, lambda s: frozenset(g for g in s.split(",") if g), ""),
    Field("created", repr, float),
    Field("last", repr, float),
    Field("address", str, str, ""),
    Field("pin_version", str, int, "1"),
    Field("must_change_pin", _flag, lambda s: s == "1", "0"),
    Field("bytes", str, int, "0"),
    Field("requests", str, int, "0"),
    Field("suspended_until", repr, float, "0"),
    Field("suspended_reason", str, str, ""),
    Field("method", str, str, "card"),
)
"""The session's hash, one row per field: ``create`` writes them and ``from_redis`` reads them
from this one table."""


_RECORD_USE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'bytes', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'requests', ARGV[2])
for i = 3, #ARGV do redis.call('HSET', KEYS[1], 'db:' .. ARGV[i], '1') end
return 1
"""
"""Adds proxied requests to their session, unless the session ended meanwhile (a plain
HINCRBY would bring an ended session's key back)."""

_SET_IF_LIVE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""


class SessionStore:
    """Create, find, refresh and end sessions."""

    def __init__(
        self, redis: Redis, settings: SessionsSettings, wait_replicas: int = 0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:  # fmt: skip
        self.clock = clock
        """What time it is (the idle and absolute limits are checked against it)."""
        self.redis = redis
        self.settings = settings
        self.wait_replicas = wait_replicas
        self._set_if_live = redis.register_script(_SET_IF_LIVE)
        self._reads = ReadBatch(redis)
        self._parsed: dict[tuple[str, frozenset[tuple[Any, Any]]], Session | None] = {}

    ALL_KEY = f"{PREFIX}:sessions"
    """Every live session's hash, by creation time: what the console lists."""

    @staticmethod
    def key(key_hash: str) -> str:
        """The Redis key of a session."""
        return f"{PREFIX}:session:{key_hash}"

    @staticmethod
    def index_key(pid: str) -> str:
        """The Redis key of a card's session index (a sorted set by creation time)."""
        return f"{PREFIX}:card-sessions:{pid}"

    def _ttl(self, created: float, now: float) -> int:
        remaining = created + self.settings.absolute_timeout - now
        return max(1, int(min(self.settings.idle_timeout, remaining)) + 1)

    async def create(
        self,
        pid: str,
        card: str,
        groups: frozenset[str],
        address: str,
        pin_version: int = 1,
        must_change_pin: bool = False,
        method: str = "card",
    ) -> str:
        """Start a session; returns the raw id for the cookie. The oldest beyond the cap end.
        ``card`` is the card number, or for a federated ``method`` the provider's patron id."""
        raw = secrets.token_urlsafe(32)
        key_hash = session_hash(raw)
        now = self.clock()
        session = Session(
            key_hash, pid, card, groups, now, now, address, pin_version, must_change_pin,
            method=method,
        )  # fmt: skip
        index = self.index_key(pid)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.key(key_hash), mapping=session.to_redis())
            pipe.expire(self.key(key_hash), self._ttl(now, now))
            pipe.zadd(index, {key_hash: now})
            pipe.expire(index, self.settings.absolute_timeout + 60)
            pipe.zadd(self.ALL_KEY, {key_hash: now})
            await pipe.execute()
        if self.wait_replicas:
            # Redis replicates asynchronously; WAIT makes a failover unable to lose this session
            # once the replica count is reached (within 500 ms, else we go on: better a login).
            await self.redis.wait(self.wait_replicas, WAIT_MS)
        if await self.is_blocked(pid):
            # A block sets its mark, then ends the card's sessions: either that sweep saw this
            # session in the index, or this check sees the mark. Either way it does not live.
            await self.end(key_hash, pid)
        await self._enforce_cap(pid)
        return raw

    async def _enforce_cap(self, pid: str) -> None:
        index = self.index_key(pid)
        members = await self.redis.zrange(index, 0, -1)
        alive = []
        for member in map(text, members):  # drop entries whose session Redis already forgot
            if await self.redis.exists(self.key(member)):
                alive.append(member)
            else:
                await self.redis.zrem(index, member)
        for old in alive[: max(0, len(alive) - self.settings.max_per_card)]:
            await self.end(old)

    async def get(self, raw_id: str | None) -> Session | None:
        """The live session for a cookie value, or None (unknown, idle or too old)."""
        return (await self.load(raw_id))[0]

    async def load(self, raw_id: str | None) -> tuple[Session | None, dict[Any, Any]]:
        """The live session for a cookie value (or None) and its Redis hash as read, which also
        holds the session's vendor cookies (see ``gateway.proxy.jar_store``): one read, sent
        in one pipeline with the other requests' reads of the same turn (``ReadBatch``)."""
        if not raw_id or len(raw_id) > 100:  # no session has such a cookie value
            return None, {}
        key_hash = session_hash(raw_id)
        data = await self._reads.hgetall(self.key(key_hash))
        return await self._accept(key_hash, data), data

    def _parse(self, key_hash: str, data: Row) -> Session | None:
        """``Session.parsed``, remembered by the row read: a session's row changes only when it
        is written (a touch, usage counts, a suspension), while every request reads it, and parsing
        it costs a proxied request more than the read. Only the parsing is remembered: the row
        itself is read from Redis every time."""
        if not data:
            return None
        # The vendor cookies stay out of the key: the session does not depend on them, and a
        # jar of many kilobytes would otherwise be kept alive by the memo, once per version. A
        # set, because Redis gives a big hash's fields in no fixed order.
        skip = len(JAR_FIELD_PREFIX)
        row = (
            key_hash,
            frozenset([f for f in data.items() if f[0][:skip] not in JAR_FIELD_PREFIXES]),
        )
        try:
            return self._parsed[row]
        except KeyError:
            return remember(self._parsed, row, Session.parsed(key_hash, data), PARSED_REMEMBERED)

    async def _accept(self, key_hash: str, data: Row) -> Session | None:
        """The session in a Redis hash, when it is still live (one past its time is ended)."""
        session = self._parse(key_hash, data)
        if session is None:
            return None
        now = self.clock()
        if (
            now - session.last > self.settings.idle_timeout
            or now - session.created > self.settings.absolute_timeout
        ):
            await self.end(key_hash, session.pid)
            return None
        return session

    async def touch(self, session: Session) -> None:
        """Record activity: the idle clock starts again (never past the absolute lifetime)."""
        now = self.clock()
        key = self.key(session.hash)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, "last", repr(now))
            pipe.expire(key, self._ttl(session.created, now))
            await pipe.execute()

    async def end(self, key_hash: str, pid: str | None = None) -> None:
        """End one session (by its hash)."""
        if pid is None:
            raw_pid = await self.redis.hget(self.key(key_hash), "pid")
            pid = text(raw_pid) if raw_pid else None
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(self.key(key_hash))
            pipe.zrem(self.ALL_KEY, key_hash)
            if pid:
                pipe.zrem(self.index_key(pid), key_hash)
            await pipe.execute()

    async def end_raw(self, raw_id: str) -> None:
        """End the session a cookie value stands for."""
        await self.end(session_hash(raw_id))

    async def end_all(self, pid: str, keep: str | None = None) -> int:
        """End every session of a card (but ``keep``, a hash); returns how many ended."""
        members = [text(m) for m in await self.redis.zrange(self.index_key(pid), 0, -1)]
        ended = 0
        for member in members:
            if member != keep:
                await self.end(member, pid)
                ended += 1
        return ended

    @staticmethod
    def blocked_key(pid: str) -> str:
        """Set while a card is blocked: no login starts a session for it, on any instance."""
        return f"{PREFIX}:blocked:{pid}"

    async def block(self, pid: str, keep: str | None = None) -> int:
        """Mark the card blocked and end its sessions (but ``keep``); returns how many ended."""
        await self.redis.set(self.blocked_key(pid), "1")
        return await self.end_all(pid, keep)

    async def unblock(self, pid: str) -> None:
        """Lift the mark."""
        await self.redis.delete(self.blocked_key(pid))

    async def is_blocked(self, pid: str) -> bool:
        """Whether the card is marked blocked."""
        return bool(await self.redis.exists(self.blocked_key(pid)))

    def record_use(
        self, pipe: Pipeline, key_hash: str, size: int, requests: int, databases: set[str]
    ) -> None:
        """Queue on ``pipe`` what a session's proxied requests added (bytes, count, databases)."""
        # EVAL, not EVALSHA: it needs no script registration, on a cluster pipeline too
        pipe.eval(_RECORD_USE, 1, self.key(key_hash), size, requests, *sorted(databases))

    async def suspend(self, key_hash: str, until: float, reason: str) -> None:
        """Pause a live session until ``until`` (inf: until lifted)."""
        args = ["suspended_until", repr(until), "suspended_reason", reason]
        await self._set_if_live(keys=[self.key(key_hash)], args=args)

    async def resume(self, key_hash: str) -> None:
        """Lift a session's suspension."""
        await self.redis.hdel(self.key(key_hash), "suspended_until", "suspended_reason")

    @staticmethod
    def suspended_key(pid: str) -> str:
        """Set while a card is suspended by a usage limit: its logins wait."""
        return f"{PREFIX}:suspended:{pid}"

    async def suspend_card(self, pid: str, until: float, reason: str) -> None:
        """Pause the card's live sessions and its logins until ``until`` (inf: until lifted)."""
        ttl = None if until == float("inf") else max(1, int(until - self.clock()))
        await self.redis.set(self.suspended_key(pid), reason, ex=ttl)
        for member in map(text, await self.redis.zrange(self.index_key(pid), 0, -1)):
            await self.suspend(member, until, reason)

    async def resume_card(self, pid: str) -> None:
        """Lift a card's suspension, for it and its sessions."""
        await self.redis.delete(self.suspended_key(pid))
        for member in map(text, await self.redis.zrange(self.index_key(pid), 0, -1)):
            await self.resume(member)

    async def is_suspended(self, pid: str) -> bool:
        """Whether the card's logins are paused by a usage limit."""
        return bool(await self.redis.exists(self.suspended_key(pid)))

    async def find(self, key_hash: str) -> Session | None:
        """A live session by its hash (the console's id for it)."""
        return Session.parsed(key_hash, await self._reads.hgetall(self.key(key_hash)))

    async def live(self) -> list[Session]:
        """Every live session, newest first; entries Redis already expired are dropped."""
        cutoff = self.clock() - self.settings.absolute_timeout
        await self.redis.zremrangebyscore(self.ALL_KEY, "-inf", cutoff)
        members = [text(m) for m in await self.redis.zrevrange(self.ALL_KEY, 0, -1)]
        found = await self._read(members)
        gone = [member for member in members if member not in found]
        if gone:
            await self.redis.zrem(self.ALL_KEY, *gone)
        return list(found.values())

    async def of_card(self, pid: str) -> list[Session]:
        """The live sessions of a card, oldest first."""
        members = [text(m) for m in await self.redis.zrange(self.index_key(pid), 0, -1)]
        return list((await self._read(members)).values())

    async def _read(self, members: list[str]) -> dict[str, Session]:
        """The sessions behind these hashes that still exist, in the same order: one round
        trip (the reads are asked for in one turn, so ``ReadBatch`` sends them together)."""
        rows = await asyncio.gather(*(self._reads.hgetall(self.key(m)) for m in members))
        parsed = (Session.parsed(member, data) for member, data in zip(members, rows, strict=True))
        return {session.hash: session for session in parsed if session is not None}
