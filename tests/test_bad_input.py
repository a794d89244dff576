"""Malformed requests get the gateway's own 400 page; an unexpected error gets its 500 page.

Requests go over a real socket, byte for byte, where aiohttp's client would refuse to build
them (a Host header that is not text).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from email.message import Message
from email.parser import BytesHeaderParser
from typing import Any

import pytest
import redis as redis_sync
from aiohttp import web

from gateway import config
from gateway.app import build_app, error_pages
from gateway.appkeys import SETTINGS
from gateway.redis_keys import PREFIX
from gateway.sessions import session_hash
from tests.patron_support import Browser, prepare, start
from tests.support import serve_on_loopback

Make = Callable[..., config.Settings]
LOGIN = b"login.proxy.localhost:8080"
PROXIED = b"www-jstor-org.proxy.localhost:8080"
FORM = b"application/x-www-form-urlencoded"
BROKEN_TARGET = b"/login?qurl=https%3A%2F%2F%5B%3A%3A1%2F"  # https://[::1/
TITLES = {"en": "Request not understood", "es": "No se entendió la solicitud"}


@dataclass
class Answer:
    status: int
    headers: Message
    text: str


@pytest.fixture
async def port(make_settings: Make) -> AsyncIterator[int]:
    settings = make_settings()
    prepare(settings)
    async for listening in serve_on_loopback(build_app(settings)):
        yield listening


async def send(port: int, method: bytes, target: bytes, host: bytes = LOGIN,
               body: bytes | None = None, content_type: bytes = FORM,
               lang: bytes = b"en", extra: tuple[bytes, ...] = ()) -> Answer:  # fmt: skip
    """One request exactly as given, on its own connection; the answer read to the end."""
    head = [method + b" " + target + b" HTTP/1.1", b"Host: " + host,
            b"Accept-Language: " + lang, b"Connection: close", *extra]  # fmt: skip
    if body is not None:
        head += [b"Content-Type: " + content_type, b"Content-Length: %d" % len(body)]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"\r\n".join(head) + b"\r\n\r\n" + (body or b""))
    raw = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    status_line, _, rest = raw.partition(b"\r\n")
    header_block, _, payload = rest.partition(b"\r\n\r\n")
    headers = BytesHeaderParser().parsebytes(header_block)
    return Answer(int(status_line.split()[1]), headers, payload.decode("utf-8", "replace"))


def assert_gateway_page(answer: Answer, status: int, lang: str = "en") -> None:
    """The gateway's own page for ``status``, with its security headers, in ``lang``."""
    assert answer.status == status, answer.text
    assert answer.headers["Content-Type"].startswith("text/html")
    assert answer.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in answer.headers["Content-Security-Policy"]
    assert f'<html lang="{lang}">' in answer.text


@pytest.mark.parametrize(
    ("method", "body"), [(b"GET", None), (b"POST", b"card=21234000000001&pin=4827")]
)
async def test_login_link_whose_target_is_no_url_is_a_400_page(
    port: int, method: bytes, body: bytes | None
) -> None:
    answer = await send(port, method, BROKEN_TARGET, body=body)
    assert_gateway_page(answer, 400)
    assert TITLES["en"] in answer.text


@pytest.mark.parametrize(
    "host", [b"\xff\xfe", LOGIN + b"\xff\xfe", PROXIED[:-5] + b"\xff\xfe:8080"]
)
async def test_host_header_that_is_not_text_is_a_400_page(port: int, host: bytes) -> None:
    answer = await send(port, b"GET", b"/login", host=host, lang=b"es")
    assert_gateway_page(answer, 400, "es")
    assert TITLES["es"] in answer.text


@pytest.mark.parametrize("host", [LOGIN, PROXIED])
@pytest.mark.parametrize("header", [b"Cookie: carrel_session=\xff\xfe", b"Referer: http://x/\xff"])
async def test_header_bytes_that_are_not_utf8_are_a_400_page(
    port: int, host: bytes, header: bytes
) -> None:
    answer = await send(port, b"GET", b"/login", host=host, extra=(header,))
    assert_gateway_page(answer, 400)


async def test_form_bytes_outside_its_charset_are_a_400_page(port: int) -> None:
    answer = await send(port, b"POST", b"/login", body=b"card=\xff\xfe2123&pin=4827")
    assert_gateway_page(answer, 400)
    assert TITLES["en"] in answer.text


@pytest.mark.parametrize("path", [b"/login", b"/pin/forgot", b"/admin/login"])
async def test_form_in_a_charset_that_does_not_exist_is_a_400_page(port: int, path: bytes) -> None:
    answer = await send(port, b"POST", path, body=b"card=1&pin=2",
                        content_type=FORM + b"; charset=x-bogus")  # fmt: skip
    assert_gateway_page(answer, 400)


async def test_multipart_form_without_a_boundary_is_a_400_page(port: int) -> None:
    answer = await send(
        port, b"POST", b"/login", body=b"card=1", content_type=b"multipart/form-data"
    )
    assert_gateway_page(answer, 400)


async def test_body_that_is_not_in_its_content_encoding_is_a_400_page(
    aiohttp_client: Callable[..., Any], make_settings: Make
) -> None:
    client = await start(aiohttp_client, make_settings())
    patron = Browser(client)
    assert (await patron.login()).status == 302
    cookie = b"Cookie: carrel_session=" + patron.cookies["carrel_session"].encode()
    for host in (LOGIN, PROXIED):  # the proxy reads the form to map proxied URLs back
        answer = await send(client.port, b"POST", b"/login", host=host, body=b"q=1&pin=2",
                            extra=(b"Content-Encoding: gzip", cookie))  # fmt: skip
        assert_gateway_page(answer, 400)


async def test_proxied_host_takes_unreadable_forms_as_bytes_to_pass_on(port: int) -> None:
    # The proxy never decodes a form as text: without a session it is the usual way to log in.
    answer = await send(port, b"POST", b"/search", host=PROXIED, body=b"q=\xff\xfe",
                        content_type=FORM + b"; charset=x-bogus")  # fmt: skip
    assert answer.status == 302
    assert answer.headers["Location"].startswith("http://login.proxy.localhost:8080/login?qurl=")


async def test_unexpected_error_is_the_500_page_with_a_reference_logged_once(
    aiohttp_client: Callable[..., Any], make_settings: Make, redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    client = await start(aiohttp_client, make_settings())
    raw = "a-session-id-whose-key-holds-the-wrong-type"
    store = redis_sync.Redis.from_url(redis_url)
    store.set(f"{PREFIX}:session:{session_hash(raw)}", "not a hash")  # Redis answers WRONGTYPE
    store.close()
    browser = Browser(client, lang="es")
    browser.cookies["carrel_session"] = raw
    caplog.set_level(logging.INFO)
    references = []
    for host in ("login.proxy.localhost:8080", PROXIED.decode()):
        caplog.clear()
        response = await browser.get("/menu", host=host)
        text = await response.text()
        assert response.status == 500 and '<html lang="es">' in text
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "Server" not in response.headers
        found = re.search(r"Indique la referencia ([0-9A-Z]{6}) cuando", text)
        assert found, text
        references.append(found[1])
        logged = [r for r in caplog.records if found[1] in r.getMessage()]
        assert len(logged) == 1 and logged[0].exc_info is not None
        assert sum(r.exc_info is not None for r in caplog.records) == 1  # no second traceback
    assert references[0] != references[1]


async def test_http_errors_raised_on_purpose_pass_unchanged(port: int) -> None:
    answer = await send(port, b"GET", b"/no-such-page")
    assert_gateway_page(answer, 404)
    redirect = await send(port, b"GET", b"/")
    assert redirect.status == 302 and redirect.headers["Location"] == "/login"


async def test_error_after_the_answer_began_cuts_the_connection_and_writes_no_second_answer(
    make_settings: Make, caplog: pytest.LogCaptureFixture
) -> None:
    async def breaks_midway(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(b"first part")
        raise RuntimeError("the rest could not be made")

    app = web.Application(middlewares=[error_pages])
    app[SETTINGS] = make_settings()
    app.router.add_get("/stream", breaks_midway)
    async for listening in serve_on_loopback(app):
        reader, writer = await asyncio.open_connection("127.0.0.1", listening)
        writer.write(b"GET /stream HTTP/1.1\r\nHost: login.proxy.localhost\r\n\r\n")
        raw = await asyncio.wait_for(reader.read(), 5)  # ends: the gateway closed it
        writer.close()
    assert raw.count(b"HTTP/1.1 ") == 1 and b"first part" in raw
    assert b"reference" not in raw
    errors = [r for r in caplog.records if r.exc_info is not None]
    assert len(errors) == 1 and "unexpected error, reference" in errors[0].getMessage()
