"""A real SAML 2.0 identity provider for sign-in tests: pysaml2's own IdP (``saml2.server.Server``)
behind a small aiohttp server on loopback, with keys the test makes. It serves its metadata
(optionally signed by a federation key), reads the gateway's AuthnRequest at its HTTP-Redirect
single sign-on endpoint, shows a login form, and answers with the HTTP-POST form a browser would
submit to the gateway's ACS. A test can change how it signs (response, assertion, both,
neither), for whom (the audience), for how long, and edit the XML after signing (tampering,
signature wrapping), to check the gateway's refusals against responses a real IdP made."""

from __future__ import annotations

import base64
import datetime
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, class_name, samlp
from saml2.authn_context import PASSWORD
from saml2.config import IdPConfig, SPConfig
from saml2.metadata import entity_descriptor, sign_entity_descriptor
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT
from saml2.server import Server
from saml2.sigver import pre_signature_part, security_context
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

from gateway.auth.saml import XMLSEC1
from gateway.embedded_redis import free_port
from tests.oidc_support import press_signin
from tests.patron_support import Browser

USERS: dict[str, dict[str, list[str]]] = {
    "alice": {
        "eduPersonPrincipalName": ["alice@campus.test"],
        "eduPersonAffiliation": ["member", "student"],
        "eduPersonEntitlement": ["urn:mace:dir:entitlement:common-lib-terms"],
    },
    "bob": {
        "eduPersonPrincipalName": ["bob@campus.test"],
        "eduPersonAffiliation": ["member"],
    },
}
ACS_FORM = re.compile(r'<form[^>]*action="([^"]+)"')
FIELD = re.compile(r'<input type="hidden" name="(SAMLResponse|RelayState)" value="([^"]*)"')


def keypair(directory: Path, name: str) -> tuple[Path, Path]:
    """A new RSA key and its self-signed certificate (as IdPs publish them), as PEM files."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    key_path, cert_path = directory / f"{name}.key", directory / f"{name}.crt"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))  # fmt: skip
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def sp_metadata_for(entity_id: str) -> str:
    """Metadata of another SP (for an IdP that knows more than the gateway)."""
    acs = "http://login.proxy.localhost:8080/signin/campus/callback"
    config = SPConfig()
    config.load({"entityid": entity_id, "xmlsec_binary": XMLSEC1, "service": {"sp": {
        "endpoints": {"assertion_consumer_service": [(acs, BINDING_HTTP_POST)]}}}})  # fmt: skip
    return str(entity_descriptor(config))


@dataclass
class Answer:
    """How the IdP answers the next logins (a test changes it to make the IdP misbehave)."""

    sign: str = "response"
    """``response``, ``assertion``, ``both`` or ``none``."""
    lifetime_minutes: int = 15
    """The assertion's lifetime; negative: already expired when issued."""
    audience: str = ""
    """The SP the assertion is for; empty: the one that asked."""
    after_signing: Callable[[str], str] | None = None
    """Edits the Response's XML after it was signed."""
    encrypt: bool = False
    """Encrypt the assertion for the SP (with the certificate in its metadata)."""
    before_signing: Callable[[Any], None] | None = None
    """Changes the Response (pysaml2's object) before the IdP signs it (the Response only)."""


@dataclass
class Idp:
    """pysaml2's IdP on a loopback port; ``trust`` gives it the gateway's SP metadata."""

    tmp: Path
    port: int = field(default_factory=free_port)
    answer: Answer = field(default_factory=Answer)
    federation_key: tuple[Path, Path] | None = None
    """Signs the metadata when set (``idp_metadata_cert`` is its certificate)."""
    sp_metadata: list[str] = field(default_factory=list)
    down: bool = False
    metadata_hits: int = 0

    def __post_init__(self) -> None:
        self.key = keypair(self.tmp, "idp")
        self._runner: web.AppRunner | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def entity_id(self) -> str:
        return f"{self.base}/idp"

    @property
    def metadata_url(self) -> str:
        return f"{self.base}/metadata"

    def rotate_key(self) -> None:
        """The IdP signs with a new key from now on (and its metadata says so)."""
        self.key = keypair(self.tmp, f"idp-{len(list(self.tmp.glob('idp*.key')))}")

    def server(self) -> Server:
        """pysaml2's IdP as it is configured now (keys, answer, the SP it trusts)."""
        a = self.answer
        idp = {
            "endpoints": {"single_sign_on_service": [(f"{self.base}/sso", BINDING_HTTP_REDIRECT)]},
            "policy": {"default": {"lifetime": {"minutes": a.lifetime_minutes},
                                   "attribute_restrictions": None, "name_form": NAME_FORMAT_URI}},
            "name_id_format": [NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT],
        }  # fmt: skip
        config = IdPConfig()
        config.load({
            "entityid": self.entity_id, "xmlsec_binary": XMLSEC1,
            "key_file": str(self.key[0]), "cert_file": str(self.key[1]),
            "service": {"idp": idp}, "metadata": {"inline": self.sp_metadata},
        })  # fmt: skip
        return Server(config=config)

    def metadata(self) -> str:
        """The IdP's metadata, signed by the federation key when there is one."""
        server = self.server()
        descriptor = entity_descriptor(server.config)
        if self.federation_key is None:
            return str(descriptor)
        signer = IdPConfig()
        signer.load({"entityid": self.entity_id, "xmlsec_binary": XMLSEC1,
                     "key_file": str(self.federation_key[0]),
                     "cert_file": str(self.federation_key[1])})  # fmt: skip
        _, xml = sign_entity_descriptor(descriptor, None, security_context(signer))
        return str(xml)

    # -- its pages ------------------------------------------------------------------------

    async def _metadata(self, request: web.Request) -> web.Response:
        self.metadata_hits += 1
        if self.down:
            return web.Response(status=503, text="IdP in trouble")
        return web.Response(text=self.metadata(), content_type="application/samlmetadata+xml")

    async def _sso(self, request: web.Request) -> web.Response:
        """The single sign-on service: the AuthnRequest read, a login form shown."""
        server = self.server()
        info = server.parse_authn_request(request.query["SAMLRequest"], BINDING_HTTP_REDIRECT)
        assert info is not None and info.message.id
        fields = "".join(
            f'<input type="hidden" name="{k}" value="{request.query.get(k, "")}">'
            for k in ("SAMLRequest", "RelayState")
        )
        return web.Response(content_type="text/html", text=(
            f'<form method="post" action="/login">{fields}'
            '<input name="user"><button>Log in</button></form>'))  # fmt: skip

    async def _login(self, request: web.Request) -> web.Response:
        """The login form's answer: the Response for the SP, as an HTTP-POST form."""
        form = await request.post()
        user = str(form["user"])
        if user not in USERS:
            return web.Response(status=401, text="unknown user")
        server = self.server()
        info = server.parse_authn_request(str(form["SAMLRequest"]), BINDING_HTTP_REDIRECT)
        args = server.response_args(info.message, [BINDING_HTTP_POST])
        a = self.answer
        if a.audience:
            args["sp_entity_id"] = a.audience
        xml = str(server.create_authn_response(
            USERS[user], userid=user, authn={"class_ref": PASSWORD},
            sign_response=a.sign in ("response", "both") and not a.before_signing,
            sign_assertion=a.sign in ("assertion", "both") and not a.before_signing,
            in_response_to=args["in_response_to"], destination=args["destination"],
            sp_entity_id=args["sp_entity_id"], name_id_policy=args["name_id_policy"],
            sign_alg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256, encrypt_assertion=a.encrypt,
        ))  # fmt: skip
        if a.before_signing:
            response = samlp.response_from_string(xml)
            a.before_signing(response)
            response.signature = pre_signature_part(response.id, server.sec.my_cert, 1,
                                                    sign_alg=SIG_RSA_SHA256,
                                                    digest_alg=DIGEST_SHA256)  # fmt: skip
            xml = server.sec.sign_statement(str(response), class_name(response),
                                            node_id=response.id)  # fmt: skip
        if a.after_signing:
            xml = a.after_signing(xml)
        encoded = base64.b64encode(xml.encode()).decode()
        relay = str(form.get("RelayState", ""))
        return web.Response(content_type="text/html", text=(
            f'<form method="post" action="{args["destination"]}">'
            f'<input type="hidden" name="SAMLResponse" value="{encoded}">'
            f'<input type="hidden" name="RelayState" value="{relay}">'
            '<button>Continue</button></form>'))  # fmt: skip

    async def __aenter__(self) -> Idp:
        app = web.Application()
        app.router.add_get("/metadata", self._metadata)
        app.router.add_get("/sso", self._sso)
        app.router.add_post("/login", self._login)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def settings(self, method: str = "campus", **extra: Any) -> dict[str, Any]:
        """The gateway's ``[[saml]]`` entry for this IdP."""
        return {"id": method, "display_name": "Campus ID", "display_name_es": "ID del campus",
                "idp_metadata_url": self.metadata_url, **extra}  # fmt: skip


class IdpBrowser:
    """The patron's browser at the IdP: the redirect followed, the login form filled in."""

    def __init__(self) -> None:
        self.http = aiohttp.ClientSession()

    async def close(self) -> None:
        await self.http.close()

    async def log_in(self, location: str, user: str) -> tuple[str, dict[str, str]]:
        """From the AuthnRequest's URL to the form the IdP posts back: its action (the ACS)
        and its fields (SAMLResponse, RelayState)."""
        async with self.http.get(location, allow_redirects=False) as page:
            html = await page.text()
            assert page.status == 200, html
        fields = dict(re.findall(r'name="(SAMLRequest|RelayState)" value="([^"]*)"', html))
        parts = urlsplit(location)
        async with self.http.post(f"{parts.scheme}://{parts.netloc}/login",
                                  data={**fields, "user": user}) as answer:  # fmt: skip
            html = await answer.text()
            assert answer.status == 200, html
        action = ACS_FORM.search(html)
        assert action, html
        return unescape(action[1]), {k: unescape(v) for k, v in FIELD.findall(html)}


async def post_to_acs(
    browser: Browser, action: str, fields: dict[str, str]
) -> aiohttp.ClientResponse:
    """The IdP's form submitted (a cross-site POST: the browser sends no Lax cookie with it),
    then the gateway's 303 followed as a browser does (a top-level GET, which it does)."""
    path = urlsplit(action).path
    cookies = browser.cookies
    browser.cookies = {}  # SameSite=Lax: none of the gateway's cookies on a cross-site POST
    try:
        posted = await browser.post(path, fields)
    finally:
        browser.cookies = {**cookies, **browser.cookies}
    if posted.status != 303:
        return posted
    return await browser.get(posted.headers["Location"])


async def sign_in(
    browser: Browser, at: IdpBrowser, user: str = "alice", target: str = "",
    method: str = "campus",
) -> aiohttp.ClientResponse:  # fmt: skip
    """The whole round trip: the button, the IdP's login, the POST to the ACS, its answer."""
    started = await press_signin(browser, target, method)
    assert started.status == 302, await started.text()
    action, fields = await at.log_in(started.headers["Location"], user)
    return await post_to_acs(browser, action, fields)
