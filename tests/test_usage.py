"""Abuse controls and usage reports through the real gateway, Redis, SMTP and a loopback vendor:
a harvesting session is stopped at its threshold while another patron browses on, a card on
three networks trips the network rule, the access log parses as ezPAARSE parses it, and the
monthly report matches the requests made."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, web

from gateway import config
from gateway.appkeys import KEYRING, TRACKER
from gateway.limits import (
    Action,
    EndLimit,
    Limit,
    Metric,
    Per,
    network_of,
    parse_usage_limit,
)
from gateway.rules.parser import parse
from gateway.usage.report import month_of
from tests.admin_support import (
    DEMO_HOST,
    PDF_BODY,
    Console,
    add_staff,
    bearer,
    settings_with_vendor,
    start,
    vendor_port,
)
from tests.patron_support import CARD, OTHER_CARD, OTHER_PIN, PIN, Browser
from tests.smtp_support import Inbox, text_of
from tests.support import run_gateway, serve_on_loopback

Client = Callable[..., Any]
Make = Callable[..., config.Settings]
IDENTITY = {"Accept-Encoding": "identity"}


@pytest.fixture
async def port() -> Any:
    async for found in vendor_port():
        yield found


# -- the UsageLimit syntax (pure) -------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("-enforce -interval=15 -expires=120 -MB=100 Global",
         Limit("Global", Per.CARD, Action.SUSPEND, 900, 7200, ((Metric.MB, 100),))),
        ("-transfers=500 quiet", Limit("quiet", thresholds=((Metric.TRANSFERS, 500),))),
        ("-block -notify -per=session -interval=10 -downloads=50 harvest",
         Limit("harvest", Per.SESSION, Action.BLOCK, 600, 0, ((Metric.DOWNLOADS, 50),), True)),
        ("-enforce -networks=2 -local nets", Limit("nets", Per.CARD, Action.SUSPEND,
                                                    3600, 0, ((Metric.NETWORKS, 2),))),
        ("-end Global", EndLimit("Global")),
    ],
)  # fmt: skip
def test_usage_limit_lines(line: str, expected: Limit | EndLimit) -> None:
    assert parse_usage_limit(line) == expected


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("-enforce Global -MB=1", "needs a name after its options"),
        ("-enforce Global", "at least one of"),
        ("-MB=ten big", "whole number above 0"),
        ("-MB=0 big", "whole number above 0"),
        ("-bogus=1 -MB=1 x", "-bogus is not known"),
        ("-per=session -networks=2 x", "counts a card's networks"),
        ("-per=house -MB=1 x", "session or card"),
        ("-enforce=yes -MB=1 x", "takes no value"),
    ],
)
def test_bad_usage_limit_lines_say_why(line: str, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_usage_limit(line)


def test_limits_count_bytes_in_megabytes_and_networks_by_prefix() -> None:
    limit = Limit("x", thresholds=((Metric.MB, 1), (Metric.TRANSFERS, 3)))
    assert limit.over({Metric.MB: 1024 * 1024, Metric.TRANSFERS: 3}) == []
    assert limit.over({Metric.MB: 1024 * 1024 + 1, Metric.TRANSFERS: 4}) == [
        (Metric.MB, 1024 * 1024 + 1, 1024 * 1024),
        (Metric.TRANSFERS, 4, 3),
    ]
    assert network_of("10.1.2.3") == network_of("10.1.2.250") == "10.1.2.0/24"
    assert network_of("2001:db8:1:2::5") == "2001:db8:1:2::/64"


def test_usage_limit_in_rule_files_holds_for_the_stanzas_after_it_until_end() -> None:
    text = (
        "UsageLimit -enforce -transfers=3 -per=session strict\n"
        "Title A\nURL https://a.test/\nHJ a.test\n"
        "UsageLimit -end strict\n"
        "Title B\nURL https://b.test/\nHJ b.test\n"
    )
    result = parse(text, "limits.txt")
    assert not result.findings
    first, second = result.databases
    assert [limit.name for limit in first.usage_limits] == ["strict"]
    assert second.usage_limits == ()
    bad = parse("UsageLimit -MB=x big\nTitle C\nURL https://c.test/\n", "bad.txt")
    assert [(f.source.line, f.severity.value) for f in bad.findings] == [(1, "error")]


def test_config_limits_are_checked_at_load() -> None:
    with pytest.raises(config.ConfigError, match=r"usage\.limits.*-bogus is not known"):
        config.build({"usage": {"limits": ["-bogus=1 -MB=1 x"]}}, env={})


# -- through the gateway ----------------------------------------------------------------------
async def fetch(browser: Browser, path: str, **headers: str) -> ClientResponse:
    return await browser.client.get(
        path, headers=browser.headers(DEMO_HOST, **IDENTITY, **headers), allow_redirects=False
    )


@pytest.fixture
async def webhook() -> Any:
    """A loopback endpoint that keeps the JSON posted to /hook."""
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", hook)
    async for hook_port in serve_on_loopback(app):
        yield hook_port, received


async def test_harvesting_session_is_stopped_at_its_threshold_while_others_browse(
    aiohttp_client: Client,
    make_settings: Make,
    port: int,
    smtp: tuple[int, Inbox],
    webhook: tuple[int, list[dict[str, Any]]],
) -> None:
    hook_port, hooked = webhook

    settings = settings_with_vendor(
        make_settings, port,
        usage={
            "limits": ["-block -notify -per=session -interval=10 -downloads=50 harvest"],
            "notify_email": ["eresources@library.example"],
            "webhook": f"http://127.0.0.1:{hook_port}/hook",
        },
        mail={"host": "127.0.0.1", "port": smtp[0], "from_address": "carrel@library.example"},
    )  # fmt: skip
    tokens = add_staff(settings)
    client = await start(aiohttp_client, settings)
    harvester, reader = Browser(client), Browser(client)
    await harvester.login()
    await reader.login(OTHER_CARD, OTHER_PIN)
    pdfs: list[int] = []
    stopped: list[str] = []

    async def harvest(worker: int) -> None:
        for n in range(worker, 300, 4):  # four at a time, as fast as the gateway answers
            response = await fetch(harvester, f"/pdf/{n}.pdf")
            body = await response.read()
            if response.status == 200 and body == PDF_BODY:
                pdfs.append(n)
            else:
                stopped.append(f"{response.status} {body.decode(errors='replace')}")

    harvested_when_read: list[int] = []  # how far the harvest had gone at each page read

    async def browse() -> None:
        for n in range(40):
            response = await fetch(reader, f"/articles/{n}")
            harvested_when_read.append(len(pdfs) + len(stopped))
            assert response.status == 200, await response.text()
            await asyncio.sleep(0.01)

    await asyncio.gather(*(harvest(w) for w in range(4)), browse())
    assert len(pdfs) == 50  # exactly the threshold, though four requests are in flight
    assert len(stopped) == 300 - len(pdfs)
    assert all(s.startswith("429") and "has been blocked" in s for s in stopped)
    # The reader was served alongside the harvest, not queued behind it (an order, not a
    # wall-clock bound: timings belong in bench/).
    assert len(harvested_when_read) == 40 and harvested_when_read[0] < 300, harvested_when_read
    assert (await Browser(client).login()).status == 403  # the card is blocked
    assert (await fetch(reader, "/after")).status == 200  # the other patron never noticed

    inbox = await smtp[1].wait(1)
    assert len(inbox) == 1 and inbox[0]["To"] == "eresources@library.example"
    pid = client.app[KEYRING].pseudonym(CARD)
    mail = text_of(inbox[0])
    # The 51st download trips the limit; with four in flight the one that records the trip
    # may have counted the 52nd, so the evidence says 51 to 54.
    assert "harvest" in mail and pid in mail and re.search(r"downloads 5[1-4] > 50", mail)
    assert CARD not in mail  # a pseudonym in mail, never the card
    for _ in range(50):
        if hooked:
            break
        await asyncio.sleep(0.05)
    assert hooked and hooked[0]["limit"] == "harvest" and hooked[0]["card"] is None

    why: dict[str, Any] = {}
    for _ in range(50):  # the notice goes out in the background: its audit entry follows
        audit = await (await bearer(client, tokens["ada"], "GET", "/admin/api/audit")).json()
        why = {e["kind"]: e for e in audit["entries"]}
        if "staff_notified" in why:
            break
        await asyncio.sleep(0.05)
    assert why["limit_tripped"]["patron"] == pid
    (evidence,) = why["limit_tripped"]["detail"]["evidence"]
    assert evidence["metric"] == "downloads" and evidence["allowed"] == 50
    assert 51 <= evidence["count"] <= 54
    assert why["card_blocked"]["staff"] == "system"
    assert why["staff_notified"]["detail"]["emails_sent"] == 1
    assert why["staff_notified"]["detail"]["webhook"] == "HTTP 200"

    limits = await (await bearer(client, tokens["dee"], "GET", "/admin/api/limits")).json()
    (trip,) = limits["trips"]
    assert trip["active"] and trip["card"] == CARD and trip["action"] == "block"
    assert [s["patron"] for s in limits["suspended"]] == [pid]
    lifted = await bearer(client, tokens["dee"], "POST", f"/admin/api/limits/{trip['id']}/lift")
    assert lifted.status == 200
    assert (await fetch(harvester, "/pdf/again.pdf")).status == 200
    assert (await Browser(client).login()).status == 302


async def test_a_card_on_three_networks_within_the_hour_trips_the_network_rule(
    aiohttp_client: Client, make_settings: Make, port: int
) -> None:
    settings = settings_with_vendor(
        make_settings, port,
        usage={"limits": ["-enforce -interval=60 -expires=60 -networks=2 networks"]},
        server={"trusted_proxies": ["127.0.0.1/32"]},
    )  # fmt: skip
    add_staff(settings)
    client = await start(aiohttp_client, settings)
    patron = Browser(client)
    await patron.login()
    for address in ("10.1.0.5", "10.1.0.77", "10.2.0.5"):  # two networks: fine
        assert (await fetch(patron, "/a", **{"X-Forwarded-For": address})).status == 200
    third = await fetch(patron, "/a", **{"X-Forwarded-For": "192.168.9.9"})
    assert third.status == 429  # the third network: this response does not go out
    paused = await fetch(patron, "/a", **{"X-Forwarded-For": "10.1.0.5"})
    assert paused.status == 429  # nor anything after, from any network
    page = await paused.text()
    assert "Your access is paused" in page and "You can go on after" in page
    login = await Browser(client).login()
    assert login.status == 429 and "paused" in await login.text()  # the card, not only a session
    desk = Console(Browser(client))
    await desk.login("dee")
    listing = await (await desk.browser.get("/admin/limits")).text()
    assert "networks" in listing and "Lift" in listing
    trip_id = re.search(r'name="id" value="([0-9a-f]+)"', listing)
    assert trip_id
    lifted = await desk.form("/admin/limits/lift", id=trip_id[1])
    assert lifted.status == 200 and "Lifted" in await lifted.text()
    assert (await fetch(patron, "/a", **{"X-Forwarded-For": "10.1.0.5"})).status == 200


def ezpaarse_regex(log_format: str) -> re.Pattern[str]:
    """The regex ezPAARSE builds from an EZproxy LogFormat (lib/proxyformats/ezproxy.js)."""
    fields = {
        "%h": r"([a-zA-Z0-9\.\-]+(?:, ?[a-zA-Z0-9\.\-]+)*)",
        "%u": r"([a-zA-Z0-9@\.\-_%,=]+)",
        "%l": r"([a-zA-Z0-9\-]+)",
        "%b": r"([0-9]+)",
        "%r": r"[A-Z]+ ([^ ]+) [^ ]+",
        "%t": r"\[([^\]]+)\]",
        "%s": r"([0-9]+)",
    }
    pattern = re.escape(log_format)
    for field, regex in fields.items():
        pattern = pattern.replace(re.escape(field), regex)
    return re.compile(f"^{pattern}$")


async def test_access_log_parses_as_ezpaarse_reads_it_and_the_report_matches(
    aiohttp_client: Client, make_settings: Make, port: int
) -> None:
    settings = settings_with_vendor(make_settings, port)
    tokens = add_staff(settings)
    client = await start(aiohttp_client, settings)
    ana, bo = Browser(client), Browser(client)
    start_url = "http://www.demo.test/start"
    assert (await ana.login(query=f"url={start_url}")).status == 302
    await bo.login(OTHER_CARD, OTHER_PIN)
    sent = 0
    requests = 0
    for path in ("/start", "/a?q=1", "/b", "/pdf/1.pdf", "/pdf/2.pdf"):
        response = await fetch(ana, path)
        sent += len(await response.read())
        requests += 1
    head = await ana.client.head("/x", headers=ana.headers(DEMO_HOST))  # no body: size 0
    assert head.status == 200
    requests += 1
    response = await fetch(bo, "/c")
    sent += len(await response.read())
    requests += 1
    await fetch(Browser(client), "/anonymous")  # no session: sent to log in, not proxied

    await client.app[TRACKER].flush()  # what a second of waiting would do
    month = month_of(time.time())
    cli = run_gateway(
        "usage", "report", "--month", month, "--format", "json",
        env={"GATEWAY_REDIS__URL": settings.redis.url,
             "GATEWAY_SERVER__STATE_DIR": settings.server.state_dir},
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    report = json.loads(cli.stdout)
    assert report["month"] == month
    assert report["databases"] == [
        {"database": "Demo Journals", "sessions": 2, "patrons": 2, "requests": requests,
         "downloads": 2, "bytes": sent},
    ]  # fmt: skip
    csv_out = run_gateway(
        "usage", "report", "--month", month, env={"GATEWAY_REDIS__URL": settings.redis.url}
    ).stdout.decode()
    assert csv_out.splitlines() == [
        "database,sessions,patrons,requests,downloads,bytes",
        f"Demo Journals,2,2,{requests},2,{sent}",
    ]
    page = await (
        await bearer(client, tokens["dee"], "GET", f"/admin/api/usage?month={month}")
    ).json()
    assert page["databases"] == report["databases"]

    access_log = Path(settings.server.state_dir, "access.log").read_text().splitlines()
    regex = ezpaarse_regex('%h %l %u %t "%r" %s %b')
    assert len(access_log) == requests
    for entry in access_log:
        match = regex.match(entry)
        assert match, entry
        assert match[5].startswith("http://www.demo.test:80/")  # %r holds the vendor URL
    assert access_log[-1].split()[-1] != "-"
    pid = client.app[KEYRING].pseudonym(CARD)
    spu = Path(settings.server.state_dir, "spu.log").read_text().splitlines()
    assert len(spu) == 1
    assert re.fullmatch(rf'\S+Z {pid} "Demo Journals" {re.escape(start_url)}', spu[0]), spu
    assert PIN not in "".join(access_log + spu) and CARD not in "".join(access_log + spu)


async def test_a_usage_limit_in_a_rule_file_counts_its_databases_only(
    aiohttp_client: Client, make_settings: Make, port: int
) -> None:
    settings = settings_with_vendor(make_settings, port)
    Path(settings.rules.dir, "demo.txt").write_text(
        "UsageLimit -enforce -interval=5 -expires=1 -transfers=3 -per=session strict\n"
        "Title Demo Journals\nURL http://www.demo.test/\nHJ http://www.demo.test\n"
        "UsageLimit -end strict\n"
        "Title CDN\nURL http://cdn.demo.test/\nHJ http://cdn.demo.test\n"
    )
    client = await start(aiohttp_client, settings)
    patron = Browser(client)
    await patron.login()
    cdn = "cdn-demo-test---http.proxy.localhost"

    async def on_cdn(n: int) -> int:
        response = await patron.client.get(f"/c{n}", headers=patron.headers(cdn))
        return response.status

    assert [await on_cdn(n) for n in range(6)] == [200] * 6  # not counted by "strict"
    demo = [(await fetch(patron, f"/p{n}")).status for n in range(5)]
    assert demo == [200, 200, 200, 429, 429]  # the fourth transfer of its database
    assert await on_cdn(7) == 429  # as in EZproxy, the suspended session is paused everywhere


def test_csv_report_cells_never_run_as_spreadsheet_formulas() -> None:
    from gateway.usage.report import Row, as_csv

    text = as_csv([Row("=cmd|' /C calc'!A0", 1, 1, 1, 0, 10), Row("JSTOR", 2, 2, 5, 1, 99)])
    assert text.splitlines()[1:] == ["'=cmd|' /C calc'!A0,1,1,1,0,10", "JSTOR,2,2,5,1,99"]
