"""PIN self-service with a real SMTP server (aiosmtpd) and real Redis: change, forgot, desk reset."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient, TestServer

from gateway import config
from gateway.app import build_app
from gateway.appkeys import BACKGROUND, RESETS
from gateway.auth import commands
from gateway.auth.commands import local_directory
from tests.patron_support import (
    CARD,
    LOGIN_HOST,
    OTHER_CARD,
    OTHER_PIN,
    PIN,
    TOKEN,
    Browser,
    prepare,
    start,
)
from tests.smtp_support import Inbox, text_of

NEW_PIN = "5927"
LINK = re.compile(r"(http://login\.proxy\.localhost:8080/pin/reset\?token=[A-Za-z0-9._%-]+)")


@pytest.fixture
async def gateway(
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., config.Settings],
    smtp: tuple[int, Inbox],
) -> AsyncIterator[TestClient]:
    settings = make_settings(
        mail={"host": "127.0.0.1", "port": smtp[0], "from_address": "library@example.org"}
    )
    prepare(settings)  # Ana (CARD) has an email; Bo (OTHER_CARD) has none
    # No access log, as in production (run_app(access_log=None)): URLs with tokens stay out of logs.
    server = TestServer(build_app(settings))
    await server.start_server(access_log=None)
    client: TestClient = await aiohttp_client(server, cookie_jar=DummyCookieJar())
    yield client


async def token_of(browser: Browser, path: str) -> str:
    html = await (await browser.get(path)).text()
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, html
    return match[1]


async def ask_for_reset(client: TestClient, card: str) -> str:
    browser = Browser(client)
    token = await token_of(browser, "/pin/forgot")
    return await (await browser.post("/pin/forgot", {"csrf_token": token, "card": card})).text()


async def submit_reset(client: TestClient, link: str, new: str, again: str | None = None) -> Any:
    browser = Browser(client)
    path = link.split("8080", 1)[1]
    page = await browser.get(path)
    if page.status != 200:
        return page
    html = await page.text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)[1]  # type: ignore[index]
    token = re.search(r'name="token" value="([^"]+)"', html)[1]  # type: ignore[index]
    return await browser.post(
        "/pin/reset", {"csrf_token": csrf, "token": token, "new_pin": new, "new_pin2": again or new}
    )


async def reset_link(client: TestClient, inbox: Inbox) -> str:
    before = len(inbox.messages)
    await ask_for_reset(client, CARD)
    messages = await inbox.wait(before + 1)
    assert len(messages) == before + 1
    match = LINK.search(text_of(messages[-1]))
    assert match, text_of(messages[-1])
    return match[1]


async def test_forgot_pin_from_the_form_to_logging_in_with_the_new_pin(
    gateway: TestClient, smtp: tuple[int, Inbox], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    # The stand-in mail server's own DEBUG transcript holds the email itself, link and all.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    inbox = smtp[1]
    page = await ask_for_reset(gateway, CARD)
    assert "Check your email" in page and "photo ID" in page
    (message,) = await inbox.wait(1)
    assert message["To"] == "ana@example.org" and message.is_multipart()
    link = LINK.search(text_of(message))[1]  # type: ignore[index]
    assert (
        'href="' + link.replace("&", "&amp;")
        in message.get_payload()[1].get_payload(decode=True).decode()
    )  # type: ignore[index, union-attr]
    # Opening the link (a mail scanner does) only shows the form; it can be opened again.
    for _ in range(2):
        opened = await Browser(gateway).get(link.split("8080", 1)[1])
        assert opened.status == 200 and opened.headers["Referrer-Policy"] == "no-referrer"
        assert opened.headers["Cache-Control"] == "no-store"
    done = await submit_reset(gateway, link, NEW_PIN)
    assert done.status == 200 and "new PIN is set" in await done.text()
    assert (await Browser(gateway).login(pin=NEW_PIN)).status == 302
    assert (await Browser(gateway).login(pin=PIN)).status == 401
    logged = caplog.text
    token = link.split("token=")[1]
    signature = token.rsplit(".", 1)[1]
    for secret in (PIN, NEW_PIN, token, signature):
        assert secret not in logged
    assert "pin/reset" not in logged


async def test_the_link_is_built_from_the_public_url_not_the_request_host(
    gateway: TestClient, smtp: tuple[int, Inbox]
) -> None:
    browser = Browser(gateway)
    token = await token_of(browser, "/pin/forgot")
    response = await gateway.post(
        "/pin/forgot",
        data={"csrf_token": token, "card": CARD},
        headers={**browser.headers(), "Host": "login.proxy.localhost:6666"},
    )
    assert response.status == 200
    (message,) = await smtp[1].wait(1)
    assert "login.proxy.localhost:8080/pin/reset" in text_of(message) and "6666" not in text_of(
        message
    )


async def test_a_link_works_once(gateway: TestClient, smtp: tuple[int, Inbox]) -> None:
    link = await reset_link(gateway, smtp[1])
    assert (await submit_reset(gateway, link, NEW_PIN)).status == 200
    second = await submit_reset(gateway, link, "6048")
    assert second.status == 400 and "no longer works" in await second.text()


async def test_twenty_concurrent_submissions_of_one_link_exactly_one_succeeds(
    gateway: TestClient, smtp: tuple[int, Inbox]
) -> None:
    link = await reset_link(gateway, smtp[1])
    path = link.split("8080", 1)[1]
    browsers = [Browser(gateway) for _ in range(20)]
    forms = []
    for browser in browsers:
        html = await (await browser.get(path)).text()
        forms.append(
            (
                re.search(r'name="csrf_token" value="([^"]+)"', html)[1],  # type: ignore[index]
                re.search(r'name="token" value="([^"]+)"', html)[1],
            )
        )  # type: ignore[index]
    pins = [f"{5000 + 37 * i:04d}" for i in range(20)]
    results = await asyncio.gather(
        *(
            b.post("/pin/reset", {"csrf_token": c, "token": t, "new_pin": p, "new_pin2": p})
            for b, (c, t), p in zip(browsers, forms, pins, strict=True)
        )
    )
    assert sorted(r.status for r in results) == [200] + [400] * 19
    winner = pins[[r.status for r in results].index(200)]
    assert (await Browser(gateway).login(pin=winner)).status == 302


async def test_an_expired_link_is_refused(gateway: TestClient) -> None:
    resets = gateway.app[RESETS]
    token = await resets.issue(CARD, 1, now=time.time() - 31 * 60)
    response = await Browser(gateway).get(f"/pin/reset?token={token}")
    assert response.status == 400 and "no longer works" in await response.text()


async def test_a_link_from_before_a_pin_change_is_refused(
    gateway: TestClient, smtp: tuple[int, Inbox]
) -> None:
    link = await reset_link(gateway, smtp[1])
    settings = gateway.app[config_key()]
    local_directory(settings).set_pin(CARD, "6048")  # changed at the desk meanwhile
    response = await submit_reset(gateway, link, NEW_PIN)
    assert response.status == 400 and "no longer works" in await response.text()
    assert (await Browser(gateway).login(pin="6048")).status == 302


def config_key() -> Any:
    from gateway.appkeys import SETTINGS

    return SETTINGS


async def test_unknown_card_and_card_without_email_get_the_same_page_and_no_email(
    gateway: TestClient, smtp: tuple[int, Inbox]
) -> None:
    unknown = await ask_for_reset(gateway, "29999999999999")
    no_email = await ask_for_reset(gateway, OTHER_CARD)
    assert unknown == no_email
    await gateway.app[BACKGROUND].idle()  # whatever mail the requests started has gone out
    assert smtp[1].messages == []


async def test_without_mail_forgot_pin_sends_every_patron_to_the_desk(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., config.Settings]
) -> None:
    client = await start(aiohttp_client, make_settings())  # no [mail]
    form = await Browser(client).get("/pin/forgot")
    html = await form.text()
    assert form.status == 200 and "photo ID" in html and "Check your email" not in html
    assert "<form" not in html.split("<main", 1)[1]  # nothing to type a card into
    answers = []
    for card in (CARD, OTHER_CARD, "29999999999999", "x"):  # email, none, unknown, malformed
        browser = Browser(client)
        token = TOKEN.search(await (await browser.get("/login")).text())[1]  # type: ignore[index]
        answer = await browser.post("/pin/forgot", {"csrf_token": token, "card": card})
        answers.append((answer.status, await answer.text()))
    assert len(set(answers)) == 1 and answers[0][0] == 200
    assert "Bring your library card" in answers[0][1] and "email" in answers[0][1]
    help_page = await (await Browser(client).get("/help")).text()
    assert "This library does not send PIN reset links by email" in help_page
    assert "reset link by email" not in help_page
    spanish = await (await Browser(client, lang="es").get("/pin/forgot")).text()
    assert "Restablezca su PIN en la biblioteca" in spanish


async def test_with_mail_help_points_to_the_email_link(gateway: TestClient) -> None:
    help_page = await (await Browser(gateway).get("/help")).text()
    assert "reset link by email" in help_page and "does not send PIN reset links" not in help_page


async def test_policy_refused_pin_does_not_use_up_the_link(
    gateway: TestClient, smtp: tuple[int, Inbox]
) -> None:
    link = await reset_link(gateway, smtp[1])
    refused = await submit_reset(gateway, link, "1212")
    assert refused.status == 400 and "pair of digits" in await refused.text()
    assert (await submit_reset(gateway, link, NEW_PIN)).status == 200


async def change_pin(browser: Browser, old: str, new: str, again: str | None = None) -> Any:
    token = await token_of(browser, "/pin/change")
    return await browser.post(
        "/pin/change",
        {"csrf_token": token, "old_pin": old, "new_pin": new, "new_pin2": again or new, "url": ""},
    )


async def test_change_pin_refusals(gateway: TestClient) -> None:
    browser = Browser(gateway)
    await browser.login()
    wrong = await change_pin(browser, "9051", NEW_PIN)
    assert wrong.status == 401 and "current PIN is not right" in await wrong.text()
    mismatch = await change_pin(browser, PIN, NEW_PIN, "5928")
    assert mismatch.status == 400 and "not the same" in await mismatch.text()
    weak = await change_pin(browser, PIN, "1234")
    assert weak.status == 400 and "digits in a row" in await weak.text()
    assert (await Browser(gateway).login()).status == 302  # the PIN did not change


async def test_wrong_old_pins_count_toward_the_cards_lockout(gateway: TestClient) -> None:
    browser = Browser(gateway)
    await browser.login()
    answers = [await (await change_pin(browser, "9051", NEW_PIN)).text() for _ in range(5)]
    warned = ["One more wrong PIN locks this card for 15 minutes" in a for a in answers]
    assert warned == [False, False, False, True, False]
    assert '<a href="#old_pin">The current PIN is not right' in answers[0]
    assert (await Browser(gateway).login()).status == 429


async def test_change_pin_ends_other_sessions_renews_this_one_and_sends_a_notice(
    gateway: TestClient, smtp: tuple[int, Inbox]
) -> None:
    here, elsewhere = Browser(gateway), Browser(gateway)
    await here.login()
    await elsewhere.login()
    before = here.cookies["carrel_session"]
    done = await change_pin(here, PIN, NEW_PIN)
    assert done.status == 200 and "Your PIN is changed" in await done.text()
    assert here.cookies["carrel_session"] != before
    assert (await here.get("/menu")).status == 200
    assert (await elsewhere.get("/menu")).status == 302
    stale = Browser(gateway)
    stale.cookies["carrel_session"] = before
    assert (await stale.get("/menu")).status == 302
    (notice,) = await smtp[1].wait(1)
    assert "was changed" in notice["Subject"] and NEW_PIN not in text_of(notice)


async def test_desk_reset_then_the_patron_must_choose_a_pin_right_after_login(
    gateway: TestClient,
) -> None:
    from gateway.appkeys import SETTINGS

    out = io.StringIO()
    assert commands.reset_pin(gateway.app[SETTINGS], OTHER_CARD, out) == 0
    desk_pin = re.search(r"New PIN for card \d+: (\d{4})", out.getvalue())[1]  # type: ignore[index]
    assert desk_pin != OTHER_PIN
    browser = Browser(gateway)
    response = await browser.login(
        card=OTHER_CARD, pin=desk_pin, query="url=https://www.jstor.org/x"
    )
    assert response.status == 302 and response.headers["Location"].startswith("/pin/change?qurl=")
    proxied = await browser.get("/x", host="www-jstor-org.proxy.localhost:8080")
    assert proxied.status == 302 and "/pin/change" in proxied.headers["Location"]
    page = await browser.get(response.headers["Location"])
    assert "temporary PIN" in await page.text()
    token = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())[1]  # type: ignore[index]
    done = await browser.post(
        "/pin/change",
        {
            "csrf_token": token,
            "old_pin": desk_pin,
            "new_pin": "7306",
            "new_pin2": "7306",
            "url": "https://www.jstor.org/x",
        },
    )
    assert (
        done.status == 302
        and done.headers["Location"] == "http://www-jstor-org.proxy.localhost:8080/x"
    )
    assert (await browser.get("/menu")).status == 200


async def test_until_the_new_pin_every_page_of_the_session_leads_to_the_change_form(
    gateway: TestClient,
) -> None:
    from gateway.appkeys import SETTINGS

    out = io.StringIO()
    assert commands.reset_pin(gateway.app[SETTINGS], OTHER_CARD, out) == 0
    desk_pin = re.search(r"New PIN for card \d+: (\d{4})", out.getvalue())[1]  # type: ignore[index]
    browser = Browser(gateway)
    assert (await browser.login(card=OTHER_CARD, pin=desk_pin)).headers["Location"] == "/pin/change"
    change = "http://login.proxy.localhost:8080/pin/change"
    jstor = "http://www-jstor-org.proxy.localhost:8080"
    where = {
        ("/menu", LOGIN_HOST): "/pin/change",
        ("/", LOGIN_HOST): "/menu",
        ("/login?url=https://www.jstor.org/y?a=1&b=2", LOGIN_HOST): (
            "/pin/change?qurl=https%3A%2F%2Fwww.jstor.org%2Fy%3Fa%3D1%26b%3D2"
        ),
        ("/login?url=https://evil.example/", LOGIN_HOST): "/pin/change",  # no open redirect
        ("/z?q=1", "www-jstor-org.proxy.localhost:8080"): (
            f"{change}?qurl=https%3A%2F%2Fwww.jstor.org%2Fz%3Fq%3D1"
        ),
    }
    for (path, host), location in where.items():
        response = await browser.get(path, host=host)
        assert (response.status, response.headers["Location"]) == (302, location), path
    posted = await browser.post("/search", {"q": "x"}, host="www-jstor-org.proxy.localhost:8080")
    assert posted.status == 302 and posted.headers["Location"] == change  # not replayed as GET
    unsafe = await browser.get("/pin/change?qurl=https%3A%2F%2Fevil.example%2F")
    assert 'name="url" value=""' in await unsafe.text()
    page = await browser.get("/pin/change?qurl=https%3A%2F%2Fwww.jstor.org%2Fy")
    token = re.search(r'name="csrf_token" value="([^"]+)"', await page.text())[1]  # type: ignore[index]
    target = re.search(r'name="url" value="([^"]*)"', await page.text())[1]  # type: ignore[index]
    assert target == "https://www.jstor.org/y"
    assert 'href="/menu"' not in await page.text()  # no link that only leads back here
    form = {"csrf_token": token, "old_pin": desk_pin, "new_pin": "7306", "new_pin2": "7306"}
    done = await browser.post("/pin/change", {**form, "url": target})
    assert done.status == 302 and done.headers["Location"] == f"{jstor}/y"
    assert (await browser.get("/menu")).status == 200
    assert (await browser.get("/login?url=https://www.jstor.org/y")).headers["Location"] == (
        f"{jstor}/y"
    )
    proxied = await browser.get("/menu", host="www-jstor-org.proxy.localhost:8080")
    assert "/pin/change" not in proxied.headers.get("Location", "")


def test_reset_pin_command_prints_a_policy_pin(tmp_path: Path) -> None:
    settings = config.build({"server": {"state_dir": str(tmp_path)}}, env={})
    local_directory(settings).add(CARD, PIN)
    for _ in range(20):
        out = io.StringIO()
        assert commands.reset_pin(settings, CARD, out) == 0
        pin = re.search(r": (\d{4})$", out.getvalue().splitlines()[0])[1]  # type: ignore[index]
        from gateway.auth.pin_policy import check_pin

        assert check_pin(pin, CARD) is None
    assert local_directory(settings).get(CARD).must_change_pin  # type: ignore[union-attr]
