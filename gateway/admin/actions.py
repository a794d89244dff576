"""What staff do to sessions and cards, for the console's pages and its API alike.

Each action does its work through the same stores the patrons' side uses (so a block ends
sessions on every instance at once) and leaves an audit entry.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.admin.access import STAFF, STAFF_STORE
from gateway.admin.staff import Staff, StaffError, generate_password
from gateway.appkeys import (
    AUDIT,
    DIRECTORY,
    KEYRING,
    LOCKOUTS,
    SESSIONS,
    SETTINGS,
    TRACKER,
)
from gateway.audit import AuditLog
from gateway.auth.commands import random_pin
from gateway.auth.directory import PatronStatus
from gateway.auth.signin import is_account
from gateway.sessions import Session


class CannotDo(Exception):
    """An action this gateway cannot take (the message says why, for staff)."""


def _who(request: web.Request) -> tuple[Staff, AuditLog]:
    return request[STAFF], request.config_dict[AUDIT]


def session_view(session: Session, show_card: bool) -> dict[str, Any]:
    """A session as the console shows it (the card only for roles that may see it)."""
    return {
        "id": session.hash,
        "patron": session.pid,
        "card": session.card if show_card else None,
        "started": session.created,
        "last_activity": session.last,
        "address": session.address,
        "bytes": session.bytes,
        "requests": session.requests,
        "databases": sorted(session.databases),
        "method": session.method,
    }


def may_see_cards(request: web.Request) -> bool:
    """Whether this staff member's role sees card numbers."""
    return request[STAFF].role.value in request.config_dict[SETTINGS].admin.see_cards


async def live_sessions(request: web.Request) -> list[dict[str, Any]]:
    """Every live session, newest first."""
    show = may_see_cards(request)
    return [session_view(s, show) for s in await request.config_dict[SESSIONS].live()]


async def end_session(request: web.Request, key_hash: str) -> bool:
    """End one session by its id; False when it is not live."""
    sessions = request.config_dict[SESSIONS]
    found = await sessions.find(key_hash) if len(key_hash) == 64 else None
    if found is None:
        return False
    await sessions.end(key_hash, found.pid)
    staff, audit = _who(request)
    await audit.record("session_ended", staff.user, found.pid, session=key_hash[:12])
    return True


def pseudonym(request: web.Request, card: str) -> str:
    """The card's pseudonym (what sessions, logs and the audit know it by)."""
    return request.config_dict[KEYRING].pseudonym(card)


async def end_card_sessions(request: web.Request, card: str) -> int:
    """End every session of a card."""
    pid = pseudonym(request, card)
    ended = await request.config_dict[SESSIONS].end_all(pid)
    staff, audit = _who(request)
    await audit.record("card_sessions_ended", staff.user, pid, ended=ended)
    return ended


async def block_card(request: web.Request, card: str) -> int:
    """Block a card: no new sessions, and its live ones end now, on every instance."""
    pid = pseudonym(request, card)
    ended = await request.config_dict[SESSIONS].block(pid)
    await request.config_dict[DIRECTORY].note_status(card, PatronStatus.BLOCKED)
    staff, audit = _who(request)
    await audit.record("card_blocked", staff.user, pid, sessions_ended=ended)
    return ended


async def unblock_card(request: web.Request, card: str) -> None:
    """Lift a block set here or with ``gateway patrons block``."""
    pid = pseudonym(request, card)
    await request.config_dict[SESSIONS].unblock(pid)
    await request.config_dict[DIRECTORY].note_status(card, PatronStatus.ACTIVE)
    staff, audit = _who(request)
    await audit.record("card_unblocked", staff.user, pid)


async def unlock_card(request: web.Request, card: str) -> None:
    """Lift a lock that wrong PINs put on a card."""
    await request.config_dict[LOCKOUTS].unlock(card)
    staff, audit = _who(request)
    await audit.record("card_unlocked", staff.user, pseudonym(request, card))


async def reset_pin(request: web.Request, card: str) -> str:
    """The desk reset (as ``gateway patrons reset-pin``): a new PIN the patron must change."""
    directory = request.config_dict[DIRECTORY]
    if not directory.can_change_pin:
        raise CannotDo("PINs are kept in the library system; reset the PIN there")
    pin = random_pin(card)
    try:
        await directory.change_pin(card, pin, must_change=True)
    except KeyError:
        raise CannotDo("there is no patron with this card") from None
    staff, audit = _who(request)
    await audit.record("pin_reset", staff.user, pseudonym(request, card))
    return pin


@dataclass(frozen=True)
class CardState:
    """What the desk needs to know about a card."""

    card: str
    patron: str
    known: bool
    name: str
    status: str
    blocked: bool
    locked: bool
    sessions: list[dict[str, Any]]

    def as_dict(self) -> dict[str, Any]:
        """Plain values for JSON."""
        return dict(self.__dict__)


def patron_name(request: web.Request, value: str) -> bool:
    """Whether ``value`` is a card number the directory could hold, or a patron of a
    federated sign-in method (``oidc:campus:<id>``): what the card actions accept."""
    directory = request.config_dict[DIRECTORY]
    return bool(directory.card_pattern.fullmatch(value)) or federated(request, value)


def federated(request: web.Request, value: str) -> bool:
    """Whether ``value`` names a patron of a federated method (no directory, no PIN)."""
    return is_account(value, request.config_dict[SETTINGS])


FEDERATED_ACTIONS = frozenset({"block", "unblock", "end_sessions"})
"""What can be done to a federated patron: no PIN to reset, no PIN lock to lift."""


async def card_state(request: web.Request, card: str) -> CardState:
    """A card's standing: directory record, block mark, lock, live sessions."""
    pid = pseudonym(request, card)
    sessions = request.config_dict[SESSIONS]
    # A federated patron is in no directory (and an ILS is not asked about one).
    patron = None if federated(request, card) else await request.config_dict[DIRECTORY].lookup(card)
    return CardState(
        card=card,
        patron=pid,
        known=patron is not None,
        name=patron.name if patron else "",
        status=patron.status.value if patron else "",
        blocked=await sessions.is_blocked(pid),
        locked=await request.config_dict[LOCKOUTS].locked(card),
        sessions=[session_view(s, True) for s in await sessions.of_card(pid)],
    )


async def limits_view(request: web.Request) -> dict[str, Any]:
    """Limits passed (newest first) and the sessions a limit has paused."""
    show = may_see_cards(request)
    now = request.config_dict[SESSIONS].clock()
    trips = await request.config_dict[TRACKER].trips()
    paused = [s for s in await request.config_dict[SESSIONS].live() if s.suspended_until > now]
    return {
        "trips": [t.as_dict(now, show_card=show) for t in trips],
        "suspended": [
            {**session_view(s, show), "until": None if s.suspended_until == float("inf")
             else s.suspended_until, "reason": s.suspended_reason}
            for s in paused
        ],
    }  # fmt: skip


async def lift_trip(request: web.Request, trip_id: str) -> bool:
    """Lift what a limit did (suspension or block); False when there is no such trip."""
    tracker = request.config_dict[TRACKER]
    trip = await tracker.trip(trip_id) if trip_id.isalnum() and len(trip_id) <= 32 else None
    if trip is None:
        return False
    await tracker.lift(trip, request[STAFF].user)
    return True


async def manage_staff(request: web.Request, action: str, user: str, role: str = "") -> str:
    """Add, disable, enable an account or give it a new password; returns a new password (or "").

    ``StaffError`` says why not; nobody disables their own account."""
    store = request.config_dict[STAFF_STORE]
    me, audit = _who(request)
    if user == me.user and action != "add":
        raise StaffError("use `gateway staff` to change your own account")
    password = ""
    if action == "add":
        password = generate_password()
        await asyncio.to_thread(store.add, user, role, password)
    elif action in ("disable", "enable"):
        await asyncio.to_thread(store.set_disabled, user, action == "disable")
    elif action == "password":
        password = generate_password()
        await asyncio.to_thread(store.set_password, user, password)
    else:
        raise StaffError(f"unknown action {action!r}")
    kinds = {"add": "staff_added", "disable": "staff_disabled", "enable": "staff_enabled",
             "password": "staff_password_set"}  # fmt: skip
    await audit.record(kinds[action], me.user, account=user, role=role)
    return password
