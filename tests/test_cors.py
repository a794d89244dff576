"""Cross-origin requests through the proxy: the pure tables first (who asks, what the browser is
told, which tags ask with credentials), then transcripts against a real HTTPS vendor on
loopback with two databases (patron asks, gateway asks the vendor, vendor answers, patron
gets)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import DummyCookieJar
from aiohttp.test_utils import TestClient

from gateway import config
from gateway.app import build_app
from gateway.hostmap import Origin
from gateway.proxy.exchange import Arrival, ErrorPage, Exchange, Forward, Located, decide, locate
from gateway.rewrite.cors import (
    SAME_ORIGIN,
    CorsRequest,
    Requester,
    cors_request,
    cors_response,
    preflight_method,
    requester,
)
from gateway.rewrite.crossorigin import credentialed
from gateway.rewrite.target import HostIndex, ProxyTarget
from gateway.rules.parser import parse
from gateway.rules.ruleset import RuleSet
from tests.cors_support import API, OTHER, RULES, WWW, Vendor, label, run_vendor, settings_for
from tests.patron_support import Browser

RULESET = RuleSet.from_results([parse(RULES + "NeverProxy never.vendor.test\n", "vendor.txt")])
INDEX = HostIndex(RULESET, ProxyTarget("https", "", "proxy.test"))
API_ORIGIN = Origin.of("https", API)
VENDOR_DB = RULESET.databases[0]


def p(host: str) -> str:
    """The proxied origin of ``host`` under INDEX."""
    return f"https://{label(host)}.proxy.test"


REQUESTERS = [
    ("no Origin", "", Requester.SAME),
    ("the host itself", p(API), Requester.SAME),
    ("another host of the database", p(WWW), Requester.DATABASE),
    ("upper case, as written", p(WWW).upper(), Requester.DATABASE),
    ("another database's host", p(OTHER), Requester.SIBLING),
    ("the login host", "https://login.proxy.test", Requester.FOREIGN),
    ("a sandboxed page", "null", Requester.FOREIGN),
    ("outside the proxy", "https://evil.example", Requester.FOREIGN),
    ("the vendor itself, not proxied", f"https://{WWW}", Requester.FOREIGN),
    ("another scheme", f"http://{label(WWW)}.proxy.test", Requester.FOREIGN),
    ("another port", p(WWW) + ":8443", Requester.FOREIGN),
    ("a proxied name no rule allows", p("www.unknown.test"), Requester.FOREIGN),
    ("a NeverProxy host", p("never.vendor.test"), Requester.FOREIGN),
    ("the proxy domain in front", p(WWW) + ".evil.example", Requester.FOREIGN),
    ("user info", f"https://x@{label(WWW)}.proxy.test", Requester.FOREIGN),
    ("a path", p(WWW) + "/", Requester.FOREIGN),
]


@pytest.mark.parametrize(("origin", "expected"), [r[1:] for r in REQUESTERS],
                         ids=[r[0] for r in REQUESTERS])  # fmt: skip
def test_requester_table(origin: str, expected: Requester) -> None:
    assert requester(origin, API_ORIGIN, VENDOR_DB, INDEX) is expected


def test_the_port_of_a_gateway_on_a_port_is_part_of_the_origin() -> None:
    index = HostIndex(RULESET, ProxyTarget("http", ":8080", "proxy.localhost"))
    www = f"http://{label(WWW)}.proxy.localhost"
    assert requester(www + ":8080", API_ORIGIN, VENDOR_DB, index) is Requester.DATABASE
    assert requester(www, API_ORIGIN, VENDOR_DB, index) is Requester.FOREIGN
    assert requester(www + ":8081", API_ORIGIN, VENDOR_DB, index) is Requester.FOREIGN


ORIGIN = {"Origin": p(WWW)}
PREFLIGHTS = [
    ("a preflight", "OPTIONS", {**ORIGIN, "Access-Control-Request-Method": "PUT"}, "PUT"),
    ("no Origin: not a CORS preflight", "OPTIONS", {"Access-Control-Request-Method": "PUT"}, ""),
    ("no method asked about", "OPTIONS", ORIGIN, ""),
    ("not OPTIONS", "POST", {**ORIGIN, "Access-Control-Request-Method": "PUT"}, ""),
    ("a body: no preflight has one", "OPTIONS",
     {**ORIGIN, "Access-Control-Request-Method": "PUT", "Content-Length": "5"}, ""),
    ("chunked", "OPTIONS",
     {**ORIGIN, "Access-Control-Request-Method": "PUT", "Transfer-Encoding": "chunked"}, ""),
    ("an empty body is none", "OPTIONS",
     {**ORIGIN, "Access-Control-Request-Method": "POST", "Content-Length": "0"}, "POST"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "headers", "expected"), [r[1:] for r in PREFLIGHTS],
                         ids=[r[0] for r in PREFLIGHTS])  # fmt: skip
def test_preflight_table(method: str, headers: dict[str, str], expected: str) -> None:
    assert preflight_method(method, headers) == expected


def cors(who: Requester, mode: str = "cors", **kw: Any) -> CorsRequest:
    origin = {Requester.DATABASE: p(WWW), Requester.SIBLING: p(OTHER)}.get(who, "https://evil.x")
    return dataclasses.replace(CorsRequest(who, origin, mode), **kw)


# (name, request, vendor credentials, refused)
POLICY = [
    ("same origin", SAME_ORIGIN, True, False),
    ("the database's page, fetch", cors(Requester.DATABASE), True, False),
    ("another database's page, fetch", cors(Requester.SIBLING), False, False),
    ("another database's page, socket", cors(Requester.SIBLING, "websocket"), False, False),
    ("another database's page, navigation", cors(Requester.SIBLING, "navigate"), True, False),
    ("another database's form, no Sec-Fetch-Mode", cors(Requester.SIBLING, ""), True, False),
    ("a foreign page, fetch", cors(Requester.FOREIGN), False, False),
    ("a foreign page, socket", cors(Requester.FOREIGN, "websocket"), False, True),
    ("a foreign page, navigation", cors(Requester.FOREIGN, "navigate"), True, False),
    ("a preflight of the database", cors(Requester.DATABASE, preflight=True), False, False),
    ("a preflight of another database", cors(Requester.SIBLING, preflight=True), False, False),
    ("a foreign preflight", cors(Requester.FOREIGN, preflight=True), False, True),
]


@pytest.mark.parametrize(("request_", "credentials", "refused"), [r[1:] for r in POLICY],
                         ids=[r[0] for r in POLICY])  # fmt: skip
def test_credentials_and_refusals_table(
    request_: CorsRequest, credentials: bool, refused: bool
) -> None:
    assert (request_.vendor_credentials, request_.refused) == (credentials, refused)


def test_cors_request_reads_the_headers() -> None:
    headers = {"Origin": p(OTHER), "Sec-Fetch-Mode": "CORS", "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "Content-Type, X-Api-Key,authorization"}  # fmt: skip
    found = cors_request("OPTIONS", headers, API_ORIGIN, VENDOR_DB, INDEX)
    assert found == CorsRequest(Requester.SIBLING, p(OTHER), "cors", True, "POST",
                                ("content-type", "x-api-key", "authorization"))  # fmt: skip
    assert cors_request("GET", {}, API_ORIGIN, VENDOR_DB, INDEX) is SAME_ORIGIN
    socket = {"Origin": "https://evil.example", "Upgrade": "websocket"}  # no Sec-Fetch-Mode
    assert cors_request("GET", socket, API_ORIGIN, VENDOR_DB, INDEX).refused


STAR = [("Access-Control-Allow-Origin", "*")]
OWN = [("Access-Control-Allow-Origin", p(WWW)), ("Access-Control-Allow-Credentials", "true")]
GRANT_WWW = [("Access-Control-Allow-Origin", p(WWW)), ("Access-Control-Allow-Credentials", "true")]
GRANT_OTHER = [("Access-Control-Allow-Origin", p(OTHER)),
               ("Access-Control-Allow-Credentials", "true")]  # fmt: skip
VARY = [("Vary", "Origin")]
ASKED = {"method": "PUT", "headers": ("content-type", "authorization", "x-key"), "preflight": True}
# (name, vendor's headers as headers.py mapped them, request, what the browser gets)
RESPONSES: list[tuple[str, list[tuple[str, str]], CorsRequest, list[tuple[str, str]]]] = [
    ("same origin: as it was", STAR, SAME_ORIGIN, STAR + VARY),
    ("same origin, no CORS at all", [("Content-Type", "text/html")], SAME_ORIGIN,
     [("Content-Type", "text/html")]),
    ("*: the database's page, with credentials", STAR, cors(Requester.DATABASE), GRANT_WWW + VARY),
    ("*: another database's page too", STAR, cors(Requester.SIBLING), GRANT_OTHER + VARY),
    ("the vendor's own page, as granted", OWN, cors(Requester.DATABASE), GRANT_WWW + VARY),
    ("granted to one page, not to another", OWN, cors(Requester.SIBLING), VARY),
    ("no grant stays none", [("X-A", "1")], cors(Requester.DATABASE), [("X-A", "1")]),
    ("a foreign page: nothing", [*OWN, ("Access-Control-Expose-Headers", "X-A")],
     cors(Requester.FOREIGN), VARY),
    ("a foreign page, *: nothing either", STAR, cors(Requester.FOREIGN, "navigate"), VARY),
    ("no Sec-Fetch-Mode: as the vendor said", STAR, cors(Requester.SIBLING, ""), STAR + VARY),
    ("a navigation: as the vendor said", OWN, cors(Requester.SIBLING, "navigate"), OWN + VARY),
    ("an existing Vary gets Origin", [*STAR, ("Vary", "Accept-Encoding")],
     cors(Requester.DATABASE), [("Vary", "Accept-Encoding, Origin"), *GRANT_WWW]),
    ("Vary: * already covers it", [*STAR, ("Vary", "*")], cors(Requester.DATABASE),
     [("Vary", "*"), *GRANT_WWW]),
    ("a preflight's wildcards become what it asked for, never Authorization by *",
     [*STAR, ("Access-Control-Allow-Methods", "GET, *"), ("Access-Control-Allow-Headers", "*"), ("Access-Control-Max-Age", "600")],
     cors(Requester.DATABASE, **ASKED),
     [("Access-Control-Allow-Methods", "GET, PUT"), ("Access-Control-Allow-Headers", "content-type, x-key"), ("Access-Control-Max-Age", "600"), *GRANT_WWW, *VARY]),
    ("Authorization named by the vendor is kept",
     [*STAR, ("Access-Control-Allow-Headers", "*, Authorization")], cors(Requester.SIBLING, **ASKED),
     [("Access-Control-Allow-Headers", "content-type, x-key, Authorization"), *GRANT_OTHER, *VARY]),
    ("exposed * becomes the response's headers",
     [("Content-Type", "text/plain"), ("X-Total", "3"), *STAR,
      ("Access-Control-Expose-Headers", "*")], cors(Requester.DATABASE),
     [("Content-Type", "text/plain"), ("X-Total", "3"), ("Access-Control-Expose-Headers", "Content-Type, X-Total"), *GRANT_WWW, *VARY]),
]  # fmt: skip


@pytest.mark.parametrize(("vendor", "request_", "expected"), [r[1:] for r in RESPONSES],
                         ids=[r[0] for r in RESPONSES])  # fmt: skip
def test_cors_response_table(
    vendor: list[tuple[str, str]], request_: CorsRequest, expected: list[tuple[str, str]]
) -> None:
    assert cors_response(list(vendor), request_) == expected


CROSSORIGIN = [
    ("anonymous, proxied", b'<img src="P" crossorigin="anonymous">', b"img", True,
     b'<img src="P" crossorigin="use-credentials">'),
    ("bare, proxied", b"<script src=P crossorigin>", b"script", True,
     b'<script src=P crossorigin="use-credentials">'),
    ("bare before the end", b"<link href=P crossorigin>", b"link", True,
     b'<link href=P crossorigin="use-credentials">'),
    ("any other value is anonymous", b"<video src=P CrossOrigin='x' muted>", b"video", True,
     b'<video src=P crossorigin="use-credentials" muted>'),
    ("already credentialed", b'<audio src=P crossorigin="USE-CREDENTIALS">', b"audio", True, None),
    ("no attribute: no CORS, nothing to do", b"<img src=P>", b"img", True, None),
    ("not proxied: left alone", b"<img src=https://cdn.x/a crossorigin>", b"img", False, None),
    ("a module script gets one", b'<script type="module" src=P>', b"script", True,
     b'<script type="module" src=P crossorigin="use-credentials">'),
    ("an inline module script too", b"<script type=module>", b"script", False,
     b'<script type=module crossorigin="use-credentials">'),
    ("a relative module script too", b"<script type=module src=/m.js>", b"script", False,
     b'<script type=module src=/m.js crossorigin="use-credentials">'),
    ("a module from an uncovered host: left alone", b"<script type=module src=//cdn.x/m.js>",
     b"script", False, None),
    ("a module preload", b'<link rel="modulepreload" href=P />', b"link", True,
     b'<link rel="modulepreload" href=P crossorigin="use-credentials" />'),
    ("a classic script without one stays no-cors", b"<script src=P>", b"script", True, None),
    ("a stylesheet without one too", b"<link rel=stylesheet href=P>", b"link", True, None),
    ("type=modules is not a module", b"<script type=modules>", b"script", False, None),
    ("other elements: not here", b"<iframe src=P crossorigin>", b"iframe", True, None),
    ("the word in a value is no attribute", b'<img alt="crossorigin" src=P>', b"img", True, None),
]  # fmt: skip


@pytest.mark.parametrize(("tag", "name", "proxied", "expected"), [r[1:] for r in CROSSORIGIN],
                         ids=[r[0] for r in CROSSORIGIN])  # fmt: skip
def test_crossorigin_table(tag: bytes, name: bytes, proxied: bool, expected: bytes | None) -> None:
    assert credentialed(tag, name, proxied) == expected


# -- the proxy's decisions ---------------------------------------------------------------------


def _exchange(method: str, headers: dict[str, str]) -> Exchange | ErrorPage:
    arrival = Arrival(method, "/own/data", f"{label(API)}.proxy.test", False, False, True,
                      preflight=preflight_method(method, headers))  # fmt: skip
    located = locate(arrival, INDEX)
    if not isinstance(located, Located):
        assert isinstance(located, ErrorPage)
        return located
    request = cors_request(method, headers, located.origin, located.database, INDEX)
    return Exchange(arrival, located, INDEX, None, None, False, "192.0.2.1", 0.0, request)


def test_a_preflight_is_forwarded_without_a_session() -> None:
    found = _exchange("OPTIONS", {"Origin": p(OTHER), "Access-Control-Request-Method": "POST"})
    assert isinstance(found, Exchange)
    assert decide(found) == Forward(found, websocket=False)


def test_a_preflight_for_a_method_the_rules_refuse_is_a_405() -> None:
    headers = {"Origin": p(WWW), "Access-Control-Request-Method": "DELETE"}
    assert _exchange("OPTIONS", headers) == ErrorPage(405)


def test_a_foreign_preflight_is_refused() -> None:
    found = _exchange("OPTIONS", {"Origin": "null", "Access-Control-Request-Method": "POST"})
    assert isinstance(found, Exchange) and decide(found) == ErrorPage(403)


def test_a_plain_options_request_is_refused_as_before() -> None:
    assert _exchange("OPTIONS", {"Origin": p(WWW)}) == ErrorPage(405)


# -- through the gateway, to a real vendor --------------------------------------------------------

PORT = ":8080"


def proxied(host: str) -> str:
    return f"{label(host)}.proxy.localhost{PORT}"


def origin_of(host: str) -> str:
    return f"http://{proxied(host)}"


@pytest.fixture
async def vendor(tmp_path: Path) -> AsyncIterator[Vendor]:
    async with run_vendor(tmp_path) as running:
        yield running


@pytest.fixture
async def gateway(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., config.Settings],
    vendor: Vendor,
) -> TestClient:  # fmt: skip
    client: TestClient = await aiohttp_client(
        build_app(settings_for(make_settings, vendor)), cookie_jar=DummyCookieJar()
    )
    return client


@pytest.fixture
async def patron(gateway: TestClient) -> Browser:
    browser = Browser(gateway)
    assert (await browser.login()).status == 302
    assert (await browser.get("/set-cookie", host=proxied(API))).status == 200  # into the jar
    return browser


def preflight(
    page: str, method: str = "POST", headers: str = "content-type, authorization"
) -> dict[str, str]:
    return {"Host": proxied(API), "Origin": origin_of(page), "Sec-Fetch-Mode": "cors",
            "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers}  # fmt: skip


async def test_a_preflight_from_the_vendors_page_reaches_the_vendor_without_a_session(
    gateway: TestClient, vendor: Vendor
) -> None:
    response = await gateway.options("/own/data", headers=preflight(WWW))
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == origin_of(WWW)
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert response.headers["Access-Control-Allow-Headers"] == "Content-Type, Authorization"
    assert "Origin" in response.headers["Vary"]
    [seen] = vendor.seen.to("/own/data", "OPTIONS")
    assert seen["origin"] == f"https://{WWW}"  # the vendor sees its own page asking
    assert (seen["cookie"], seen["patron"], seen["acrm"]) == ("", "", "POST")


async def test_a_preflight_carries_no_credentials_even_with_a_session(
    patron: Browser, vendor: Vendor
) -> None:
    response = await patron.client.options("/star/data",
                                           headers={**patron.headers(), **preflight(WWW)})  # fmt: skip
    assert response.status == 204
    [seen] = vendor.seen.to("/star/data", "OPTIONS")
    assert (seen["cookie"], seen["patron"]) == ("", "")


async def test_a_siblings_preflight_gets_the_vendors_star_answer_as_what_it_asked_for(
    gateway: TestClient,
) -> None:
    asked = preflight(OTHER, "POST", "content-type, x-key, authorization")
    response = await gateway.options("/star/data", headers=asked)
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == origin_of(OTHER)
    assert response.headers["Access-Control-Allow-Methods"] == "POST"
    assert response.headers["Access-Control-Allow-Headers"] == "content-type, x-key, Authorization"


async def test_a_vendor_that_grants_its_own_page_only_refuses_the_sibling(
    gateway: TestClient,
) -> None:
    response = await gateway.options("/own/data", headers=preflight(OTHER))
    assert response.status == 204
    assert "Access-Control-Allow-Origin" not in response.headers


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "null", "http://login.proxy.localhost:8080"]
)
async def test_a_preflight_from_outside_the_proxy_never_reaches_the_vendor(
    gateway: TestClient, vendor: Vendor, origin: str
) -> None:
    response = await gateway.options("/star/data", headers={**preflight(WWW), "Origin": origin})
    assert response.status == 403
    assert not any(k.lower().startswith("access-control-") for k in response.headers)
    assert vendor.seen.to("/star/data") == []


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_a_preflight_for_a_method_no_rule_allows_is_a_405(
    gateway: TestClient, vendor: Vendor, method: str
) -> None:
    response = await gateway.options("/star/data", headers=preflight(WWW, method))
    assert response.status == 405
    assert vendor.seen.to("/star/data") == []


async def test_nothing_but_a_preflight_goes_through_without_a_session(
    gateway: TestClient, vendor: Vendor
) -> None:
    headers = {**preflight(WWW)}
    del headers["Access-Control-Request-Method"]
    plain_options = await gateway.options("/star/data", headers=headers, allow_redirects=False)
    assert plain_options.status == 405
    cors_get = await gateway.get("/star/data", headers=headers, allow_redirects=False)
    assert cors_get.status == 302 and "/login" in cors_get.headers["Location"]
    assert vendor.seen.to("/star/data") == []


def fetch_headers(patron: Browser, page: str, mode: str = "cors") -> dict[str, str]:
    extra = {"Origin": origin_of(page), "Content-Type": "application/json",
             "Authorization": "Bearer t0ken"}  # fmt: skip
    if mode:
        extra["Sec-Fetch-Mode"] = mode
    return patron.headers(proxied(API), **extra)


async def test_the_vendors_page_reads_its_api_with_the_session_and_the_vendors_cookies(
    patron: Browser, vendor: Vendor
) -> None:
    response = await patron.client.post("/star/data", data=b'{"q": 1}',
                                        headers=fetch_headers(patron, WWW))  # fmt: skip
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == origin_of(WWW)
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response.headers["Vary"]
    [seen] = vendor.seen.to("/star/data", "POST")  # (the body is rewritten: ask the vendor)
    assert seen["body"] == '{"q": 1}' and seen["authorization"] == "Bearer t0ken"
    assert "vsid=vendor-secret" in seen["cookie"] and seen["patron"]
    assert seen["origin"] == f"https://{WWW}"


async def test_another_databases_page_reads_only_what_the_vendor_shows_anyone(
    patron: Browser, vendor: Vendor
) -> None:
    response = await patron.client.post("/star/data", data=b"{}",
                                        headers=fetch_headers(patron, OTHER))  # fmt: skip
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == origin_of(OTHER)
    [seen] = vendor.seen.to("/star/data", "POST")
    assert (seen["cookie"], seen["patron"]) == ("", "")  # no vendor cookie, no pseudonym
    assert seen["origin"] == f"https://{OTHER}"
    own = await patron.client.post("/own/data", data=b"{}", headers=fetch_headers(patron, OTHER))
    assert "Access-Control-Allow-Origin" not in own.headers  # the vendor trusts its page only


async def test_a_page_outside_the_proxy_gets_no_grant(patron: Browser) -> None:
    headers = {**fetch_headers(patron, WWW), "Origin": "https://evil.example"}
    response = await patron.client.post("/star/data", data=b"{}", headers=headers)
    assert not any(k.lower().startswith("access-control-") for k in response.headers)


async def test_a_vendor_without_cors_gets_none_added(patron: Browser) -> None:
    response = await patron.client.get("/none/data", headers=fetch_headers(patron, WWW))
    assert response.status == 200
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_without_sec_fetch_mode_the_vendors_answer_stays_as_it_was(
    patron: Browser, vendor: Vendor
) -> None:
    response = await patron.client.get("/star/data", headers=fetch_headers(patron, OTHER, ""))
    assert response.headers["Access-Control-Allow-Origin"] == "*"  # never credentialed
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "vsid=" in json.loads(await response.text())["cookie"]  # as before this change


async def test_websockets_by_who_opens_them(patron: Browser, vendor: Vendor) -> None:
    for page, patron_seen in ((API, True), (WWW, True), (OTHER, False)):
        headers = patron.headers(
            proxied(API), Origin=origin_of(page), **{"Sec-Fetch-Mode": "websocket"}
        )
        async with patron.client.ws_connect("/ws", headers=headers) as ws:
            seen = json.loads((await ws.receive(timeout=5)).data)
            await ws.send_str("hi")
            assert (await ws.receive(timeout=5)).data == "echo: hi"
        assert bool(seen["patron"]) is patron_seen, page
        assert ("vsid=" in seen["cookie"]) is patron_seen, page
    foreign = patron.headers(proxied(API), Origin="https://evil.example",
                             **{"Sec-Fetch-Mode": "websocket"})  # fmt: skip
    with pytest.raises(Exception, match="403"):
        await patron.client.ws_connect("/ws", headers=foreign)
