"""Hash reads that arrive together go to Redis together: one pipeline per turn of the loop.

Under load, a worker has many requests in flight, and each reads its session. Sent one by one,
every read costs a socket write, a reply to wait for and redis-py's per-command work, which
together cost a proxied request about as much as rewriting its page. ``ReadBatch.hgetall``
queues the key instead; the reads queued during one turn of the event loop are sent as one
pipeline on the next, and requests for the same key in the same batch share one read (a
browser asks for a page's images, scripts and styles at once, all with the same session).

Nothing is remembered between batches: every read is sent after it was asked for, so it sees
every write that finished before it, and a Redis error reaches every caller of the batch.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.asyncio import Redis

Row = dict[Any, Any]


class ReadBatch:
    """Reads Redis hashes for many callers in one round trip."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._waiting: dict[str, list[asyncio.Future[Row]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def hgetall(self, key: str) -> Row:
        """The hash at ``key`` as HGETALL gives it, read in this turn's batch."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Row] = loop.create_future()
        if not self._waiting:
            loop.call_soon(self._send)
        self._waiting.setdefault(key, []).append(future)
        return await future

    def _send(self) -> None:
        batch, self._waiting = self._waiting, {}
        task = asyncio.create_task(self._read(batch))
        self._tasks.add(task)  # a reference until done: the loop keeps only weak ones
        task.add_done_callback(self._tasks.discard)

    async def _read(self, batch: dict[str, list[asyncio.Future[Row]]]) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in batch:
                    pipe.hgetall(key)
                rows = await pipe.execute()
        except BaseException as exc:  # every caller gets it: a Redis error becomes their 503
            for futures in batch.values():
                for future in futures:
                    if future.done():
                        continue
                    if isinstance(exc, Exception):
                        future.set_exception(exc)
                    else:  # cancelled (the worker stops): so are the reads
                        future.cancel()
            if not isinstance(exc, Exception):
                raise
            return
        for futures, row in zip(batch.values(), rows, strict=True):
            for future in futures:
                if not future.done():  # a caller that was cancelled meanwhile
                    future.set_result(row)
