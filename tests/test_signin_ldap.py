"""Sign-in with a username and password against a real directory (Debian's slapd, started and
seeded by the tests on loopback): from a starting-point link to the database over StartTLS and
LDAPS, groups from an attribute, and the refusals: a wrong password counting toward the
lockout, filter injection in the username, an empty password (which this slapd, like many
servers, would take as an anonymous "success"), a server that is down or silent, and a
certificate from another CA."""

from __future__ import annotations

import asyncio
import html
import logging
import re
import socket
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis as redis_sync
import trustme
from aiohttp import ClientResponse, DummyCookieJar
from aiohttp.test_utils import TestClient

from gateway import config
from gateway.app import build_app
from gateway.appkeys import KEYRING, SESSIONS, SETTINGS
from gateway.auth.ldap import LdapMethod
from gateway.auth.signin import WrongCredentials
from gateway.embedded_redis import free_port
from tests.admin_support import Console, add_staff
from tests.ldap_support import BASE, PASSWORDS, SERVICE_PASSWORD, Slapd, directory, start_slapd
from tests.patron_support import TOKEN, Browser
from tests.test_signin_oidc import RULES, START, proxied
from tests.vendor_support import OTHER, WWW, Vendor, gateway_settings


@pytest.fixture
def start_gateway(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., config.Settings],
    vendor: Vendor, slapd: Slapd,
) -> Callable[..., Any]:  # fmt: skip
    async def start(**entry: Any) -> TestClient:
        lockout = {"card_failures": 3, "pin_spray_cards": 3}
        settings = gateway_settings(make_settings, vendor, RULES, ldap=[directory(slapd, **entry)],
                                    lockout=lockout)  # fmt: skip
        client: TestClient = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
        return client

    return start


async def sign_in(
    patron: Browser, username: str, password: str, target: str = START
) -> ClientResponse:
    """Open the login page for ``target`` and send the directory's form, as a patron does."""
    page = await patron.get("/login" + (f"?qurl={quote(target, safe='')}" if target else ""))
    text = await page.text()
    token = TOKEN.search(text)
    assert page.status == 200 and token and 'action="/signin/directory"' in text, text
    url = re.search(r'name="url" value="([^"]*)"', text)
    form = {"csrf_token": token[1], "url": html.unescape(url[1]) if url else "",
            "username": username, "password": password}  # fmt: skip
    return await patron.post("/signin/directory", form)


async def test_signin_from_a_starting_point_reaches_the_database(gateway: TestClient) -> None:
    patron = Browser(gateway)
    answer = await sign_in(patron, "alice", PASSWORDS["alice"])
    assert answer.status == 302, await answer.text()
    assert answer.headers["Location"] == f"http://{proxied(WWW)}/"
    assert (await patron.get("/", host=proxied(WWW))).status == 200
    [session] = await gateway.app[SESSIONS].live()
    assert session.method == "ldap:directory"
    assert session.pid == gateway.app[KEYRING].pseudonym("ldap:directory:alice")
    assert session.groups == frozenset({"Default", "Licensed"})


async def test_a_blocked_patron_cannot_sign_in_even_with_the_right_password(
    gateway: TestClient,
) -> None:
    sessions = gateway.app[SESSIONS]
    assert (await sign_in(Browser(gateway), "alice", PASSWORDS["alice"])).status == 302
    assert await sessions.block(gateway.app[KEYRING].pseudonym("ldap:directory:alice")) == 1
    answer = await sign_in(Browser(gateway), "alice", PASSWORDS["alice"])
    assert answer.status == 403 and "cannot be used for databases" in await answer.text()
    assert not await sessions.live()


async def test_the_directorys_attribute_decides_a_group_database(gateway: TestClient) -> None:
    for account, status in (("alice", 200), ("bob", 403)):
        patron = Browser(gateway)
        answer = await sign_in(patron, account, PASSWORDS[account], f"https://{OTHER}/")
        assert answer.status == 302, account
        page = await patron.get("/", host=proxied(OTHER))
        assert page.status == status, account
        if status == 403:
            assert "not available with your library card or account" in await page.text()


async def test_attribute_rules_read_the_entry(start_gateway: Callable[..., Any]) -> None:
    """Rules on the attributes read from the entry: a mail domain gives the group the licensed
    database needs (no groups attribute at all), and a Deny keeps an account out."""
    gateway = await start_gateway(groups_attribute="", rules=[
        'If mail matches "(?i).*@example\\.org"; Group Licensed',
        'If uid equals bob; Deny "Walk-in accounts use the library\'s own computers"',
    ])  # fmt: skip
    alice = Browser(gateway)
    assert (await sign_in(alice, "alice", PASSWORDS["alice"], f"https://{OTHER}/")).status == 302
    assert (await alice.get("/", host=proxied(OTHER))).status == 200
    [session] = await gateway.app[SESSIONS].live()
    assert session.groups == frozenset({"Default", "Licensed"})
    denied = await sign_in(Browser(gateway), "bob", PASSWORDS["bob"])
    assert denied.status == 403
    assert "Walk-in accounts use the library&#39;s own computers" in await denied.text()
    assert len(await gateway.app[SESSIONS].live()) == 1


async def test_ldaps_signs_in_too(start_gateway: Callable[..., Any], slapd: Slapd) -> None:
    gateway = await start_gateway(url=slapd.ldaps_url, start_tls=False)
    assert (await sign_in(Browser(gateway), "bob", PASSWORDS["bob"])).status == 302
    assert [s.method for s in await gateway.app[SESSIONS].live()] == ["ldap:directory"]


@pytest.mark.parametrize("transport", ["ldaps", "start_tls"])
async def test_a_server_whose_certificate_another_ca_signed_is_refused(
    start_gateway: Callable[..., Any], slapd: Slapd, tmp_path: Path, transport: str
) -> None:
    stranger = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(stranger))
    url = slapd.ldaps_url if transport == "ldaps" else slapd.ldap_url
    gateway = await start_gateway(url=url, start_tls=transport == "start_tls",
                                  ca_file=str(stranger))  # fmt: skip
    answer = await sign_in(Browser(gateway), "alice", PASSWORDS["alice"])
    assert answer.status == 503
    assert "sign-in service is not answering" in await answer.text()
    assert not await gateway.app[SESSIONS].live()


@pytest.mark.parametrize("transport", ["ldaps", "start_tls"])
async def test_a_certificate_for_another_host_name_is_refused(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., config.Settings],
    vendor: Vendor, tmp_path: Path, transport: str,
) -> None:  # fmt: skip
    """The right CA, but a certificate for ldap.example.org, at 127.0.0.1."""
    elsewhere = start_slapd(tmp_path, names=("ldap.example.org",))
    try:
        url = elsewhere.ldaps_url if transport == "ldaps" else elsewhere.ldap_url
        entry = directory(elsewhere, url=url, start_tls=transport == "start_tls")
        settings = gateway_settings(make_settings, vendor, RULES, ldap=[entry])
        gateway = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
        answer = await sign_in(Browser(gateway), "alice", PASSWORDS["alice"])
        assert answer.status == 503
        assert not await gateway.app[SESSIONS].live()
    finally:
        elsewhere.stop()


async def test_a_wrong_password_counts_toward_the_lockout_and_then_the_right_one_is_refused(
    gateway: TestClient, redis_url: str
) -> None:
    patron = Browser(gateway)
    first = await sign_in(patron, "alice", "not-her-password")
    assert first.status == 401
    assert "username or password is not right" in await first.text()
    assert (await sign_in(patron, "Alice", "still-not-it")).status == 401  # one account, any case
    third = await sign_in(patron, "alice", "wrong-again")  # card_failures = 3: this one locks
    assert third.status == 401 and "This account is locked here" in await third.text()
    locked = await sign_in(patron, "alice", PASSWORDS["alice"])
    assert locked.status == 429 and "This account is locked here" in await locked.text()
    assert not await gateway.app[SESSIONS].live()
    assert (await sign_in(Browser(gateway), "bob", PASSWORDS["bob"])).status == 302  # only hers
    keys = redis_sync.Redis.from_url(redis_url).keys("*")
    assert keys and not any(b"alice" in k or b"not-her-password" in k for k in keys)


async def test_one_password_sprayed_over_many_accounts_is_throttled(
    start_gateway: Callable[..., Any],
) -> None:
    gateway = await start_gateway()
    sprayed = "Spring2026!"
    for account in ("carol", "dave", "erin"):  # lockout.pin_spray_cards = 3
        assert (await sign_in(Browser(gateway), account, sprayed)).status == 401
    throttled = await sign_in(Browser(gateway), "bob", sprayed)
    assert throttled.status == 429 and "too many login attempts" in await throttled.text()
    assert (await sign_in(Browser(gateway), "bob", PASSWORDS["bob"])).status == 302


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("*", PASSWORDS["alice"]),
        ("a*e", PASSWORDS["alice"]),  # unescaped, matches alice alone: she would sign in
        ("adm*", PASSWORDS["admin"]),
        ("alice)(uid=alice", PASSWORDS["alice"]),
        (")(uid=*", PASSWORDS["alice"]),
        ("admin*)(|(uid=*", PASSWORDS["admin"]),
        ("*)(objectClass=*", PASSWORDS["bob"]),
        ("bob\x00", PASSWORDS["bob"]),
        ("\\2a", PASSWORDS["alice"]),  # an escape typed in: escaped again, a literal "\2a"
    ],
)
async def test_filter_injection_in_the_username_never_signs_in(
    gateway: TestClient, username: str, password: str
) -> None:
    answer = await sign_in(Browser(gateway), username, password)
    assert answer.status == 401, await answer.text()
    assert not await gateway.app[SESSIONS].live()


async def test_an_empty_password_is_refused_and_never_sent(
    gateway: TestClient, slapd: Slapd
) -> None:
    # What the gateway must not be fooled by: this server takes a DN without a password as an
    # anonymous bind, and says so with success.
    whoami = subprocess.run(
        ["ldapwhoami", "-x", "-H", slapd.ldap_url, "-D", f"uid=alice,ou=people,{BASE}", "-w", ""],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert whoami.returncode == 0 and whoami.stdout.strip() == "anonymous"
    answer = await sign_in(Browser(gateway), "alice", "")
    assert answer.status == 400 and "Enter your password." in await answer.text()
    method = LdapMethod(config.build({"ldap": [directory(slapd)]}, env={}).ldap[0])
    with pytest.raises(WrongCredentials):
        await method.check("alice", "")
    assert not await gateway.app[SESSIONS].live()


async def test_a_password_no_simple_bind_can_send_is_wrong_not_a_server_fault(
    gateway: TestClient,
) -> None:
    """A control character, which SASLprep (RFC 4013) prohibits: the patron's typing, counted
    as a wrong password, not the "try later" page."""
    answer = await sign_in(Browser(gateway), "alice", PASSWORDS["alice"] + "\x07")
    assert answer.status == 401


async def test_an_entry_without_the_patron_id_attribute_is_refused_but_not_as_a_wrong_password(
    start_gateway: Callable[..., Any],
) -> None:
    gateway = await start_gateway(patron_id_attribute="mail")  # the admin entry has no mail
    answer = await sign_in(Browser(gateway), "admin", PASSWORDS["admin"])
    assert answer.status == 403 and "Signing in did not work" in await answer.text()
    assert not await gateway.app[SESSIONS].live()
    bob = await sign_in(Browser(gateway), "bob", PASSWORDS["bob"])
    assert bob.status == 302
    [session] = await gateway.app[SESSIONS].live()
    assert session.pid == gateway.app[KEYRING].pseudonym("ldap:directory:bob@example.org")


async def test_a_missing_username_is_asked_for(gateway: TestClient) -> None:
    answer = await sign_in(Browser(gateway), "  ", "whatever")
    text = await answer.text()
    assert answer.status == 400 and "Enter your username." in text
    assert 'href="#signin-directory-username"' in text  # the summary leads to the field
    assert re.search(r'id="signin-directory-username"[^>]*aria-invalid="true"', text, re.S)


async def test_a_server_that_is_down_gets_the_503_page(start_gateway: Callable[..., Any]) -> None:
    gateway = await start_gateway(url=f"ldap://127.0.0.1:{free_port()}")
    answer = await sign_in(Browser(gateway), "alice", PASSWORDS["alice"])
    assert answer.status == 503
    assert "sign-in service is not answering" in await answer.text()
    assert not await gateway.app[SESSIONS].live()


@pytest.fixture
async def silent_port() -> AsyncIterator[int]:
    """A loopback port that accepts connections and never says a word."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0, family=socket.AF_INET)
    yield server.sockets[0].getsockname()[1]
    for writer in held:
        writer.close()
    server.close()


async def test_a_server_that_does_not_answer_gets_the_503_page(
    start_gateway: Callable[..., Any], silent_port: int
) -> None:
    gateway = await start_gateway(url=f"ldap://127.0.0.1:{silent_port}", timeout=1)
    answer = await sign_in(Browser(gateway), "alice", PASSWORDS["alice"])
    assert answer.status == 503
    assert not await gateway.app[SESSIONS].live()


async def test_a_service_account_the_server_refuses_gets_the_503_page(
    start_gateway: Callable[..., Any],
) -> None:
    """The gateway's own configuration at fault, not the patron's password: no session, and
    not the "wrong password" page either."""
    gateway = await start_gateway(bind_password="not-the-service-password")
    answer = await sign_in(Browser(gateway), "alice", PASSWORDS["alice"])
    assert answer.status == 503


async def test_a_service_account_the_server_refuses_is_logged_at_start(
    start_gateway: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    await start_gateway(bind_password="not-the-service-password")
    assert "signin directory: provider not reachable at start" in caplog.text
    assert "the service account's bind answered 49" in caplog.text
    assert "not-the-service-password" not in caplog.text


async def test_neither_passwords_nor_attribute_values_are_logged(
    gateway: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert (await sign_in(Browser(gateway), "alice", "a-wrong-password")).status == 401
    assert (await sign_in(Browser(gateway), "alice", PASSWORDS["alice"])).status == 302
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "signin directory refused" in logged  # the refusal is logged, by pseudonym
    for secret in ("a-wrong-password", PASSWORDS["alice"], SERVICE_PASSWORD,
                   "alice@example.org", "Licensed", "uid=alice"):  # fmt: skip
        assert secret not in logged


async def test_the_login_page_offers_the_directorys_form_in_both_languages(
    gateway: TestClient,
) -> None:
    english = await (await Browser(gateway).get("/login")).text()
    assert "Sign in with University account" in english
    assert '<label for="signin-directory-username">Username</label>' in english
    assert 'autocomplete="current-password"' in english and "Library card number" in english
    spanish = await (await Browser(gateway, lang="es").get("/login")).text()
    assert "Cuenta de la universidad" in spanish and ">Contraseña</label>" in spanish


async def test_the_form_needs_the_pages_token(gateway: TestClient) -> None:
    patron = Browser(gateway)
    await patron.get("/login")
    form = {"username": "alice", "password": PASSWORDS["alice"], "url": START}
    answer = await patron.post("/signin/directory", form)
    assert answer.status == 400
    assert not await gateway.app[SESSIONS].live()


async def test_a_form_method_has_no_callback(gateway: TestClient) -> None:
    assert (await Browser(gateway).get("/signin/directory/callback?state=x")).status == 404


async def test_staff_test_a_directory_account_in_the_console(
    start_gateway: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The console's test sign-in for a directory: the entry's attributes and the rules'
    outcome, no session; a wrong password is refused there as at the login page, and counts."""
    caplog.set_level(logging.DEBUG)
    gateway = await start_gateway(rules=['If mail matches ".*@example\\.org"; Group Mail'])
    add_staff(gateway.app[SETTINGS])
    console = Console(Browser(gateway))
    assert (await console.login("ada")).status == 302
    listing = await console.browser.get("/admin/signin-test")
    assert 'id="test-directory-password"' in await listing.text()
    shown = await console.form("/admin/signin-test/directory", username="alice",
                               password=PASSWORDS["alice"])  # fmt: skip
    html = await shown.text()
    assert shown.status == 200 and shown.headers["Cache-Control"] == "no-store", html
    assert "<code>alice@example.org</code>" in html and "<code>ldap:directory:alice</code>" in html
    assert "Default, Licensed, Mail" in html and "<strong>matched</strong>" in html
    assert await gateway.app[SESSIONS].live() == []
    wrong = await console.form("/admin/signin-test/directory", username="bob", password="nope")
    assert "The username or password is not right" in await wrong.text()
    assert "Attributes the provider sent" not in await wrong.text()
    missing = await console.form("/admin/signin-test/directory", username="bob", password="")
    assert missing.status == 400
    assert PASSWORDS["alice"] not in caplog.text and "alice@example.org" not in caplog.text
    for _ in range(2):  # the console's wrong try counted: two more lock bob at the login page
        await sign_in(Browser(gateway), "bob", "nope")
    locked = await sign_in(Browser(gateway), "bob", PASSWORDS["bob"])
    assert locked.status == 429 and "locked" in await locked.text()
