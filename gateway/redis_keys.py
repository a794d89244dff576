"""The gateway's Redis namespace: every key it writes starts with ``PREFIX``, and every module
that names a key imports it from here (sessions, lockouts, reset tokens, hand-over codes,
audit, metrics, usage, rule sharing), so that no module depends on another for a name.
"""

from __future__ import annotations

PREFIX = "carrel"
SIGNIN_FLOW = f"{PREFIX}:signin-flow"
"""A federated sign-in under way, ``SIGNIN_FLOW:<sha256 of its state>``: PKCE verifier, nonce,
where the patron was going; single use (``GETDEL``), gone after ``signin.flow_timeout``."""
SIGNIN_STARTS = f"{PREFIX}:signin-starts"
"""Sign-ins started per client address, ``SIGNIN_STARTS:<keyed hash of the address>``."""


def text(value: object) -> str:
    """A Redis reply (bytes or str) as text."""
    return value.decode() if isinstance(value, bytes) else str(value)
