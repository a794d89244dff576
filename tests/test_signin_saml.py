"""Sign-in through SAML 2.0 against a real IdP (pysaml2's own, on loopback): the round trip
from a starting-point link to the database, groups from an attribute, and the refusals
(tampered, expired, replayed, for another audience, unsigned, wrapped signatures), SP
metadata, IdP metadata refreshed and its signature checked, and an IdP that is down."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient

from gateway import config
from gateway.app import build_app
from gateway.appkeys import KEYRING, SESSIONS, SETTINGS, SIGNIN_METHODS
from tests.admin_support import Console, add_staff
from tests.oidc_support import press_signin
from tests.patron_support import Browser
from tests.saml_support import Idp, IdpBrowser, keypair, post_to_acs, sign_in, sp_metadata_for
from tests.support import ManualClock
from tests.test_signin_oidc import OTHER, START, WWW, proxied
from tests.vendor_support import Vendor, gateway_settings

RULES = f"""Title Vendor
URL https://{WWW}/
HJ https://{WWW}
Group student
Title Licensed journals
URL https://{OTHER}/
HJ https://{OTHER}
"""


@pytest.fixture
async def idp(tmp_path: Path) -> AsyncIterator[Idp]:
    (tmp_path / "idp").mkdir()
    async with Idp(tmp_path / "idp") as running:
        yield running


@pytest.fixture
async def at_idp() -> AsyncIterator[IdpBrowser]:
    browser = IdpBrowser()
    yield browser
    await browser.close()


@pytest.fixture
def start_gateway(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., config.Settings],
    vendor: Vendor, idp: Idp, clock: ManualClock,
) -> Callable[..., Any]:  # fmt: skip
    async def start(**entry: Any) -> TestClient:
        settings = gateway_settings(make_settings, vendor, RULES, saml=[idp.settings(**entry)])
        gateway: TestClient = await aiohttp_client(build_app(settings, clock),
                                                   cookie_jar=DummyCookieJar())  # fmt: skip
        metadata = await gateway.get("/signin/campus/metadata",
                                     headers={"Host": "login.proxy.localhost"})  # fmt: skip
        idp.sp_metadata = [await metadata.text()]  # registered at the IdP, as a librarian does
        return gateway

    return start


@pytest.fixture
async def gateway(start_gateway: Callable[..., Any]) -> TestClient:
    client: TestClient = await start_gateway()
    return client


async def test_signin_from_a_starting_point_reaches_the_database(
    gateway: TestClient, at_idp: IdpBrowser, idp: Idp
) -> None:
    patron = Browser(gateway)
    started = await press_signin(patron, START)
    assert started.status == 302
    location = started.headers["Location"]
    assert location.startswith(f"{idp.base}/sso?SAMLRequest=") and "RelayState=" in location
    assert "vendor.test" not in location  # the starting point stays with the gateway
    action, fields = await at_idp.log_in(location, "alice")
    assert action == "http://login.proxy.localhost:8080/signin/campus/callback"
    answer = await post_to_acs(patron, action, fields)
    assert answer.status == 302, await answer.text()
    assert answer.headers["Location"] == f"http://{proxied(WWW)}/"
    assert (await patron.get("/", host=proxied(WWW))).status == 200
    [session] = await gateway.app[SESSIONS].live()
    assert session.method == "saml:campus"
    assert session.pid == gateway.app[KEYRING].pseudonym("saml:campus:alice@campus.test")
    assert session.groups == frozenset({"Default"})
    # pysaml2's client would keep every patron's attributes in memory; the gateway keeps none.
    assert not gateway.app[SIGNIN_METHODS]["campus"].client.users.subjects()


@pytest.mark.parametrize(
    "groups_attribute", ["eduPersonAffiliation", "urn:oid:1.3.6.1.4.1.5923.1.1.1.1"]
)
async def test_an_attribute_gives_the_group_a_database_needs(
    start_gateway: Callable[..., Any], groups_attribute: str
) -> None:
    gateway = await start_gateway(groups_attribute=groups_attribute)
    for user, status in (("alice", 200), ("bob", 403)):
        patron, there = Browser(gateway), IdpBrowser()
        try:
            assert (await sign_in(patron, there, user, f"https://{OTHER}/")).status == 302
        finally:
            await there.close()
        page = await patron.get("/", host=proxied(OTHER))
        assert page.status == status, user
        if status == 403:
            assert "not available with your library card or account" in await page.text()


async def test_the_patron_id_attribute_may_be_named_by_urn_oid(
    start_gateway: Callable[..., Any], at_idp: IdpBrowser
) -> None:
    gateway = await start_gateway(patron_id_attribute="urn:oid:1.3.6.1.4.1.5923.1.1.1.6")
    assert (await sign_in(Browser(gateway), at_idp, "bob", START)).status == 302
    [session] = await gateway.app[SESSIONS].live()
    assert session.pid == gateway.app[KEYRING].pseudonym("saml:campus:bob@campus.test")


async def refused(gateway: TestClient, at_idp: IdpBrowser) -> str:
    """A sign-in as alice that the gateway must refuse (no new session): the page's text."""
    before = len(await gateway.app[SESSIONS].live())
    answer = await sign_in(Browser(gateway), at_idp, "alice", START)
    text = await answer.text()
    assert answer.status == 403, (answer.status, text)
    assert "Signing in did not work" in text
    assert len(await gateway.app[SESSIONS].live()) == before
    return text


ASSERTION = re.compile(r"<(\w+):Assertion\b")


def assertion_of(xml: str) -> tuple[int, int]:
    """Where the (first) Assertion element starts and ends in a Response's XML."""
    found = ASSERTION.search(xml)
    assert found, xml[:300]
    closing = f"</{found[1]}:Assertion>"
    return found.start(), xml.index(closing) + len(closing)


def forged_copy(assertion: str) -> str:
    """The assertion with its signature dropped, another id, and another patron in it."""
    evil = re.sub(r"<(\w+):Signature\b.*?</\1:Signature>", "", assertion, flags=re.S)
    evil = re.sub(r' ID="[^"]+"', ' ID="id-forged"', evil, count=1)
    return evil.replace("alice@campus.test", "mallory@campus.test")


def tamper(xml: str) -> str:
    assert "alice@campus.test" in xml
    return xml.replace("alice@campus.test", "mallory@campus.test")


def xsw_sibling(xml: str) -> str:
    """XSW3: a forged assertion placed before the signed one."""
    start, end = assertion_of(xml)
    return xml[:start] + forged_copy(xml[start:end]) + xml[start:]


def xsw_wrapped(xml: str) -> str:
    """XSW4: a forged assertion that holds the signed one inside it."""
    start, end = assertion_of(xml)
    signed = xml[start:end]
    evil = forged_copy(signed)
    inner = evil.rindex("</")
    return xml[:start] + evil[:inner] + signed + evil[inner:] + xml[end:]


def xsw_same_id(xml: str) -> str:
    """A forged assertion with the signed one's own id, the signed one moved into the
    Response's Extensions (the signature still verifies against the element with that id)."""
    start, end = assertion_of(xml)
    signed = xml[start:end]
    signed_id = re.search(r' ID="([^"]+)"', signed)
    protocol = re.search(r"<(\w+):Response\b", xml)
    assert signed_id and protocol
    evil = forged_copy(signed).replace(' ID="id-forged"', f' ID="{signed_id[1]}"')
    rest = xml[:start] + evil + xml[end:]
    status = rest.index(f"<{protocol[1]}:Status")
    moved = f"<{protocol[1]}:Extensions>{signed}</{protocol[1]}:Extensions>"
    return rest[:status] + moved + rest[status:]


def xsw_response(xml: str) -> str:
    """XSW1: a forged Response (its signature copied from the real one, which references the
    same ID) that carries the real, signed Response in its Extensions."""
    protocol = re.search(r"<(\w+):Response\b", xml)
    assert protocol
    body = xml[protocol.start() :]
    forged = tamper(body)
    status = forged.index(f"<{protocol[1]}:Status")
    extensions = f"<{protocol[1]}:Extensions>{body}</{protocol[1]}:Extensions>"
    return xml[: protocol.start()] + forged[:status] + extensions + forged[status:]


def xsw_response_in_object(xml: str) -> str:
    """XSW2-like: the real, signed Response kept inside a ds:Object of the forged Response's
    copied signature (where the schema allows any element)."""
    protocol = re.search(r"<(\w+):Response\b", xml)
    closing = re.search(r"</(\w+):Signature>", xml)
    assert protocol and closing
    body = xml[protocol.start() :]
    forged = tamper(xml)
    at = forged.index(closing[0])
    return forged[:at] + f"<{closing[1]}:Object>{body}</{closing[1]}:Object>" + forged[at:]


@pytest.mark.parametrize(
    ("sign", "edit"),
    [
        pytest.param("response", tamper, id="tampered-attribute-signed-response"),
        pytest.param("assertion", tamper, id="tampered-attribute-signed-assertion"),
        pytest.param("assertion", xsw_sibling, id="xsw-forged-sibling"),
        pytest.param("assertion", xsw_wrapped, id="xsw-forged-wrapper"),
        pytest.param("assertion", xsw_same_id, id="xsw-same-id-original-in-extensions"),
        pytest.param("response", xsw_response, id="xsw-signed-response-inside-a-forged-one"),
        pytest.param("response", xsw_response_in_object, id="xsw-signed-response-in-ds-object"),
        pytest.param("none", None, id="unsigned"),
    ],
)
async def test_responses_edited_after_signing_or_unsigned_are_refused(
    gateway: TestClient, at_idp: IdpBrowser, idp: Idp, sign: str,
    edit: Callable[[str], str] | None,
) -> None:  # fmt: skip
    idp.answer.sign = sign
    idp.answer.after_signing = edit
    await refused(gateway, at_idp)


@pytest.mark.parametrize("sign", ["response", "assertion", "both"])
async def test_a_signed_response_or_assertion_is_enough(
    gateway: TestClient, at_idp: IdpBrowser, idp: Idp, sign: str
) -> None:
    """The control for the refusals above: the same IdP, unedited, signs patrons in."""
    idp.answer.sign = sign
    assert (await sign_in(Browser(gateway), at_idp, "alice", START)).status == 302


async def test_an_expired_assertion_is_refused(
    gateway: TestClient, at_idp: IdpBrowser, idp: Idp
) -> None:
    idp.answer.lifetime_minutes = -5  # past clock_skew (60 s)
    await refused(gateway, at_idp)


async def test_an_assertion_for_another_audience_is_refused(
    gateway: TestClient, at_idp: IdpBrowser, idp: Idp
) -> None:
    idp.answer.audience = "https://another-sp.example/shibboleth"
    idp.sp_metadata.append(sp_metadata_for(idp.answer.audience))  # an SP the IdP knows
    await refused(gateway, at_idp)


async def test_a_replayed_response_is_refused(gateway: TestClient, at_idp: IdpBrowser) -> None:
    patron = Browser(gateway)
    started = await press_signin(patron, START)
    action, fields = await at_idp.log_in(started.headers["Location"], "alice")
    assert (await post_to_acs(patron, action, fields)).status == 302
    again = await post_to_acs(Browser(gateway), action, fields)  # the same POST, later
    assert again.status == 400 and "took too long or was already used" in await again.text()
    assert len(await gateway.app[SESSIONS].live()) == 1


async def test_an_assertion_id_is_accepted_once_even_for_a_new_request(
    gateway: TestClient, at_idp: IdpBrowser, idp: Idp
) -> None:
    """A fresh, properly signed Response for a new sign-in that carries an assertion already
    used (its id: an assertion replayed inside a new Response) is refused."""
    used: list[str] = []

    def remember(response: Any) -> None:
        used.append(response.assertion[0].id)

    def reuse(response: Any) -> None:
        response.assertion[0].id = used[0]

    idp.answer.before_signing = remember
    assert (await sign_in(Browser(gateway), at_idp, "alice", START)).status == 302
    idp.answer.before_signing = reuse
    text = await refused(gateway, at_idp)
    assert "Signing in did not work" in text


def in_an_hour() -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))


def confirmation(response: Any) -> Any:
    return response.assertion[0].subject.subject_confirmation[0].subject_confirmation_data


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda r: setattr(r, "destination", "https://elsewhere.example/acs"),
                     id="destination-elsewhere"),
        pytest.param(lambda r: setattr(confirmation(r), "recipient", "https://elsewhere.example/acs"),
                     id="recipient-elsewhere"),
        pytest.param(lambda r: setattr(r.assertion[0].conditions, "not_before", in_an_hour()),
                     id="not-yet-valid"),
        pytest.param(lambda r: setattr(r.assertion[0].conditions, "audience_restriction", []),
                     id="no-audience-restriction"),
        pytest.param(lambda r: setattr(r, "in_response_to", "id-another-request"),
                     id="in-response-to-another-request"),
    ],
)  # fmt: skip
async def test_a_signed_response_that_is_not_for_this_sign_in_is_refused(
    gateway: TestClient, at_idp: IdpBrowser, idp: Idp, change: Callable[[Any], None]
) -> None:
    idp.answer.before_signing = change  # the IdP signs the Response after the change
    await refused(gateway, at_idp)


async def test_the_idp_signing_after_a_harmless_change_is_still_accepted(
    gateway: TestClient, at_idp: IdpBrowser, idp: Idp
) -> None:
    """The control for the test above: the IdP's own re-signing is not what is refused."""
    idp.answer.before_signing = lambda response: None
    assert (await sign_in(Browser(gateway), at_idp, "alice", START)).status == 302


async def test_another_browser_cannot_finish_the_sign_in(
    gateway: TestClient, at_idp: IdpBrowser
) -> None:
    """Login CSRF: the attacker's own Response posted from the patron's browser."""
    attacker = Browser(gateway)
    started = await press_signin(attacker, START)
    action, fields = await at_idp.log_in(started.headers["Location"], "bob")
    victim = Browser(gateway)
    await victim.get("/login")
    answer = await post_to_acs(victim, action, fields)
    assert answer.status == 400
    assert not await gateway.app[SESSIONS].live()


async def test_a_response_for_no_sign_in_under_way_is_not_kept(gateway: TestClient) -> None:
    answer = await Browser(gateway).post(
        "/signin/campus/callback", {"SAMLResponse": "PHg+", "RelayState": "made-up"}
    )
    assert answer.status == 400 and "took too long" in await answer.text()


async def test_the_sp_metadata_is_served_and_parses(gateway: TestClient) -> None:
    from saml2.md import entity_descriptor_from_string

    answer = await Browser(gateway).get("/signin/campus/metadata")
    assert answer.status == 200
    assert answer.content_type == "application/samlmetadata+xml"
    descriptor = entity_descriptor_from_string(await answer.text())
    assert descriptor.entity_id == "http://login.proxy.localhost:8080/signin/campus/metadata"
    [sp] = descriptor.spsso_descriptor
    [acs] = sp.assertion_consumer_service
    assert acs.location == "http://login.proxy.localhost:8080/signin/campus/callback"
    assert acs.binding == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"


async def test_the_sp_metadata_names_its_certificate_and_requests_are_signed(
    tmp_path: Path, start_gateway: Callable[..., Any], at_idp: IdpBrowser
) -> None:
    key, cert = keypair(tmp_path, "sp")
    gateway = await start_gateway(key_file=str(key), cert_file=str(cert))
    metadata = await (await Browser(gateway).get("/signin/campus/metadata")).text()
    body = "".join(cert.read_text().splitlines()[1:-1])
    assert body[:64] in metadata.replace("\n", "")
    started = await press_signin(Browser(gateway), START)
    assert "Signature=" in started.headers["Location"] and "SigAlg=" in started.headers["Location"]
    assert (await sign_in(Browser(gateway), at_idp, "alice", START)).status == 302


async def test_a_new_idp_key_is_picked_up_from_its_metadata_without_a_restart(
    start_gateway: Callable[..., Any], at_idp: IdpBrowser, idp: Idp, clock: ManualClock
) -> None:
    gateway = await start_gateway(metadata_refresh=300)
    assert (await sign_in(Browser(gateway), at_idp, "alice", START)).status == 302
    hits = idp.metadata_hits
    idp.rotate_key()
    await refused(gateway, at_idp)  # the metadata the gateway holds names the old key
    clock.advance(301)
    assert (await sign_in(Browser(gateway), at_idp, "alice", START)).status == 302
    assert idp.metadata_hits == hits + 1


async def test_signed_idp_metadata_is_checked(
    tmp_path: Path, start_gateway: Callable[..., Any], at_idp: IdpBrowser, idp: Idp,
    clock: ManualClock,
) -> None:  # fmt: skip
    federation = keypair(tmp_path, "federation")
    idp.federation_key = federation
    gateway = await start_gateway(idp_metadata_cert=str(federation[1]), metadata_refresh=300)
    assert (await sign_in(Browser(gateway), at_idp, "alice", START)).status == 302
    idp.federation_key = keypair(tmp_path, "impostor")  # signed, but not by the federation
    idp.rotate_key()
    clock.advance(301)
    await refused(gateway, at_idp)  # the impostor's metadata (and its key) was not taken


async def test_idp_metadata_with_a_bad_signature_is_refused_from_the_start(
    tmp_path: Path, start_gateway: Callable[..., Any], idp: Idp
) -> None:
    idp.federation_key = keypair(tmp_path, "impostor")
    gateway = await start_gateway(idp_metadata_cert=str(keypair(tmp_path, "federation")[1]))
    answer = await press_signin(Browser(gateway), START)
    assert answer.status == 503 and "sign-in service is not answering" in await answer.text()


async def test_unsigned_idp_metadata_is_refused_when_a_certificate_is_set(
    tmp_path: Path, start_gateway: Callable[..., Any]
) -> None:
    gateway = await start_gateway(idp_metadata_cert=str(keypair(tmp_path, "federation")[1]))
    assert (await press_signin(Browser(gateway), START)).status == 503


@pytest.mark.parametrize("trouble", ["answers-503", "nothing-listening"])
async def test_an_idp_that_cannot_be_reached_gets_the_503_page(
    start_gateway: Callable[..., Any], idp: Idp, trouble: str
) -> None:
    from gateway.embedded_redis import free_port

    idp.down = True  # its metadata URL answers 503
    entry = {"idp_metadata_url": f"http://127.0.0.1:{free_port()}/metadata"}
    gateway = await start_gateway(**(entry if trouble == "nothing-listening" else {}))
    answer = await press_signin(Browser(gateway), START)
    assert answer.status == 503
    assert "sign-in service is not answering" in await answer.text()
    assert not await gateway.app[SESSIONS].live()


async def test_the_login_page_offers_the_idp(gateway: TestClient) -> None:
    html = await (await Browser(gateway).get("/login")).text()
    assert html.index("Sign in with Campus ID") < html.index('name="card"')
    es = await (await Browser(gateway, lang="es").get("/login")).text()
    assert "ID del campus" in es


async def test_no_attribute_value_reaches_the_log(
    gateway: TestClient, at_idp: IdpBrowser, idp: Idp, caplog: pytest.LogCaptureFixture
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    assert (await sign_in(Browser(gateway), at_idp, "alice", START)).status == 302
    idp.answer.after_signing = tamper
    await refused(gateway, at_idp)
    idp.answer.after_signing = xsw_response_in_object  # pysaml2 quotes this one whole
    await refused(gateway, at_idp)
    logged = caplog.text
    assert "refused" in logged
    for value in ("alice@campus.test", "mallory@campus.test", "student", "common-lib-terms"):
        assert value not in logged


async def test_an_encrypted_assertion_is_decrypted_with_the_sp_key(
    tmp_path: Path, start_gateway: Callable[..., Any], at_idp: IdpBrowser, idp: Idp
) -> None:
    """Shibboleth encrypts assertions for an SP whose metadata has a certificate."""
    key, cert = keypair(tmp_path, "sp")
    gateway = await start_gateway(key_file=str(key), cert_file=str(cert))
    idp.answer.sign = "assertion"
    idp.answer.encrypt = True
    seen: list[str] = []
    idp.answer.after_signing = lambda xml: seen.append(xml) or xml
    assert (await sign_in(Browser(gateway), at_idp, "alice", START)).status == 302
    assert "EncryptedAssertion" in seen[0] and "alice@campus.test" not in seen[0]
    [session] = await gateway.app[SESSIONS].live()
    assert session.pid == gateway.app[KEYRING].pseudonym("saml:campus:alice@campus.test")


async def test_a_forged_assertion_beside_an_encrypted_signed_one_is_refused(
    tmp_path: Path, start_gateway: Callable[..., Any], at_idp: IdpBrowser, idp: Idp
) -> None:
    """Signature wrapping with encryption: a plain, unsigned assertion (made from a real one,
    for this very request) next to the IdP's encrypted, signed one."""
    key, cert = keypair(tmp_path, "sp")
    gateway = await start_gateway(key_file=str(key), cert_file=str(cert))
    idp.answer.sign = "assertion"
    plain: list[str] = []

    def keep(xml: str) -> str:
        start, end = assertion_of(xml)
        root = xml[xml.index("Response") : xml.index(">", xml.index("Response"))]
        namespaces = " ".join(re.findall(r'xmlns:\w+="[^"]+"', root))
        tag = ASSERTION.search(xml[start:end])
        assert tag
        plain.append(f"{tag[0]} {namespaces}" + xml[start + len(tag[0]) : end])
        return xml

    idp.answer.after_signing = keep
    assert (await sign_in(Browser(gateway), at_idp, "alice", START)).status == 302

    def beside(xml: str) -> str:
        request = re.search(r' InResponseTo="([^"]+)"', xml)
        encrypted = re.search(r"<(\w+):EncryptedAssertion\b", xml)
        assert request and encrypted
        forged = re.sub(r' InResponseTo="[^"]+"', f' InResponseTo="{request[1]}"',
                        forged_copy(plain[0]))  # fmt: skip
        return xml[: encrypted.start()] + forged + xml[encrypted.start() :]

    idp.answer.encrypt = True
    idp.answer.after_signing = beside
    await refused(gateway, at_idp)


async def test_routes_of_a_method_that_is_not_saml_are_not_found(gateway: TestClient) -> None:
    patron = Browser(gateway)
    assert (await patron.get("/signin/nobody/metadata")).status == 404
    assert (await patron.post("/signin/nobody/callback", {"RelayState": "x"})).status == 404


async def test_a_failed_metadata_refresh_keeps_the_last_good_metadata(
    start_gateway: Callable[..., Any], at_idp: IdpBrowser, idp: Idp, clock: ManualClock
) -> None:
    gateway = await start_gateway(metadata_refresh=300)
    idp.down = True  # its metadata URL answers 503 from now on; its sign-in page still works
    clock.advance(301)
    hits = idp.metadata_hits
    assert (await sign_in(Browser(gateway), at_idp, "alice", START)).status == 302
    assert idp.metadata_hits == hits + 1  # it was asked, and the old metadata stayed in use


async def test_staff_see_and_block_a_saml_patron(gateway: TestClient, at_idp: IdpBrowser) -> None:
    from gateway.appkeys import SETTINGS
    from tests.admin_support import Console, add_staff

    add_staff(gateway.app[SETTINGS])
    assert (await sign_in(Browser(gateway), at_idp, "alice", START)).status == 302
    console = Console(Browser(gateway))
    assert (await console.login("dee")).status == 302
    listing = await (await console.browser.get("/admin/sessions")).text()
    assert "saml:campus" in listing and 'value="saml:campus:alice@campus.test"' in listing
    blocked = await console.call("POST", "/admin/api/cards/saml:campus:alice@campus.test/block")
    assert blocked.status == 200
    assert not await gateway.app[SESSIONS].live()
    again = await sign_in(Browser(gateway), at_idp, "alice", START)
    assert again.status == 403 and "cannot be used for databases" in await again.text()


async def test_the_idps_friendly_name_does_not_stand_in_for_another_attribute(
    start_gateway: Callable[..., Any], at_idp: IdpBrowser, idp: Idp
) -> None:
    """bob has no eduPersonEntitlement; an affiliation the IdP mislabels as one is not it."""
    gateway = await start_gateway(groups_attribute="eduPersonEntitlement")

    def mislabel(response: Any) -> None:
        for attribute in response.assertion[0].attribute_statement[0].attribute:
            if attribute.name == "urn:oid:1.3.6.1.4.1.5923.1.1.1.1":  # eduPersonAffiliation
                attribute.friendly_name = "eduPersonEntitlement"

    idp.answer.before_signing = mislabel
    assert (await sign_in(Browser(gateway), at_idp, "bob", START)).status == 302
    [session] = await gateway.app[SESSIONS].live()
    assert session.groups == frozenset()


ENTITLED = "urn:mace:dir:entitlement:common-lib-terms"
LICENSED_ONLY = [
    f'If urn:oid:1.3.6.1.4.1.5923.1.1.1.7 equals "{ENTITLED}"; Group student',
    'If not eduPersonEntitlement present; Deny "Only licensed users: ask at the desk"',
]


async def test_attribute_rules_give_groups_and_deny_from_the_assertion(
    start_gateway: Callable[..., Any],
) -> None:
    """The rules read the assertion's attributes by urn:oid or friendly name: alice's
    entitlement gives the group the licensed journals need; bob, with none, is denied."""
    gateway = await start_gateway(rules=LICENSED_ONLY)
    alice, there = Browser(gateway), IdpBrowser()
    try:
        assert (await sign_in(alice, there, "alice", f"https://{OTHER}/")).status == 302
        bob = Browser(gateway)
        denied = await sign_in(bob, there, "bob", f"https://{OTHER}/")
    finally:
        await there.close()
    assert (await alice.get("/", host=proxied(OTHER))).status == 200
    text = await denied.text()
    assert denied.status == 403 and "Only licensed users: ask at the desk" in text
    [session] = await gateway.app[SESSIONS].live()  # alice's alone
    assert session.groups == frozenset({"Default", "student"})


async def test_the_consoles_test_signin_shows_what_the_idp_released(
    start_gateway: Callable[..., Any],
) -> None:
    """The console's test sign-in through the SAML round trip (the IdP's cross-site POST, the
    ACS holding it, the callback passing the state on): the attributes and the rules' outcome,
    no session, and the Response used once."""
    gateway = await start_gateway(rules=LICENSED_ONLY)
    add_staff(gateway.app[SETTINGS])
    console = Console(Browser(gateway))
    assert (await console.login("ada")).status == 302
    started = await console.form("/admin/signin-test/campus")
    assert started.status == 302, await started.text()
    there = IdpBrowser()
    try:
        action, fields = await there.log_in(started.headers["Location"], "bob")
    finally:
        await there.close()
    passed = await post_to_acs(console.browser, action, fields)  # the callback's 303 onward
    assert passed.status == 303, await passed.text()
    location = urlsplit(passed.headers["Location"])
    assert location.path == "/admin/signin-test/result"
    page = await console.browser.get(f"{location.path}?{location.query}")
    html = await page.text()
    assert page.status == 200, html
    assert "<code>bob@campus.test</code>" in html and "<code>member</code>" in html
    assert "Only licensed users: ask at the desk" in html and "Denied" in html
    assert await gateway.app[SESSIONS].live() == []
    again = await console.browser.get(f"{location.path}?{location.query}")
    assert again.status == 400  # the flow and the held Response are gone
