"""Sign-in through CAS 3.0 against a real CAS server on loopback: the round trip from a
starting-point link to the database, groups from the server's attributes, and the refusals
(a ticket used twice, a ticket issued for another service, a bad state, a made-up ticket), and
a server that is down.

The server is nitmir's django-cas-server (PyPI), run by Django on a loopback port: a maintained
implementation of CAS 1, 2 and 3 (``/p3/serviceValidate`` with attributes, single-use service
tickets, service URLs compared exactly, attribute release per service) that installs from
PyPI with pip alone, in its own virtualenv (``make cas``, every package pinned by
tests/idp/cas/requirements.txt), and starts in a couple of seconds. django-mama-cas, the other
Django candidate, was last released in 2021. Apereo CAS, the reference server, would be the
truest peer, but its executable WAR from Maven is well over a hundred megabytes, takes a
minute or more to start on CI's two cores, and its 7.x line needs Java 21 (Debian 12 has 17):
too heavy for a fixture that every test module run starts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient

from gateway import config
from gateway.app import build_app
from gateway.appkeys import KEYRING, SESSIONS, SETTINGS
from gateway.auth.signin import is_account
from gateway.embedded_redis import free_port
from tests.cas_support import CasBrowser, CasServer, running_cas
from tests.oidc_support import callback_path, press_signin
from tests.patron_support import Browser
from tests.test_signin_oidc import RULES, START, proxied
from tests.vendor_support import OTHER, WWW, Vendor, gateway_settings


@pytest.fixture(scope="module")
def cas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CasServer]:
    """One CAS server for the module (its tickets are single use: tests do not share any)."""
    yield from running_cas(tmp_path_factory.mktemp("cas"))


@pytest.fixture
async def at_cas() -> AsyncIterator[CasBrowser]:
    browser = CasBrowser()
    yield browser
    await browser.close()


@pytest.fixture
def start_gateway(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., config.Settings],
    vendor: Vendor, cas: CasServer,
) -> Callable[..., Any]:  # fmt: skip
    async def start(providers: list[dict[str, Any]] | None = None) -> TestClient:
        settings = gateway_settings(make_settings, vendor, RULES, cas=providers or [cas.settings()])
        gateway: TestClient = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
        return gateway

    return start


@pytest.fixture
async def gateway(start_gateway: Callable[..., Any]) -> TestClient:
    client: TestClient = await start_gateway()
    return client


async def sign_in(
    gateway: TestClient, account: str, target: str = START, method: str = "campus"
) -> tuple[Browser, Any]:
    """The button, the CAS server's login form, the callback's answer (a fresh browser at
    both ends: the server's single sign-on session would otherwise skip its form)."""
    patron, there = Browser(gateway), CasBrowser()
    try:
        started = await press_signin(patron, target, method)
        assert started.status == 302, await started.text()
        back = await there.log_in(started.headers["Location"], account)
    finally:
        await there.close()
    return patron, await patron.get(callback_path(back))


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def test_signin_from_a_starting_point_reaches_the_database(
    gateway: TestClient, at_cas: CasBrowser, cas: CasServer
) -> None:
    patron = Browser(gateway)
    started = await press_signin(patron, START)
    assert started.status == 302
    location = started.headers["Location"]
    assert location.startswith(f"{cas.url}/login?service=")
    service = query_of(location)["service"]
    assert service.startswith("http://login.proxy.localhost:8080/signin/campus/callback?state=")
    assert "vendor.test" not in location  # the starting point stays with the gateway
    back = await at_cas.log_in(location, "alice")
    assert back.startswith(service + "&ticket=ST-")
    answer = await patron.get(callback_path(back))
    assert answer.status == 302, await answer.text()
    assert answer.headers["Location"] == f"http://{proxied(WWW)}/"
    page = await patron.get("/", host=proxied(WWW))
    assert page.status == 200
    [session] = await gateway.app[SESSIONS].live()
    assert session.method == "cas:campus"
    assert session.pid == gateway.app[KEYRING].pseudonym("cas:campus:alice")
    assert session.groups == frozenset({"Default", "Licensed"})  # the groups attribute's values


async def test_groups_from_the_attributes_decide_a_group_database(gateway: TestClient) -> None:
    for account, status in (("alice", 200), ("bob", 403)):
        patron, answer = await sign_in(gateway, account, f"https://{OTHER}/")
        assert answer.status == 302, account
        page = await patron.get("/", host=proxied(OTHER))
        assert page.status == status, account
        if status == 403:
            assert "not available with your library card or account" in await page.text()


async def test_the_patron_id_can_be_an_attribute(start_gateway: Callable[..., Any],
                                                 cas: CasServer) -> None:  # fmt: skip
    gateway = await start_gateway([cas.settings(patron_id_attribute="mail")])
    _, answer = await sign_in(gateway, "bob")
    assert answer.status == 302
    [session] = await gateway.app[SESSIONS].live()
    assert session.pid == gateway.app[KEYRING].pseudonym("cas:campus:bob@campus.test")
    assert session.groups == frozenset({"Default"})


async def test_a_ticket_used_twice_is_refused(
    gateway: TestClient, at_cas: CasBrowser, caplog: pytest.LogCaptureFixture
) -> None:
    patron = Browser(gateway)
    started = await press_signin(patron, START)
    back = await at_cas.log_in(started.headers["Location"], "alice")
    assert (await patron.get(callback_path(back))).status == 302
    # The same callback again: its state is used up.
    again = await patron.get(callback_path(back))
    assert again.status == 400 and "took too long or was already used" in await again.text()
    # The used ticket under a fresh sign-in's state: the CAS server refuses it.
    fresh = Browser(gateway)
    restarted = await press_signin(fresh, START)
    state = query_of(query_of(restarted.headers["Location"])["service"])["state"]
    replay = await fresh.get(
        f"/signin/campus/callback?state={state}&ticket={query_of(back)['ticket']}"
    )
    assert replay.status == 403 and "Signing in did not work" in await replay.text()
    assert "the CAS server refused the ticket: INVALID_TICKET" in caplog.text
    assert len(await gateway.app[SESSIONS].live()) == 1


async def test_a_ticket_issued_for_another_service_is_refused(
    start_gateway: Callable[..., Any], cas: CasServer, at_cas: CasBrowser,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """A ticket the server gave for one provider's callback, presented at another's (with
    that one's own fresh state, in the browser that started it): another service URL."""
    gateway = await start_gateway([cas.settings(), cas.settings("library")])
    patron = Browser(gateway)
    started = await press_signin(patron, START)
    ticket = query_of(await at_cas.log_in(started.headers["Location"], "alice"))["ticket"]
    other = await press_signin(patron, START, method="library")
    state = query_of(query_of(other.headers["Location"])["service"])["state"]
    answer = await patron.get(f"/signin/library/callback?state={state}&ticket={ticket}")
    assert answer.status == 403 and "Signing in did not work" in await answer.text()
    assert "the CAS server refused the ticket: INVALID_SERVICE" in caplog.text
    assert not await gateway.app[SESSIONS].live()


async def test_a_bad_state_is_refused(gateway: TestClient, at_cas: CasBrowser) -> None:
    patron = Browser(gateway)
    started = await press_signin(patron, START)
    back = await at_cas.log_in(started.headers["Location"], "alice")
    answer = await patron.get(callback_path(back).replace("state=", "state=x"))
    assert answer.status == 400
    assert "took too long or was already used" in await answer.text()
    assert not await gateway.app[SESSIONS].live()


@pytest.mark.parametrize("ticket", ["ST-made-up-0123456789abcdef0123456789abcdef", ""])
async def test_a_ticket_the_server_never_gave_is_refused(gateway: TestClient, ticket: str) -> None:
    patron = Browser(gateway)
    started = await press_signin(patron, START)
    state = query_of(query_of(started.headers["Location"])["service"])["state"]
    answer = await patron.get(f"/signin/campus/callback?state={state}&ticket={ticket}")
    assert answer.status == 403 and "Signing in did not work" in await answer.text()
    assert not await gateway.app[SESSIONS].live()


async def test_a_cas_server_that_is_down_gets_the_503_page(
    start_gateway: Callable[..., Any], cas: CasServer
) -> None:
    """The server answered the login and is gone when its ticket is to be validated."""
    gateway = await start_gateway([cas.settings(server_url=f"http://127.0.0.1:{free_port()}")])
    patron = Browser(gateway)
    started = await press_signin(patron, START)
    state = query_of(query_of(started.headers["Location"])["service"])["state"]
    answer = await patron.get(f"/signin/campus/callback?state={state}&ticket=ST-1-abcdef")
    assert answer.status == 503
    assert "sign-in service is not answering" in await answer.text()
    assert not await gateway.app[SESSIONS].live()


async def test_the_login_page_offers_the_cas_server(gateway: TestClient, cas: CasServer) -> None:
    page = await Browser(gateway).get("/login")
    html = await page.text()
    form_action = page.headers["Content-Security-Policy"].split("form-action", 1)[1].split(";")[0]
    assert cas.url in form_action.split()  # the button's redirect goes to the CAS server
    assert html.index("Sign in with Campus CAS") < html.index('name="card"')
    es = await (await Browser(gateway, lang="es").get("/login")).text()
    assert "Iniciar sesión con CAS del campus" in es


async def test_a_blocked_cas_patron_gets_no_session(gateway: TestClient) -> None:
    """Blocks name a CAS patron as ``cas:<id>:<patron id>``, as the console and the command
    line accept it, and end its sessions as a card's."""
    settings = gateway.app[SETTINGS]
    assert is_account("cas:campus:alice", settings)
    assert not is_account("oidc:campus:alice", settings)  # campus is a CAS server here
    pid = gateway.app[KEYRING].pseudonym("cas:campus:alice")
    assert (await sign_in(gateway, "alice"))[1].status == 302
    assert await gateway.app[SESSIONS].block(pid) == 1
    _, answer = await sign_in(gateway, "alice")
    assert answer.status == 403 and "cannot be used for databases" in await answer.text()
    assert not await gateway.app[SESSIONS].live()
