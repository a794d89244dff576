"""Sign-in through OpenID Connect against a real provider (node's oidc-provider) on loopback:
the round trip from a starting-point link to the database, groups from the provider, and the
refusals (bad state, a replayed callback, a used code, another browser's callback, forged ID
tokens, alg=none), a key rotation picked up without a restart, and a provider that is down."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient
from authlib.jose import JsonWebToken

from gateway import config
from gateway.admin.actions import session_view
from gateway.app import build_app
from gateway.appkeys import KEYRING, SESSIONS, SETTINGS
from gateway.auth.oidc import JWKS_MIN_INTERVAL
from gateway.embedded_redis import free_port
from tests.oidc_support import (
    CLIENT_SECRET,
    Provider,
    ProviderBrowser,
    callback_path,
    client,
    press_signin,
    public,
    rsa_key,
    sign_in,
)
from tests.patron_support import Browser
from tests.support import ManualClock, run_gateway
from tests.vendor_support import API, CDN, OTHER, WWW, Vendor, gateway_settings, proxied

RULES = f"""Title Vendor
URL https://{WWW}/
HJ https://{WWW}
HJ https://{API}
HJ https://{CDN}
Group Licensed
Title Licensed journals
URL https://{OTHER}/
HJ https://{OTHER}
"""
START = f"https://{WWW}/"


@pytest.fixture
async def idp(tmp_path: Path) -> AsyncIterator[Provider]:
    async with Provider(tmp_path, [client()]) as provider:
        yield provider


@pytest.fixture
async def at_provider() -> AsyncIterator[ProviderBrowser]:
    browser = ProviderBrowser()
    yield browser
    await browser.close()


@pytest.fixture
def start_gateway(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., config.Settings],
    vendor: Vendor, idp: Provider, clock: ManualClock,
) -> Callable[..., Any]:  # fmt: skip
    async def start(oidc: list[dict[str, Any]] | None = None, **sections: Any) -> TestClient:
        settings = gateway_settings(make_settings, vendor, RULES, oidc=oidc or [idp.settings()],
                                    **sections)  # fmt: skip
        app = build_app(settings, clock)
        gateway: TestClient = await aiohttp_client(app, cookie_jar=DummyCookieJar())
        return gateway

    return start


async def test_signin_from_a_starting_point_reaches_the_database(
    gateway: TestClient, at_provider: ProviderBrowser, idp: Provider
) -> None:
    patron = Browser(gateway)
    started = await press_signin(patron, START)
    assert started.status == 302
    location = started.headers["Location"]
    assert location.startswith(f"{idp.issuer}/auth?")
    assert "code_challenge_method=S256" in location and "nonce=" in location
    assert "www.vendor.test" not in location  # the starting point stays with the gateway
    back = await at_provider.log_in(location, "alice")
    answer = await patron.get(callback_path(back))
    assert answer.status == 302, await answer.text()
    assert answer.headers["Location"] == f"http://{proxied(WWW)}/"
    page = await patron.get("/", host=proxied(WWW))
    assert page.status == 200 and f'href="http://{proxied(API)}/json"' in await page.text()
    [session] = await gateway.app[SESSIONS].live()
    assert session.method == "oidc:campus"
    assert session.pid == gateway.app[KEYRING].pseudonym("oidc:campus:alice")
    assert session.groups == frozenset({"Default", "Licensed"})  # from userinfo's groups claim
    view = session_view(session, show_card=True)  # the console's sessions list
    assert view["method"] == "oidc:campus" and view["card"] == "oidc:campus:alice"


async def test_groups_from_the_provider_decide_a_group_database(
    gateway: TestClient, idp: Provider
) -> None:
    for account, status in (("alice", 200), ("bob", 403)):
        patron, there = Browser(gateway), ProviderBrowser()
        try:
            assert (await sign_in(patron, there, account, f"https://{OTHER}/")).status == 302
            page = await patron.get("/", host=proxied(OTHER))
            assert page.status == status, account
            if status == 403:
                assert "not available with your library card or account" in await page.text()
        finally:
            await there.close()


async def test_a_bad_state_is_refused(gateway: TestClient, at_provider: ProviderBrowser) -> None:
    patron = Browser(gateway)
    started = await press_signin(patron, START)
    back = await at_provider.log_in(started.headers["Location"], "alice")
    forged = callback_path(back).replace("state=", "state=x")
    answer = await patron.get(forged)
    assert answer.status == 400
    assert "took too long or was already used" in await answer.text()
    assert not await gateway.app[SESSIONS].live()


async def test_a_callback_replayed_is_refused(
    gateway: TestClient, at_provider: ProviderBrowser
) -> None:
    patron = Browser(gateway)
    started = await press_signin(patron, START)
    back = await at_provider.log_in(started.headers["Location"], "alice")
    assert (await patron.get(callback_path(back))).status == 302
    again = await Browser(gateway).get(callback_path(back))
    assert again.status == 400
    assert len(await gateway.app[SESSIONS].live()) == 1


async def test_a_used_code_is_refused_by_the_provider(
    gateway: TestClient, at_provider: ProviderBrowser
) -> None:
    first = Browser(gateway)
    started = await press_signin(first, START)
    used = await at_provider.log_in(started.headers["Location"], "alice")
    assert (await first.get(callback_path(used))).status == 302
    used_code = dict(p.split("=", 1) for p in callback_path(used).split("?", 1)[1].split("&"))[
        "code"
    ]
    second = Browser(gateway)
    started = await press_signin(second, START)
    fresh = await at_provider.log_in(started.headers["Location"], "alice")
    params = dict(p.split("=", 1) for p in callback_path(fresh).split("?", 1)[1].split("&"))
    params["code"] = used_code  # a fresh state with the code the first sign-in used
    answer = await second.get(
        "/signin/campus/callback?" + "&".join(f"{k}={v}" for k, v in params.items())
    )
    assert answer.status == 403
    assert "Signing in did not work" in await answer.text()
    assert len(await gateway.app[SESSIONS].live()) == 1


async def test_a_callback_opened_in_another_browser_is_refused(
    gateway: TestClient, at_provider: ProviderBrowser
) -> None:
    """Login CSRF: the attacker's own code and state, opened in the patron's browser."""
    attacker = Browser(gateway)
    started = await press_signin(attacker, START)
    back = await at_provider.log_in(started.headers["Location"], "bob")
    victim = Browser(gateway)
    await victim.get("/login")
    answer = await victim.get(callback_path(back))
    assert answer.status == 400
    assert not await gateway.app[SESSIONS].live()


FORGER = rsa_key("forger")


def forged(
    changes: dict[str, Any], header: dict[str, Any] | None = None
) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A token endpoint answer whose ID token is re-signed by FORGER (whose public key the
    test adds to the provider's JWKS) with ``changes`` to the provider's claims."""

    def hook(answer: dict[str, Any]) -> dict[str, Any]:
        claims = JsonWebToken(["RS256"]).decode(answer["id_token"], public_keys_of_answer)
        changed = {**claims, **changes}
        changed = {k: v for k, v in changed.items() if v is not None}
        token = JsonWebToken(["RS256"]).encode(
            header or {"alg": "RS256", "kid": "forger"}, changed, FORGER
        )
        return {**answer, "id_token": token.decode()}

    return hook


public_keys_of_answer: Any = None
"""The provider's public keys, for the forger to read the genuine token (set per test)."""


def unsigned(answer: dict[str, Any]) -> dict[str, Any]:
    """The provider's ID token with its signature dropped and alg=none."""
    import base64
    import json

    _, payload, _ = answer["id_token"].split(".")
    head = base64.urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).rstrip(b"=").decode()
    return {**answer, "id_token": f"{head}.{payload}."}


def hs256(answer: dict[str, Any]) -> dict[str, Any]:
    """The provider's claims signed with HS256 and the client secret (the key confusion)."""
    claims = JsonWebToken(["RS256"]).decode(answer["id_token"], public_keys_of_answer)
    token = JsonWebToken(["HS256"]).encode({"alg": "HS256"}, dict(claims), CLIENT_SECRET.encode())
    return {**answer, "id_token": token.decode()}


@pytest.mark.parametrize(
    ("hook", "accepted"),
    [
        pytest.param(forged({}), True, id="forged-but-valid-control"),
        pytest.param(forged({"aud": "another-client"}), False, id="wrong-audience"),
        pytest.param(forged({"iss": "https://evil.example"}), False, id="wrong-issuer"),
        pytest.param(
            forged({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}),
            False,
            id="expired",
        ),
        pytest.param(forged({"nonce": "not-the-one"}), False, id="wrong-nonce"),
        pytest.param(forged({"nonce": None}), False, id="no-nonce"),
        pytest.param(forged({"at_hash": "not-the-access-tokens-hash"}), False, id="wrong-at-hash"),
        pytest.param(forged({"sub": None}), False, id="no-subject"),
        pytest.param(unsigned, False, id="alg-none"),
        pytest.param(hs256, False, id="hs256-with-the-secret"),
    ],
)
async def test_id_tokens_are_checked(
    gateway: TestClient, at_provider: ProviderBrowser, idp: Provider,
    hook: Callable[[dict[str, Any]], dict[str, Any]], accepted: bool,
) -> None:  # fmt: skip
    from authlib.jose import JsonWebKey

    global public_keys_of_answer
    public_keys_of_answer = JsonWebKey.import_key_set({"keys": [public(k) for k in idp.keys]})
    idp.front.extra_keys = [public(FORGER)]
    idp.front.token_hook = hook
    patron = Browser(gateway)
    answer = await sign_in(patron, at_provider, "alice", START)
    assert (answer.status == 302) is accepted, await answer.text()
    assert bool(await gateway.app[SESSIONS].live()) is accepted
    if not accepted:
        assert "Signing in did not work" in await answer.text()


async def test_a_key_rotation_is_picked_up_without_a_restart(
    gateway: TestClient, idp: Provider, clock: ManualClock
) -> None:
    async def one_sign_in() -> int:
        there = ProviderBrowser()
        try:
            return (await sign_in(Browser(gateway), there, "alice", START)).status
        finally:
            await there.close()

    assert await one_sign_in() == 302
    assert idp.front.hits["/jwks"] == 1
    idp.rotate_keys()  # the provider now signs with a key the gateway has not seen
    clock.advance(JWKS_MIN_INTERVAL + 1)
    assert await one_sign_in() == 302
    assert idp.front.hits["/jwks"] == 2
    # A token naming a key nobody has: refused, and within the interval no new JWKS fetch.
    stranger = rsa_key("nobody")
    idp.front.token_hook = lambda answer: {**answer, "id_token": JsonWebToken(["RS256"]).encode(
        {"alg": "RS256", "kid": "nobody"}, {"sub": "alice"}, stranger).decode()}  # fmt: skip
    assert await one_sign_in() == 403
    assert idp.front.hits["/jwks"] == 2


async def test_a_provider_that_is_down_gets_the_503_page(
    start_gateway: Callable[..., Any], idp: Provider
) -> None:
    gateway = await start_gateway([idp.settings(issuer=f"http://127.0.0.1:{free_port()}")])
    patron = Browser(gateway)
    answer = await press_signin(patron, START)
    assert answer.status == 503
    assert "sign-in service is not answering" in await answer.text()
    assert not await gateway.app[SESSIONS].live()


async def test_a_token_endpoint_in_trouble_gets_the_503_page(
    gateway: TestClient, at_provider: ProviderBrowser, idp: Provider
) -> None:
    idp.front.fail = {"/token"}
    answer = await sign_in(Browser(gateway), at_provider, "alice", START)
    assert answer.status == 503
    assert not await gateway.app[SESSIONS].live()


async def test_the_login_page_offers_the_provider_above_the_card_form(gateway: TestClient) -> None:
    html = await (await Browser(gateway).get("/login")).text()
    assert html.index("Sign in with Campus ID") < html.index('name="card"')
    es = await (await Browser(gateway, lang="es").get("/login")).text()
    assert "Iniciar sesión con Campus ID (es)" in es


async def test_the_card_form_can_be_switched_off(start_gateway: Callable[..., Any]) -> None:
    gateway = await start_gateway(signin={"card": False})
    patron = Browser(gateway)
    page = await patron.get("/login")
    html = await page.text()
    assert "Sign in with Campus ID" in html and 'name="card"' not in html
    token = html.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    refused = await patron.post(
        "/login", {"csrf_token": token, "card": "21234000000001", "pin": "4827"}
    )
    assert refused.status == 404


async def test_signing_in_without_the_form_token_is_refused(gateway: TestClient) -> None:
    answer = await Browser(gateway).post("/signin/campus", {"url": START})
    assert answer.status == 400 and "Location" not in answer.headers


async def test_private_key_jwt_authenticates_the_gateway(
    tmp_path: Path, aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., config.Settings], vendor: Vendor,
) -> None:  # fmt: skip
    from authlib.jose import JsonWebKey

    key = rsa_key("gateway-client")
    pem = tmp_path / "client-key.pem"
    pem.write_bytes(JsonWebKey.import_key(key).as_pem(is_private=True))
    registered = client("campus-jwt", client_id="carrel-jwt", token_endpoint_auth_method="private_key_jwt",
                        jwks={"keys": [public(key)]})  # fmt: skip
    del registered["client_secret"]
    (tmp_path / "idp").mkdir()
    async with Provider(tmp_path / "idp", [registered]) as provider:
        entry = provider.settings("campus-jwt", client_id="carrel-jwt", client_secret="",
                                  private_key_file=str(pem))  # fmt: skip
        settings = gateway_settings(make_settings, vendor, RULES, oidc=[entry])
        gateway: TestClient = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
        patron, there = Browser(gateway), ProviderBrowser()
        try:
            answer = await sign_in(patron, there, "alice", START, method="campus-jwt")
        finally:
            await there.close()
        assert answer.status == 302, await answer.text()
        assert answer.headers["Location"] == f"http://{proxied(WWW)}/"


async def test_the_browser_binding_cookie_is_lax_http_only_and_for_signin_only(
    gateway: TestClient,
) -> None:
    started = await press_signin(Browser(gateway), START)
    [cookie] = [c for c in started.headers.getall("Set-Cookie") if c.startswith("carrel_signin=")]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path", "samesite", "max-age"} <= attributes
    assert "SameSite=Lax" in cookie and "Path=/signin/" in cookie and "Domain" not in cookie


async def test_a_sign_in_left_too_long_expires(
    start_gateway: Callable[..., Any], at_provider: ProviderBrowser
) -> None:
    gateway = await start_gateway(signin={"flow_timeout": 1})
    patron = Browser(gateway)
    started = await press_signin(patron, START)
    back = await at_provider.log_in(started.headers["Location"], "alice")
    await asyncio.sleep(2.1)  # Redis forgets the flow: its own clock, not the gateway's
    answer = await patron.get(callback_path(back))
    assert answer.status == 400 and "took too long" in await answer.text()


async def test_a_refusal_at_the_provider_is_no_session(
    gateway: TestClient, at_provider: ProviderBrowser
) -> None:
    answer = await sign_in(Browser(gateway), at_provider, "mallory", START)  # no such account
    assert answer.status == 403 and "Signing in did not work" in await answer.text()
    assert not await gateway.app[SESSIONS].live()


async def test_an_answer_naming_another_issuer_is_refused(
    gateway: TestClient, at_provider: ProviderBrowser
) -> None:
    """RFC 9207: the provider names itself in its answer; a mix-up with another is refused."""
    patron = Browser(gateway)
    started = await press_signin(patron, START)
    back = callback_path(await at_provider.log_in(started.headers["Location"], "alice"))
    assert "iss=" in back
    mixed = re.sub(r"iss=[^&]+", "iss=https%3A%2F%2Fother-idp.example", back)
    answer = await patron.get(mixed)
    assert answer.status == 403
    assert not await gateway.app[SESSIONS].live()


async def test_a_blocked_patron_cannot_sign_in_and_a_block_ends_the_session(
    gateway: TestClient, at_provider: ProviderBrowser
) -> None:
    sessions = gateway.app[SESSIONS]
    assert (await sign_in(Browser(gateway), at_provider, "alice", START)).status == 302
    pid = gateway.app[KEYRING].pseudonym("oidc:campus:alice")
    assert await sessions.block(pid) == 1  # by patron id, as a card is blocked
    there = ProviderBrowser()
    try:
        answer = await sign_in(Browser(gateway), there, "alice", START)
    finally:
        await there.close()
    assert answer.status == 403 and "cannot be used for databases" in await answer.text()
    assert not await sessions.live()


async def test_sign_ins_started_from_one_address_are_capped(
    start_gateway: Callable[..., Any],
) -> None:
    gateway = await start_gateway(signin={"starts_per_address": 3})
    patron = Browser(gateway)
    statuses = [(await press_signin(patron, START)).status for _ in range(4)]
    assert statuses == [302, 302, 302, 429]


async def test_over_https_the_cookies_are_host_only_and_the_patron_goes_on(
    tmp_path: Path, aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., config.Settings], vendor: Vendor,
) -> None:  # fmt: skip
    registered = {
        **client(),
        "redirect_uris": ["https://login.proxy.localhost:8080/signin/campus/callback"],
    }
    (tmp_path / "idp").mkdir()
    async with Provider(tmp_path / "idp", [registered]) as provider:
        settings = gateway_settings(make_settings, vendor, RULES, oidc=[provider.settings()],
                                    server={"public_scheme": "https"})  # fmt: skip
        gateway: TestClient = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
        patron, there = Browser(gateway), ProviderBrowser()
        try:
            started = await press_signin(patron, START)
            assert started.status == 302
            assert any(c.startswith("__Host-carrel_signin=") and "Secure" in c
                       for c in started.headers.getall("Set-Cookie"))  # fmt: skip
            back = await there.log_in(
                started.headers["Location"], "alice", "https://login.proxy.localhost:8080"
            )
        finally:
            await there.close()
        answer = await patron.get(callback_path(back))
        assert answer.status == 302, await answer.text()
        assert answer.headers["Location"] == "https://www-vendor-test.proxy.localhost:8080/"
        assert "__Host-carrel_session" in patron.cookies
        assert "__Host-carrel_signin" not in patron.cookies  # used up with the flow


async def test_the_consoles_sessions_list_shows_how_each_patron_signed_in(
    gateway: TestClient, at_provider: ProviderBrowser
) -> None:
    from tests.admin_support import Console, add_staff
    from tests.patron_support import CARD, PIN

    add_staff(gateway.app[SETTINGS])
    assert (await sign_in(Browser(gateway), at_provider, "alice", START)).status == 302
    assert (await Browser(gateway).login(CARD, PIN)).status == 302
    console = Console(Browser(gateway))
    assert (await console.login("dee")).status == 302
    html = await (await console.browser.get("/admin/sessions")).text()
    assert "oidc:campus" in html and "Card and PIN" in html
    api = await (await console.call("GET", "/admin/api/sessions")).json()
    methods = sorted(s["method"] for s in (api["sessions"] if isinstance(api, dict) else api))
    assert methods == ["card", "oidc:campus"]


async def test_without_userinfo_the_groups_it_holds_are_not_known(
    start_gateway: Callable[..., Any], idp: Provider, at_provider: ProviderBrowser
) -> None:
    """oidc-provider puts scope claims in userinfo, not the ID token, for the code flow: with
    userinfo off, alice has no Licensed group and the group's database stays shut."""
    gateway = await start_gateway([idp.settings(userinfo=False)])
    patron = Browser(gateway)
    assert (await sign_in(patron, at_provider, "alice", f"https://{OTHER}/")).status == 302
    assert (await patron.get("/", host=proxied(OTHER))).status == 403


async def test_userinfo_for_another_subject_is_refused(
    gateway: TestClient, at_provider: ProviderBrowser, idp: Provider
) -> None:
    idp.front.userinfo_hook = lambda info: {**info, "sub": "bob"}
    answer = await sign_in(Browser(gateway), at_provider, "alice", START)
    assert answer.status == 403
    assert not await gateway.app[SESSIONS].live()


async def test_a_token_endpoint_that_cannot_be_reached_gets_the_503_page(
    gateway: TestClient, at_provider: ProviderBrowser, idp: Provider
) -> None:
    patron = Browser(gateway)
    started = await press_signin(patron, START)
    back = await at_provider.log_in(started.headers["Location"], "alice")
    await idp.go_down()  # between the provider's login page and the code's redemption
    answer = await patron.get(callback_path(back))
    assert answer.status == 503
    assert "sign-in service is not answering" in await answer.text()
    assert not await gateway.app[SESSIONS].live()


async def test_logging_out_ends_a_signed_in_session(
    gateway: TestClient, at_provider: ProviderBrowser
) -> None:
    patron = Browser(gateway)
    assert (await sign_in(patron, at_provider, "alice", START)).status == 302
    assert (await patron.get("/", host=proxied(WWW))).status == 200
    assert (await patron.logout()).status == 200
    assert not await gateway.app[SESSIONS].live()
    assert (await patron.get("/", host=proxied(WWW))).status == 302  # to the login page again


async def test_sign_ins_meeting_a_new_key_together_share_one_jwks_fetch(
    gateway: TestClient, idp: Provider, clock: ManualClock
) -> None:
    async def callback_url(browser: Browser) -> str:
        there = ProviderBrowser()
        try:
            started = await press_signin(browser, START)
            return callback_path(await there.log_in(started.headers["Location"], "alice"))
        finally:
            await there.close()

    first = Browser(gateway)
    assert (await first.get(await callback_url(first))).status == 302  # k1 is cached
    idp.rotate_keys()
    clock.advance(JWKS_MIN_INTERVAL + 1)
    patrons = [Browser(gateway), Browser(gateway), Browser(gateway)]
    urls = [await callback_url(p) for p in patrons]
    answers = await asyncio.gather(*(p.get(u) for p, u in zip(patrons, urls, strict=True)))
    assert [a.status for a in answers] == [302, 302, 302]
    assert idp.front.hits["/jwks"] == 2


async def test_an_answer_without_the_iss_its_provider_sends_is_refused(
    gateway: TestClient, at_provider: ProviderBrowser
) -> None:
    patron = Browser(gateway)
    started = await press_signin(patron, START)
    back = callback_path(await at_provider.log_in(started.headers["Location"], "alice"))
    answer = await patron.get(re.sub(r"&?iss=[^&]+", "", back))
    assert answer.status == 403
    assert not await gateway.app[SESSIONS].live()


async def test_a_method_that_is_not_configured_is_not_found(gateway: TestClient) -> None:
    assert (await Browser(gateway).get("/signin/nobody/callback?state=x&code=y")).status == 404


async def test_staff_block_a_signed_in_patron_by_patron_id(
    gateway: TestClient, at_provider: ProviderBrowser
) -> None:
    """The sessions list's Block button works for a federated patron as for a card: the
    session ends and the next sign-in is refused; a PIN reset is no action for one."""
    from tests.admin_support import Console, add_staff

    add_staff(gateway.app[SETTINGS])
    assert (await sign_in(Browser(gateway), at_provider, "alice", START)).status == 302
    console = Console(Browser(gateway))
    assert (await console.login("dee")).status == 302
    listing = await (await console.browser.get("/admin/sessions")).text()
    assert 'name="card" value="oidc:campus:alice"' in listing
    done = await console.form("/admin/cards", card="oidc:campus:alice", action="block")
    assert done.status == 200 and "oidc:campus:alice" in await done.text()
    assert not await gateway.app[SESSIONS].live()
    refused = await console.form("/admin/cards", card="oidc:campus:alice", action="reset_pin")
    assert refused.status == 400
    there = ProviderBrowser()
    try:
        again = await sign_in(Browser(gateway), there, "alice", START)
    finally:
        await there.close()
    assert again.status == 403
    api = await console.call("POST", "/admin/api/cards/oidc:campus:alice/unblock")
    assert api.status == 200
    assert (await console.call("POST", "/admin/api/cards/oidc:nowhere:alice/block")).status == 400


async def test_gateway_patrons_block_takes_a_federated_patron(
    tmp_path: Path, gateway: TestClient, at_provider: ProviderBrowser, idp: Provider
) -> None:
    settings = gateway.app[SETTINGS]
    assert (await sign_in(Browser(gateway), at_provider, "alice", START)).status == 302
    entry = idp.settings()
    toml = (
        f'[server]\nstate_dir = "{settings.server.state_dir}"\n[redis]\nurl = "{settings.redis.url}"\n'
        f'[[oidc]]\nid = "campus"\ndisplay_name = "Campus ID"\nissuer = "{entry["issuer"]}"\n'
        f'client_id = "{entry["client_id"]}"\nclient_secret = "{entry["client_secret"]}"\n'
    )
    (tmp_path / "cli.toml").write_text(toml)
    env = {"GATEWAY_CONFIG": str(tmp_path / "cli.toml")}
    result = await asyncio.to_thread(run_gateway, "patrons", "block", "oidc:campus:alice", env=env)
    assert result.returncode == 0, result.stderr
    assert (
        b"oidc:campus:alice is now blocked" in result.stdout
        and b"1 live sessions ended" in result.stdout
    )
    assert not await gateway.app[SESSIONS].live()
    unknown = await asyncio.to_thread(
        run_gateway, "patrons", "block", "oidc:nowhere:alice", env=env
    )
    assert unknown.returncode == 1  # no such method: read as a card number, which it is not
