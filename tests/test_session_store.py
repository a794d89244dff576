"""SessionStore against a real Redis: what one worker reads after another worker wrote."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from gateway.bounded import remember
from gateway.config import SessionsSettings
from gateway.sessions import JAR_FIELD_PREFIX, SessionStore


async def test_a_session_read_after_another_worker_wrote_it_shows_the_write(
    redis_url: str,
) -> None:
    here = SessionStore(Redis.from_url(redis_url), SessionsSettings())
    elsewhere = SessionStore(Redis.from_url(redis_url), SessionsSettings())  # another worker
    raw = await here.create("pid-1", "21234000000001", frozenset({"Default"}), "192.0.2.1")
    first = await here.get(raw)
    assert first is not None and first.suspended_until == 0.0
    assert await here.get(raw) is first  # the same row: parsed once, read from Redis again
    await elsewhere.suspend(first.hash, time.time() + 60, "limit")
    suspended = await here.get(raw)
    assert suspended is not None and suspended.suspended_reason == "limit"
    await elsewhere.resume(first.hash)
    resumed = await here.get(raw)
    assert resumed is not None and resumed.suspended_until == 0.0
    await elsewhere.end(first.hash, "pid-1")
    assert await here.get(raw) is None  # ended elsewhere: gone here at the next read
    for store in (here, elsewhere):
        await store.redis.aclose()


async def test_vendor_cookies_in_the_row_do_not_make_a_new_session(redis_url: str) -> None:
    store = SessionStore(Redis.from_url(redis_url), SessionsSettings())
    raw = await store.create("pid-2", "21234000000002", frozenset({"Default"}), "192.0.2.2")
    first = await store.get(raw)
    assert first is not None
    # A big jar: the memo's key leaves it out, so it is neither parsed again nor kept alive.
    await store.redis.hset(SessionStore.key(first.hash), f"{JAR_FIELD_PREFIX}x", "v" * 100_000)
    assert await store.get(raw) is first
    await store.redis.hset(SessionStore.key(first.hash), "db:JSTOR", "1")
    again = await store.get(raw)
    assert again is not None and again is not first and again.databases == {"JSTOR"}
    await store.redis.aclose()


def test_a_bounded_memo_is_emptied_when_full_and_keeps_the_newest() -> None:
    memo: dict[int, str] = {}
    for i in range(10):
        assert remember(memo, i, str(i), 4) == str(i)
        assert len(memo) <= 4
    assert memo[9] == "9"
