"""Monthly usage per database, kept in Redis as requests pass (never re-read from logs).

Per month one hash holds ``<database>\\x1f<count>`` fields (requests, downloads, bytes), and
HyperLogLogs per database count distinct patrons (by pseudonym) and sessions (exact for small
numbers, about 1% off for large ones, 12 KB at most). Each process gathers counts in memory
and flushes them once a second in one pipeline, so counting costs the proxy almost nothing.
Rendering is pure.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from gateway.redis_keys import PREFIX, text

SEP = "\x1f"
MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")
"""A report month as people write it: ``YYYY-MM``."""
COUNTS = ("requests", "downloads", "bytes")


def month_of(when: float) -> str:
    """``YYYY-MM`` (UTC) of a time."""
    return _month_of_second(int(when))


@functools.lru_cache(maxsize=2)  # every proxied request asks, nearly always for this second
def _month_of_second(second: int) -> str:
    return time.strftime("%Y-%m", time.gmtime(second))


def month_key(month: str) -> str:
    """The month's hash of counts."""
    return f"{PREFIX}:usage:month:{month}"


def distinct_key(kind: str, month: str, database: str) -> str:
    """The month's counter of distinct patrons or sessions of a database (a HyperLogLog)."""
    digest = hashlib.sha256(database.encode()).hexdigest()[:16]
    return f"{PREFIX}:usage:{kind}:{month}:{digest}"


@dataclass(frozen=True)
class Row:
    """One database's month."""

    database: str
    sessions: int = 0
    patrons: int = 0
    requests: int = 0
    downloads: int = 0
    bytes: int = 0


@dataclass
class Pending:
    """Counts gathered in this process since the last flush to Redis."""

    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    """(month, database, count name) -> amount."""
    distinct: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)
    """(patrons|sessions, month, database) -> members."""

    def add(self, when: float, database: str, pid: str, session: str, size: int,
            download: bool) -> None:  # fmt: skip
        """Count one proxied request."""
        month = month_of(when)
        self.counts[(month, database, "requests")] += 1
        self.counts[(month, database, "bytes")] += size
        self.counts[(month, database, "downloads")] += int(download)
        for kind, member in (("patrons", pid), ("sessions", session)):
            if member:
                self.distinct.setdefault((kind, month, database), set()).add(member)

    def queue(self, pipe: Pipeline, keep_months: int) -> None:
        """Queue every count on ``pipe`` (the caller executes it)."""
        ttl = keep_months * 31 * 86400
        months = set()
        for (month, database, name), amount in self.counts.items():
            if amount:
                pipe.hincrby(month_key(month), f"{database}{SEP}{name}", amount)
                months.add(month)
        for month in months:
            pipe.expire(month_key(month), ttl)
        for (kind, month, database), members in self.distinct.items():
            pipe.pfadd(distinct_key(kind, month, database), *members)
            pipe.expire(distinct_key(kind, month, database), ttl)


async def report(redis: Redis, month: str) -> list[Row]:
    """Every database used in ``month``, by title."""
    counts: dict[str, dict[str, int]] = {}
    for name_field, value in (await redis.hgetall(month_key(month))).items():
        database, _, name = text(name_field).rpartition(SEP)
        if name in COUNTS:
            counts.setdefault(database, {})[name] = int(text(value))
    rows = []
    for database in sorted(counts):
        distinct = {
            kind: int(await redis.pfcount(distinct_key(kind, month, database)))
            for kind in ("patrons", "sessions")
        }
        rows.append(Row(database, **distinct, **counts[database]))
    return rows


def as_csv(rows: list[Row]) -> str:
    """The report as CSV with a header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["database", "sessions", "patrons", "requests", "downloads", "bytes"])
    for row in rows:
        writer.writerow([_cell(row.database), *list(asdict(row).values())[1:]])
    return out.getvalue()


def _cell(value: str) -> str:
    """A text cell a spreadsheet will not run as a formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def as_json(month: str, rows: list[Row]) -> str:
    """The report as a JSON document."""
    return json.dumps({"month": month, "databases": [asdict(r) for r in rows]}, indent=2)
