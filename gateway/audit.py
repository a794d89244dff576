"""The audit log: who did what, in a Redis stream (shared, filterable) and a JSON-lines file.

Entries name cards by pseudonym only. Kinds are fixed strings (``KINDS``) so filters and
reports can rely on them.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

from gateway.edge.log_files import open_log_file
from gateway.redis_keys import PREFIX, text

log = logging.getLogger(__name__)

STREAM = f"{PREFIX}:audit"
KINDS = (
    "staff_login",
    "staff_login_failed",
    "staff_locked",
    "staff_logout",
    "rules_saved",
    "rules_restored",
    "rules_created",
    "session_ended",
    "card_sessions_ended",
    "card_blocked",
    "card_unblocked",
    "card_unlocked",
    "pin_reset",
    "patron_locked",
    "pin_spray_alarm",
    "limit_tripped",
    "limit_lifted",
    "staff_notified",
    "staff_added",
    "staff_disabled",
    "staff_enabled",
    "staff_password_set",
    "signin_test",
)


@dataclass(frozen=True)
class Entry:
    """One audit entry."""

    time: float
    kind: str
    staff: str = ""
    patron: str = ""
    """The card's pseudonym, when the entry concerns a card."""
    detail: dict[str, Any] = field(default_factory=dict)
    id: str = ""

    def as_dict(self) -> dict[str, Any]:
        """The entry as plain values (JSON, the file)."""
        return {
            "id": self.id,
            "time": self.time,
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.time)),
            "kind": self.kind,
            "staff": self.staff,
            "patron": self.patron,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class AuditFilter:
    """What to show: a time range (epoch seconds) and exact matches; empty means any."""

    since: float | None = None
    until: float | None = None
    kind: str = ""
    staff: str = ""
    patron: str = ""
    limit: int = 200

    def matches(self, entry: Entry) -> bool:
        """Whether ``entry`` passes the exact-match filters (the range is Redis's job)."""
        return all(
            not wanted or wanted == value
            for wanted, value in (
                (self.kind, entry.kind),
                (self.staff, entry.staff),
                (self.patron, entry.patron),
            )
        )


class AuditLog:
    """Record and read audit entries."""

    def __init__(self, redis: Redis, path: str, keep: int) -> None:
        self.redis = redis
        self.keep = keep
        self.file = open_log_file("gateway.audit", path, 20, 10)

    async def record(self, kind: str, staff: str = "", patron: str = "", **detail: Any) -> Entry:
        """Write one entry to Redis and the file."""
        assert kind in KINDS, kind
        entry = Entry(time.time(), kind, staff, patron, detail)
        fields = {"data": json.dumps(entry.as_dict())}
        entry_id = await self.redis.xadd(STREAM, fields, maxlen=self.keep, approximate=True)  # type: ignore[arg-type]
        entry = Entry(entry.time, kind, staff, patron, detail, text(entry_id))
        self.file.info(json.dumps(entry.as_dict(), sort_keys=True))
        return entry

    async def query(self, wanted: AuditFilter) -> list[Entry]:
        """Entries newest first, filtered, at most ``wanted.limit``."""
        high = f"{int(wanted.until * 1000)}" if wanted.until is not None else "+"
        low = f"{int(wanted.since * 1000)}" if wanted.since is not None else "-"
        found: list[Entry] = []
        while len(found) < wanted.limit:
            batch = await self.redis.xrevrange(STREAM, high, low, count=500)
            if not batch:
                break
            for entry_id, fields in batch:
                entry = _entry(text(entry_id), fields)
                if entry is not None and wanted.matches(entry):
                    found.append(entry)
                    if len(found) == wanted.limit:
                        break
            last = text(batch[-1][0])
            high = f"({last}"  # exclusive: go on below the oldest seen
            if len(batch) < 500:
                break
        return found


def _entry(entry_id: str, fields: dict[Any, Any] | None) -> Entry | None:
    if not fields:
        return None
    raw = fields.get(b"data") or fields.get("data")
    try:
        data = json.loads(text(raw))
        return Entry(
            float(data["time"]), data["kind"], data.get("staff", ""), data.get("patron", ""),
            data.get("detail", {}), entry_id,
        )  # fmt: skip
    except (TypeError, ValueError, KeyError):
        log.warning("audit: unreadable entry %s", entry_id)
        return None
