"""Federated sign-in, whatever the method (OpenID Connect, SAML, CAS and LDAP): what a
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
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from redis.asyncio import Redis

from gateway.auth.attribute_rules import Attributes, Policy, decide
from gateway.config import LIST_SECTIONS, Settings
from gateway.redis_keys import SIGNIN_FLOW, SIGNIN_POSTED, SIGNIN_STARTS

MAX_ATTRIBUTES = 256
"""Attributes, and values of one attribute, kept from a provider's answer at most."""
PATRON_ID = re.compile(r"[!-~]{1,256}")
"""What a patron id may be: what ``ACCOUNT`` (blocks, the console) can name."""


class SigninUnavailable(Exception):
    """The provider cannot be reached or does not answer properly: the friendly 503, never
    access."""


class SigninRefused(Exception):
    """The provider's answer is not to be believed (bad state, token, signature...). The
    message is for the log, never for the page: the patron gets one plain page."""


class WrongCredentials(SigninRefused):
    """A form method's username or password is not right (or no entry, or several, has that
    username): counted toward the lockout, as a wrong PIN is."""


@dataclass(frozen=True)
class Identity:
    """Who a provider says the patron is, as a session needs it."""

    method: str
    """The method and provider, ``oidc:campus``: shown in the console's sessions list."""
    patron_id: str
    """The configured claim's value (``sub`` by default); pseudonymised for logs."""
    groups: frozenset[str]


class SigninDenied(Exception):
    """The provider vouched for the patron, and an attribute rule's ``Deny`` refuses them: a
    page that says so (with the rule's message), never a session."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _text(value: Any) -> str | None:
    """One attribute value as text: strings, numbers and booleans as JSON writes them; a
    nested object (OIDC's ``address``) as compact JSON; None (nothing) for null."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def normalise(raw: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """A provider's answer (OIDC claims, SAML or LDAP attributes, CAS attributes) as the rules
    read it: each name's values, a list's items one by one, each as text; capped in number."""
    out: dict[str, tuple[str, ...]] = {}
    for name, value in list(raw.items())[:MAX_ATTRIBUTES]:
        items = value if isinstance(value, list | tuple) else [value]
        texts = (_text(item) for item in items[:MAX_ATTRIBUTES])
        out[str(name)] = tuple(t for t in texts if t is not None)
    return out


def identity_from_attributes(method: str, attributes: Attributes, policy: Policy) -> Identity:
    """The patron id and groups the provider's policy gives ``attributes`` (see
    ``gateway.auth.attribute_rules``): ``SigninDenied`` when a rule denies,
    ``SigninRefused`` when no attribute gives a usable patron id."""
    outcome = decide(policy, attributes)
    if outcome.denied:
        raise SigninDenied(outcome.message)
    if not PATRON_ID.fullmatch(outcome.patron_id):
        where = outcome.patron_id_from or policy.patron_id_attribute
        raise SigninRefused(f"attribute {where!r} gives no usable patron id")
    return Identity(method, outcome.patron_id, outcome.groups)


class SigninMethod(Protocol):
    """A way to sign in that the login page offers as a button (a redirect method)."""

    id: str
    """Unique among all methods: in ``/signin/<id>`` and ``/signin/<id>/callback``."""
    kind: str
    """``oidc``, ``cas`` or ``saml``."""
    policy: Policy
    """The provider's patron id and groups attributes and its attribute rules."""

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

    async def finish(self, flow: Flow, redirect_uri: str, query: Mapping[str, str]) -> Attributes:
        """The attributes the provider vouches for in its answer at the callback (``query``: its
        query string, and the fields of a POST the ACS held for it, SAML's ``SAMLResponse``),
        ``normalise``d, for a flow already taken from the store; ``SigninRefused`` or
        ``SigninUnavailable``. The caller applies ``policy`` (``identity_from_attributes``, or
        the console's test sign-in, which only shows the outcome)."""
        ...


@runtime_checkable
class PasswordMethod(Protocol):
    """A way to sign in that the login page offers as a username and password form (LDAP):
    nothing leaves the gateway for the patron's browser, so there is no flow and no callback.
    The form posts to ``/signin/<id>`` as a redirect method's button does."""

    id: str
    kind: str
    """``ldap``."""
    policy: Policy
    """The provider's patron id and groups attributes and its attribute rules."""

    def label(self, lang: str) -> str:
        """The provider's display name in ``lang`` (the form's heading)."""
        ...

    async def prepare(self) -> None:
        """Check once, at start, that the provider answers (``SigninUnavailable``: it is
        logged, and asked again at the first sign-in)."""
        ...

    def form_origins(self) -> tuple[str, ...]:
        """None: the form posts to the gateway itself."""
        ...

    async def close(self) -> None:
        """Release what the method holds."""
        ...

    async def check(self, username: str, password: str) -> Attributes:
        """The attributes of the user whose ``password`` this is, ``normalise``d;
        ``WrongCredentials`` for a wrong username or password, ``SigninUnavailable`` for a
        server in trouble. The caller applies ``policy``, as for a redirect method."""
        ...


AnyMethod = SigninMethod | PasswordMethod
"""What ``SIGNIN_METHODS`` holds: a redirect method or a form one, told apart by
``isinstance(method, PasswordMethod)``."""


def redirect_methods(methods: Iterable[AnyMethod]) -> list[SigninMethod]:
    """The methods among ``methods`` that are buttons (a redirect to the provider), in order."""
    return [m for m in methods if not isinstance(m, PasswordMethod)]


def password_methods(methods: Iterable[AnyMethod]) -> list[PasswordMethod]:
    """The methods among ``methods`` that are username and password forms, in order."""
    return [m for m in methods if isinstance(m, PasswordMethod)]


def form_origins(methods: Iterable[AnyMethod]) -> list[str]:
    """Origins a page with these methods' buttons may send its forms on to (its CSP
    ``form-action``, which also covers the redirect that answers the button)."""
    return sorted({origin for method in methods for origin in method.form_origins()})


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
    staff: str = ""
    """For a console test sign-in, the staff member who started it (it ends on the console,
    never in a session); empty for a patron's sign-in."""

    @classmethod
    def new(cls, provider: str, target: str, browser_value: str, staff: str = "") -> Flow:
        """A fresh flow with random state, nonce and verifier (256 bits each); a test sign-in's
        state starts with ``TEST_STATE`` so that the callback can hand it to the console."""
        state = (TEST_STATE if staff else "") + secrets.token_urlsafe(32)
        return cls(provider, state, secrets.token_urlsafe(32), secrets.token_urlsafe(48),
                   target, token_hash(browser_value), staff)  # fmt: skip

    @property
    def test(self) -> bool:
        """Whether this is a console test sign-in."""
        return bool(self.staff)


TEST_STATE = "test."
"""How a test sign-in's ``state`` starts ('.' is not in a patron flow's url-safe alphabet)."""
TEST_RESULT = "/signin-test/result"
"""Where, under the console's ``/admin``, a test sign-in's answer is shown."""


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
        return Flow(**{k: str(data.get(k, "")) for k in Flow.__dataclass_fields__})

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
