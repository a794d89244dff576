"""Each session's vendor cookies, server-side in Redis (one hash field per cookie).

The proxy reads a jar together with its session, in one pipeline (``key`` and ``from_data``).

One field per cookie means two requests of the same session that set different cookies at the
same time do not overwrite each other's.
"""

from __future__ import annotations

import json
import time
from typing import Any

from redis.asyncio import Redis

from gateway.hostmap import Origin
from gateway.rewrite.cookies import Cookie, CookieJar
from gateway.sessions import PREFIX, Session, text


def _field(cookie: Cookie) -> str:
    return "\x1f".join(cookie.key)


class JarStore:
    """Load a session's jar and store what a response changed in it."""

    def __init__(self, redis: Redis, absolute_timeout: int) -> None:
        self.redis = redis
        self.absolute_timeout = absolute_timeout

    @staticmethod
    def key(key_hash: str) -> str:
        """The Redis key of a session's jar (by the session's hash)."""
        return f"{PREFIX}:jar:{key_hash}"

    @staticmethod
    def from_data(data: dict[Any, Any]) -> CookieJar:
        """A jar from its Redis hash."""
        return CookieJar.from_plain([json.loads(text(v)) for v in data.values()])

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
        key = self.key(session.hash)
        async with self.redis.pipeline(transaction=False) as pipe:
            if changed:
                pipe.hset(key, mapping=changed)  # type: ignore[arg-type]
            if removed:
                pipe.hdel(key, *removed)
            remaining = session.created + self.absolute_timeout - time.time()
            pipe.expire(key, max(60, int(remaining) + 60))
            await pipe.execute()
