"""Typed application state (``web.AppKey``), shared by the handlers of every sub-application."""

from __future__ import annotations

from aiohttp import web
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.rules.loader import RuleStore

SETTINGS = web.AppKey("settings", Settings)
REDIS = web.AppKey("redis", Redis)
RULES = web.AppKey("rules", RuleStore)
SECRET = web.AppKey("secret", bytes)
