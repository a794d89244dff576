"""The gateway's Redis namespace: every key it writes starts with ``PREFIX``, and every module
that names a key imports it from here (sessions, lockouts, reset tokens, hand-over codes,
audit, metrics, usage, rule sharing), so that no module depends on another for a name.
"""

from __future__ import annotations

PREFIX = "carrel"


def text(value: object) -> str:
    """A Redis reply (bytes or str) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
