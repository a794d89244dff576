"""The gateway's Redis namespace: every key it writes starts with ``PREFIX``, and every module
that names a key imports it from here (sessions, lockouts, reset tokens, hand-over codes,
audit, metrics, usage, rule sharing), so that no module depends on another for a name.
"""

from __future__ import annotations

import hashlib

PREFIX = "carrel"
SIGNIN_FLOW = f"{PREFIX}:signin-flow"
"""A federated sign-in under way, ``SIGNIN_FLOW:<sha256 of its state>``: PKCE verifier, nonce,
where the patron was going; single use (``GETDEL``), gone after ``signin.flow_timeout``."""
SIGNIN_POSTED = f"{PREFIX}:signin-posted"
"""A provider's cross-site POST (SAML's Response) held for the browser's next, same-site step,
``SIGNIN_POSTED:<sha256 of the flow's state>``; single use, gone after a minute."""
SIGNIN_ASSERTION = f"{PREFIX}:signin-assertion"
"""A SAML assertion already used, ``SIGNIN_ASSERTION:<sha256 of provider and assertion id>``,
kept until the assertion's NotOnOrAfter: a response is accepted once."""
SIGNIN_STARTS = f"{PREFIX}:signin-starts"
"""Sign-ins started per client address, ``SIGNIN_STARTS:<keyed hash of the address>``."""


def text(value: object) -> str:
    """A Redis reply (bytes or str) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:24]


ESCAPED_DATABASES = f"{PREFIX}:escaped:databases"
"""Sorted set: the databases with escaped hosts, by when one was last reported."""


def escaped_tag(database: str) -> str:
    """The hash tag shared by every key of one database's escaped hosts (one Lua call may
    touch them all on Redis Cluster); the title is hashed, as it may hold any character."""
    return f"{PREFIX}:{{escaped:{_digest(database)}}}"


def escaped_rate(subject: str) -> str:
    """The counter of reports from one session cookie or client address (hashed: the key
    names neither)."""
    return f"{PREFIX}:escaped-rate:{_digest(subject)}"
