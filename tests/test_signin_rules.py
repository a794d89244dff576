"""Attribute rules through the real OpenID Connect provider (node's oidc-provider) on loopback:
a rule's group opens a Group-restricted database (and without it the patron gets the clear
page, not the vendor), a Deny rule's page and no session, a patron id picked by a rule; and the
console's test sign-in, which shows what the provider sent and what the rules made of it,
opens no session, keeps nothing, and is for staff with the right role only."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import ClientResponse, DummyCookieJar
from aiohttp.test_utils import TestClient

from gateway import config
from gateway.app import build_app
from gateway.appkeys import AUDIT, KEYRING, REDIS, SESSIONS
from gateway.audit import AuditFilter
from gateway.redis_keys import SIGNIN_FLOW
from tests.admin_support import PASSWORDS, Console, add_staff
from tests.oidc_support import (
    Provider,
    ProviderBrowser,
    callback_path,
    client,
    press_signin,
    sign_in,
)
from tests.patron_support import TOKEN, Browser
from tests.vendor_support import OTHER, WWW, Vendor, gateway_settings, proxied

RULES = f"""Title Vendor
URL https://{WWW}/
HJ https://{WWW}
Group Licensed
Title Licensed journals
URL https://{OTHER}/
HJ https://{OTHER}
"""
LICENSED_ONLY = [
    'If eduPersonAffiliation equals alumni; Deny "Alumni: ask the library about a card"',
    'If eduPersonAffiliation matches "member|student|staff|faculty"; Group Licensed',
    "If eduPersonPrincipalName present; PatronId eduPersonPrincipalName",
]
JOURNALS = f"https://{OTHER}/"


@pytest.fixture
async def idp(tmp_path: Path) -> AsyncIterator[Provider]:
    async with Provider(tmp_path, [client()]) as provider:
        yield provider


@pytest.fixture
def start_gateway(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., config.Settings],
    vendor: Vendor, idp: Provider,
) -> Callable[..., Any]:  # fmt: skip
    async def start(**sections: Any) -> TestClient:
        entry = idp.settings(scopes=["openid", "email", "affiliation"], groups_claim="",
                             rules=LICENSED_ONLY)  # fmt: skip
        settings = gateway_settings(make_settings, vendor, RULES, oidc=[entry], **sections)
        add_staff(settings)
        app = build_app(settings)
        started: TestClient = await aiohttp_client(app, cookie_jar=DummyCookieJar())
        return started

    return start


@pytest.fixture
async def gateway(start_gateway: Callable[..., Any]) -> TestClient:
    started: TestClient = await start_gateway()
    return started


async def patron_signs_in(gateway: TestClient, account: str, lang: str = "en") -> tuple[Browser, ClientResponse]:  # fmt: skip
    patron, there = Browser(gateway, lang), ProviderBrowser()
    try:
        return patron, await sign_in(patron, there, account, JOURNALS)
    finally:
        await there.close()


async def test_a_rule_gives_the_group_that_opens_a_group_database(gateway: TestClient) -> None:
    patron, answer = await patron_signs_in(gateway, "dave")  # staff: Licensed
    assert answer.status == 302 and answer.headers["Location"] == f"http://{proxied(OTHER)}/"
    assert (await patron.get("/", host=proxied(OTHER))).status == 200
    [session] = await gateway.app[SESSIONS].live()
    assert session.groups == {"Default", "Licensed"}


async def test_without_the_group_the_patron_gets_the_clear_page_not_the_vendor(
    gateway: TestClient,
) -> None:
    patron, answer = await patron_signs_in(gateway, "bob")  # no affiliation: Default only
    assert answer.status == 302
    page = await patron.get("/", host=proxied(OTHER))
    html = await page.text()
    assert page.status == 403 and "not available with your library card or account" in html
    assert "Licensed journals" not in html and "vendor" not in html.lower()
    assert (await patron.get("/", host=proxied(WWW))).status == 200  # Default's database


@pytest.mark.parametrize(
    ("lang", "words"),
    [("en", "does not give access to the library"), ("es", "no da acceso a las bases de datos")],
)
async def test_a_deny_rule_gets_its_page_and_no_session(
    gateway: TestClient, lang: str, words: str
) -> None:
    patron, answer = await patron_signs_in(gateway, "carol", lang)  # an alumna
    html = await answer.text()
    assert answer.status == 403 and words in html
    assert "Alumni: ask the library about a card" in html  # the rule's own message
    assert await gateway.app[SESSIONS].live() == []
    assert (await patron.get("/", host=proxied(WWW))).status == 302  # to the login page


async def test_a_rule_picks_the_patron_id(gateway: TestClient) -> None:
    await patron_signs_in(gateway, "dave")
    [session] = await gateway.app[SESSIONS].live()
    assert session.pid == gateway.app[KEYRING].pseudonym("oidc:campus:dave@campus.test")
    await patron_signs_in(gateway, "bob")  # no eduPersonPrincipalName: sub
    assert any(
        s.pid == gateway.app[KEYRING].pseudonym("oidc:campus:bob")
        for s in await gateway.app[SESSIONS].live()
    )


async def staff_test_signin(
    gateway: TestClient, account: str, user: str = "ada"
) -> tuple[Console, ClientResponse]:
    """A staff member presses "Test sign-in" and logs in at the provider as ``account``; the
    answer is the callback's, on the login host."""
    console = Console(Browser(gateway))
    assert (await console.login(user)).status == 302
    page = await console.browser.get("/admin/signin-test")
    assert page.status == 200 and 'action="/admin/signin-test/campus"' in await page.text()
    started = await console.form("/admin/signin-test/campus")
    assert started.status == 302, await started.text()
    there = ProviderBrowser()
    try:
        back = await there.log_in(started.headers["Location"], account)
    finally:
        await there.close()
    return console, await console.browser.get(callback_path(back))


async def redis_holds(gateway: TestClient, text: str) -> bool:
    """Whether any key or value in Redis holds ``text``."""
    redis = gateway.app[REDIS]
    async for key in redis.scan_iter():
        kind = (await redis.type(key)).decode()
        dump = {
            "string": lambda k: redis.get(k),
            "hash": lambda k: redis.hgetall(k),
            "set": lambda k: redis.smembers(k),
            "zset": lambda k: redis.zrange(k, 0, -1),
            "list": lambda k: redis.lrange(k, 0, -1),
            "stream": lambda k: redis.xrange(k),
        }[kind]
        if text.encode() in key or text in repr(await dump(key)):
            return True
    return False


async def test_the_test_signin_shows_claims_and_matched_rules_and_opens_no_session(
    gateway: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    console, answer = await staff_test_signin(gateway, "carol")
    assert answer.status == 303  # the login host passes the answer on to the console
    result = urlsplit(answer.headers["Location"])
    assert result.path == "/admin/signin-test/result" and "provider" in parse_qs(result.query)
    page = await console.browser.get(callback_path(answer.headers["Location"]))
    html = await page.text()
    assert page.status == 200, html
    assert page.headers["Cache-Control"] == "no-store"
    for shown in ("eduPersonAffiliation", "alumni", "carol@campus.test", "sub", "carol"):
        assert f"<code>{shown}</code>" in html, shown
    assert "Denied" in html and "Alumni: ask the library about a card" in html
    assert html.count("— <strong>matched</strong>") == 1  # the Deny rule, and the trace stops
    assert "alumni; Deny" in html.split("<strong>matched</strong>")[0].rsplit("<li>", 1)[1]
    assert await gateway.app[SESSIONS].live() == []
    assert not await redis_holds(gateway, "carol")  # not the flow, not the audit: nothing
    assert "carol" not in caplog.text and "alumni" not in caplog.text
    [entry] = await gateway.app[AUDIT].query(AuditFilter(kind="signin_test"))
    assert (entry.staff, entry.detail) == ("ada", {"provider": "campus"})
    again = await console.browser.get(callback_path(answer.headers["Location"]))
    assert again.status == 400  # shown once: the flow is gone


async def test_the_test_signin_shows_an_allowed_outcome(gateway: TestClient) -> None:
    console, answer = await staff_test_signin(gateway, "dave")
    html = await (await console.browser.get(callback_path(answer.headers["Location"]))).text()
    assert "<code>oidc:campus:dave@campus.test</code>" in html
    assert "patron id from eduPersonPrincipalName" in html and "Default, Licensed" in html
    assert html.count("— <strong>matched</strong>") == 2
    assert await gateway.app[SESSIONS].live() == []


async def test_a_test_signin_is_shown_only_in_the_browser_that_started_it(
    gateway: TestClient,
) -> None:
    _, answer = await staff_test_signin(gateway, "carol")
    other = Console(Browser(gateway))
    await other.login("ada")  # the same staff member, another browser
    page = await other.browser.get(callback_path(answer.headers["Location"]))
    assert page.status == 400 and "carol" not in await page.text()


async def test_only_admins_start_a_test_signin_and_only_with_the_csrf_token(
    gateway: TestClient,
) -> None:
    desk = Console(Browser(gateway))
    await desk.login("dee")
    assert (await desk.browser.get("/admin/signin-test")).status == 403
    assert (await desk.form("/admin/signin-test/campus")).status == 403
    admin = Console(Browser(gateway))
    await admin.login("ada")
    no_token = await admin.browser.post("/admin/signin-test/campus", {})
    assert no_token.status == 403 and "Location" not in no_token.headers
    assert await gateway.app[AUDIT].query(AuditFilter(kind="signin_test")) == []
    assert await gateway.app[REDIS].keys(f"{SIGNIN_FLOW}:*") == []  # no flow was started


async def test_a_patron_cannot_turn_their_signin_into_the_test_view(gateway: TestClient) -> None:
    patron, there = Browser(gateway), ProviderBrowser()
    try:
        started = await press_signin(patron, JOURNALS)
        back = await there.log_in(started.headers["Location"], "carol")
    finally:
        await there.close()
    query = urlsplit(back).query
    # Even with the test cookie forged from the patron's own sign-in cookie: not a test flow.
    patron.cookies["carrel_signin_test"] = patron.cookies["carrel_signin"]
    page = await patron.get(f"/admin/signin-test/result?{query}&provider=campus")
    html = await page.text()
    assert page.status == 400 and "carol" not in html and "alumni" not in html
    state = parse_qs(query)["state"][0]
    marked = await patron.get(f"/signin/campus/callback?{query.replace(state, 'test.' + state)}")
    assert marked.status == 303  # passed on to the console, which has no such test flow
    assert (await patron.get(callback_path(marked.headers["Location"]))).status == 400
    assert await gateway.app[SESSIONS].live() == []


def test_a_bad_rule_is_refused_at_load_naming_its_line(
    make_settings: Callable[..., config.Settings],
) -> None:
    entry = {"id": "campus", "display_name": "Campus ID", "issuer": "https://id.campus.test",
             "client_id": "carrel", "client_secret": "s",
             "rules": ["Group Licensed", "If eduPersonAffiliation is staff; Group Staff"]}  # fmt: skip
    with pytest.raises(config.ConfigError) as caught:
        make_settings(oidc=[entry])
    assert caught.value.key == "oidc.campus.rules[1]"
    assert "expects equals, contains, matches or present" in str(caught.value)


async def test_a_refused_answer_shows_the_reason_instead(gateway: TestClient) -> None:
    console, answer = await staff_test_signin(gateway, "nobody")  # the provider says no
    assert answer.status == 303
    page = await console.browser.get(callback_path(answer.headers["Location"]))
    html = await page.text()
    assert page.status == 200 and "answer was refused" in html and "access_denied" in html
    assert "Attributes the provider sent" not in html


async def test_the_test_signin_ends_on_the_consoles_own_origin(
    start_gateway: Callable[..., Any],
) -> None:
    gateway = await start_gateway(admin={"origin": "http://admin.library.test:8080"})
    staff, console = Browser(gateway), "admin.library.test"
    form = await staff.get("/admin/login", host=console)
    token = TOKEN.search(await form.text())
    assert token
    login = {"csrf_token": token[1], "user": "ada", "password": PASSWORDS["ada"]}
    assert (await staff.post("/admin/login", login, host=console)).status == 302
    started = await staff.post("/admin/signin-test/campus", {"csrf_token": token[1]}, host=console)
    assert started.status == 302
    there = ProviderBrowser()
    try:
        back = await there.log_in(started.headers["Location"], "dave")
    finally:
        await there.close()
    assert back.startswith("http://login.proxy.localhost:8080/signin/campus/callback?")
    passed = await staff.get(callback_path(back))  # on the login host
    location = passed.headers["Location"]
    assert location.startswith("http://admin.library.test:8080/admin/signin-test/result?")
    page = await staff.get(callback_path(location), host=console)
    assert page.status == 200 and "<code>oidc:campus:dave@campus.test</code>" in await page.text()
    assert await gateway.app[SESSIONS].live() == []


async def test_a_provider_down_at_the_end_of_a_test_signin_says_so(
    gateway: TestClient, idp: Provider
) -> None:
    console, answer = await staff_test_signin(gateway, "dave")
    idp.front.fail.add("/token")
    page = await console.browser.get(callback_path(answer.headers["Location"]))
    html = await page.text()
    assert page.status == 200 and "The provider is not answering right now" in html
    assert "dave@campus.test" not in html
