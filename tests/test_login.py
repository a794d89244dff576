"""Patron login against real Redis and the real local directory: the whole front door."""

from __future__ import annotations

import asyncio
import datetime
import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis as redis_sync
from aiohttp import DummyCookieJar

from gateway import config
from gateway.app import build_app
from gateway.appkeys import DIRECTORY
from gateway.auth.commands import local_directory
from gateway.auth.directory import PatronStatus, Verification
from gateway.auth.local import LocalDirectory
from gateway.redis_keys import PREFIX
from gateway.sessions import session_hash
from tests.patron_support import CARD, OTHER_CARD, PIN, Browser, prepare, start
from tests.support import ManualClock, RedisProcess

Client = Callable[..., Any]
JSTOR_TARGET = "https://www.jstor.org/stable/1234?x=1&y=2"


async def test_starting_point_login_redirects_to_the_proxied_url_with_a_session_cookie(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings]
) -> None:
    browser = Browser(await start(aiohttp_client, make_settings()))
    form = await browser.get(f"/login?url={JSTOR_TARGET}")
    assert form.status == 200
    assert f'value="{html.escape(JSTOR_TARGET)}"' in await form.text()
    response = await browser.login(query=f"url={JSTOR_TARGET}")
    assert response.status == 302
    assert response.headers["Location"] == (
        "http://www-jstor-org.proxy.localhost:8080/stable/1234?x=1&y=2"
    )
    cookie = next(c for c in response.headers.getall("Set-Cookie") if "carrel_session=" in c)
    assert "Domain=proxy.localhost" in cookie and "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie and "Secure" not in cookie


async def test_qurl_and_no_target(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings]
) -> None:
    browser = Browser(await start(aiohttp_client, make_settings()))
    response = await browser.login(
        query="qurl=https%3A%2F%2Fwww.jstor.org%2Fstable%2F1%3Fa%3Db%26c%3Dd"
    )
    assert (
        response.headers["Location"] == "http://www-jstor-org.proxy.localhost:8080/stable/1?a=b&c=d"
    )
    again = await Browser(browser.client).login()
    assert again.status == 302 and again.headers["Location"] == "/menu"


async def test_menu_lists_databases_through_the_gateway(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings]
) -> None:
    browser = Browser(await start(aiohttp_client, make_settings()))
    await browser.login()
    menu = await browser.get("/menu")
    text = await menu.text()
    assert menu.status == 200
    assert 'href="http://www-jstor-org.proxy.localhost:8080/"' in text and ">JSTOR<" in text
    assert 'href="/pin/change"' in text


async def test_wrong_pin_and_unknown_card_get_the_same_answer(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings]
) -> None:
    client = await start(aiohttp_client, make_settings())
    wrong = await Browser(client).login(pin="9051")
    unknown = await Browser(client).login(card="29999999999999", pin="9051")
    assert wrong.status == unknown.status == 401
    text_wrong = (await wrong.text()).replace(CARD, "CARD")
    text_unknown = (await unknown.text()).replace("29999999999999", "CARD")
    assert text_wrong.split('name="csrf_token"')[0] == text_unknown.split('name="csrf_token"')[0]
    assert "The card number or PIN is not right" in text_wrong
    assert "carrel_session=" not in "".join(wrong.headers.getall("Set-Cookie", []))


async def test_the_wrong_pin_message_appears_once_in_a_summary_linking_to_the_field(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings]
) -> None:
    client = await start(aiohttp_client, make_settings())
    for lang, message in (("en", "The card number or PIN is not right"),
                          ("es", "El número de tarjeta o el PIN no son correctos")):  # fmt: skip
        page = await (await Browser(client, lang=lang).login(pin="9051")).text()
        assert page.count(message) == 1, lang
        summary = page.split('id="form-error"', 1)[1].split("</div>", 1)[0]
        assert 'role="alert"' in page.split('id="form-error"')[0].rsplit("<div", 1)[1]
        assert 'tabindex="-1" autofocus' in summary and f'<a href="#pin">{message}' in summary
        field = page.split('id="pin"', 1)[1].split(">", 1)[0]
        assert 'aria-invalid="true"' in field and "form-error" in field
        assert "autofocus" not in field  # the summary has the focus


@pytest.mark.parametrize("card", [CARD, "29999999999999"])
async def test_the_last_try_before_a_lock_says_so_for_any_card(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings], card: str
) -> None:
    settings = make_settings(lockout={"card_failures": 4, "card_lock": 600})
    client = await start(aiohttp_client, settings)
    warning = "One more wrong PIN locks this card for 10 minutes."
    pages = [await (await Browser(client).login(card=card, pin="9051")).text() for _ in range(4)]
    assert [warning in page for page in pages] == [False, False, True, False]
    assert "locked" in pages[3]
    spanish = Browser(client, lang="es")
    other = "21234000000003"  # a fresh count: two wrong PINs, then the warning in Spanish
    await spanish.login(card=other, pin="9051")
    await spanish.login(card=other, pin="9051")
    third = await (await spanish.login(card=other, pin="9051")).text()
    assert "Un PIN incorrecto más bloqueará esta tarjeta durante 10 minutos." in third


async def test_a_right_pin_starts_the_count_again_and_the_warning_goes(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings]
) -> None:
    client = await start(aiohttp_client, make_settings(lockout={"card_failures": 3}))
    await Browser(client).login(pin="9051")
    assert "One more wrong PIN" in await (await Browser(client).login(pin="9051")).text()
    assert (await Browser(client).login()).status == 302
    assert "One more wrong PIN" not in await (await Browser(client).login(pin="9051")).text()


async def test_card_locks_after_five_wrong_pins_even_for_the_right_pin(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings]
) -> None:
    client = await start(aiohttp_client, make_settings())
    for _ in range(5):
        await Browser(client).login(pin="9051")
    locked = await Browser(client).login()
    assert locked.status == 429
    assert "locked" in await locked.text()
    other = await Browser(client).login(card=OTHER_CARD, pin="5830")
    assert other.status == 302  # another card is not affected


async def test_a_cards_lock_ends_when_the_clock_passes_card_lock(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings]
) -> None:
    clock = ManualClock()
    settings = make_settings(lockout={"card_lock": 600, "card_window": 900})
    client = await start(aiohttp_client, settings, clock)
    for _ in range(5):
        await Browser(client).login(pin="9051")
    assert (await Browser(client).login()).status == 429
    clock.advance(599)
    assert (await Browser(client).login()).status == 429  # still locked
    clock.advance(2)
    assert (await Browser(client).login()).status == 302


async def test_wrong_pins_count_within_card_window_only(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings]
) -> None:
    clock = ManualClock()
    client = await start(aiohttp_client, make_settings(lockout={"card_window": 900}), clock)
    for _ in range(4):
        await Browser(client).login(pin="9051")
    clock.advance(901)  # the window is over: its four failures no longer count
    for _ in range(4):
        assert (await Browser(client).login(pin="9051")).status == 401
    assert (await Browser(client).login()).status == 302


@pytest.mark.parametrize(
    ("lock", "lang", "wait"),
    [
        (60, "en", "Wait 1 minute and"),
        (600, "en", "Wait 10 minutes"),
        (60, "es", "Espere 1 minuto e"),
    ],
)
async def test_the_locked_page_says_the_lock_the_configuration_sets(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings], lock: int, lang: str,
    wait: str,
) -> None:  # fmt: skip
    client = await start(aiohttp_client, make_settings(lockout={"card_lock": lock}))
    for _ in range(5):
        await Browser(client).login(pin="9051")
    locked = await Browser(client).login(query=f"lang={lang}")
    assert locked.status == 429
    assert wait in html.unescape(await locked.text())


async def test_locked_unknown_card_looks_like_a_locked_real_card(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings]
) -> None:
    client = await start(aiohttp_client, make_settings())
    for card in (CARD, "29999999999999"):
        for _ in range(5):
            await Browser(client).login(card=card, pin="9051")
    real = await Browser(client).login(card=CARD, pin="9051")
    fake = await Browser(client).login(card="29999999999999", pin="9051")
    assert real.status == fake.status == 429


@pytest.mark.parametrize(
    ("change", "message"),
    [({"status": "blocked"}, "cannot be used"), ({"expires": "2001-01-01"}, "has expired")],
)
async def test_blocked_and_expired_cards_are_refused_with_what_to_do(
    aiohttp_client: Client,
    make_settings: Callable[..., config.Settings],
    change: dict[str, str],
    message: str,
) -> None:
    settings = make_settings()
    client = await start(aiohttp_client, settings)
    local_directory(settings).add(CARD, PIN, **change)  # type: ignore[arg-type]
    response = await Browser(client).login()
    assert response.status == 403
    text = await response.text()
    assert message in text and "contact the library" in text


async def test_idle_timeout_ends_the_session(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings]
) -> None:
    clock = ManualClock()
    settings = make_settings(sessions={"idle_timeout": 60})
    browser = Browser(await start(aiohttp_client, settings, clock))
    await browser.login()
    clock.advance(59)
    assert (await browser.get("/menu")).status == 200  # activity: the idle clock starts again
    clock.advance(59)
    assert (await browser.get("/menu")).status == 200
    clock.advance(61)
    expired = await browser.get("/menu")
    assert expired.status == 302 and expired.headers["Location"] == "/login"


async def test_absolute_timeout_ends_even_an_active_session(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings]
) -> None:
    clock = ManualClock()
    settings = make_settings(sessions={"idle_timeout": 600, "absolute_timeout": 3600})
    browser = Browser(await start(aiohttp_client, settings, clock))
    await browser.login()
    for _ in range(6):
        clock.advance(590)
        assert (await browser.get("/menu")).status == 200
    clock.advance(590)  # 4130 s after login, never idle for long
    assert (await browser.get("/menu")).status == 302


async def test_logout_deletes_the_session_in_redis_and_the_cookie(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings], redis_url: str
) -> None:
    browser = Browser(await start(aiohttp_client, make_settings()))
    await browser.login()
    raw = browser.cookies["carrel_session"]
    store = redis_sync.Redis.from_url(redis_url)
    assert store.exists(f"{PREFIX}:session:{session_hash(raw)}")
    assert (await browser.get("/logout")).status == 200  # the page with the button ends nothing
    assert store.exists(f"{PREFIX}:session:{session_hash(raw)}")
    response = await browser.logout()
    assert response.status == 200 and "You are logged out" in await response.text()
    assert not store.exists(f"{PREFIX}:session:{session_hash(raw)}")
    assert "carrel_session" not in browser.cookies
    browser.cookies["carrel_session"] = raw  # a copied cookie is useless now
    assert (await browser.get("/menu")).status == 302


async def test_concurrent_session_cap_ends_the_oldest(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings]
) -> None:
    client = await start(aiohttp_client, make_settings(sessions={"max_per_card": 2}))
    browsers = [Browser(client) for _ in range(3)]
    for browser in browsers:
        await browser.login()
        await asyncio.sleep(0.01)
    statuses = [(await b.get("/menu")).status for b in browsers]
    assert statuses == [302, 200, 200]


async def test_login_rotates_the_session_id(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings]
) -> None:
    browser = Browser(await start(aiohttp_client, make_settings()))
    await browser.login()
    first = browser.cookies["carrel_session"]
    await browser.login()  # logging in again from the same browser
    second = browser.cookies["carrel_session"]
    assert second != first
    assert (await browser.get("/menu")).status == 200
    browser.cookies["carrel_session"] = first
    assert (await browser.get("/menu")).status == 302  # the old id is dead


async def test_post_without_csrf_token_is_refused(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings]
) -> None:
    browser = Browser(await start(aiohttp_client, make_settings()))
    await browser.get("/login")
    response = await browser.post("/login", {"card": CARD, "pin": PIN, "csrf_token": "forged"})
    assert response.status == 400
    assert "carrel_session" not in browser.cookies
    other = Browser(browser.client)  # a token from someone else's page does not fit my cookie
    page = await other.get("/login")
    token = (await page.text()).split('name="csrf_token" value="')[1].split('"')[0]
    response = await browser.post("/login", {"card": CARD, "pin": PIN, "csrf_token": token})
    assert response.status == 400


async def test_unconfigured_target_gets_a_page_not_a_redirect(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings]
) -> None:
    browser = Browser(await start(aiohttp_client, make_settings()))
    for query in ("qurl=https%3A%2F%2Fevil.example.com%2Fphish", "url=https://evil.example.com/x",
                  "url=javascript:alert(1)", "url=//evil.example.com/"):  # fmt: skip
        response = await Browser(browser.client).login(query=query)
        assert response.status == 404, query
        assert "Location" not in response.headers
        text = await response.text()
        assert "not set up" in text
    text = await (
        await Browser(browser.client).login(query="url=https://evil.example.com/x")
    ).text()
    assert "evil.example.com" in text and "HJ https://evil.example.com" in text


@pytest.mark.parametrize(
    ("path", "host", "english", "spanish"),
    [
        ("/login?url=https://evil.example.com/x", "login.proxy.localhost",
         "no rule covers https://evil.example.com",
         "añada 'HJ https://evil.example.com' a la sección (stanza)"),
        ("/login?url=https://sub.jstor.org/x", "login.proxy.localhost",
         "is covered only by a Domain line",
         "sub.jstor.org solo está cubierto por una línea Domain ("),
        ("/login?url=javascript:alert(1)", "login.proxy.localhost",
         "is not an http(s) URL", "javascript:alert(1) no es una URL http(s)"),
        ("/x", "other-example-org.proxy.localhost:8080",
         "to the stanza of the database", "ninguna regla cubre https://other.example.org"),
    ],
)  # fmt: skip
async def test_staff_hints_on_spanish_pages_are_in_spanish(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings],
    path: str, host: str, english: str, spanish: str,
) -> None:  # fmt: skip
    client = await start(aiohttp_client, make_settings())
    answers = {}
    for lang in ("en", "es"):
        browser = Browser(client, lang=lang)
        if path.startswith("/login?"):  # a starting point: refused once the patron logs in
            response = await browser.login(query=path.partition("?")[2])
        else:
            response = await browser.get(path, host=host)
        assert response.status == 404
        answers[lang] = html.unescape(await response.text())
    assert english in answers["en"] and spanish not in answers["en"]
    assert spanish in answers["es"] and english not in answers["es"]
    assert "Para el personal de la biblioteca" in answers["es"]


async def test_the_404_page_on_the_login_host_leads_to_the_databases_and_help(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings]
) -> None:
    client = await start(aiohttp_client, make_settings())
    for lang, menu, help_text in (("en", "Go to the list of databases", "Help"),
                                  ("es", "Ir a la lista de bases de datos", "Ayuda")):  # fmt: skip
        browser = Browser(client, lang=lang)
        missing = await browser.get("/no/such/page")
        assert missing.status == 404
        page = await missing.text()
        links = dict(
            (text, href) for href, text in re.findall(r'<a href="([^"]+)">([^<]+)</a>', page)
        )
        base = "http://login.proxy.localhost:8080"
        assert links[menu] == f"{base}/menu" and links[help_text] == f"{base}/help", links
        assert (await browser.get("/help")).status == 200
        assert (await browser.get("/menu")).headers["Location"] == "/login"  # no session yet


async def test_spanish_pages_from_accept_language_and_remembered_switch(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings]
) -> None:
    client = await start(aiohttp_client, make_settings())
    spanish = Browser(client, lang="es-ES,es;q=0.9,en;q=0.5")
    page = await spanish.get("/login?url=https://www.jstor.org/")
    text = await page.text()
    assert 'lang="es"' in text and "Número de la tarjeta" in text and "¿Olvidó su PIN?" in text
    assert 'href="?lang=en&amp;url=https://www.jstor.org/"' in text
    wrong = await spanish.login(pin="9051")
    assert "no son correctos" in await wrong.text()
    english = Browser(client, lang="en")
    await english.get("/help?lang=es")
    assert "Ayuda para iniciar sesión" in await (await english.get("/help")).text()


async def test_fifty_concurrent_wrong_pins_reach_the_directory_at_most_five_times(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings]
) -> None:
    settings = make_settings()
    prepare(settings)

    class Counting(LocalDirectory):
        checks = 0

        def check(self, card: str, pin: str) -> Verification:
            Counting.checks += 1
            return super().check(card, pin)

    app = build_app(settings)
    app[DIRECTORY] = Counting(settings.patrons_path, local_directory(settings).keyring, "[0-9]{14}")
    client = await aiohttp_client(app, cookie_jar=DummyCookieJar())
    browsers = [Browser(client) for _ in range(50)]
    tokens = []
    for browser in browsers:
        page = await browser.get("/login")
        tokens.append((await page.text()).split('name="csrf_token" value="')[1].split('"')[0])
    results = await asyncio.gather(
        *(b.post("/login", {"card": CARD, "pin": f"{9000 + i}", "csrf_token": t, "url": ""})
          for i, (b, t) in enumerate(zip(browsers, tokens, strict=True)))
    )  # fmt: skip
    assert Counting.checks <= settings.lockout.card_failures
    assert sum(r.status == 429 for r in results) >= 50 - settings.lockout.card_failures
    assert all(r.status in (401, 429) for r in results)


async def test_redis_down_gives_503_and_lets_nobody_in(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings], tmp_path: Path
) -> None:
    own = RedisProcess(tmp_path / "own").start()
    try:
        browser = Browser(await start(aiohttp_client, make_settings(redis={"url": own.url})))
        page = await browser.get("/login")
        token = (await page.text()).split('name="csrf_token" value="')[1].split('"')[0]
        own.kill()
        response = await browser.post("/login", {"card": CARD, "pin": PIN, "csrf_token": token})
        assert response.status == 503
        assert "carrel_session" not in browser.cookies
        assert "not answering" in await response.text()
    finally:
        own.kill()


def test_patron_status_expiry_counts_as_expired() -> None:
    from gateway.auth.directory import Patron

    patron = Patron(CARD, expires=datetime.date(2020, 1, 1))
    assert patron.usable_status(datetime.date(2021, 1, 1)) is PatronStatus.EXPIRED
