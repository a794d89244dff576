"""ReadBatch against a real Redis: one pipeline per turn, shared reads, fresh data, errors."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.read_batch import ReadBatch
from tests.support import RedisProcess


async def _hgetall_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_hgetall", {}).get("calls", 0))


async def test_concurrent_reads_get_their_own_rows_in_one_round_trip(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    for i in range(20):
        await redis.hset(f"h:{i}", mapping={"n": str(i)})
    batch = ReadBatch(Redis.from_url(redis_url))
    rows = await asyncio.gather(*(batch.hgetall(f"h:{i}") for i in [*range(20), 99]))
    assert rows == [{b"n": str(i).encode()} for i in range(20)] + [{}]
    # Twenty-one reads in flight at once, and the batch's client needed one connection.
    clients = await redis.client_list()
    assert len(clients) == 2, clients  # that one and the test's own
    await batch.redis.aclose()
    await redis.aclose()


async def test_reads_of_one_key_in_one_turn_share_a_single_hgetall(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    await redis.hset("session", mapping={"pid": "p1"})
    await redis.config_resetstat()
    batch = ReadBatch(redis)
    rows = await asyncio.gather(*(batch.hgetall("session") for _ in range(10)))
    assert rows == [{b"pid": b"p1"}] * 10
    assert await _hgetall_calls(redis) == 1
    await batch.hgetall("session")  # the next turn reads again: nothing is kept
    assert await _hgetall_calls(redis) == 2
    await redis.aclose()


async def test_a_read_sees_every_write_that_finished_before_it(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    batch = ReadBatch(redis)
    await redis.hset("session", mapping={"pid": "p1"})
    assert await batch.hgetall("session") == {b"pid": b"p1"}
    await redis.delete("session")  # a librarian ends the session
    assert await batch.hgetall("session") == {}
    await redis.aclose()


async def test_a_cancelled_reader_leaves_the_others_their_rows(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    await redis.hset("k", mapping={"a": "1"})
    batch = ReadBatch(redis)
    first = asyncio.ensure_future(batch.hgetall("k"))
    second = asyncio.ensure_future(batch.hgetall("k"))
    await asyncio.sleep(0)  # both queued
    first.cancel()
    assert await second == {b"a": b"1"}
    assert first.cancelled()
    await redis.aclose()


async def test_redis_down_reaches_every_caller_of_the_batch(tmp_path: Path) -> None:
    own = RedisProcess(tmp_path / "own").start()
    redis = Redis.from_url(own.url)
    batch = ReadBatch(redis)
    await redis.hset("k", mapping={"a": "1"})
    own.kill()
    results = await asyncio.gather(
        batch.hgetall("k"), batch.hgetall("other"), return_exceptions=True
    )
    assert all(isinstance(r, RedisConnectionError) for r in results), results
    with pytest.raises(RedisConnectionError):
        await batch.hgetall("k")
    await redis.aclose()
