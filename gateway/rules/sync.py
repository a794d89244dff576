"""Rule files shared between instances through Redis: an edit on one is live on all.

Each instance watches its own rules directory. When a file changes there (a librarian's edit,
a deploy), the instance stores the new text in Redis and publishes its name; every other
instance writes that text into its own directory (atomically), where its hot reload picks it
up. Content hashes stop the echo: a file an instance just received is not published again.
Instances start from their own directories; what changes while they run is shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import secrets
from pathlib import Path

from redis.asyncio import Redis

from gateway.redis_client import REDIS_ERRORS
from gateway.redis_keys import PREFIX, text
from gateway.rules.loader import RULE_SUFFIX, snapshot

log = logging.getLogger(__name__)

CHANNEL = f"{PREFIX}:rules"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _files(directory: Path) -> dict[str, str]:
    """Name -> content hash of every rule file."""
    if not directory.is_dir():
        return {}
    found = {}
    for path in directory.iterdir():
        if path.suffix == RULE_SUFFIX and path.is_file() and not path.name.startswith("."):
            with contextlib.suppress(OSError):
                found[path.name] = _digest(path.read_bytes())
    return found


def _safe_name(name: str) -> bool:
    return name.endswith(RULE_SUFFIX) and "/" not in name and not name.startswith(".")


class RuleSync:
    """Publishes local rule changes and applies the other instances' changes."""

    def __init__(self, redis: Redis, directory: Path, interval: float) -> None:
        self.redis = redis
        self.directory = directory
        self.interval = interval
        self.instance = secrets.token_hex(8)
        self.known = _files(directory)
        self._stamp = snapshot(directory)

    async def publish_changes(self) -> None:
        """Compare the directory with what is known; share what changed here."""
        stamp = snapshot(self.directory)
        if stamp == self._stamp:
            return  # names, sizes and times unchanged: no file needs reading
        self._stamp = stamp
        now = _files(self.directory)
        for name, digest in now.items():
            if self.known.get(name) != digest:
                data = (self.directory / name).read_bytes()
                await self.redis.set(f"{CHANNEL}:file:{name}", data)
                await self._announce(name, digest)
        for name in set(self.known) - set(now):
            await self.redis.delete(f"{CHANNEL}:file:{name}")
            await self._announce(name, "")
        self.known = now

    async def _announce(self, name: str, digest: str) -> None:
        message = json.dumps({"name": name, "sha": digest, "from": self.instance})
        await self.redis.publish(CHANNEL, message)
        log.info("rules: shared %s with the other instances", name)

    async def apply(self, message: dict[str, str]) -> None:
        """Write another instance's change into this directory."""
        name, digest = message.get("name", ""), message.get("sha", "")
        if message.get("from") == self.instance or not _safe_name(name):
            return
        path = self.directory / name
        if not digest:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            self.known.pop(name, None)
            return
        stored = await self.redis.get(f"{CHANNEL}:file:{name}")
        data = stored.encode() if isinstance(stored, str) else stored
        if data is None or _digest(data) != digest:
            return  # a newer change is on its way
        if self.known.get(name) != digest:
            temporary = path.with_name(f".{name}.{self.instance}.tmp")
            temporary.write_bytes(data)
            os.replace(temporary, path)  # the hot reload sees the whole file or none of it
            self.known[name] = digest
            log.info("rules: %s changed on another instance; written here", name)

    async def run(self) -> None:
        """Listen to the channel and watch the directory until cancelled."""
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(CHANNEL)
        try:
            while True:
                try:
                    message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                       timeout=self.interval)  # fmt: skip
                    if message and message.get("type") == "message":
                        try:
                            change = json.loads(text(message["data"]))
                        except ValueError:
                            change = {}
                        if isinstance(change, dict):
                            await self.apply(change)
                    await self.publish_changes()
                except REDIS_ERRORS as exc:
                    log.warning("rules: sharing paused, Redis: %s", exc)
                    await asyncio.sleep(self.interval)
        finally:
            # Cancelled in the middle of a read, the pub/sub connection may never close
            # cleanly: give it a moment, not the shutdown.
            with contextlib.suppress(TimeoutError, *REDIS_ERRORS):
                await asyncio.wait_for(asyncio.shield(pubsub.aclose()), 1.0)  # type: ignore[no-untyped-call]
