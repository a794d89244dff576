"""``gateway usage report``: the monthly counts per database, as CSV or JSON."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import TextIO

from gateway.auth.commands import redis_url
from gateway.config import Settings
from gateway.redis_client import REDIS_ERRORS, connect
from gateway.usage import report


async def _rows(settings: Settings, month: str) -> list[report.Row]:
    client = connect(redis_url(settings), settings.redis)
    try:
        return await report.report(client, month)
    finally:
        await client.aclose()


def report_command(settings: Settings, month: str, form: str, out: TextIO) -> int:
    """Print the report for ``month`` (default: this month, UTC)."""
    month = month or report.month_of(time.time())
    if not report.MONTH.fullmatch(month):
        print(f"gateway usage report: --month expects YYYY-MM, got {month!r}", file=sys.stderr)
        return 2
    try:
        rows = asyncio.run(_rows(settings, month))
    except (OSError, RuntimeError, *REDIS_ERRORS) as exc:
        print(f"gateway usage report: Redis not reached: {exc}", file=sys.stderr)
        return 1
    out.write(report.as_json(month, rows) + "\n" if form == "json" else report.as_csv(rows))
    return 0
