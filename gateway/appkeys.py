"""Typed application state (``web.AppKey``), shared by the handlers of every sub-application."""

from __future__ import annotations

import logging

import aiohttp
from aiohttp import web
from redis.asyncio import Redis

from gateway.admin.audit import AuditLog
from gateway.auth.directory import PatronDirectory
from gateway.auth.lockout import Lockouts
from gateway.auth.reset import ResetTokens
from gateway.auth.secrets import Keyring
from gateway.config import Settings
from gateway.handover import Handovers
from gateway.mail import Mailer
from gateway.metrics import Metrics
from gateway.proxy.jar_store import JarStore
from gateway.rules.loader import RuleStore
from gateway.sessions import SessionStore
from gateway.usage.tracker import Tracker

SETTINGS = web.AppKey("settings", Settings)
REDIS = web.AppKey("redis", Redis)
RULES = web.AppKey("rules", RuleStore)
SECRET = web.AppKey("secret", bytes)
KEYRING = web.AppKey("keyring", Keyring)
DIRECTORY = web.AppKey("directory", PatronDirectory)
SESSIONS = web.AppKey("sessions", SessionStore)
LOCKOUTS = web.AppKey("lockouts", Lockouts)
UPSTREAM = web.AppKey("upstream", aiohttp.ClientSession)
JARS = web.AppKey("jars", JarStore)
ACCESS_LOG = web.AppKey("access-log", logging.Logger)
MAILER = web.AppKey("mailer", Mailer)
RESETS = web.AppKey("resets", ResetTokens)
METRICS = web.AppKey("metrics", Metrics)
AUDIT = web.AppKey("audit", AuditLog)
TRACKER = web.AppKey("tracker", Tracker)
SPU_LOG = web.AppKey("spu-log", logging.Logger)
HANDOVERS = web.AppKey("handovers", Handovers)
