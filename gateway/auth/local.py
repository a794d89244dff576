"""The local patron directory: SQLite in the state dir, PINs as peppered Argon2id hashes.

SQLite and Argon2 block, so every call runs in a worker thread; the event loop never waits on
them.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import datetime
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from gateway import sqlite_file
from gateway.auth.directory import Patron, PatronStatus, Verdict, Verification
from gateway.auth.pin_policy import PinRefusal, check_pin
from gateway.auth.secrets import Keyring
from gateway.i18n import translate
from gateway.rules.model import DEFAULT_GROUPS

SCHEMA = """
CREATE TABLE IF NOT EXISTS patrons (
    card TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    pin_hash TEXT NOT NULL,
    pin_version INTEGER NOT NULL DEFAULT 1,
    status TEXT NOT NULL DEFAULT 'active',
    expires TEXT,
    groups TEXT NOT NULL DEFAULT 'Default',
    must_change_pin INTEGER NOT NULL DEFAULT 0,
    updated TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
)
"""
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class PatronError(ValueError):
    """A patron record that cannot be stored; the message says which field and why."""


@dataclass(frozen=True)
class ImportReport:
    """What ``import_csv`` did, line by line."""

    imported: int
    problems: tuple[str, ...]


def _row_to_patron(row: sqlite3.Row) -> Patron:
    expires = datetime.date.fromisoformat(row["expires"]) if row["expires"] else None
    groups = frozenset(g.strip() for g in row["groups"].split(",") if g.strip())
    return Patron(
        card=row["card"],
        name=row["name"],
        email=row["email"],
        status=PatronStatus(row["status"]),
        expires=expires,
        groups=groups or DEFAULT_GROUPS,
        pin_version=row["pin_version"],
        must_change_pin=bool(row["must_change_pin"]),
    )


class LocalDirectory:
    """Patrons kept by the gateway itself."""

    can_change_pin = True

    def __init__(self, path: Path, keyring: Keyring, card_pattern: str) -> None:
        self.path = path
        self.keyring = keyring
        self.card_pattern = re.compile(card_pattern)
        sqlite_file.create(path, SCHEMA)

    # -- validation ---------------------------------------------------------------------
    def check_card(self, card: str) -> None:
        """Raise PatronError unless ``card`` has the library's card-number format."""
        if not self.card_pattern.fullmatch(card):
            raise PatronError(
                f"card {card!r} does not match the pattern {self.card_pattern.pattern}"
            )

    @staticmethod
    def _check_email(email: str) -> None:
        if email and not _EMAIL.fullmatch(email):
            raise PatronError(f"email {email!r} is not an email address")

    @staticmethod
    def _date(text: str) -> datetime.date | None:
        if not text:
            return None
        try:
            return datetime.date.fromisoformat(text)
        except ValueError:
            raise PatronError(f"expiry {text!r} is not a date (YYYY-MM-DD)") from None

    # -- blocking API (CLI, import, worker threads) ---------------------------------------
    def add(
        self,
        card: str,
        pin: str,
        name: str = "",
        email: str = "",
        groups: str = "Default",
        expires: str = "",
        status: str = "active",
        must_change_pin: bool = False,
        enforce_policy: bool = True,
    ) -> Patron:
        """Add (or replace) a patron; the PIN policy applies unless told otherwise."""
        self.check_card(card)
        self._check_email(email)
        refusal = check_pin(pin, card)
        if refusal is PinRefusal.FORMAT or (refusal and enforce_policy):
            raise PatronError(f"PIN refused: {translate('en', refusal.value)}")
        expiry = self._date(expires)
        try:
            PatronStatus(status)
        except ValueError:
            raise PatronError(f"status {status!r} is not active, blocked or expired") from None
        with sqlite_file.connection(self.path) as db:
            db.execute(
                "INSERT OR REPLACE INTO patrons (card, name, email, pin_hash, status, expires, "
                "groups, must_change_pin) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (card, name, email, self.keyring.hash_pin(pin), status,
                 expiry.isoformat() if expiry else None, groups or "Default", int(must_change_pin)),
            )  # fmt: skip
        patron = self.get(card)
        assert patron is not None
        return patron

    def get(self, card: str) -> Patron | None:
        """The patron with this card, or None."""
        with sqlite_file.connection(self.path) as db:
            row = db.execute("SELECT * FROM patrons WHERE card = ?", (card,)).fetchone()
        return _row_to_patron(row) if row else None

    def patrons(
        self, status: PatronStatus | None = None, must_change: bool | None = None
    ) -> list[Patron]:
        """Patrons by card number, only those with ``status`` and ``must_change`` when given."""
        where = [
            ("status = ?", status.value if status else None),
            ("must_change_pin = ?", None if must_change is None else int(must_change)),
        ]
        chosen = [(clause, value) for clause, value in where if value is not None]
        sql = "SELECT * FROM patrons"
        if chosen:
            sql += " WHERE " + " AND ".join(clause for clause, _ in chosen)
        with sqlite_file.connection(self.path) as db:
            rows = db.execute(sql + " ORDER BY card", [v for _, v in chosen]).fetchall()
        return [_row_to_patron(row) for row in rows]

    def remove(self, card: str) -> None:
        """Delete a patron; KeyError if there is no such card."""
        with sqlite_file.connection(self.path) as db:
            if not db.execute("DELETE FROM patrons WHERE card = ?", (card,)).rowcount:
                raise KeyError(card)

    def _stored_hash(self, card: str) -> tuple[str | None, Patron | None]:
        with sqlite_file.connection(self.path) as db:
            row = db.execute("SELECT * FROM patrons WHERE card = ?", (card,)).fetchone()
        return (row["pin_hash"], _row_to_patron(row)) if row else (None, None)

    def _update(self, card: str, assignments: str, values: tuple[object, ...]) -> Patron:
        """Change one patron's row; KeyError if there is no such card."""
        with sqlite_file.connection(self.path) as db:
            changed = db.execute(
                f"UPDATE patrons SET {assignments}, updated = CURRENT_TIMESTAMP WHERE card = ?",  # noqa: S608  (fixed column names)
                (*values, card),
            ).rowcount
        if not changed:
            raise KeyError(card)
        patron = self.get(card)
        assert patron is not None
        return patron

    def set_status(self, card: str, status: PatronStatus) -> Patron:
        """Block, unblock or expire a card; KeyError if there is no such card."""
        return self._update(card, "status = ?", (status.value,))

    def set_pin(self, card: str, pin: str, must_change: bool = False) -> Patron:
        """Store a new PIN, raise the PIN version; KeyError if there is no such card."""
        return self._update(
            card,
            "pin_hash = ?, pin_version = pin_version + 1, must_change_pin = ?",
            (self.keyring.hash_pin(pin), int(must_change)),
        )

    def check(self, card: str, pin: str) -> Verification:
        """Verify a card and PIN; an unknown card costs the same Argon2 work as a known one."""
        stored, patron = self._stored_hash(card)
        if self.keyring.verify_pin(stored, pin) and patron is not None:
            return Verification(Verdict.OK, patron)
        return Verification(Verdict.WRONG)

    def import_csv(self, path: Path) -> ImportReport:
        """Import patrons from a CSV with a header row; bad rows are reported by line."""
        problems: list[str] = []
        imported = 0
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            missing = {"card", "pin"} - set(reader.fieldnames or ())
            if missing:
                return ImportReport(
                    0, (f"{path}:1: the header needs {', '.join(sorted(missing))}",)
                )
            for row in reader:
                line = reader.line_num
                values = {k: (v or "").strip() for k, v in row.items() if k}
                card, pin = values.get("card", ""), values.get("pin", "")
                weak = check_pin(pin, card)
                try:
                    self.add(
                        card, pin, name=values.get("name", ""), email=values.get("email", ""),
                        groups=values.get("groups", "") or "Default",
                        expires=values.get("expires", ""),
                        status=values.get("status", "") or "active",
                        must_change_pin=weak is not None, enforce_policy=False,
                    )  # fmt: skip
                except PatronError as exc:
                    problems.append(f"{path}:{line}: {exc}; row not imported")
                    continue
                imported += 1
                if weak is not None:
                    problems.append(
                        f"{path}:{line}: weak PIN ({weak.name.lower().replace('_', ' ')}); "
                        "imported, the patron must choose a new PIN at next login"
                    )
        return ImportReport(imported, tuple(problems))

    # -- the PatronDirectory protocol (async) ---------------------------------------------
    async def verify(self, card: str, pin: str) -> Verification:
        """Check a card and PIN off the event loop."""
        return await asyncio.to_thread(self.check, card, pin)

    async def lookup(self, card: str) -> Patron | None:
        """Look a card up off the event loop."""
        return await asyncio.to_thread(self.get, card)

    async def change_pin(self, card: str, new_pin: str, must_change: bool = False) -> Patron:
        """Change a PIN off the event loop."""
        return await asyncio.to_thread(self.set_pin, card, new_pin, must_change)

    async def note_status(self, card: str, status: PatronStatus) -> None:
        """Store a block set in Redis (an unknown card: the Redis mark alone blocks it)."""
        with contextlib.suppress(KeyError):
            await asyncio.to_thread(self.set_status, card, status)
