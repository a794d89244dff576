"""Fire-and-forget work (mail, webhooks) that must not hold up the response that caused it."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

_running: set[asyncio.Task[Any]] = set()


def in_background(work: Coroutine[Any, Any, Any]) -> None:
    """Run ``work`` without waiting for it (a reference keeps the task from being collected)."""
    task = asyncio.create_task(work)
    _running.add(task)
    task.add_done_callback(_running.discard)
