"""After every proxied request: count it (session, monthly report, limits) and act on limits.

A limit passed is a *trip*: it is kept in Redis for the console (with what was counted), goes
into the audit log, and its action runs: log only; suspend the session or the card (the proxy
then shows the suspension page); or block the card, end its other sessions and suspend this
one with the "blocked" explanation. ``-notify`` mails staff and calls the webhook with the
evidence, in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from html import escape
from typing import Any

import aiohttp
from redis.asyncio import Redis

from gateway.audit import AuditLog
from gateway.auth.directory import PatronDirectory, PatronStatus
from gateway.background import Background
from gateway.config import Settings
from gateway.limits import (
    Action,
    Limit,
    Metric,
    Per,
    is_download,
    network_of,
    parse_usage_limit,
)
from gateway.mail import Mailer, Message
from gateway.redis_client import REDIS_ERRORS
from gateway.redis_keys import PREFIX, text
from gateway.sessions import Session, SessionStore
from gateway.usage import report
from gateway.usage.counters import Counters, Over, Use

log = logging.getLogger(__name__)

TRIPS = f"{PREFIX}:usage:trips"
KEEP_TRIPS = 1000
AT_RESPONSE = frozenset({Metric.TRANSFERS, Metric.DOWNLOADS, Metric.NETWORKS})
AFTER_BODY = frozenset({Metric.MB})
"""Requests, downloads and networks count as a response starts; bytes once it is sent."""
FOREVER = float("inf")


def configured_limits(settings: Settings) -> tuple[Limit, ...]:
    """The limits in the configuration file (checked when it was loaded)."""
    parsed = map(parse_usage_limit, settings.usage.limits)
    return tuple(limit for limit in parsed if isinstance(limit, Limit))


@dataclass(frozen=True)
class Trip:
    """A limit passed, with its evidence, as the console lists it."""

    id: str
    time: float
    limit: str
    per: str
    action: str
    patron: str
    session: str
    card: str
    address: str
    database: str
    evidence: list[dict[str, Any]]
    until: float
    lifted_by: str = ""

    def active(self, now: float) -> bool:
        """Whether its suspension or block still holds."""
        return not self.lifted_by and self.action != Action.LOG.value and self.until > now

    def as_dict(self, now: float, *, show_card: bool = True) -> dict[str, Any]:
        """Plain values for JSON as of ``now`` (the card only for roles that may see it)."""
        data = dict(self.__dict__)
        data["card"] = self.card if show_card else None
        data["until"] = None if self.until == FOREVER else self.until
        data["active"] = self.active(now)
        return data


def _trip(raw: object) -> Trip | None:
    """A trip as stored, or None for one Redis has let go."""
    if raw is None:
        return None
    data = json.loads(text(raw))
    data["until"] = float(data["until"])
    return Trip(**data)


class Tracker:
    """Counts proxied requests and enforces usage limits."""

    def __init__(
        self, redis: Redis, settings: Settings, sessions: SessionStore, audit: AuditLog,
        mailer: Mailer, directory: PatronDirectory, background: Background,
    ) -> None:  # fmt: skip
        self.background = background
        self.clock = sessions.clock
        """The sessions' clock: usage windows and suspensions keep the same time."""
        self.redis = redis
        self.settings = settings
        self.sessions = sessions
        self.audit = audit
        self.mailer = mailer
        self.directory = directory
        self.counters = Counters(redis)
        self.limits = configured_limits(settings)
        self.download_types = frozenset(t.lower() for t in settings.usage.download_types)
        self.pending = report.Pending()
        self.session_use: dict[str, list[Any]] = {}
        """Session hash -> [bytes, requests, databases] since the last flush."""

    async def flush(self) -> None:
        """Write the counts gathered here to Redis, in one round trip."""
        if not self.session_use and not self.pending.counts:
            return
        pending, self.pending = self.pending, report.Pending()
        sessions, self.session_use = self.session_use, {}
        async with self.redis.pipeline(transaction=False) as pipe:
            for key_hash, (size, requests, databases) in sessions.items():
                self.sessions.record_use(pipe, key_hash, size, requests, databases)
            pending.queue(pipe, self.settings.usage.report_months)
            await pipe.execute()

    async def flush_every(self, seconds: float) -> None:
        """Flush until cancelled (and once more then, so nothing counted is lost)."""
        try:
            while True:
                await asyncio.sleep(seconds)
                try:
                    await self.flush()
                except REDIS_ERRORS as exc:
                    log.warning("usage counts not written, Redis: %s", exc)
        finally:
            with contextlib.suppress(*REDIS_ERRORS):
                await self.flush()

    def is_download(self, content_type: str) -> bool:
        """Whether a response of this type counts as a download (reports, -downloads=)."""
        return is_download(content_type, self.download_types)

    async def at_response(
        self, session: Session | None, database: str, db_limits: tuple[Limit, ...],
        address: str, download: bool,
    ) -> str | None:  # fmt: skip
        """Count a transfer (and a download, and the network) as its response starts.

        Returns why the body must not go out (a limit that suspends or blocks is passed,
        by this request or one in flight beside it), or None. Counting before the body
        keeps a fast, parallel harvester to the threshold exactly."""
        if session is None or not (self.limits or db_limits):
            return None
        limits = [*self.limits, *db_limits]
        now = self.clock()
        use = Use(0, download, network_of(address))
        passed, over = await self.counters.count(
            limits, session.hash, session.pid, use, now, AT_RESPONSE
        )
        for tripped in passed:
            await self._act(tripped, session, database, address, now)
        enforced = [limit.action for limit in over if limit.action is not Action.LOG]
        if not enforced:
            return None
        return "blocked" if Action.BLOCK in enforced else "limit"

    async def after_request(
        self, session: Session | None, database: str, db_limits: tuple[Limit, ...],
        address: str, size: int, download: bool,
    ) -> None:  # fmt: skip
        """Count a delivered response: session and monthly counts, and megabytes."""
        now = self.clock()
        self.pending.add(now, database, session.pid if session else "",
                         session.hash if session else "", size, download)  # fmt: skip
        if session is not None:
            used = self.session_use.setdefault(session.hash, [0, 0, set()])
            used[0] += size
            used[1] += 1
            used[2].add(database)
        if session is None or not (self.limits or db_limits):
            return
        use = Use(size, download, network_of(address))
        passed, _ = await self.counters.count(
            [*self.limits, *db_limits], session.hash, session.pid, use, now, AFTER_BODY
        )
        for tripped in passed:
            await self._act(tripped, session, database, address, now)

    async def _act(
        self, over: Over, session: Session, database: str, address: str, now: float
    ) -> None:
        limit = over.limit
        until = now + limit.expires if limit.expires else FOREVER
        if limit.action is Action.BLOCK:
            until = FOREVER
        trip = Trip(
            id=secrets.token_hex(6), time=now, limit=limit.name, per=limit.per.value,
            action=limit.action.value, patron=session.pid, session=session.hash,
            card=session.card, address=address, database=database,
            evidence=[{"metric": m.value, "count": c, "allowed": a} for m, c, a in over.found],
            until=until,
        )  # fmt: skip
        await self._store(trip)
        await self.redis.zadd(TRIPS, {trip.id: now})
        await self.redis.zremrangebyrank(TRIPS, 0, -KEEP_TRIPS - 1)
        summary = ", ".join(f"{e['metric']} {e['count']} > {e['allowed']}" for e in trip.evidence)
        log.warning("usage limit %s passed by patron=%s: %s; %s", limit.name, session.pid,
                    summary, limit.action.value)  # fmt: skip
        await self.audit.record(
            "limit_tripped", "", session.pid, limit=limit.name, per=limit.per.value,
            action=limit.action.value, evidence=trip.evidence, database=database,
            address=address, trip=trip.id,
        )  # fmt: skip
        if limit.action is Action.SUSPEND:
            if limit.per is Per.SESSION:
                await self.sessions.suspend(session.hash, until, "limit")
            else:
                await self.sessions.suspend_card(session.pid, until, "limit")
        elif limit.action is Action.BLOCK:
            ended = await self.sessions.block(session.pid, keep=session.hash)
            await self.sessions.suspend(session.hash, FOREVER, "blocked")
            await self.directory.note_status(session.card, PatronStatus.BLOCKED)
            await self.audit.record("card_blocked", "system", session.pid, limit=limit.name,
                                    sessions_ended=ended, trip=trip.id)  # fmt: skip
        if limit.notify:
            self.background.run(self._notify(trip, summary))

    async def _notify(self, trip: Trip, summary: str) -> None:
        console = f"{self.settings.admin_url}/limits"
        lines = [
            f"Usage limit {trip.limit} was passed ({summary}).",
            f"Action: {trip.action}. Patron (pseudonym): {trip.patron}. Address: {trip.address}.",
            f"Database: {trip.database}. Time: {time.strftime('%Y-%m-%d %H:%M:%S UTC')}.",
            f"See and lift it in the console: {console}",
        ]
        body = "\n".join(lines)
        html = f"<!doctype html><html><body><pre>{escape(body)}</pre></body></html>"
        subject = f"Carrel: usage limit {trip.limit} passed ({trip.action})"
        mailed = 0
        for address in self.settings.usage.notify_email:
            mailed += await self.mailer.send(Message(address, subject, body, html))
        webhook = await self._webhook(trip, console) if self.settings.usage.webhook else ""
        await self.audit.record("staff_notified", "", trip.patron, trip=trip.id, limit=trip.limit,
                                emails_sent=mailed, webhook=webhook)  # fmt: skip

    async def _webhook(self, trip: Trip, console: str) -> str:
        """POST the evidence; what came of it, for the audit."""
        payload = {"event": "usage_limit", "console": console,
                   **trip.as_dict(self.clock(), show_card=False)}  # fmt: skip
        try:
            timeout = aiohttp.ClientTimeout(total=10)
            async with (
                aiohttp.ClientSession(timeout=timeout) as client,
                client.post(self.settings.usage.webhook, json=payload) as answer,
            ):
                return f"HTTP {answer.status}"
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.warning("usage webhook failed: %s", type(exc).__name__)
            return f"failed: {type(exc).__name__}"

    async def _store(self, trip: Trip) -> None:
        await self.redis.hset(f"{TRIPS}:{trip.id}", "data", json.dumps(trip.__dict__))
        await self.redis.expire(f"{TRIPS}:{trip.id}", 366 * 86400)

    async def trips(self, limit: int = 200) -> list[Trip]:
        """The latest trips, newest first."""
        ids = [text(i) for i in await self.redis.zrevrange(TRIPS, 0, limit - 1)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for trip_id in ids:
                pipe.hget(f"{TRIPS}:{trip_id}", "data")
            stored = await pipe.execute()
        return [trip for trip in map(_trip, stored) if trip is not None]

    async def trip(self, trip_id: str) -> Trip | None:
        """One trip by id."""
        return _trip(await self.redis.hget(f"{TRIPS}:{trip_id}", "data"))

    async def lift(self, trip: Trip, staff: str) -> None:
        """Undo a trip's action: resume the session or card, unblock, start counting again."""
        if trip.action == Action.BLOCK.value:
            await self.sessions.unblock(trip.patron)
            await self.directory.note_status(trip.card, PatronStatus.ACTIVE)
            await self.sessions.resume(trip.session)
        elif trip.per == Per.SESSION.value:
            await self.sessions.resume(trip.session)
        else:
            await self.sessions.resume_card(trip.patron)
        subject = trip.session if trip.per == Per.SESSION.value else trip.patron
        every_metric = [m.value for m in Metric]  # the limit may have changed since: clear all
        await self.counters.forget(Per(trip.per), subject, trip.limit, every_metric)
        await self._store(Trip(**{**trip.__dict__, "lifted_by": staff}))
        await self.audit.record("limit_lifted", staff, trip.patron, limit=trip.limit, trip=trip.id)
