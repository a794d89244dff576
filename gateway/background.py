"""Work that must not hold up the response that caused it (mail, notices), owned by the
application: started here, waited for (bounded) at shutdown, its failures logged, never lost
silently. Tests wait for it with ``idle()`` instead of sleeping."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class Background:
    """The application's background tasks."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def run(self, work: Coroutine[Any, Any, Any]) -> None:
        """Start ``work`` without waiting for it."""
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task failed", exc_info=task.exception())

    async def idle(self) -> None:
        """Wait until every task started so far, and any they started, has finished."""
        while self._tasks:
            await asyncio.wait(set(self._tasks))

    async def close(self, grace: float) -> None:
        """Let running work finish for at most ``grace`` seconds, then cancel the rest."""
        if not self._tasks:
            return
        _, late = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in late:
            log.warning("background task cancelled at shutdown: %s", task.get_coro())
            task.cancel()
        if late:
            await asyncio.wait(late)
