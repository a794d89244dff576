"""SIP2 against pysip2's server as a stand-in ILS, through the real login page."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient

from gateway import config
from gateway.app import build_app
from gateway.appkeys import DIRECTORY
from gateway.auth import sip2_codec as codec
from gateway.embedded_redis import free_port
from tests.patron_support import RULES, Browser
from tests.sip2_support import PATRONS, SC_PASSWORD, SC_USER, Ils, run_ils

Client = Callable[..., Any]


def sip2_settings(
    make_settings: Callable[..., config.Settings], port: int, **extra: Any
) -> config.Settings:
    sip2 = {
        "host": "127.0.0.1",
        "port": port,
        "login_user": SC_USER,
        "login_password": SC_PASSWORD,
        "institution_id": "LIB",
        "read_timeout": 5.0,
        "connect_timeout": 5.0,
        **extra,
    }
    settings = make_settings(
        patrons={"backend": "sip2"}, sip2=sip2, lockout={"address_failures": 500}
    )
    Path(settings.rules.dir).mkdir(parents=True, exist_ok=True)
    Path(settings.rules.dir, "jstor.txt").write_text(RULES)
    return settings


@pytest.fixture
async def ils() -> AsyncIterator[Ils]:
    async for running in run_ils(error_detection="required"):
        yield running


@pytest.fixture
async def gateway(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings], ils: Ils
) -> TestClient:
    client: TestClient = await aiohttp_client(
        build_app(sip2_settings(make_settings, ils.port)), cookie_jar=DummyCookieJar()
    )
    return client


@pytest.mark.parametrize(
    ("card", "pin", "status", "words"),
    [
        ("21234000000001", "4827", 302, ""),
        ("21234000000002", "5830", 302, ""),
        ("21234000000001", "9051", 401, "not right"),
        ("29999999999999", "4827", 401, "not right"),
        ("21234000000003", "6048", 403, "Please see the circulation desk."),
        ("21234000000004", "7306", 403, "Your card expired on 2025-01-31."),
    ],
)
async def test_each_outcome_through_the_login_page(
    gateway: TestClient, card: str, pin: str, status: int, words: str
) -> None:
    response = await Browser(gateway).login(card=card, pin=pin)
    assert response.status == status
    if words:
        assert words in await response.text()


async def test_non_ascii_names_in_cp850_and_email(gateway: TestClient) -> None:
    directory = gateway.app[DIRECTORY]
    patron = await directory.lookup("21234000000002")
    assert patron is not None and patron.name == "Bo Ødegård Çelik"
    ana = await directory.lookup("21234000000001")
    assert ana is not None and ana.name == "Ana Núñez" and ana.email == "ana@example.org"


async def test_pin_pages_say_where_to_change_the_pin(gateway: TestClient) -> None:
    browser = Browser(gateway)
    await browser.login()
    page = await browser.get("/pin/change")
    assert "own system, so it cannot be changed here" in await page.text()
    assert "cannot be changed here" in await (await Browser(gateway).get("/pin/forgot")).text()


async def test_lockouts_apply_in_front_of_the_ils(gateway: TestClient, ils: Ils) -> None:
    for _ in range(5):
        await Browser(gateway).login(pin="9051")
    before = ils.requests
    locked = await Browser(gateway).login()
    assert locked.status == 429 and ils.requests == before  # the ILS was not asked


async def test_fifty_concurrent_logins_through_a_pool_of_four(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings], ils: Ils
) -> None:
    settings = sip2_settings(make_settings, ils.port, pool_size=4)
    client: TestClient = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
    cards = [f"21234000000{n}" for n in range(100, 150)]
    browsers = [Browser(client) for _ in cards]
    results = await asyncio.gather(
        *(b.login(card=c, pin="4827") for b, c in zip(browsers, cards, strict=True))
    )
    assert [r.status for r in results] == [302] * 50
    assert 1 <= len(ils.peers) <= 4


async def test_the_ils_closing_connections_means_a_new_login_not_an_error(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings]
) -> None:
    async for ils in run_ils(idle_timeout=0.2):
        client: TestClient = await aiohttp_client(
            build_app(sip2_settings(make_settings, ils.port)), cookie_jar=DummyCookieJar()
        )
        assert (await Browser(client).login()).status == 302
        await asyncio.sleep(0.6)  # the ILS has dropped the idle connection by now
        assert (await Browser(client).login()).status == 302


async def silent_server(
    reply: Callable[[bytes], bytes | None],
) -> tuple[asyncio.AbstractServer, int]:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readuntil(b"\r")
                answer = reply(line)
                if answer is not None:
                    writer.write(answer)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    port = free_port()
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    return server, port


async def test_an_ils_that_never_answers_gives_the_friendly_page(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings]
) -> None:
    server, port = await silent_server(lambda line: None)
    try:
        settings = sip2_settings(make_settings, port, read_timeout=0.3, breaker_failures=2)
        client: TestClient = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
        for _ in range(3):  # the third is refused by the open breaker, at once
            response = await Browser(client).login()
            assert response.status == 503
            assert "system is not answering" in await response.text()
    finally:
        server.close()


async def test_a_bad_checksum_is_refused_then_a_resend_is_asked(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings]
) -> None:
    asked: list[bytes] = []

    def reply(line: bytes) -> bytes:
        asked.append(line[:2])
        if line.startswith(b"93"):
            return codec.frame("941", 0, "cp850")
        body = ("64" + " " * 14 + "000" + "20261128    120000" + "0000" * 6 +
                "AOLIB|AA21234000000001|AEAna|BLY|CQY|")  # fmt: skip
        good = codec.frame(body, 1, "cp850")
        if line.startswith(b"97"):
            return good
        return good[:-5] + b"0000\r"  # the checksum does not add up

    server, port = await silent_server(reply)
    try:
        settings = sip2_settings(make_settings, port)
        client: TestClient = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
        assert (await Browser(client).login()).status == 302
        assert asked == [b"93", b"63", b"97"]
    finally:
        server.close()


def test_our_checksums_agree_with_pysip2s_independent_codec() -> None:
    from pysip2 import verify_checksum

    for body, sequence in [
        (
            "09N19980821    085721APCertification Terminal Location|AOCertification Institute ID|ABCheckInBook|ACTPWord|BIN|",
            4,
        ),
        ("9300CNgateway|COsc-secret|CP|", 0),
        (
            "63001"
            + "20261128    120000"
            + " " * 10
            + "AOLIB|AA21234000000002|ACpw|AD5830|AEBo Ødegård|",
            7,
        ),
    ]:
        framed = codec.frame(body, sequence, "cp850")
        assert verify_checksum(framed[:-1])  # pysip2's own check of our frame
        assert codec.parse(framed, "cp850").command == body[:2]
        broken = framed[:-2] + (b"0" if framed[-2:-1] != b"0" else b"1") + b"\r"
        with pytest.raises(codec.Sip2Error):
            codec.parse(broken, "cp850")


def test_expiry_and_flags_are_read_from_the_response() -> None:
    body = ("64" + "Y   Y" + " " * 9 + "000" + "20261128    120000" + "0000" * 6 +
            "AOLIB|AA1|AEX|BLY|CQN|PA20250131|AFfirst|AFsecond|")  # fmt: skip
    answer = codec.patron_answer(codec.parse(codec.frame(body, None, "cp850"), "cp850"), "PA")
    assert answer.valid_patron and not answer.valid_pin
    assert answer.flags == {
        codec.StatusFlag.CHARGE_PRIVILEGES_DENIED,
        codec.StatusFlag.CARD_REPORTED_LOST,
    }
    assert answer.expires == datetime.date(2025, 1, 31)
    assert answer.screen_messages == ("first", "second")


def test_all_patrons_of_the_stand_in_are_consistent() -> None:
    assert all(len(p.status) == 14 for p in PATRONS.values())


async def test_patron_status_23_where_configured(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings], ils: Ils
) -> None:
    settings = sip2_settings(make_settings, ils.port, message="23")
    client: TestClient = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
    assert (await Browser(client).login()).status == 302
    assert (await Browser(client).login(pin="9051")).status == 401
    assert (await Browser(client).login(card="21234000000003", pin="6048")).status == 403


async def test_the_optional_cache_spares_the_ils_a_second_check(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings], ils: Ils
) -> None:
    settings = sip2_settings(make_settings, ils.port, cache_seconds=60)
    client: TestClient = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
    assert (await Browser(client).login()).status == 302
    asked = ils.requests
    assert (await Browser(client).login()).status == 302
    assert ils.requests == asked
    assert (await Browser(client).login(pin="9051")).status == 401  # wrong PINs are never cached
    assert ils.requests == asked + 1


async def test_sip2_over_tls(
    aiohttp_client: Client, make_settings: Callable[..., config.Settings], ils: Ils, tmp_path: Path
) -> None:
    """Many ILSs offer SIP2 only through TLS (stunnel): a TLS front on loopback, real handshake."""
    import ssl

    import trustme

    ca = trustme.CA()
    ca_file = tmp_path / "ils-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(4096):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def front(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", ils.port)
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    port = free_port()
    server = await asyncio.start_server(front, "127.0.0.1", port, ssl=context)
    try:
        settings = sip2_settings(
            make_settings, port, host="localhost", tls=True, tls_ca_file=str(ca_file)
        )
        client: TestClient = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
        assert (await Browser(client).login()).status == 302
        assert (await Browser(client).login(pin="9051")).status == 401
    finally:
        server.close()
