"""Each session's vendor cookies, server-side in Redis: one field per cookie in the session's
own hash (``cookie:<domain> <path> <name>``).

In the session's hash, a jar comes with the session in the one Redis read the proxy makes per
request (``from_data``), and it goes when the session goes (logout, end, block, expiry). One
field per cookie means two requests of the same session that set different cookies at the same
time do not overwrite each other's.
"""

from __future__ import annotations

import json
from typing import Any

from redis.asyncio import Redis

from gateway.hostmap import Origin
from gateway.redis_keys import text
from gateway.rewrite.cookies import Cookie, CookieJar
from gateway.sessions import JAR_FIELD_PREFIX, JAR_FIELD_PREFIXES, Session, SessionStore

_PREFIX_LENGTH = len(JAR_FIELD_PREFIX)

_STORE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local changed = tonumber(ARGV[1])
for i = 2, 1 + 2 * changed, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
for i = 2 + 2 * changed, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
return 1
"""
"""Sets and deletes cookie fields of a session that still exists (a plain HSET would bring an
ended session's key back, without its expiry)."""


def _field(cookie: Cookie) -> str:
    return JAR_FIELD_PREFIX + "\x1f".join(cookie.key)


class JarStore:
    """Load a session's jar and store what a response changed in it."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._store = redis.register_script(_STORE)

    @staticmethod
    def from_data(data: dict[Any, Any]) -> CookieJar:
        """The jar in a session's Redis hash."""
        return CookieJar.from_plain(
            [
                json.loads(text(v))
                for k, v in data.items()
                if k[:_PREFIX_LENGTH] in JAR_FIELD_PREFIXES
            ]
        )

    async def update(
        self, session: Session, jar: CookieJar, headers: list[str], origin: Origin, path: str
    ) -> None:
        """Apply a response's Set-Cookie headers to ``jar`` and store the changes."""
        before = {c.key: c for c in (Cookie(**p) for p in jar.to_plain())}
        for header in headers:
            jar.set(header, origin, path)
        after = {c.key: c for c in (Cookie(**p) for p in jar.to_plain())}
        changed = {
            _field(c): json.dumps(c.__dict__) for k, c in after.items() if before.get(k) != c
        }
        removed = [_field(c) for k, c in before.items() if k not in after]
        if not changed and not removed:
            return
        args: list[str | int] = [len(changed), *(x for kv in changed.items() for x in kv), *removed]
        await self._store(keys=[SessionStore.key(session.hash)], args=args)
