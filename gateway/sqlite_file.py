"""The gateway's small SQLite files (local patrons, staff accounts): one way to open them."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def connection(path: Path) -> Iterator[sqlite3.Connection]:
    """A connection in WAL mode with named rows; the block is one transaction, then it closes."""
    db = sqlite3.connect(path, timeout=10)
    db.row_factory = sqlite3.Row
    try:
        db.execute("PRAGMA journal_mode=WAL")  # readers never wait for the writer
        with db:
            yield db
    finally:
        db.close()


def create(path: Path, schema: str) -> None:
    """Make the file (and its folder) with ``schema`` if it is not there yet."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with connection(path) as db:
        db.execute(schema)
