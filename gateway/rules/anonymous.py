"""EZproxy's AnonymousURL: which URLs pass without a session (pure)."""

from __future__ import annotations

import fnmatch
import re
from functools import cache

from gateway.rules.model import Database


@cache
def _pattern(glob: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(glob), re.IGNORECASE)


def anonymous_allowed(database: Database, url: str, method: str) -> bool:
    """Whether ``url`` may be fetched without a session: the first matching rule decides."""
    for rule in database.anonymous:
        if rule.methods and method.upper() not in rule.methods:
            continue
        if _pattern(rule.pattern).fullmatch(url):
            return rule.allow
    return False
