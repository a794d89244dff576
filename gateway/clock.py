"""What time it is, passed in: the stores that keep time (sessions, reset tokens, usage windows)
take a clock, so that tests move time instead of waiting for it."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]
"""Seconds since the epoch, as ``time.time``."""
SYSTEM_CLOCK: Clock = time.time
