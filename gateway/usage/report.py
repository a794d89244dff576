"""Monthly usage per database, kept in Redis as requests pass (never re-read from logs).

Per month one hash holds ``<database>\\x1f<count>`` fields (sessions, requests, downloads,
bytes), and one HyperLogLog per database counts unique patrons by pseudonym (exact for small
numbers, about 1% off for large ones, 12 KB at most). Rendering to CSV or JSON is pure.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from dataclasses import asdict, dataclass

from redis.asyncio import Redis

from gateway.sessions import PREFIX, text

SEP = "\x1f"
COUNTS = ("sessions", "requests", "downloads", "bytes")


def month_of(when: float) -> str:
    """``YYYY-MM`` (UTC) of a time."""
    return time.strftime("%Y-%m", time.gmtime(when))


def month_key(month: str) -> str:
    """The month's hash of counts."""
    return f"{PREFIX}:usage:month:{month}"


def patrons_key(month: str, database: str) -> str:
    """The month's unique-patron counter for a database."""
    digest = hashlib.sha256(database.encode()).hexdigest()[:16]
    return f"{PREFIX}:usage:patrons:{month}:{digest}"


@dataclass(frozen=True)
class Row:
    """One database's month."""

    database: str
    sessions: int = 0
    patrons: int = 0
    requests: int = 0
    downloads: int = 0
    bytes: int = 0


async def record(
    redis: Redis, when: float, database: str, pid: str, size: int, download: bool,
    new_session: bool, keep_months: int,
) -> None:  # fmt: skip
    """Count one proxied request."""
    month = month_of(when)
    key = month_key(month)
    ttl = keep_months * 31 * 86400
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hincrby(key, f"{database}{SEP}requests", 1)
        if size:
            pipe.hincrby(key, f"{database}{SEP}bytes", size)
        if download:
            pipe.hincrby(key, f"{database}{SEP}downloads", 1)
        if new_session:
            pipe.hincrby(key, f"{database}{SEP}sessions", 1)
        pipe.expire(key, ttl)
        if pid:
            pipe.pfadd(patrons_key(month, database), pid)
            pipe.expire(patrons_key(month, database), ttl)
        await pipe.execute()


async def report(redis: Redis, month: str) -> list[Row]:
    """Every database used in ``month``, by title."""
    counts: dict[str, dict[str, int]] = {}
    for field, value in (await redis.hgetall(month_key(month))).items():
        database, _, name = text(field).rpartition(SEP)
        if name in COUNTS:
            counts.setdefault(database, {})[name] = int(text(value))
    rows = []
    for database in sorted(counts):
        patrons = int(await redis.pfcount(patrons_key(month, database)))
        rows.append(Row(database, patrons=patrons, **counts[database]))
    return rows


def as_csv(rows: list[Row]) -> str:
    """The report as CSV with a header row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["database", "sessions", "patrons", "requests", "downloads", "bytes"])
    for row in rows:
        writer.writerow(list(asdict(row).values()))
    return out.getvalue()


def as_json(month: str, rows: list[Row]) -> str:
    """The report as a JSON document."""
    return json.dumps({"month": month, "databases": [asdict(r) for r in rows]}, indent=2)
