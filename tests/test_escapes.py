"""Escaped hosts against real Redis, a loopback vendor and the real console: pages and workers
get the Report-Only net beside the vendor's own policies; CSP reports and beacons are counted
for the database of the host they arrive on (host only), junk gets a 4xx, reports are
rate-limited; the console lists them and its Add puts the HJ line into the right file, audited,
with history, live at once."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway import config
from gateway.appkeys import AUDIT, ESCAPES, RULES
from gateway.audit import AuditFilter
from gateway.escapes.reports import Escaped
from gateway.escapes.store import DAY, RATE_PER_SESSION, EscapeStore
from gateway.hostmap import Origin
from tests.admin_support import Console, add_staff, start
from tests.patron_support import Browser, prepare
from tests.support import ManualClock, serve_on_loopback

Make = Callable[..., config.Settings]
WWW, OTHER, CDN = "www.demo.test", "www.other.test", "cdn.demo-assets.test"
WWW_HOST = "www-demo-test---http.proxy.localhost"
OTHER_HOST = "www-other-test---http.proxy.localhost"
CDN_HOST = "cdn-demo--assets-test---http.proxy.localhost"
DEMO = f"Title Demo Journals\nURL http://{WWW}/\nHJ http://{WWW}\nHTTPMethod -*\n"
OTHER_RULES = f"Title Other Press\nURL http://{OTHER}/\nHJ http://{OTHER}\n"
VENDOR_CSP = "img-src 'self' http://www.demo.test; report-uri http://www.demo.test/csp"


async def _vendor_page(request: web.Request) -> web.Response:
    if request.path == "/plain":
        return web.Response(text="plain text", content_type="text/plain")
    if request.path == "/worker.js":
        return web.Response(text="self.onmessage = () => 1;", content_type="text/javascript")
    response = web.Response(text=f"<html><body>{request.host}</body></html>",
                            content_type="text/html")  # fmt: skip
    if request.path == "/with-policies":
        response.headers.add("Content-Security-Policy", VENDOR_CSP)
        response.headers.add("Content-Security-Policy-Report-Only", VENDOR_CSP)
    return response


@pytest.fixture
async def vendor_port() -> AsyncIterator[int]:
    app = web.Application()
    app.router.add_get("/{tail:.*}", _vendor_page)
    async for port in serve_on_loopback(app):
        yield port


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(1_800_000_000.0)


@pytest.fixture
async def gateway(
    aiohttp_client: Callable[..., Any], make_settings: Make, vendor_port: int, clock: ManualClock
) -> tuple[TestClient, config.Settings]:
    resolve = {h: f"127.0.0.1:{vendor_port}" for h in (WWW, OTHER, CDN)}
    settings = make_settings(upstream={"resolve": resolve})
    prepare(settings)
    Path(settings.rules.dir, "demo.txt").write_text(DEMO)
    Path(settings.rules.dir, "other.txt").write_text(OTHER_RULES)
    add_staff(settings)
    return await start(aiohttp_client, settings, clock), settings


async def post(
    client: TestClient, host: str, path: str, body: bytes | str, kind: str = "application/csp-report",
    **headers: str,
) -> int:  # fmt: skip
    response = await client.post(
        path, data=body, headers={"Host": host, "Content-Type": kind, **headers}
    )
    return response.status


def report(blocked: str) -> str:
    return json.dumps({"csp-report": {"document-uri": f"http://{WWW_HOST}/article?id=7",
                                      "blocked-uri": blocked, "disposition": "report"}})  # fmt: skip


async def logged_in(client: TestClient) -> Browser:
    patron = Browser(client)
    assert (await patron.login()).status == 302
    return patron


async def test_pages_and_workers_get_the_net_beside_the_vendors_own_policies(
    gateway: tuple[TestClient, config.Settings],
) -> None:
    client, _ = gateway
    patron = await logged_in(client)
    page = await patron.get("/with-policies", host=WWW_HOST)
    assert page.status == 200
    report_only = page.headers.getall("Content-Security-Policy-Report-Only")
    assert len(report_only) == 2  # the vendor's (rewritten, still reporting to it) and ours
    vendor, ours = report_only
    assert f"http://{WWW_HOST}" in vendor and "report-uri" in vendor
    assert ours.startswith("default-src 'self'") and "http://*.proxy.localhost:8080" in ours
    assert "report-uri /__carrel/csp-report" in ours
    assert page.headers["Content-Security-Policy"] == vendor  # enforced policy untouched by us
    assert "Reporting-Endpoints" not in page.headers  # over http, report-uri alone
    plain = await patron.get("/plain", host=WWW_HOST)
    assert "Content-Security-Policy-Report-Only" not in plain.headers
    worker = await patron.client.get("/worker.js", headers=patron.headers(
        WWW_HOST, **{"Sec-Fetch-Dest": "worker"}))  # fmt: skip
    assert worker.headers["Content-Security-Policy-Report-Only"] == ours


async def test_a_report_counts_the_host_for_the_database_it_arrived_on_and_nothing_else(
    gateway: tuple[TestClient, config.Settings], redis_url: str,
) -> None:  # fmt: skip
    client, _ = gateway
    secret = "card=21234000000001&q=private+search"
    assert await post(client, WWW_HOST, "/__carrel/csp-report",
                      report(f"https://{CDN}/img/cover.png?{secret}")) == 204  # fmt: skip
    batch = [{"type": "csp-violation", "url": f"http://{OTHER_HOST}/x",
              "body": {"blockedURL": f"wss://live.other-cdn.test/socket?{secret}"}}]  # fmt: skip
    assert await post(client, OTHER_HOST, "/__carrel/csp-report", json.dumps(batch),
                      "application/reports+json") == 204  # fmt: skip
    rows = await client.app[ESCAPES].rows()
    assert [(r.database, r.host, r.schemes, r.count, r.week) for r in rows] == [
        ("Demo Journals", CDN, ("https",), 1, 1),
        ("Other Press", "live.other-cdn.test", ("https",), 1, 1),
    ]
    # What Redis keeps names hosts and databases only: no path, query, page or patron.
    store = aioredis.Redis.from_url(redis_url)
    dump = []
    async for key in store.scan_iter(match="carrel:*escaped*"):
        kind = (await store.type(key)).decode()
        value = {"zset": lambda k: store.zrange(k, 0, -1), "hash": store.hgetall,
                 "string": store.get}[kind]  # fmt: skip
        dump.append(repr(key) + repr(await value(key)))
    await store.aclose()
    text = " ".join(dump)
    for leaked in ("cover.png", "card=", "private", "/img", "/socket", "article", "2123400"):
        assert leaked not in text, leaked


async def test_beacons_count_only_hosts_a_librarian_could_add(
    gateway: tuple[TestClient, config.Settings],
) -> None:
    client, _ = gateway
    patron = await logged_in(client)
    hosts = [CDN, WWW, "login.proxy.localhost", WWW_HOST, "10.1.2.3", "api.demo-assets.test:8443"]
    status = await post(client, WWW_HOST, "/__carrel/escaped", json.dumps({"hosts": hosts}),
                        "text/plain;charset=UTF-8", Cookie=patron.headers()["Cookie"])  # fmt: skip
    assert status == 204
    rows = await client.app[ESCAPES].rows()
    assert sorted((r.host, r.schemes) for r in rows) == [
        ("api.demo-assets.test:8443", ()),
        (CDN, ()),
    ]


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/__carrel/csp-report", "not json", 400),
        ("/__carrel/csp-report", "\udcff", 400),
        ("/__carrel/csp-report", '{"csp-report": []}', 400),
        ("/__carrel/csp-report", "[1]", 400),
        ("/__carrel/csp-report", "[" * 100_000, 413),
        ("/__carrel/csp-report", "x" * 70_000, 413),
        ("/__carrel/escaped", '{"hosts": 5}', 400),
        ("/__carrel/escaped", json.dumps({"hosts": ["a.example.com"] * 21}), 400),
        ("/__carrel/escaped", '{"hosts": [null, 1, {"a": 1}, "bad host"]}', 204),
        ("/__carrel/escaped?x=1", '{"hosts": []}', 204),
    ],
)
async def test_junk_gets_a_4xx_and_counts_nothing(
    gateway: tuple[TestClient, config.Settings], path: str, body: str, status: int
) -> None:
    client, _ = gateway
    data = body.encode("utf-8", "surrogateescape")
    assert await post(client, WWW_HOST, path, data) == status
    assert await client.app[ESCAPES].rows() == []


async def test_only_post_and_only_on_proxied_hosts(
    gateway: tuple[TestClient, config.Settings],
) -> None:
    client, _ = gateway
    got = await client.get("/__carrel/csp-report", headers={"Host": WWW_HOST})
    assert got.status == 405 and got.headers["Allow"] == "POST"
    unknown = "www-nowhere-test.proxy.localhost"
    assert await post(client, unknown, "/__carrel/csp-report", report(f"https://{CDN}/")) == 404
    assert await client.app[ESCAPES].rows() == []


async def test_reports_are_rate_limited_per_session_and_the_limit_passes_with_time(
    gateway: tuple[TestClient, config.Settings], clock: ManualClock,
) -> None:  # fmt: skip
    client, _ = gateway
    cookie = {"Cookie": "carrel_session=some-session-value"}
    body = report(f"https://{CDN}/a.png")
    answers = [await post(client, WWW_HOST, "/__carrel/csp-report", body, **cookie)
               for _ in range(RATE_PER_SESSION + 2)]  # fmt: skip
    assert answers[:RATE_PER_SESSION] == [204] * RATE_PER_SESSION
    assert answers[RATE_PER_SESSION:] == [429, 429]
    assert (await client.app[ESCAPES].rows())[0].count == RATE_PER_SESSION
    # Another session from the same address is not held back by the first one's reports.
    other = {"Cookie": "carrel_session=another-session"}
    assert await post(client, WWW_HOST, "/__carrel/csp-report", body, **other) == 204
    clock.advance(61)
    assert await post(client, WWW_HOST, "/__carrel/csp-report", body, **cookie) == 204


async def test_this_week_is_the_last_seven_days_and_first_seen_stays(
    redis_url: str, clock: ManualClock
) -> None:
    redis = aioredis.Redis.from_url(redis_url)
    store = EscapeStore(redis, clock)
    start = clock()
    await store.record("Demo", [Escaped(CDN, "https")])
    clock.advance(3 * DAY)
    await store.record("Demo", [Escaped(CDN, "http"), Escaped("b.example.com", "")])
    clock.advance(5 * DAY)  # the first report is 8 days old now, the second 5
    await store.record("Demo", [Escaped(CDN, "https")])
    rows = {r.host: r for r in await store.rows()}
    assert (rows[CDN].count, rows[CDN].week) == (3, 2)
    assert rows[CDN].first == start and rows[CDN].last == clock()
    assert rows[CDN].schemes == ("https", "http")
    assert (rows["b.example.com"].week, rows["b.example.com"].schemes) == (1, ())
    await redis.aclose()


async def test_each_database_keeps_a_bounded_list_the_stalest_go_first(
    redis_url: str, clock: ManualClock
) -> None:
    redis = aioredis.Redis.from_url(redis_url)
    store = EscapeStore(redis, clock, cap=3)
    for i in range(5):
        clock.advance(10)
        await store.record("Demo", [Escaped(f"h{i}.example.com", "https")])
    await store.record("Other", [Escaped("h0.example.com", "https")])
    demo = sorted(r.host for r in await store.of_database("Demo"))
    assert demo == ["h2.example.com", "h3.example.com", "h4.example.com"]
    assert [r.host for r in await store.of_database("Other")] == ["h0.example.com"]
    tag_keys = [k async for k in redis.scan_iter(match="carrel:{escaped:*")]
    for key in tag_keys:
        kind = (await redis.type(key)).decode()
        size = await (redis.zcard(key) if kind == "zset" else redis.hlen(key))
        assert size <= 3, key
    await redis.aclose()


async def reported(client: TestClient, blocked: str, host: str = WWW_HOST) -> None:
    assert await post(client, host, "/__carrel/csp-report", report(blocked)) == 204


async def test_the_console_lists_escapes_and_add_puts_the_line_in_the_right_file(
    gateway: tuple[TestClient, config.Settings],
) -> None:
    client, settings = gateway
    for _ in range(3):
        await reported(client, f"http://{CDN}/cover.png")
    await reported(client, "https://fonts.example.net/f.woff", OTHER_HOST)
    editor = Console(Browser(client))
    await editor.login("eli")
    listing = await (await editor.browser.get("/admin/escapes")).text()
    assert f"{WWW} pages loaded {CDN} 3 times this week" in listing
    assert f"{OTHER} pages loaded fonts.example.net 1 time this week" in listing
    assert f"<code>HJ http://{CDN}</code>" in listing
    assert '<th scope="col">This week</th>' in listing
    assert f'aria-label="Add {CDN} to Demo Journals"' in listing
    other_before = Path(settings.rules.dir, "other.txt").read_text()
    added = await editor.form("/admin/escapes/add", database="Demo Journals", host=CDN)
    assert added.status == 302 and added.headers["Location"] == "/admin/escapes?done=added"
    demo = Path(settings.rules.dir, "demo.txt").read_text()
    assert demo == DEMO.replace(f"HJ http://{WWW}\n", f"HJ http://{WWW}\nHJ http://{CDN}\n")
    assert Path(settings.rules.dir, "other.txt").read_text() == other_before
    # Live here at once, audited with its diff, and in the file's history.
    assert client.app[RULES].ruleset.allows(Origin.of("http", CDN)) is not None
    entries = await client.app[AUDIT].query(AuditFilter(kind="rules_saved"))
    assert entries and entries[0].staff == "eli" and entries[0].detail["file"] == "demo.txt"
    assert f"+HJ http://{CDN}" in entries[0].detail["diff"]
    history = await (await editor.browser.get("/admin/rules/demo.txt/history")).text()
    assert f"added HJ http://{CDN}" in history
    after = await (await editor.browser.get(added.headers["Location"])).text()
    assert "Added: the line is in the database" in after
    assert f"pages loaded {CDN}" not in after and "fonts.example.net" in after
    # The host is proxied now: a patron's request for it reaches the vendor.
    patron = await logged_in(client)
    page = await patron.get("/cover.png", host=CDN_HOST)
    assert page.status == 200 and CDN in await page.text()
    # Reports of it from pages still open are not listed again.
    await reported(client, f"http://{CDN}/cover.png")
    assert [r.host for r in await client.app[ESCAPES].rows()] == ["fonts.example.net"]


async def test_add_needs_the_rules_permission_and_the_forms_token(
    gateway: tuple[TestClient, config.Settings],
) -> None:
    client, settings = gateway
    await reported(client, f"http://{CDN}/x.png")
    before = Path(settings.rules.dir, "demo.txt").read_text()
    desk = Console(Browser(client))
    await desk.login("dee")
    assert (await desk.browser.get("/admin/escapes")).status == 403
    assert (await desk.form("/admin/escapes/add", database="Demo Journals", host=CDN)).status == 403
    editor = Console(Browser(client))
    await editor.login("eli")
    forged = await editor.browser.post("/admin/escapes/add",
                                       {"database": "Demo Journals", "host": CDN})  # fmt: skip
    assert forged.status == 403
    assert Path(settings.rules.dir, "demo.txt").read_text() == before
    # A host that is not listed cannot be added through this form.
    made_up = await editor.form("/admin/escapes/add", database="Demo Journals", host="evil.example")
    assert made_up.headers["Location"] == "/admin/escapes?done=gone"
    assert Path(settings.rules.dir, "demo.txt").read_text() == before


async def test_a_host_covered_since_it_was_reported_is_dropped_not_added(
    gateway: tuple[TestClient, config.Settings],
) -> None:
    client, settings = gateway
    await reported(client, f"http://{CDN}/x.png")
    Path(settings.rules.dir, "other.txt").write_text(OTHER_RULES + f"HJ http://{CDN}\n")
    client.app[RULES].reload()
    editor = Console(Browser(client))
    await editor.login("eli")
    listing = await (await editor.browser.get("/admin/escapes")).text()
    assert CDN not in listing and "No database" in listing
    done = await editor.form("/admin/escapes/add", database="Demo Journals", host=CDN)
    assert done.headers["Location"] == "/admin/escapes?done=covered"
    assert Path(settings.rules.dir, "demo.txt").read_text() == DEMO


async def test_the_escaped_hosts_page_speaks_spanish(
    gateway: tuple[TestClient, config.Settings],
) -> None:
    client, _ = gateway
    await reported(client, f"http://{CDN}/x.png")
    editor = Console(Browser(client, lang="es"))
    await editor.login("eli")
    page = await (await editor.browser.get("/admin/escapes")).text()
    assert f"Las páginas de {WWW} cargaron {CDN} 1 vez esta semana" in page
    assert "Añadir" in page and "Esta semana" in page
    assert re.search(r"<h1>Hosts fuera de las reglas</h1>", page)
