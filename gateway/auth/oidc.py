"""Sign-in through an OpenID Connect provider: authorization code flow with PKCE, on authlib's
OAuth 2 / OIDC core, with aiohttp for the HTTP (authlib has no aiohttp integration).

The flow: ``begin`` sends the patron to the provider's authorization endpoint with a fresh
``state``, ``nonce`` and S256 code challenge (all three kept server-side, see
``gateway.auth.signin``); ``finish`` trades the code at the token endpoint (client secret or
private-key JWT), checks the ID token with authlib (signature by a key from the provider's
JWKS, algorithm from the allowed list, issuer, audience, expiry, nonce), optionally reads
userinfo, and returns the patron's identity. The discovery document and the JWKS are fetched
and cached; a token signed with a key the cache does not know makes one new JWKS fetch (at
most one per ``JWKS_MIN_INTERVAL``), so a provider's key rotation is picked up without a
restart, while tokens with made-up key ids cannot make the gateway hammer the provider.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp
import authlib.deprecate  # noqa: F401 - its "always show" filter first, so that ours wins below

# authlib 1.9 deprecates its jose module for joserfc (which it depends on); its OIDC claim
# checks (authlib.oidc.core) still take authlib.jose's tokens. Said once on import, the warning
# would be the first line of every `gateway serve`; the move to joserfc is left for later.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", "authlib.jose module is deprecated", DeprecationWarning)
    from authlib.jose import JsonWebKey, JsonWebToken, KeySet
    from authlib.jose.errors import JoseError
from authlib.oauth2.rfc7523 import private_key_jwt_sign
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from yarl import URL

from gateway.auth.attribute_rules import Attributes, Policy, parse_rules
from gateway.auth.provider_http import ProviderHttp
from gateway.auth.signin import Flow, SigninRefused, SigninUnavailable, normalise
from gateway.clock import Clock
from gateway.config import OidcSettings

log = logging.getLogger(__name__)

try:  # authlib 1.6+ checks claims with joserfc, whose errors are not authlib's
    from joserfc.errors import JoseError as JoserfcError

    TOKEN_ERRORS: tuple[type[Exception], ...] = (JoseError, JoserfcError, ValueError, TypeError)
except ImportError:  # pragma: no cover - an older authlib
    TOKEN_ERRORS = (JoseError, ValueError, TypeError)

DISCOVERY_PATH = "/.well-known/openid-configuration"
METADATA_TTL = 3600.0
"""Seconds the discovery document and the JWKS are kept before they are fetched again."""
JWKS_MIN_INTERVAL = 30.0
"""Seconds between JWKS fetches caused by an unknown key id."""
MAX_DOCUMENT = 1 << 20
"""Bytes of a provider's JSON answer read at most (a JWKS is a few KB)."""
ENDPOINTS = ("authorization_endpoint", "token_endpoint", "jwks_uri")


@dataclass
class _Cached:
    """A fetched document and when it was fetched (by the gateway's clock)."""

    value: Any
    fetched: float


def _segment(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, unverified (to read ``alg`` and ``kid``)."""
    try:
        head = token.split(".", 1)[0]
        data = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise SigninRefused(f"ID token is not a JWS: {exc}") from None
    if not isinstance(data, dict):
        raise SigninRefused("ID token header is not an object")
    return data


class OidcMethod(ProviderHttp[OidcSettings]):
    """One configured OpenID Connect provider (a ``SigninMethod``)."""

    kind = "oidc"

    def __init__(self, settings: OidcSettings, clock: Clock) -> None:
        self.settings = settings
        self.id = settings.id
        self.policy = Policy(settings.patron_id_claim, settings.groups_claim,
                             parse_rules(settings.rules))  # fmt: skip
        self.clock = clock
        self._metadata: _Cached | None = None
        self._jwks: _Cached | None = None
        self._last_jwks_fetch = float("-inf")
        self._jwks_lock = asyncio.Lock()

    def label(self, lang: str) -> str:
        """The provider's display name in ``lang``."""
        return self.settings.label(lang)

    async def prepare(self) -> None:
        """Fetch the discovery document (the login page's policy then knows the provider's
        authorization endpoint)."""
        await self.metadata()

    def form_origins(self) -> tuple[str, ...]:
        """Origins the login page's button may lead to (its CSP ``form-action``): the issuer's
        and, once discovery has run, the authorization endpoint's."""
        urls = [self.settings.issuer]
        if self._metadata is not None:
            urls.append(self._metadata.value["authorization_endpoint"])
        parts = (urlsplit(u) for u in urls)
        return tuple(dict.fromkeys(f"{p.scheme}://{p.netloc}" for p in parts))

    # -- documents ------------------------------------------------------------------------

    async def _get_json(self, url: str, what: str, headers: Mapping[str, str] | None = None) -> Any:
        try:
            async with self.http.get(url, headers=headers, allow_redirects=False) as response:
                body = await response.content.read(MAX_DOCUMENT)
                if response.status != 200:
                    raise SigninUnavailable(f"{what} answered {response.status}")
                return json.loads(body)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise SigninUnavailable(f"{what} at {url}: {exc!r}") from None

    def _check_endpoint(self, url: Any, name: str) -> str:
        """An endpoint from discovery: https, or http on the issuer's own loopback host (tests);
        never another scheme (no ``file:``), so the document cannot point the gateway at
        something it should not fetch."""
        issuer = urlsplit(self.settings.issuer)
        parts = urlsplit(url) if isinstance(url, str) else None
        same_test_host = issuer.scheme == "http" and parts is not None and parts.scheme == "http" \
            and parts.hostname == issuer.hostname  # fmt: skip
        if parts is None or not parts.hostname or not (parts.scheme == "https" or same_test_host):
            raise SigninUnavailable(f"discovery document has no usable {name}: {url!r}")
        return str(url)

    async def metadata(self) -> dict[str, Any]:
        """The provider's discovery document (cached for ``METADATA_TTL``)."""
        now = self.clock()
        if self._metadata is not None and now - self._metadata.fetched < METADATA_TTL:
            return dict(self._metadata.value)
        url = self.settings.issuer.rstrip("/") + DISCOVERY_PATH
        document = await self._get_json(url, "discovery document")
        if not isinstance(document, dict):
            raise SigninUnavailable("discovery document is not an object")
        if document.get("issuer") != self.settings.issuer:  # OpenID Discovery 4.3
            raise SigninUnavailable(
                f"discovery document names issuer {document.get('issuer')!r}, "
                f"configured {self.settings.issuer!r}"
            )
        names = (*ENDPOINTS, "userinfo_endpoint") if self.settings.userinfo else ENDPOINTS
        for name in names:
            document[name] = self._check_endpoint(document.get(name), name)
        self._metadata = _Cached(document, now)
        return dict(document)

    async def _fetch_jwks(self) -> KeySet:
        self._last_jwks_fetch = self.clock()
        uri = (await self.metadata())["jwks_uri"]
        document = await self._get_json(uri, "JWKS")
        try:
            keys = JsonWebKey.import_key_set(document)
        except (JoseError, ValueError, TypeError, KeyError) as exc:
            raise SigninUnavailable(f"JWKS does not parse: {exc!r}") from None
        self._jwks = _Cached(keys, self._last_jwks_fetch)
        return keys

    async def keys_for(self, kid: str | None) -> KeySet:
        """The provider's keys, holding ``kid`` if the provider has it: the cached set, or a new
        one when the cache is old or (at most once per ``JWKS_MIN_INTERVAL``) lacks ``kid``."""
        # One at a time: sign-ins that meet a new key together wait for one fetch and all use
        # it (without the lock the second would find the interval not passed, and be refused).
        async with self._jwks_lock:
            now = self.clock()
            cached = self._jwks
            if cached is None or now - cached.fetched >= METADATA_TTL:
                return await self._fetch_jwks()
            known = {key.kid for key in cached.value.keys}
            stale = now - self._last_jwks_fetch >= JWKS_MIN_INTERVAL
            if kid is not None and kid not in known and stale:
                log.info("oidc %s: unknown key id %r, fetching the JWKS again", self.id, kid[:64])
                return await self._fetch_jwks()
            return cached.value

    # -- the flow -------------------------------------------------------------------------

    async def begin(self, flow: Flow, redirect_uri: str) -> str:
        """The authorization request for ``flow`` (code flow, PKCE S256, state, nonce)."""
        endpoint = (await self.metadata())["authorization_endpoint"]
        params = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self.settings.scopes),
            "state": flow.state,
            "nonce": flow.nonce,
            "code_challenge": create_s256_code_challenge(flow.verifier),
            "code_challenge_method": "S256",
        }
        return str(URL(endpoint).update_query(params))

    async def finish(self, flow: Flow, redirect_uri: str, query: Mapping[str, str]) -> Attributes:
        """The claims of the provider's answer to ``flow``'s request (ID token, and userinfo
        when configured), checked."""
        metadata = await self.metadata()
        if "error" in query:
            raise SigninRefused(f"provider answered error={query['error'][:100]!r}")
        # RFC 9207: the issuer in the answer guards against a mix-up between providers.
        iss = query.get("iss")
        if iss is not None and iss != self.settings.issuer:
            raise SigninRefused(f"authorization response from issuer {iss[:200]!r}")
        if iss is None and metadata.get("authorization_response_iss_parameter_supported"):
            raise SigninRefused("authorization response without the iss its provider sends")
        code = query.get("code", "")
        if not code or len(code) > 2048:
            raise SigninRefused("authorization response without a code")
        tokens = await self._redeem(metadata["token_endpoint"], code, redirect_uri, flow.verifier)
        claims = await self.validate_id_token(tokens, flow.nonce)
        if self.settings.userinfo:
            extra = await self._userinfo(metadata["userinfo_endpoint"], tokens, claims["sub"])
            claims = {**extra, **claims}  # the ID token's own claims (iss, aud, sub) win
        return normalise(claims)

    def _client_auth(self, token_endpoint: str) -> tuple[dict[str, str], dict[str, str]]:
        """Form fields and headers that authenticate the gateway at the token endpoint."""
        s = self.settings
        if s.private_key_file:
            with open(s.private_key_file, "rb") as fh:
                key = fh.read()
            assertion = private_key_jwt_sign(key, s.client_id, token_endpoint, s.private_key_alg)
            fields = {
                "client_id": s.client_id,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": assertion.decode()
                if isinstance(assertion, bytes)
                else assertion,
            }
            return fields, {}
        # RFC 6749 2.3.1: id and secret are form-encoded before they go into Basic.
        pair = f"{quote(s.client_id, safe='')}:{quote(s.client_secret, safe='')}"
        return {}, {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}

    async def _redeem(
        self, endpoint: str, code: str, redirect_uri: str, verifier: str
    ) -> dict[str, Any]:
        fields, headers = self._client_auth(endpoint)
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": verifier, **fields}  # fmt: skip
        try:
            headers = {**headers, "Accept": "application/json"}
            async with self.http.post(
                endpoint, data=form, headers=headers, allow_redirects=False
            ) as response:
                body = await response.content.read(MAX_DOCUMENT)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SigninUnavailable(f"token endpoint: {exc!r}") from None
        try:
            answer = json.loads(body)
        except ValueError:
            answer = None
        if status >= 500 or not isinstance(answer, dict):
            raise SigninUnavailable(f"token endpoint answered {status}")
        if status != 200:
            raise SigninRefused(
                f"token endpoint refused the code: {str(answer.get('error'))[:100]}"
            )
        if not isinstance(answer.get("id_token"), str):
            raise SigninRefused("token endpoint answered without an ID token")
        return answer

    async def validate_id_token(self, tokens: Mapping[str, Any], nonce: str) -> dict[str, Any]:
        """The ID token's claims, checked by authlib: signed with an allowed algorithm by one of
        the provider's keys, for this client, from this issuer, not expired, with our nonce."""
        token = tokens["id_token"]
        header = _segment(token)
        alg = header.get("alg")
        if alg not in self.settings.algorithms:  # none, HS256 with the secret, anything else
            raise SigninRefused(f"ID token algorithm {str(alg)[:20]!r} is not allowed")
        kid = header.get("kid")
        keys = await self.keys_for(kid if isinstance(kid, str) else None)
        params = {"nonce": nonce, "client_id": self.settings.client_id}
        if isinstance(tokens.get("access_token"), str):
            params["access_token"] = tokens["access_token"]  # checks at_hash when present
        options = {
            "iss": {"essential": True, "value": self.settings.issuer},
            "aud": {"essential": True, "value": self.settings.client_id},
            "sub": {"essential": True},
            "exp": {"essential": True},
            "iat": {"essential": True},
        }
        try:
            claims = JsonWebToken(list(self.settings.algorithms)).decode(
                token, keys, claims_cls=CodeIDToken, claims_options=options, claims_params=params
            )
            claims.validate(now=int(self.clock()), leeway=self.settings.leeway)
        except TOKEN_ERRORS as exc:
            raise SigninRefused(f"ID token refused: {exc}") from None
        return dict(claims)

    async def _userinfo(self, endpoint: str, tokens: Mapping[str, Any], sub: str) -> dict[str, Any]:
        access = tokens.get("access_token")
        if not isinstance(access, str):
            raise SigninRefused("token endpoint answered without an access token for userinfo")
        info = await self._get_json(endpoint, "userinfo", {"Authorization": f"Bearer {access}"})
        if not isinstance(info, dict) or info.get("sub") != sub:  # OIDC Core 5.3.2
            raise SigninRefused("userinfo is for another subject")
        return info
