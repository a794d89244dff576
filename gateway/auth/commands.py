"""``gateway patrons``: add, import, list, block, unblock, show and remove local patrons."""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

from gateway.auth.directory import Patron, PatronStatus
from gateway.auth.local import LocalDirectory, PatronError
from gateway.auth.pin_policy import check_pin
from gateway.auth.secrets import Keyring
from gateway.auth.signin import is_account
from gateway.config import Settings, secret_key
from gateway.redis_client import REDIS_ERRORS, connect
from gateway.sessions import SessionStore

SessionChange = Callable[[SessionStore, str], Awaitable[int]]
"""Something done to a card's sessions (given the store and the card's pseudonym); returns how
many ended."""

DEMO_CARD = "21234000000001"
DEMO_PIN = "4827"


def local_directory(settings: Settings) -> LocalDirectory:
    """The local patron directory the configuration names."""
    return LocalDirectory(
        settings.patrons_path, Keyring(secret_key(settings)), settings.patrons.card_pattern
    )


def describe(patron: Patron, out: TextIO) -> None:
    """Print a patron (never a PIN)."""
    rows = [
        ("card", patron.card),
        ("name", patron.name or "-"),
        ("email", patron.email or "-"),
        ("status", patron.status.value),
        ("expires", patron.expires.isoformat() if patron.expires else "-"),
        ("groups", ", ".join(sorted(patron.groups))),
        ("PIN version", str(patron.pin_version)),
        ("must change PIN", "yes" if patron.must_change_pin else "no"),
    ]
    for key, value in rows:
        print(f"{key + ':':<17}{value}", file=out)


def add(settings: Settings, card: str, pin: str, name: str, email: str, groups: str,
        expires: str, out: TextIO) -> int:  # fmt: skip
    """``gateway patrons add``."""
    try:
        patron = local_directory(settings).add(card, pin, name, email, groups or "Default", expires)
    except PatronError as exc:
        print(f"gateway patrons add: {exc}", file=sys.stderr)
        return 1
    describe(patron, out)
    return 0


def import_csv(settings: Settings, path: Path, out: TextIO) -> int:
    """``gateway patrons import``: good rows go in, bad rows are listed by line."""
    if not path.is_file():
        print(f"gateway patrons import: {path}: no such file", file=sys.stderr)
        return 1
    report = local_directory(settings).import_csv(path)
    for problem in report.problems:
        print(problem, file=out)
    print(f"{report.imported} patrons imported", file=out)
    return 0 if report.imported or not report.problems else 1


def set_status(settings: Settings, card: str, status: PatronStatus, out: TextIO) -> int:
    """``gateway patrons block|unblock``: the card's sessions end at once, on every instance.
    A federated patron (``oidc:campus:<id>``) is in no directory: the mark in Redis alone."""
    if is_account(card, settings):
        print(f"{card} is now {status.value}", file=out)
        _live_sessions(settings, card, lambda store, pid: _mark(store, pid, status), out)
        return 0
    try:
        patron = local_directory(settings).set_status(card, status)
    except KeyError:
        print(f"gateway patrons: no patron with card {card}", file=sys.stderr)
        return 1
    print(f"card {patron.card} is now {patron.status.value}", file=out)
    _live_sessions(settings, card, lambda store, pid: _mark(store, pid, status), out)
    return 0


def _live_sessions(settings: Settings, card: str, change: SessionChange, out: TextIO) -> None:
    """Apply ``change`` to the card's live sessions, on every instance (through Redis)."""
    pid = Keyring(secret_key(settings)).pseudonym(card)
    try:
        ended = asyncio.run(_with_sessions(settings, pid, change))
    except (OSError, RuntimeError, *REDIS_ERRORS) as exc:
        print(f"gateway patrons: Redis not reached ({type(exc).__name__}); live sessions of the "
              "card end at their expiry", file=sys.stderr)  # fmt: skip
        return
    if ended:
        print(f"{ended} live sessions ended", file=out)


def redis_url(settings: Settings) -> str:
    """The configured Redis, or the embedded one a running gateway started."""
    if not settings.redis.embedded:
        return settings.redis.url
    url_file = settings.state_path / "redis" / "url"
    if not url_file.exists():
        raise RuntimeError("no gateway is running with an embedded Redis")
    return url_file.read_text().strip()


async def _with_sessions(settings: Settings, pid: str, change: SessionChange) -> int:
    client = connect(redis_url(settings), settings.redis)
    try:
        return await change(SessionStore(client, settings.sessions), pid)
    finally:
        await client.aclose()


async def _mark(sessions: SessionStore, pid: str, status: PatronStatus) -> int:
    """Block the card's sessions (ended now, refused from now on) or lift the block."""
    if status is PatronStatus.BLOCKED:
        return await sessions.block(pid)
    await sessions.unblock(pid)
    return 0


def list_patrons(
    settings: Settings, status: PatronStatus | None, must_change: bool | None, out: TextIO
) -> int:
    """``gateway patrons list``: one line a patron (card, status, must-change, name)."""
    found = local_directory(settings).patrons(status, must_change)
    for patron in found:
        flag = "must change PIN" if patron.must_change_pin else "-"
        line = f"{patron.card}  {patron.status.value:<8} {flag:<16} {patron.name}"
        print(line.rstrip(), file=out)
    print(f"{len(found)} patrons", file=out)
    return 0


def remove(settings: Settings, card: str, out: TextIO) -> int:
    """``gateway patrons remove``: the card is deleted and its live sessions end."""
    try:
        local_directory(settings).remove(card)
    except KeyError:
        print(f"gateway patrons: no patron with card {card}", file=sys.stderr)
        return 1
    print(f"card {card} removed", file=out)
    _live_sessions(settings, card, lambda store, pid: store.end_all(pid), out)
    return 0


def show(settings: Settings, card: str, out: TextIO) -> int:
    """``gateway patrons show``."""
    patron = local_directory(settings).get(card)
    if patron is None:
        print(f"gateway patrons: no patron with card {card}", file=sys.stderr)
        return 1
    describe(patron, out)
    return 0


def random_pin(card: str) -> str:
    """A random PIN the policy accepts."""
    while True:
        pin = f"{secrets.randbelow(10000):04d}"
        if check_pin(pin, card) is None:
            return pin


def reset_pin(settings: Settings, card: str, out: TextIO) -> int:
    """``gateway patrons reset-pin``: a new PIN to hand over; the patron must change it."""
    pin = random_pin(card)
    try:
        local_directory(settings).set_pin(card, pin, must_change=True)
    except KeyError:
        print(f"gateway patrons: no patron with card {card}", file=sys.stderr)
        return 1
    print(f"New PIN for card {card}: {pin}", file=out)
    print("Give it to the patron; they must choose their own PIN right after logging in.", file=out)
    return 0


def ensure_demo_patron(settings: Settings) -> tuple[str, str]:
    """The demo card for ``serve --demo``, created with its PIN when missing."""
    directory = local_directory(settings)
    if directory.get(DEMO_CARD) is None:
        directory.add(DEMO_CARD, DEMO_PIN, name="Demo Patron", groups="Default")
    return DEMO_CARD, DEMO_PIN
