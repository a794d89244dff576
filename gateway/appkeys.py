"""Typed application state (``web.AppKey``), shared by the handlers of every sub-application.

The types are imported for the type checker only: at run time this module depends on nothing
of the gateway's, so any module may use a key without depending on the console, the proxy or
the usage tracker that some key's type belongs to.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import aiohttp
    from redis.asyncio import Redis

    from gateway.audit import AuditLog
    from gateway.auth.directory import PatronDirectory
    from gateway.auth.lockout import Lockouts
    from gateway.auth.reset import ResetTokens
    from gateway.auth.secrets import Keyring
    from gateway.auth.signin import AnyMethod, Flows
    from gateway.background import Background
    from gateway.clock import Clock
    from gateway.config import Settings
    from gateway.escapes.store import EscapeStore
    from gateway.handover import Handovers
    from gateway.mail import Mailer
    from gateway.metrics import Metrics
    from gateway.proxy.jar_store import JarStore
    from gateway.rules.loader import RuleStore
    from gateway.sessions import SessionStore
    from gateway.usage.tracker import Tracker

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
REDIS: web.AppKey[Redis] = web.AppKey("redis")
RULES: web.AppKey[RuleStore] = web.AppKey("rules")
SECRET: web.AppKey[bytes] = web.AppKey("secret")
KEYRING: web.AppKey[Keyring] = web.AppKey("keyring")
DIRECTORY: web.AppKey[PatronDirectory] = web.AppKey("directory")
SESSIONS: web.AppKey[SessionStore] = web.AppKey("sessions")
LOCKOUTS: web.AppKey[Lockouts] = web.AppKey("lockouts")
UPSTREAM: web.AppKey[aiohttp.ClientSession] = web.AppKey("upstream")
JARS: web.AppKey[JarStore] = web.AppKey("jars")
ACCESS_LOG: web.AppKey[logging.Logger] = web.AppKey("access-log")
MAILER: web.AppKey[Mailer] = web.AppKey("mailer")
RESETS: web.AppKey[ResetTokens] = web.AppKey("resets")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
AUDIT: web.AppKey[AuditLog] = web.AppKey("audit")
TRACKER: web.AppKey[Tracker] = web.AppKey("tracker")
SPU_LOG: web.AppKey[logging.Logger] = web.AppKey("spu-log")
HANDOVERS: web.AppKey[Handovers] = web.AppKey("handovers")
BACKGROUND: web.AppKey[Background] = web.AppKey("background")
CLOCK: web.AppKey[Clock] = web.AppKey("clock")
ESCAPES: web.AppKey[EscapeStore] = web.AppKey("escapes")
SIGNIN_METHODS: web.AppKey[dict[str, AnyMethod]] = web.AppKey("signin-methods")
"""The federated sign-in methods by id, in the order the login page offers them."""
SIGNIN_FLOWS: web.AppKey[Flows] = web.AppKey("signin-flows")
