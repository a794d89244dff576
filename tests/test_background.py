"""The application's background work: waited for, bounded at shutdown, failures logged."""

from __future__ import annotations

import asyncio
import logging

import pytest

from gateway.background import Background


async def test_idle_waits_for_work_and_the_work_it_starts() -> None:
    background, done = Background(), []

    async def second() -> None:
        await asyncio.sleep(0.05)
        done.append("second")

    async def first() -> None:
        await asyncio.sleep(0.05)
        background.run(second())
        done.append("first")

    background.run(first())
    await background.idle()
    assert done == ["first", "second"]


async def test_close_lets_work_finish_within_the_grace_then_cancels(
    caplog: pytest.LogCaptureFixture,
) -> None:
    background, done = Background(), []

    async def quick() -> None:
        await asyncio.sleep(0.01)
        done.append("quick")

    async def stuck() -> None:
        await asyncio.sleep(60)
        done.append("stuck")

    background.run(quick())
    background.run(stuck())
    with caplog.at_level(logging.WARNING):
        await background.close(grace=0.2)
    assert done == ["quick"]
    assert "cancelled at shutdown" in caplog.text
    await background.idle()  # nothing left


async def test_a_failure_is_logged_not_lost(caplog: pytest.LogCaptureFixture) -> None:
    background = Background()

    async def broken() -> None:
        raise RuntimeError("mail server said no")

    with caplog.at_level(logging.ERROR):
        background.run(broken())
        await background.idle()
        await asyncio.sleep(0)  # the done callback runs on the next turn
    assert "background task failed" in caplog.text and "mail server said no" in caplog.text
