"""The proxy, as a transcript: patron asks, gateway asks a real HTTPS vendor on loopback, patron gets."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient

from gateway import config
from gateway.app import build_app
from gateway.appkeys import SETTINGS
from gateway.auth.commands import local_directory
from tests.patron_support import CARD, PIN, Browser
from tests.support import RedisProcess, serve_on_loopback
from tests.vendor_support import (
    API,
    CDN,
    DOWN,
    OTHER,
    VENDOR_RULES,
    WWW,
    Vendor,
    gateway_settings,
    proxied,
)


@pytest.fixture
async def gateway(
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., config.Settings],
    vendor: Vendor,
) -> TestClient:
    settings = gateway_settings(make_settings, vendor, upstream={"read_timeout": 1.0})
    client: TestClient = await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar())
    return client


@pytest.fixture
async def patron(gateway: TestClient) -> Browser:
    browser = Browser(gateway)
    assert (await browser.login()).status == 302
    return browser


async def test_page_links_across_hosts_are_rewritten(patron: Browser) -> None:
    response = await patron.get("/", host=proxied(WWW))
    assert response.status == 200
    text = await response.text()
    assert f'href="http://{proxied(CDN)}/s.css"' in text
    assert f'href="http://{proxied(API)}/json"' in text
    assert f'href="http://{proxied(WWW)}/page2"' in text


async def test_no_session_goes_to_login_with_the_vendors_url(gateway: TestClient) -> None:
    response = await Browser(gateway).get("/stable/1?x=1", host=proxied(WWW))
    assert response.status == 302
    assert response.headers["Location"] == (
        "http://login.proxy.localhost:8080/login?qurl=https%3A%2F%2Fwww.vendor.test%2Fstable%2F1%3Fx%3D1"
    )


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
async def test_every_redirect_status_has_its_location_rewritten(patron: Browser, code: int) -> None:
    response = await patron.get(f"/redirect/{code}", host=proxied(WWW))
    assert response.status == code
    assert response.headers["Location"] == f"http://{proxied(API)}/landing?from={code}"


async def test_cookie_set_by_one_host_is_sent_to_another_host_of_the_domain(
    patron: Browser,
) -> None:
    set_response = await patron.get("/set-cookie", host=proxied(WWW))
    assert (
        "Set-Cookie" not in set_response.headers or "sid=" not in set_response.headers["Set-Cookie"]
    )
    assert "sid" not in patron.cookies  # kept server-side, not in the browser
    seen = json.loads(await (await patron.get("/cookie", host=proxied(API))).text())
    assert seen["cookie"] == "sid=abc123"
    same_host = json.loads(await (await patron.get("/cookie", host=proxied(WWW))).text())
    assert "sid=abc123" in same_host["cookie"] and "hostonly=www" in same_host["cookie"]
    assert "carrel_session" not in same_host["cookie"]


async def test_post_form_reaches_the_vendor_with_proxied_urls_mapped_back(patron: Browser) -> None:
    data = {"q": "carrels", "back": f"http://{proxied(WWW)}/results?p=2"}
    echoed = json.loads(await (await patron.post("/form", data, host=proxied(WWW))).text())
    assert echoed == {"q": "carrels", "back": f"https://{WWW}/results?p=2"}


async def test_json_api_urls_are_rewritten(patron: Browser) -> None:
    response = await patron.get("/json", host=proxied(API))
    data = json.loads(await response.text())
    assert data == {
        "next": f"http://{proxied(WWW)}/page2",
        "items": [f"http://{proxied(CDN)}/a.pdf"],
    }


async def test_put_only_where_httpmethod_allows_it(patron: Browser) -> None:
    allowed = await patron.client.put("/item", data=b"note", headers=patron.headers(proxied(WWW)))
    assert allowed.status == 200 and json.loads(await allowed.text())["body"] == "note"
    refused = await patron.client.put("/item", data=b"note", headers=patron.headers(proxied(OTHER)))
    assert refused.status == 405
    delete = await patron.client.delete("/item", headers=patron.headers(proxied(WWW)))
    assert delete.status == 405


async def test_range_request_on_a_pdf(patron: Browser) -> None:
    headers = patron.headers(proxied(CDN), Range="bytes=100-199")
    response = await patron.client.get("/file.pdf", headers=headers)
    assert response.status == 206
    assert response.headers["Content-Range"].startswith("bytes 100-199/")
    body = await response.read()
    assert len(body) == 100
    whole = await (await patron.get("/file.pdf", host=proxied(CDN))).read()
    assert whole[100:200] == body and whole.startswith(b"%PDF")


@pytest.mark.parametrize("path", ["/gzip", "/brotli"])
async def test_compressed_bodies_are_decoded_rewritten_and_gzipped(
    patron: Browser, path: str
) -> None:
    headers = patron.headers(proxied(WWW), **{"Accept-Encoding": "gzip"})
    response = await patron.client.get(path, headers=headers, auto_decompress=False)
    assert response.headers["Content-Encoding"] == "gzip"
    text = gzip.decompress(await response.read()).decode()
    assert f'href="http://{proxied(API)}/json"' in text
    plain = await patron.client.get(
        path, headers=patron.headers(proxied(WWW), **{"Accept-Encoding": "identity"})
    )
    assert "Content-Encoding" not in plain.headers
    assert f"http://{proxied(CDN)}/s.css" in await plain.text()


async def test_chunked_response_with_urls_split_across_chunks(patron: Browser) -> None:
    text = await (await patron.get("/chunked", host=proxied(WWW))).text()
    assert text == f'<a href="http://{proxied(WWW)}/a">a</a>' * 50


async def test_small_rewritten_pages_go_out_whole_with_their_length(patron: Browser) -> None:
    response = await patron.client.get(
        "/", headers=patron.headers(proxied(WWW), **{"Accept-Encoding": "identity"})
    )
    body = await response.read()
    assert int(response.headers["Content-Length"]) == len(body)
    assert "Transfer-Encoding" not in response.headers
    assert f"http://{proxied(API)}/json".encode() in body


async def test_big_and_unknown_length_pages_stream(patron: Browser) -> None:
    identity = patron.headers(proxied(WWW), **{"Accept-Encoding": "identity"})
    big = await patron.client.get("/big", headers=identity)
    assert big.headers["Transfer-Encoding"] == "chunked"
    expected = f'<a href="http://{proxied(WWW)}/a">a</a>\n' * 12000
    assert await big.text() == expected
    # What counts is what goes out: gzipped, the same page is small enough to go whole.
    gzipped = await patron.get("/big", host=proxied(WWW))
    assert gzipped.headers["Content-Encoding"] == "gzip"
    assert "Content-Length" in gzipped.headers
    assert await gzipped.text() == expected
    chunked = await patron.get("/chunked", host=proxied(WWW))
    assert chunked.headers["Transfer-Encoding"] == "chunked"


async def test_a_page_that_breaks_off_before_its_length_is_a_502_page(patron: Browser) -> None:
    response = await patron.get("/short", host=proxied(WWW))
    assert response.status == 502
    assert "not answering" in await response.text()


@pytest.mark.parametrize("kind", ["gzip", "br", "corrupt"])
async def test_a_compressed_page_that_explodes_or_is_corrupt_is_a_502_page(
    patron: Browser, kind: str
) -> None:
    response = await patron.get(f"/bomb/{kind}", host=proxied(WWW))
    assert response.status == 502
    assert "not answering" in await response.text()


async def test_a_bomb_met_after_the_headers_went_out_cuts_the_response(patron: Browser) -> None:
    response = await patron.get("/bomb/streamed", host=proxied(WWW))
    assert response.status == 200  # the page's first pieces were fine and went out
    with pytest.raises(aiohttp.ClientPayloadError):  # then the connection is cut, not ended
        await response.read()


async def test_websocket_echo(patron: Browser) -> None:
    async with patron.client.ws_connect("/ws", headers=patron.headers(proxied(API))) as ws:
        await ws.send_str("hello")
        message = await ws.receive(timeout=5)
        assert message.data == "echo: hello"


async def test_upstream_down_is_a_502_page(patron: Browser) -> None:
    response = await patron.get("/", host=proxied(DOWN))
    assert response.status == 502
    assert "not answering" in await response.text()


async def test_redis_down_is_a_503_for_every_request_in_flight(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., config.Settings],
    vendor: Vendor, tmp_path: Path,
) -> None:  # fmt: skip
    own = RedisProcess(tmp_path / "own").start()
    try:
        settings = make_settings(
            redis={"url": own.url},
            upstream={"resolve": vendor.resolve(), "ca_file": str(vendor.ca_file)},
        )
        Path(settings.rules.dir).mkdir(parents=True, exist_ok=True)
        Path(settings.rules.dir, "vendor.txt").write_text(VENDOR_RULES)
        local_directory(settings).add(CARD, PIN)
        browser = Browser(await aiohttp_client(build_app(settings), cookie_jar=DummyCookieJar()))
        assert (await browser.login()).status == 302
        assert (await browser.get("/", host=proxied(WWW))).status == 200
        own.kill()
        # A page's parts asked for at once: their session reads go to Redis in one batch.
        answers = await asyncio.gather(
            *(browser.get(path, host=proxied(host))
              for host, path in [(WWW, "/"), (CDN, "/s.css"), (API, "/json"), (WWW, "/page2")])
        )  # fmt: skip
        assert [a.status for a in answers] == [503] * 4
        assert all("temporarily unavailable" in text for text in [await a.text() for a in answers])
    finally:
        own.kill()


async def test_upstream_that_hangs_is_a_504_page(patron: Browser) -> None:
    response = await patron.get("/hang", host=proxied(WWW))
    assert response.status == 504
    assert "too long" in await response.text()


async def test_request_headers_the_vendor_gets(patron: Browser) -> None:
    headers = patron.headers(
        proxied(WWW), Referer=f"http://{proxied(WWW)}/from", **{"X-Forwarded-For": "6.6.6.6"}
    )
    seen = json.loads(await (await patron.client.get("/headers", headers=headers)).text())
    assert seen["Host"] == WWW
    assert seen["Referer"] == f"https://{WWW}/from"
    assert "X-Forwarded-For" not in seen and "carrel_session" not in seen.get("Cookie", "")


async def test_unconfigured_proxied_host_gets_a_404_with_the_line_to_add(patron: Browser) -> None:
    response = await patron.get("/", host=proxied("www.elsewhere.test"))
    assert response.status == 404
    text = await response.text()
    assert "https://www.elsewhere.test" in text and "HJ https://www.elsewhere.test" in text


async def raw_request(client: TestClient, data: bytes) -> bytes:
    assert client.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    writer.write(data)
    await writer.drain()
    response = await asyncio.wait_for(reader.read(4096), 5)
    writer.close()
    return response


@pytest.mark.parametrize(
    "request_bytes",
    [
        f"GET https://{WWW}/ HTTP/1.1\r\nHost: {proxied(WWW)}\r\n\r\n",
        f"GET //{WWW}/ HTTP/1.1\r\nHost: {proxied(WWW)}\r\n\r\n",
        f"CONNECT {WWW}:443 HTTP/1.1\r\nHost: {WWW}:443\r\n\r\n",
        f"GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\nHost: {proxied(WWW)}\r\n\r\n",
    ],
)
async def test_smuggling_and_ssrf_request_lines_are_refused(
    patron: Browser, request_bytes: str
) -> None:
    cookie = f"Cookie: carrel_session={patron.cookies['carrel_session']}\r\n"
    data = request_bytes.replace("\r\n\r\n", "\r\n" + cookie + "\r\n").encode()
    response = await raw_request(patron.client, data)
    status = int(response.split(b" ", 2)[1])
    assert status in (400, 404, 405), response[:200]


async def test_vendor_names_resolving_to_private_addresses_are_refused() -> None:
    from gateway.proxy.upstream import BlockedAddress, GuardedResolver

    class Answers:
        """DNS answers as getaddrinfo would give them (a rebinding vendor name)."""

        def __init__(self, address: str) -> None:
            self.address = address

        async def resolve(
            self, host: str, port: int = 0, family: int = socket.AF_INET
        ) -> list[Any]:
            return [
                {
                    "hostname": host,
                    "host": self.address,
                    "port": port,
                    "family": family,
                    "proto": 0,
                    "flags": 0,
                }
            ]

        async def close(self) -> None:
            return None

    for address in (
        "127.0.0.1",
        "169.254.169.254",
        "10.1.2.3",
        "192.168.0.1",
        "::1",
        "fd00::1",
        "::ffff:127.0.0.1",
    ):
        resolver = GuardedResolver({}, dns=Answers(address))  # type: ignore[arg-type]
        with pytest.raises(BlockedAddress):
            await resolver.resolve("www.vendor.test", 443)
    allowed = GuardedResolver({}, dns=Answers("93.184.216.34"))  # type: ignore[arg-type]
    assert (await allowed.resolve("www.vendor.test", 443))[0]["host"] == "93.184.216.34"
    override = GuardedResolver({"www.vendor.test": "127.0.0.1:8443"})
    assert (await override.resolve("www.vendor.test", 443))[0]["port"] == 8443


async def test_access_log_lines_are_in_ezproxy_format_with_a_pseudonym(
    patron: Browser, gateway: TestClient
) -> None:
    await patron.get("/json?a=1", host=proxied(API))
    settings = gateway.app[SETTINGS]
    log_text = (settings.state_path / "access.log").read_text()
    last = log_text.strip().splitlines()[-1]
    assert f'"GET https://{API}:443/json?a=1 HTTP/1.1" 200 ' in last
    assert CARD not in log_text and " - - [" not in last


async def test_a_patron_who_leaves_mid_download_is_one_info_line_not_a_traceback(
    make_settings: Callable[..., config.Settings], vendor: Vendor,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    caplog.set_level(logging.INFO)
    app = build_app(gateway_settings(make_settings, vendor))
    # Served as `gateway serve` serves it (the test client's server cancels handlers instead).
    async for port in serve_on_loopback(app):
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            patron = Browser(http)  # type: ignore[arg-type]  # the same get and post
            assert (await patron.login()).status == 302
        head = "".join(f"{k}: {v}\r\n" for k, v in patron.headers(proxied(WWW)).items())
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the gateway's writes back up
        client.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(client, ("127.0.0.1", port))
        await loop.sock_sendall(client, f"GET /download HTTP/1.1\r\n{head}\r\n".encode())
        assert (await loop.sock_recv(client, 1024)).startswith(b"HTTP/1.1 200")
        await asyncio.sleep(0.2)  # the gateway now waits for the patron to read more
        client.close()  # and the patron's browser goes away
        for _ in range(100):
            if "gateway.access" in caplog.text:  # the gateway is done with the request
                break
            await asyncio.sleep(0.05)
    assert "patron went away during GET https://www.vendor.test" in caplog.text
    assert not [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert "Traceback" not in caplog.text
