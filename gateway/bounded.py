"""Memos whose keys come from outside (Host headers, page bytes, Redis rows) must stay bounded."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def remember(memo: dict[K, V], key: K, value: V, limit: int) -> V:
    """Store ``value`` under ``key`` and return it; a memo that reached ``limit`` entries is
    emptied first (cheaper than keeping an order, and a full memo is refilled in moments)."""
    if len(memo) >= limit:
        memo.clear()
    memo[key] = value
    return value
