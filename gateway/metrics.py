"""Prometheus metrics, shared by every worker and instance through Redis.

Each process counts in memory (no Redis round trip per request) and adds its counts to one
Redis hash every couple of seconds; ``/metrics`` shows the totals, so a scrape that lands on
any worker of any instance sees the same numbers. Active sessions are counted at scrape time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections import defaultdict
from collections.abc import AsyncIterator, Callable

from aiohttp import web
from redis.asyncio import Redis

from gateway.redis_client import REDIS_ERRORS
from gateway.redis_keys import PREFIX, text

KEY = f"{PREFIX}:metrics"
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, float("inf"))

METRICS: dict[str, tuple[str, str]] = {
    "carrel_requests_total": ("counter", "Proxied requests by database and status."),
    "carrel_bytes_total": ("counter", "Body bytes sent to patrons, by database."),
    "carrel_upstream_seconds": ("histogram", "Time until the vendor's response headers."),
    "carrel_logins_total": ("counter", "Login attempts by result."),
    "carrel_lockouts_total": ("counter", "Attempts refused by a lockout or throttle, by kind."),
    "carrel_pin_spray_alarms_total": (
        "counter",
        "PIN-spray alarms: one PIN failed on pin_spray_cards cards from anywhere, by scope.",
    ),
    "carrel_connections_refused_total": (
        "counter",
        "Connections closed at once: their address had max_connections_per_address open.",
    ),
    "carrel_redis_errors_total": ("counter", "Requests answered 503 because Redis failed."),
    "carrel_active_sessions": ("gauge", "Patron sessions alive in Redis."),
}
"""Every metric: its type and help text (one table, so the exposition and the docs agree)."""

Labels = tuple[tuple[str, str], ...]


@functools.lru_cache(maxsize=4096)  # a few names x databases x statuses; built per request
def _field(name: str, labels: Labels) -> str:
    return name + "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


@functools.lru_cache(maxsize=64)
def _buckets(name: str) -> tuple[tuple[float, str], ...]:
    """A histogram's buckets: upper bound and the field it counts in."""
    return tuple(
        (
            bound,
            _field(f"{name}_bucket", (("le", "+Inf" if bound == float("inf") else repr(bound)),)),
        )
        for bound in BUCKETS
    )


@functools.lru_cache(maxsize=64)
def _sum_and_count(name: str) -> tuple[str, str]:
    """A histogram's ``_sum`` and ``_count`` fields (named once, not on every request)."""
    return _field(f"{name}_sum", ()), _field(f"{name}_count", ())


class Metrics:
    """In-process counts, flushed to Redis."""

    def __init__(self) -> None:
        self._counts: defaultdict[str, float] = defaultdict(float)

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        """Count ``value`` more for ``name`` with these labels."""
        self._counts[_field(name, tuple(sorted(labels.items())))] += value

    def observe(self, name: str, seconds: float) -> None:
        """Record one duration in a histogram."""
        counts = self._counts
        for bound, field in _buckets(name):
            if seconds <= bound:
                counts[field] += 1
        total, count = _sum_and_count(name)
        counts[total] += seconds
        counts[count] += 1

    async def flush(self, redis: Redis) -> None:
        """Add this process's counts to the shared totals."""
        counts, self._counts = self._counts, defaultdict(float)
        if not counts:
            return
        try:
            async with redis.pipeline(transaction=False) as pipe:
                for field, value in counts.items():
                    pipe.hincrbyfloat(KEY, field, value)
                await pipe.execute()
        except REDIS_ERRORS:
            for field, value in counts.items():  # keep them for the next flush
                self._counts[field] += value


async def active_sessions(redis: Redis) -> int:
    """How many patron sessions Redis holds now."""
    count = 0
    async for _ in redis.scan_iter(match=f"{PREFIX}:session:*", count=1000):
        count += 1
    return count


def _bucket_order(line: str) -> tuple[str, float]:
    name, _, rest = line.partition("{")
    le = rest.split('le="', 1)[1].split('"', 1)[0] if 'le="' in rest else ""
    return name, float("inf") if le == "+Inf" else float(le or 0)


def render(totals: dict[str, float], sessions: int) -> str:
    """The Prometheus text exposition of the totals."""
    lines = []
    for name, (kind, help_text) in METRICS.items():
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        if name == "carrel_active_sessions":
            lines.append(f"{name} {sessions}")
            continue
        own = [f for f in totals if f.split("{")[0] in (name, f"{name}_bucket", f"{name}_sum",
                                                         f"{name}_count")]  # fmt: skip
        for field in sorted(own, key=_bucket_order):
            value = totals[field]
            shown = field.replace("{}", "")
            lines.append(f"{shown} {int(value) if value.is_integer() else value}")
    return "\n".join(lines) + "\n"


def metrics_ctx(
    metrics: Metrics, redis: Callable[[], Redis]
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that flushes the counts every 2 seconds while the app runs."""

    async def run(app: web.Application) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await asyncio.sleep(2.0)
                await metrics.flush(redis())

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(TimeoutError, *REDIS_ERRORS):  # a last flush, but no hang
            await asyncio.wait_for(metrics.flush(redis()), 2.0)

    return run


async def collect(metrics: Metrics, redis: Redis) -> str:
    """Flush, then read every process's totals and render them."""
    await metrics.flush(redis)
    raw = await redis.hgetall(KEY)
    totals = {text(k): float(text(v)) for k, v in raw.items()}
    return render(totals, await active_sessions(redis))
