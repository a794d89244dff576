"""One-time codes that hand a patron's session from the login host to one proxied host.

Over TLS each host keeps its own host-only ``__Host-`` session cookie, which no sibling origin
can set or shadow. A proxied host that has none yet sends the browser to the login host, which
knows the patron by its own cookie and answers with a code for that host; the proxied host
trades the code for its cookie. A code works once (``GETDEL``), for one host, within
``CODE_SECONDS``, and only in the browser that asked for it: it is bound to a nonce that the
proxied host put in its own host-only cookie before sending the browser away, so a code
someone else obtained for their own session cannot plant that session in a victim's browser.

Redis keeps a session's id only as a hash; the code's record holds the raw id for its
sixty seconds sealed with a pad derived from the code, so a copy of Redis alone does not
give the session away.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass

from redis.asyncio import Redis

from gateway.redis_keys import PREFIX

CODE_SECONDS = 60


@dataclass(frozen=True)
class Handover:
    """What a code hands to a proxied host."""

    raw: str
    """The session id for the host's cookie."""
    host: str
    """The proxied host name (as the patron's browser names it) the code is for."""
    nonce: str
    """The value of the host's handover cookie in the browser that asked."""
    path: str
    """Where on that host the patron was going (path and query, proxied form)."""


def _pad(code: str, size: int) -> bytes:
    return hashlib.shake_256(b"carrel-handover:" + code.encode()).digest(size)


def _seal(code: str, raw: str) -> str:
    data = raw.encode()
    return bytes(a ^ b for a, b in zip(data, _pad(code, len(data)), strict=True)).hex()


def _open(code: str, sealed: str) -> str:
    data = bytes.fromhex(sealed)
    return bytes(a ^ b for a, b in zip(data, _pad(code, len(data)), strict=True)).decode()


class Handovers:
    """Handover codes in Redis."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    @staticmethod
    def key(code: str) -> str:
        """The Redis key of a code (only its hash)."""
        return f"{PREFIX}:handover:{hashlib.sha256(code.encode()).hexdigest()}"

    async def mint(self, handover: Handover) -> str:
        """A new code for ``handover``."""
        code = secrets.token_urlsafe(32)
        record = {
            "sealed": _seal(code, handover.raw),
            "host": handover.host,
            "nonce": handover.nonce,
            "path": handover.path,
        }
        await self.redis.set(self.key(code), json.dumps(record), ex=CODE_SECONDS)
        return code

    async def redeem(self, code: str) -> Handover | None:
        """What ``code`` hands over, once; None when it is unknown, used or expired."""
        if not code or len(code) > 100:
            return None
        found = await self.redis.getdel(self.key(code))
        if found is None:
            return None
        record = json.loads(found)
        return Handover(
            raw=_open(code, record["sealed"]),
            host=record["host"],
            nonce=record["nonce"],
            path=record["path"],
        )
