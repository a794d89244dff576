"""Sign-in through a SAML 2.0 identity provider (a Shibboleth IdP, ADFS, ...): SP-initiated Web
Browser SSO with pysaml2 and Debian's ``xmlsec1``, never hand-written XML signature checks.

The flow: ``begin`` sends the patron to the IdP's single sign-on service with an AuthnRequest
over HTTP-Redirect (signed when the SP has a key) whose ID comes from the flow's random nonce
and whose RelayState is the flow's state, both kept server-side (``gateway.auth.signin``).
The IdP answers with a Response over HTTP-POST to the ACS; ``finish`` has pysaml2 check it:
a signature on the Response or on its one Assertion by a key of the IdP's metadata (unsigned
ones are refused), the Destination and the SubjectConfirmation's Recipient (the ACS), the
InResponseTo (the flow's request id: no unsolicited responses), NotBefore / NotOnOrAfter with
``clock_skew``, and the Audience (the SP's entity id, which must be there). The assertion's id
is then remembered in Redis until its NotOnOrAfter, so the same assertion is accepted once.

pysaml2 is synchronous and runs ``xmlsec1`` as a child process: every check runs in a thread
(``asyncio.to_thread``). Its client is built once per provider; the IdP metadata (from a file or
a URL, its signature checked when ``idp_metadata_cert`` is set) is swapped into that client's
metadata store, again every ``metadata_refresh`` seconds, so a new IdP key is picked up without
a restart. Metadata that cannot be had, or whose signature is wrong, leaves the last good one
in place; with none at all, sign-ins get the friendly 503.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import shutil
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from redis.asyncio import Redis
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.mdstore import InMemoryMetaData
from saml2.metadata import entity_descriptor
from saml2.saml import SCM_BEARER
from saml2.sigver import SignatureError
from saml2.xmldsig import SIG_RSA_SHA256

from gateway.auth.attribute_rules import Attributes, Policy, parse_rules
from gateway.auth.provider_http import ProviderHttp
from gateway.auth.signin import Flow, SigninRefused, SigninUnavailable, normalise
from gateway.clock import Clock
from gateway.config import SamlSettings
from gateway.redis_keys import SIGNIN_ASSERTION

log = logging.getLogger(__name__)
# pysaml2 logs whole Responses (NameIDs, attribute values) at INFO and in its ERROR lines: the
# gateway says itself, without them, why a Response was refused.
logging.getLogger("saml2").setLevel(logging.CRITICAL)

XMLSEC1 = shutil.which("xmlsec1") or "/usr/bin/xmlsec1"
"""Debian's xmlsec1 (``apt-get install xmlsec1``), which pysaml2 runs to check signatures."""
MAX_METADATA = 8 << 20
"""Bytes of IdP metadata read at most (a federation's aggregate can be several MB)."""
MAX_RESPONSE = 256 << 10
"""Bytes of a base64 SAMLResponse accepted at most (a real one is a few KB)."""
METADATA_SOURCE = "carrel"
"""The one source in the client's metadata store: the IdP metadata last loaded."""


def request_id(flow: Flow) -> str:
    """The AuthnRequest's ID for ``flow``: derived from its random nonce, so the Response's
    InResponseTo is checked against a value only the flow holds (an xs:ID starts with a
    letter)."""
    return f"id-{flow.nonce}"


def _attributes(response: Any) -> dict[str, list[str]]:
    """The assertion's attributes by the names a librarian may write: the ``Name`` the IdP
    sent (``urn:oid:1.3.6.1.4.1.5923.1.1.1.6``) and pysaml2's friendly name for that Name
    (``eduPersonPrincipalName``), from the one assertion pysaml2 checked. The IdP's own
    ``FriendlyName`` is not used: SAML calls it informational, and a mislabelled attribute
    must not stand in for another."""
    found: dict[str, list[str]] = {}
    for statement in response.assertion.attribute_statement:
        for attribute in statement.attribute:
            values = [v.text.strip() for v in attribute.attribute_value if v.text]
            found.setdefault(attribute.name, []).extend(values)
    for name, values in response.ava.items():  # pysaml2's converters: urn:oid -> friendly
        found.setdefault(name, [str(v) for v in values])
    return found


def _reason(exc: Exception) -> str:
    """Why pysaml2 refused, for the log: its words up to the first XML it quotes (the Response
    itself, with the patron's attributes, is often in the message)."""
    return f"{type(exc).__name__}: {str(exc).partition('<')[0]}"[:300]


def _audience_named(assertion: Any, entity_id: str) -> bool:
    """Whether the assertion is restricted to the SP (Web Browser SSO profile 4.1.4.2): pysaml2
    accepts an assertion with no AudienceRestriction at all, this does not."""
    conditions = assertion.conditions
    restrictions = conditions.audience_restriction if conditions is not None else []
    return any(
        (audience.text or "").strip() == entity_id
        for restriction in restrictions
        for audience in restriction.audience
    )


def _recipients_are(assertion: Any, acs_url: str) -> bool:
    """Whether the assertion's bearer confirmations name the ACS as their Recipient (profile
    4.1.4.2): pysaml2 only checks the Recipient when given conversation details."""
    confirmations = assertion.subject.subject_confirmation if assertion.subject else []
    data = [c.subject_confirmation_data for c in confirmations if c.method == SCM_BEARER]
    return bool(data) and all(d is not None and d.recipient == acs_url for d in data)


@dataclass(frozen=True)
class Checked:
    """What ``finish`` keeps of a Response pysaml2 accepted."""

    assertion_id: str
    not_on_or_after: float
    attributes: dict[str, list[str]]


class SamlMethod(ProviderHttp[SamlSettings]):
    """One configured SAML identity provider (a ``SigninMethod``)."""

    kind = "saml"

    def __init__(self, settings: SamlSettings, public_url: str, redis: Redis, clock: Clock) -> None:
        self.settings = settings
        self.id = settings.id
        self.policy = Policy(settings.patron_id_attribute, settings.groups_attribute,
                             parse_rules(settings.rules))  # fmt: skip
        self.redis = redis
        self.clock = clock
        self.acs_url = f"{public_url}/signin/{settings.id}/callback"
        self.entity_id = settings.entity_id or f"{public_url}/signin/{settings.id}/metadata"
        self.client = Saml2Client(config=self._config())
        self._idp: str | None = None
        """The IdP's entity id in the metadata loaded (None: none loaded yet)."""
        self._loaded = float("-inf")
        self._lock = asyncio.Lock()
        self._metadata_xml = ""

    def _config(self) -> SPConfig:
        s = self.settings
        keys = {"key_file": s.key_file, "cert_file": s.cert_file} if s.key_file else {}
        sp = {
            "endpoints": {"assertion_consumer_service": [(self.acs_url, BINDING_HTTP_POST)]},
            "allow_unsolicited": False,  # InResponseTo must name the flow's request
            "want_response_signed": False,
            "want_assertions_signed": False,
            "want_assertions_or_response_signed": True,  # one of the two, never neither
            "authn_requests_signed": bool(s.key_file),
            "signing_algorithm": SIG_RSA_SHA256,
        }
        config = SPConfig()
        config.load({
            "entityid": self.entity_id,
            "xmlsec_binary": XMLSEC1,
            "service": {"sp": sp},
            "metadata": {"inline": []},  # an empty store: the IdP's is swapped in by _load
            "accepted_time_diff": s.clock_skew,
            "allow_unknown_attributes": True,
            **keys,
            **({"encryption_keypairs": [keys]} if keys else {}),
        })  # fmt: skip
        return config

    def label(self, lang: str) -> str:
        """The provider's display name in ``lang``."""
        return self.settings.label(lang)

    def sp_metadata(self) -> str:
        """The SP's metadata (entity id, ACS, certificate), for the IdP to register."""
        if not self._metadata_xml:
            self._metadata_xml = str(entity_descriptor(self.client.config))
        return self._metadata_xml

    async def prepare(self) -> None:
        """Load the IdP metadata (the login page's policy then knows its sign-on origin)."""
        await self.idp()

    def form_origins(self) -> tuple[str, ...]:
        """Origins the login page's button may lead to (its CSP ``form-action``): the IdP's
        single sign-on service once its metadata is loaded, else the metadata URL's (an IdP
        usually serves both)."""
        urls = [self.settings.idp_metadata_url] if self.settings.idp_metadata_url else []
        if self._idp is not None:
            services = self.client.metadata.single_sign_on_service(self._idp, BINDING_HTTP_REDIRECT)
            urls = [service["location"] for service in services]
        parts = (urlsplit(u) for u in urls)
        return tuple(dict.fromkeys(f"{p.scheme}://{p.netloc}" for p in parts))

    # -- the IdP's metadata ---------------------------------------------------------------

    async def idp(self) -> str:
        """The IdP's entity id, its metadata loaded (again once ``metadata_refresh`` has
        passed); ``SigninUnavailable`` when no metadata was ever had."""
        async with self._lock:
            if self.clock() - self._loaded >= self.settings.metadata_refresh:
                try:
                    self._idp = await self._load(await self._read())
                except SigninUnavailable as exc:
                    if self._idp is None:
                        raise
                    log.warning("saml %s: metadata not refreshed, the last one stays: %s",
                                self.id, exc)  # fmt: skip
                self._loaded = self.clock()  # a failed refresh is tried again next period
        if self._idp is None:
            raise SigninUnavailable("no IdP metadata")
        return self._idp

    async def _read(self) -> bytes:
        s = self.settings
        if s.idp_metadata_file:
            try:
                return await asyncio.to_thread(Path(s.idp_metadata_file).read_bytes)
            except OSError as exc:
                raise SigninUnavailable(f"IdP metadata file: {exc}") from None
        try:
            url = s.idp_metadata_url
            async with self.http.get(url, allow_redirects=False) as response:
                body = await response.content.read(MAX_METADATA)
                if response.status != 200:
                    raise SigninUnavailable(f"IdP metadata answered {response.status}")
                return body
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SigninUnavailable(f"IdP metadata at {s.idp_metadata_url}: {exc!r}") from None

    async def _load(self, document: bytes) -> str:
        """Check ``document`` and make it the client's metadata; the IdP's entity id."""
        metadata = await asyncio.to_thread(self._checked_metadata, document)
        wanted = self.settings.idp_entity_id
        idps = list(metadata.with_descriptor("idpsso"))
        if (wanted and wanted not in idps) or (not wanted and len(idps) != 1):
            raise SigninUnavailable(f"IdP metadata describes the IdPs {idps[:5]!r}, "
                                    f"not one that idp_entity_id names")  # fmt: skip
        # One assignment: a sign-in in a thread sees the old store or the new, never half.
        self.client.metadata.metadata = {METADATA_SOURCE: metadata}
        self.client.sourceid = self.client.metadata.construct_source_id()
        return wanted or idps[0]

    def _checked_metadata(self, document: bytes) -> InMemoryMetaData:
        store = self.client.metadata
        metadata = InMemoryMetaData(store.attrc, security=store.security)
        try:
            text = document.decode("utf-8")
            metadata.parse(text)
        except Exception as exc:  # pysaml2 raises many kinds for XML it cannot read
            raise SigninUnavailable(f"IdP metadata does not parse: {exc!r}"[:300]) from None
        cert = self.settings.idp_metadata_cert
        if cert:  # pysaml2 lets unsigned metadata through even with a cert: not here
            if not metadata.signed():
                raise SigninUnavailable("IdP metadata is not signed")
            node = "EntitiesDescriptor" if metadata.entities_descr else "EntityDescriptor"
            try:
                store.security.verify_signature(
                    text, cert_file=cert, node_name=f"urn:oasis:names:tc:SAML:2.0:metadata:{node}"
                )
            except SignatureError as exc:
                raise SigninUnavailable(f"IdP metadata signature: {exc}"[:300]) from None
        return metadata

    # -- the flow -------------------------------------------------------------------------

    async def begin(self, flow: Flow, redirect_uri: str) -> str:
        """The IdP's single sign-on URL with the AuthnRequest for ``flow`` (HTTP-Redirect)."""
        idp = await self.idp()
        sign = bool(self.settings.key_file)
        try:
            _, info = await asyncio.to_thread(
                self.client.prepare_for_authenticate, entityid=idp, relay_state=flow.state,
                binding=BINDING_HTTP_REDIRECT, message_id=request_id(flow), sign=sign,
                sigalg=SIG_RSA_SHA256 if sign else None,
            )  # fmt: skip
        except Exception as exc:  # no redirect endpoint in the metadata, a key it cannot read
            raise SigninUnavailable(f"AuthnRequest: {exc!r}"[:300]) from None
        return str(dict(info["headers"])["Location"])

    async def finish(self, flow: Flow, redirect_uri: str, query: Mapping[str, str]) -> Attributes:
        """The attributes of the IdP's Response to ``flow``'s request (the ACS's
        posted ``SAMLResponse``), checked, and its assertion remembered against replays."""
        await self.idp()  # a refresh that is due comes before the check
        posted = query.get("SAMLResponse", "")
        if not posted or len(posted) > MAX_RESPONSE:
            raise SigninRefused("no SAMLResponse, or one too large")
        checked = await asyncio.to_thread(self._check, posted, request_id(flow))
        ttl = max(1, int(checked.not_on_or_after - self.clock()) + self.settings.clock_skew)
        key = (
            f"{SIGNIN_ASSERTION}:"
            + hashlib.sha256(f"{self.id}\n{checked.assertion_id}".encode()).hexdigest()
        )
        if not await self.redis.set(key, 1, ex=ttl, nx=True):
            raise SigninRefused("assertion already used (a replayed response)")
        return normalise(checked.attributes)

    def _check(self, posted: str, expected_request: str) -> Checked:
        """pysaml2's checks of a Response (in a thread: it runs xmlsec1)."""
        try:
            base64.b64decode(posted, validate=True)
        except (binascii.Error, ValueError):
            raise SigninRefused("SAMLResponse is not base64") from None
        try:
            response = self.client.parse_authn_request_response(
                posted, BINDING_HTTP_POST, outstanding={expected_request: "/"}
            )
        except Exception as exc:  # pysaml2's refusals have no common base class
            raise SigninRefused(_reason(exc)) from None
        if response is None or response.assertion is None:
            raise SigninRefused("Response without an assertion")
        with suppress(KeyError):  # pysaml2 keeps every patron's attributes; the gateway does not
            self.client.users.remove_person(response.name_id)
        if response.in_response_to != expected_request:
            raise SigninRefused("Response is not for this sign-in's request")
        assertion = response.assertion
        if not _recipients_are(assertion, self.acs_url):
            raise SigninRefused("assertion whose Recipient is not this ACS")
        if not _audience_named(assertion, self.entity_id):
            raise SigninRefused("assertion without an AudienceRestriction naming this SP")
        if not assertion.id or not response.not_on_or_after:
            raise SigninRefused("assertion without an id or a NotOnOrAfter")
        return Checked(assertion.id, float(response.not_on_or_after), _attributes(response))
