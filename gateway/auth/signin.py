"""Federated sign-in, whatever the method (OpenID Connect, CAS and SAML now; LDAP later): what a
method offers the login page, what it hands back, and the flows under way, kept in Redis.

Every method ends as card + PIN does: a patron id (pseudonymised for logs, as cards are),
groups, and a session like any other. A redirect method (OIDC, SAML, CAS) leaves the gateway
for the provider and comes back to a callback; what it must remember across that round trip
(the ``state``, the PKCE verifier, the nonce, the patron's starting point) is kept server-side
in Redis under a hash of the ``state``, used once, and never taken from the provider.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from redis.asyncio import Redis

from gateway.config import LIST_SECTIONS, Settings
from gateway.redis_keys import SIGNIN_FLOW, SIGNIN_POSTED, SIGNIN_STARTS

GROUP_NAME = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
"""What a group taken from a provider may be called: a name the rules' ``Group`` line can
write, nothing that would break the session's comma-separated list."""
MAX_GROUPS = 64


class SigninUnavailable(Exception):
    """The provider cannot be reached or does not answer properly: the friendly 503, never
    access."""


class SigninRefused(Exception):
    """The provider's answer is not to be believed (bad state, token, signature...). The
    message is for the log, never for the page: the patron gets one plain page."""


@dataclass(frozen=True)
class Identity:
    """Who a provider says the patron is, as a session needs it."""

    method: str
    """The method and provider, ``oidc:campus``: shown in the console's sessions list."""
    patron_id: str
    """The configured claim's value (``sub`` by default); pseudonymised for logs."""
    groups: frozenset[str]


def identity_from_claims(
    method: str, claims: Mapping[str, Any], patron_id_claim: str, groups_claim: str
) -> Identity:
    """The patron id and groups from a provider's claims.

    This is where attribute rules (EZproxy's ``shibuser.txt``: conditions on claims that add
    groups, deny, or pick the id) will plug in; for now the id is one configured claim and the
    groups, when ``groups_claim`` is set, that claim's values (every patron is in ``Default``
    otherwise, as a card is)."""
    value = claims.get(patron_id_claim)
    if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
        raise SigninRefused(f"claim {patron_id_claim!r} is missing or not a string")
    if not groups_claim:
        return Identity(method, str(value), frozenset({"Default"}))
    raw = claims.get(groups_claim, [])
    values = [raw] if isinstance(raw, str) else raw if isinstance(raw, list) else []
    groups = frozenset(v for v in values if isinstance(v, str) and GROUP_NAME.fullmatch(v))
    return Identity(method, str(value), frozenset(sorted(groups)[:MAX_GROUPS]))


class SigninMethod(Protocol):
    """A way to sign in that the login page offers as a button (a redirect method)."""

    id: str
    """Unique among all methods: in ``/signin/<id>`` and ``/signin/<id>/callback``."""
    kind: str
    """``oidc``, ``cas`` or ``saml``."""

    def label(self, lang: str) -> str:
        """The provider's display name in ``lang`` ("Sign in with <label>")."""
        ...

    async def prepare(self) -> None:
        """Fetch what the method needs before its first sign-in (a provider's metadata);
        ``SigninUnavailable`` when the provider cannot be reached (it is asked again later)."""
        ...

    def form_origins(self) -> tuple[str, ...]:
        """Origins the login page's button may lead to (the provider's sign-in page)."""
        ...

    async def close(self) -> None:
        """Release what the method holds (its HTTP client)."""
        ...

    async def begin(self, flow: Flow, redirect_uri: str) -> str:
        """The provider's URL to send the patron to for ``flow``; ``SigninUnavailable`` when
        the provider cannot be reached."""
        ...

    async def finish(self, flow: Flow, redirect_uri: str, query: Mapping[str, str]) -> Identity:
        """The patron's identity from the provider's answer at the callback (``query``: its
        query string, and the fields of a POST the ACS held for it, SAML's ``SAMLResponse``),
        for a flow already taken from the store; ``SigninRefused`` or ``SigninUnavailable``."""
        ...


ACCOUNT = re.compile(r"([a-z]+):([a-z0-9-]{1,32}):([!-~]{1,256})")
"""A federated patron as sessions, the console and blocks name it: ``oidc:campus:<id>``."""


def method_kinds(settings: Settings) -> dict[str, str]:
    """Every configured federated method's id and kind (``{"campus": "oidc"}``)."""
    return {provider.id: kind for kind in LIST_SECTIONS for provider in getattr(settings, kind)}


def is_account(value: str, settings: Settings) -> bool:
    """Whether ``value`` names a patron of a configured federated method
    (``<kind>:<id>:<patron id>``), as blocks and the console's card actions accept it."""
    match = ACCOUNT.fullmatch(value)
    return match is not None and method_kinds(settings).get(match[2]) == match[1]


def token_hash(value: str) -> str:
    """What Redis and the flow keep of a random value handed to the browser."""
    return hashlib.sha256(value.encode()).hexdigest()


@dataclass(frozen=True)
class Flow:
    """One sign-in under way: what the callback needs, kept server-side."""

    provider: str
    state: str
    nonce: str
    verifier: str
    """The PKCE code verifier (RFC 7636); the provider only ever sees its S256 challenge."""
    target: str
    """Where the patron was going (``qurl``/``url``), checked again by the rules at the end."""
    browser: str
    """A hash of the random value in the browser's sign-in cookie: a callback opened in another
    browser (login CSRF: an attacker's own code and state) does not match."""

    @classmethod
    def new(cls, provider: str, target: str, browser_value: str) -> Flow:
        """A fresh flow with random state, nonce and verifier (256 bits each)."""
        return cls(provider, secrets.token_urlsafe(32), secrets.token_urlsafe(32),
                   secrets.token_urlsafe(48), target, token_hash(browser_value))  # fmt: skip


POSTED_TIMEOUT = 60
"""Seconds a provider's posted answer is held for the browser's next step (a redirect)."""


class Flows:
    """Sign-ins under way, in Redis: single use, short-lived."""

    def __init__(self, redis: Redis, timeout: int, per_address: int) -> None:
        self.redis = redis
        self.timeout = timeout
        self.per_address = per_address

    async def may_start(self, address_key: str) -> bool:
        """Count a sign-in started from an address (its keyed hash); False past the cap. Each
        start keeps a flow in Redis for ``timeout`` seconds, so the starts are capped too."""
        key = f"{SIGNIN_STARTS}:{address_key}"
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(key, 0, ex=self.timeout, nx=True)  # the window starts at the first
            pipe.incr(key)  # INCR keeps the TTL (EXPIRE NX needs Redis 7)
            _, count = await pipe.execute()
        return int(count) <= self.per_address

    @staticmethod
    def key(state: str) -> str:
        """The Redis key of the flow with this ``state``."""
        return f"{SIGNIN_FLOW}:{token_hash(state)}"

    async def put(self, flow: Flow) -> None:
        """Keep ``flow`` until it is taken or ``timeout`` seconds have passed."""
        await self.redis.set(self.key(flow.state), json.dumps(asdict(flow)), ex=self.timeout)

    async def take(self, state: str) -> Flow | None:
        """The flow with this ``state``, removed as it is read (``GETDEL``: of two callbacks
        with one state, only one gets it); None when unknown, used or expired."""
        if not state or len(state) > 200:
            return None
        raw = await self.redis.getdel(self.key(state))
        if raw is None:
            return None
        data = json.loads(raw)
        return Flow(**{k: str(data[k]) for k in Flow.__dataclass_fields__})

    async def hold(self, state: str, fields: Mapping[str, str]) -> bool:
        """Keep a provider's cross-site POST for the flow with this ``state`` until the browser
        comes back with its sign-in cookie (``take_posted``); False, and nothing kept, when no
        such flow is under way. One answer per flow (a second replaces the first), so posts
        cannot fill Redis beyond the flows that ``may_start`` caps."""
        if not state or len(state) > 200 or not await self.redis.exists(self.key(state)):
            return False
        key = f"{SIGNIN_POSTED}:{token_hash(state)}"
        await self.redis.set(key, json.dumps(dict(fields)), ex=min(POSTED_TIMEOUT, self.timeout))
        return True

    async def take_posted(self, state: str) -> dict[str, str]:
        """The answer ``hold`` kept for this ``state``, removed as it is read; empty when none
        (every OIDC callback, or a SAML one whose POST never came)."""
        if not state or len(state) > 200:
            return {}
        raw = await self.redis.getdel(f"{SIGNIN_POSTED}:{token_hash(state)}")
        if raw is None:
            return {}
        data = json.loads(raw)
        return {str(k): str(v) for k, v in data.items()}
