"""On-site addresses (EZproxy's AutoLoginIP and ExcludeIP), from bound loopback source
addresses (Linux routes all of 127.0.0.0/8 to lo) over real TCP to the gateway, directly and
behind a real front that adds X-Forwarded-For, in front of the real HTTPS vendor."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import DummyCookieJar
from aiohttp.test_utils import BaseTestServer, TestServer

from gateway import config
from gateway.app import build_app
from gateway.appkeys import SESSIONS
from gateway.auth import onsite
from gateway.netblocks import address_ranges
from gateway.rules.parser import parse
from gateway.sessions import Session, SessionStore
from tests.admin_support import Console, add_staff, bearer
from tests.front_support import front_app
from tests.patron_support import LOGIN, TOKEN, Browser, ScopedBrowser
from tests.support import ManualClock
from tests.vendor_support import OTHER, WWW, Vendor, gateway_settings, proxied

ON_SITE, IN_RANGE, OUTSIDE, PAST_RANGE = "127.0.0.5", "127.0.1.7", "127.0.0.7", "127.0.1.21"
EXCLUDED, FRONT = "127.0.0.6", "127.0.0.9"
ONSITE = {
    # 127.0.0.9 is the front's own address: listed here, it must still not count as on-site.
    "auto_login_ip": [ON_SITE, "127.0.1.1-127.0.1.20", "127.0.0.8-127.0.0.9", "::1"],
    "auto_login_groups": ["Licensed"],
    "exclude_ip": [EXCLUDED],
}
RULES = f"""Title Vendor
URL https://{WWW}/
URL plain https://{WWW}/cookie
URL -Form=post search https://{WWW}/form
FormVariable q=carrels
HJ https://{WWW}
Group Licensed
Title Licensed journals
URL https://{OTHER}/
HJ https://{OTHER}
"""


def proxied_url(host: str) -> str:
    return "http://" + proxied(host)


LICENSED = proxied_url(OTHER) + "/"
START = f"http://{LOGIN}/login?url=https://{OTHER}/"


@dataclass
class Site:
    """The gateway on real TCP, and patrons at chosen source addresses."""

    aiohttp_client: Callable[..., Any]
    server: BaseTestServer
    settings: config.Settings

    @property
    def store(self) -> SessionStore:
        return self.server.app[SESSIONS]  # type: ignore[union-attr]

    async def patron(self, address: str, via: BaseTestServer | None = None) -> ScopedBrowser:
        """A browser whose connections come from ``address`` (to the gateway, or ``via``)."""
        connector = aiohttp.TCPConnector(local_addr=(address, 0))
        client = await self.aiohttp_client(
            via or self.server, cookie_jar=DummyCookieJar(), connector=connector
        )
        return ScopedBrowser(client)

    async def sessions(self) -> list[Session]:
        return await self.store.live()


async def served(
    aiohttp_client: Callable[..., Any], settings: config.Settings, host: str = "127.0.0.1",
    clock: ManualClock | None = None,
) -> AsyncIterator[Site]:  # fmt: skip
    server = TestServer(build_app(settings, clock or ManualClock()), host=host)
    await server.start_server()
    try:
        yield Site(aiohttp_client, server, settings)
    finally:
        await server.close()


@pytest.fixture
def make(make_settings: Callable[..., config.Settings], vendor: Vendor) -> Callable[..., Any]:
    def settings(**sections: Any) -> config.Settings:
        sections.setdefault("onsite", ONSITE)
        sections.setdefault("server", {"trusted_proxies": [FRONT]})
        return gateway_settings(make_settings, vendor, RULES, **sections)

    return settings


@pytest.fixture
async def site(
    aiohttp_client: Callable[..., Any], make: Callable[..., config.Settings], clock: ManualClock
) -> AsyncIterator[Site]:
    async for running in served(aiohttp_client, make(), clock=clock):
        yield running


@pytest.fixture
async def front(site: Site) -> AsyncIterator[TestServer]:
    """A real reverse proxy listening on 127.0.0.9 and connecting from it: the trusted front."""
    server = TestServer(front_app(FRONT, site.server.port or 0), host=FRONT)
    await server.start_server()
    yield server
    await server.close()


async def is_login_form(response: aiohttp.ClientResponse) -> bool:
    return response.status == 200 and 'name="card"' in await response.text()


async def reaches_vendor(response: aiohttp.ClientResponse) -> bool:
    return response.status == 200 and ">next</a>" in await response.text()  # the vendor's page


# -- AutoLoginIP --------------------------------------------------------------------------------
@pytest.mark.parametrize("address", [ON_SITE, IN_RANGE], ids=["address", "first-last range"])
async def test_an_on_site_address_gets_a_session_and_the_database_with_no_form(
    site: Site, address: str
) -> None:
    patron = await site.patron(address)
    start = await patron.get(START)
    assert start.status == 302 and start.headers["Location"] == LICENSED
    assert await reaches_vendor(await patron.follow(LICENSED))
    (session,) = await site.sessions()
    assert (session.method, session.groups, session.address) == ("onsite", {"Licensed"}, address)
    assert session.card == ""  # no card: nothing to type into the console's card actions


async def test_a_proxied_page_opened_directly_on_site_gets_a_session_too(site: Site) -> None:
    patron = await site.patron(ON_SITE)
    assert await reaches_vendor(await patron.follow(LICENSED + "?from=bookmark"))
    assert len(await site.sessions()) == 1


async def test_over_tls_the_hand_over_brings_the_on_site_session_to_the_vendors_host(
    aiohttp_client: Callable[..., Any], make: Callable[..., config.Settings]
) -> None:
    settings = make(server={"trusted_proxies": [FRONT], "public_scheme": "https"})
    async for site in served(aiohttp_client, settings):
        patron = await site.patron(ON_SITE)
        licensed = LICENSED.replace("http://", "https://")
        assert await reaches_vendor(await patron.follow(licensed))
        assert [s.method for s in await site.sessions()] == ["onsite"]
        home = await site.patron(OUTSIDE)
        home.jar = dict(patron.jar)  # the vendor host's own __Host- cookie, carried home
        assert (await home.get(licensed)).status == 302 and await site.sessions() == []


@pytest.mark.parametrize("address", [OUTSIDE, PAST_RANGE], ids=["elsewhere", "past the range"])
async def test_an_address_outside_the_ranges_gets_the_login_page(site: Site, address: str) -> None:
    patron = await site.patron(address)
    assert await is_login_form(await patron.follow(START))
    assert await is_login_form(await patron.follow(LICENSED))
    assert await site.sessions() == []


async def test_the_configured_groups_open_their_database_and_not_the_others(site: Site) -> None:
    patron = await site.patron(ON_SITE)
    assert await reaches_vendor(await patron.follow(START))
    default_only = await patron.follow(f"http://{LOGIN}/login?url=https://{WWW}/")
    assert default_only.status == 403  # Vendor is for Default; on-site sessions are Licensed
    menu = await (await patron.get(f"http://{LOGIN}/menu")).text()
    assert "Licensed journals" in menu and ">Vendor<" not in menu


async def test_each_on_site_browser_is_a_patron_of_its_own_and_the_console_says_onsite(
    site: Site,
) -> None:
    first, second = await site.patron(ON_SITE), await site.patron(ON_SITE)
    for patron in (first, second, await site.patron(IN_RANGE), await site.patron(ON_SITE)):
        assert await reaches_vendor(await patron.follow(START))
    sessions = await site.sessions()
    # Four sessions, four pseudonyms: the per-card cap (3) does not end the building's sessions.
    assert len(sessions) == 4 and len({s.pid for s in sessions}) == 4
    tokens = add_staff(site.settings)
    staff = (await site.patron("127.0.0.1")).client
    listed = await (await bearer(staff, tokens["dee"], "GET", "/admin/api/sessions")).json()
    assert {s["method"] for s in listed["sessions"]} == {"onsite"}
    console = Console(Browser(staff))
    assert (await console.login("dee")).status == 302
    page = await (await console.browser.get("/admin/sessions")).text()
    assert page.count("On-site address") == 4


async def test_a_session_carried_off_site_ends_there(site: Site) -> None:
    patron = await site.patron(ON_SITE)
    assert await reaches_vendor(await patron.follow(START))
    home = await site.patron(OUTSIDE)
    home.jar = dict(patron.jar)  # the laptop, with its cookies, at home
    away = await home.get(LICENSED)
    assert away.status == 302 and away.headers["Location"].startswith(f"http://{LOGIN}:8080/login")
    assert away.headers["Clear-Site-Data"] == '"storage"'  # what the vendor's pages kept goes
    assert await site.sessions() == []
    assert await is_login_form(await home.follow(START))


async def test_logout_ends_the_session_and_the_next_link_starts_a_fresh_one(site: Site) -> None:
    patron = await site.patron(ON_SITE)
    assert await reaches_vendor(await patron.follow(START))
    (before,) = await site.sessions()
    form = await patron.get(f"http://{LOGIN}/logout")
    token = TOKEN.search(await form.text())
    assert token
    cookie = "; ".join(f"{n}={v}" for n, v in patron.cookies(LOGIN))
    done = await patron.client.post("/logout", data={"csrf_token": token[1]},
                                    headers={"Host": LOGIN, "Cookie": cookie})  # fmt: skip
    patron._remember(LOGIN, done)
    assert done.status == 200 and await site.sessions() == []
    assert await reaches_vendor(await patron.follow(START))
    (after,) = await site.sessions()
    assert after.pid != before.pid  # the next patron at this desk inherits nothing


async def test_idle_and_absolute_timeouts_end_on_site_sessions(
    site: Site, clock: ManualClock
) -> None:
    patron = await site.patron(ON_SITE)
    assert await reaches_vendor(await patron.follow(START))
    (first,) = await site.sessions()
    clock.advance(site.settings.sessions.idle_timeout + 1)
    again = await patron.get(LICENSED)
    assert again.status == 302 and "/login" in again.headers["Location"]  # it ended
    assert await reaches_vendor(await patron.follow(LICENSED))  # and a new one starts
    (second,) = await site.sessions()
    assert second.hash != first.hash
    step = site.settings.sessions.idle_timeout - 100
    for _ in range(site.settings.sessions.absolute_timeout // step + 1):
        clock.advance(step)  # busy all along: the idle clock never runs out, the absolute one does
        await patron.get(LICENSED)
    assert second.hash not in {s.hash for s in await site.sessions()}


@pytest.mark.parametrize(
    "limit",
    [
        "-enforce -interval=60 -expires=60 -transfers=3 -per=session burst",
        "-enforce -interval=60 -expires=60 -transfers=3 burst",  # per card: the session's own
        "-block -interval=60 -transfers=3 burst",
    ],
    ids=["suspend session", "suspend card", "block"],
)
async def test_a_usage_limit_stops_one_on_site_browser_and_not_the_building(
    aiohttp_client: Callable[..., Any], make: Callable[..., config.Settings], limit: str
) -> None:
    settings = make(usage={"limits": [limit]})
    async for site in served(aiohttp_client, settings):
        harvester, neighbour = await site.patron(ON_SITE), await site.patron(ON_SITE)
        assert await reaches_vendor(await harvester.follow(START))
        statuses = [(await harvester.get(LICENSED)).status for _ in range(4)]
        assert statuses[-1] == 429, statuses  # the suspension (or block) page
        assert await reaches_vendor(await neighbour.follow(START))
        assert await reaches_vendor(await neighbour.follow(LICENSED))
        assert (await harvester.get(LICENSED)).status == 429


# -- ExcludeIP ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "link",
    [
        f"/login?url=https://{WWW}/cookie?a=1&b=2",
        f"/login?qurl={quote(f'https://{WWW}/cookie?a=1&b=2', safe='')}",
    ],
    ids=["url", "qurl"],
)
async def test_an_excluded_address_goes_straight_to_the_vendor(site: Site, link: str) -> None:
    patron = await site.patron(EXCLUDED)
    start = await patron.get(f"http://{LOGIN}{link}")
    assert start.status == 302 and start.headers["Location"] == f"https://{WWW}/cookie?a=1&b=2"
    assert "Set-Cookie" not in start.headers and await site.sessions() == []


async def test_an_excluded_named_start_goes_to_its_url_unproxied(site: Site) -> None:
    patron = await site.patron(EXCLUDED)
    start = await patron.get(f"http://{LOGIN}/login/plain")
    assert start.status == 302 and start.headers["Location"] == f"https://{WWW}/cookie"


async def test_a_form_start_stays_proxied_from_an_excluded_address(site: Site) -> None:
    patron = await site.patron(EXCLUDED)  # its variables are the library's, posted by the proxy
    assert await is_login_form(await patron.follow(f"http://{LOGIN}/login/search"))


async def test_an_excluded_address_is_never_sent_where_no_rule_covers(site: Site) -> None:
    patron = await site.patron(EXCLUDED)
    refused = await patron.get(f"http://{LOGIN}/login?url=https://evil.example/")
    assert refused.status == 404 and "Location" not in refused.headers
    # Python reads the host as the vendor's, a browser as evil.example: the URL is rebuilt.
    for trick in (f"https://evil.example\\@{WWW}/x", f"https://user:pass@{WWW}/x"):
        tricked = await patron.get(f"http://{LOGIN}/login?qurl={quote(trick, safe='')}")
        assert tricked.status == 302 and tricked.headers["Location"] == f"https://{WWW}/x"


async def test_proxied_pages_from_an_excluded_address_work_as_before(site: Site) -> None:
    patron = await site.patron(EXCLUDED)
    # No session: the proxy sends the browser to the login host as ever, and that starting
    # point, from here, goes to the vendor itself.
    bookmark = await patron.get(LICENSED + "issue/7")
    assert bookmark.status == 302
    assert bookmark.headers["Location"] == f"http://{LOGIN}:8080/login?qurl=" + quote(
        f"https://{OTHER}/issue/7", safe=""
    )
    straight = await patron.get(bookmark.headers["Location"])
    assert straight.status == 302 and straight.headers["Location"] == f"https://{OTHER}/issue/7"
    # With a session (the card form is still there), proxied pages are proxied.
    assert await is_login_form(await patron.get(f"http://{LOGIN}/login"))
    assert (await patron.login()).status == 302
    assert await reaches_vendor(await patron.get(proxied_url(WWW) + "/"))


# -- the address behind a front -----------------------------------------------------------------
async def test_behind_the_trusted_front_the_forwarded_address_counts(
    site: Site, front: TestServer
) -> None:
    on_site = await site.patron(ON_SITE, via=front)
    assert await reaches_vendor(await on_site.follow(START))
    (session,) = await site.sessions()
    assert session.address == ON_SITE  # what the front said, not the front's own address
    assert await reaches_vendor(await on_site.follow(LICENSED))  # the session stays on site
    elsewhere = await site.patron(OUTSIDE, via=front)
    assert await is_login_form(await elsewhere.follow(START))
    excluded = await site.patron(EXCLUDED, via=front)
    straight = await excluded.get(START)
    assert straight.status == 302 and straight.headers["Location"] == f"https://{OTHER}/"


async def test_the_same_header_from_an_untrusted_peer_is_ignored(site: Site) -> None:
    patron = await site.patron(OUTSIDE)
    claimed = await patron.get(START, **{"X-Forwarded-For": ON_SITE})
    assert await is_login_form(claimed)
    excluded = await patron.get(START, **{"X-Forwarded-For": EXCLUDED})
    assert await is_login_form(excluded)


async def test_a_fronts_own_address_is_never_on_site(site: Site) -> None:
    patron = await site.patron(FRONT)  # in auto_login_ip, but a front speaks for nobody
    assert await is_login_form(await patron.follow(START))


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no IPv6 loopback (::1)")
async def test_ipv6_loopback_is_on_site(
    aiohttp_client: Callable[..., Any], make: Callable[..., config.Settings]
) -> None:
    async for site in served(aiohttp_client, make(), host="::1"):
        patron = await site.patron("::1")
        assert await reaches_vendor(await patron.follow(START))
        (session,) = await site.sessions()
        assert (session.method, session.address) == ("onsite", "::1")


# -- configuration and the pure parts -----------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("auto_login_ip", ["10.0.0.300"]),
        ("auto_login_ip", ["10.0.0.9-10.0.0.1"]),
        ("exclude_ip", ["10.0.0.1-2001:db8::1"]),
        ("auto_login_groups", ["Law+Default"]),
        ("auto_login_groups", []),
    ],
)
def test_a_bad_entry_names_its_key(key: str, value: list[str]) -> None:
    with pytest.raises(config.ConfigError, match=rf"onsite\.{key}"):
        config.build({"onsite": {key: value}}, env={})


def test_address_lists_take_cidrs_and_ezproxys_first_last_ranges() -> None:
    ranges = address_ranges(("10.0.0.1-10.0.0.255", "2001:db8::/48", "192.0.2.7"))
    assert [str(n) for n in ranges[:2]] == ["10.0.0.1/32", "10.0.0.2/31"]
    assert str(ranges[-1]) == "192.0.2.7/32"
    settings = config.build({"onsite": {"auto_login_ip": ["10.0.0.1-10.0.0.255", "2001:db8::/48"]}},
                            env={})  # fmt: skip
    assert onsite.auto_login("10.0.0.255", settings) and not onsite.auto_login("10.0.0.0", settings)
    assert onsite.auto_login("2001:db8::77", settings)
    assert onsite.auto_login("::ffff:10.0.0.9", settings)  # a dual-stack socket's IPv4 patron
    assert onsite.left_site("onsite", "192.0.2.1", settings)
    assert not onsite.left_site("card", "192.0.2.1", settings)


def test_without_on_site_addresses_nobody_is_on_site() -> None:
    settings = config.build({}, env={})
    assert not onsite.auto_login("127.0.0.1", settings) and not onsite.excluded("::1", settings)


def test_ezproxys_lines_in_a_rule_file_name_the_key_that_does_their_job() -> None:
    text = "AutoLoginIP 10.0.0.1-10.0.0.9\nExcludeIP 10.1.0.0/16\nTitle X\nURL https://x.example.org/\n"
    messages = [finding.message for finding in parse(text, "config.txt").findings]
    assert "onsite.auto_login_ip in the gateway's configuration" in messages[0]
    assert "onsite.exclude_ip in the gateway's configuration" in messages[1]
