"""The console's API and pages against real Redis, the real directory and a loopback vendor:
every route needs staff auth, roles are enforced, CSRF and cross-site changes are refused,
blocks end sessions at once, rule edits are checked, saved, audited and restorable."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from gateway import config
from gateway.admin import api, pages
from gateway.admin.staff import PERMISSIONS, Role
from gateway.appkeys import KEYRING, RULES, TRACKER
from gateway.hostmap import Origin
from tests.admin_support import (
    DEMO_HOST,
    PASSWORDS,
    Console,
    add_staff,
    bearer,
    finding_lines,
    settings_with_vendor,
    start,
    vendor_port,
)
from tests.patron_support import CARD, OTHER_CARD, PIN, Browser
from tests.support import ManualClock

Client = Callable[..., Any]
Make = Callable[..., config.Settings]


@pytest.fixture
async def port() -> Any:
    async for found in vendor_port():
        yield found


@pytest.fixture
async def setup(aiohttp_client: Client, make_settings: Make, port: int) -> Any:
    settings = settings_with_vendor(make_settings, port)
    tokens = add_staff(settings)
    client = await start(aiohttp_client, settings)
    return client, tokens, settings


def concrete(path: str) -> str:
    """A route path with its placeholders filled in."""
    filled = {"{id}": "0" * 64, "{card}": CARD, "{name}": "demo.txt", "{user}": "nobody"}
    for placeholder, value in filled.items():
        path = path.replace(placeholder, value)
    return path


async def test_no_route_answers_without_staff_auth(setup: Any) -> None:
    client, _, _ = setup
    anonymous = Browser(client)
    for method, path, _, _ in api.ROUTES:
        response = await anonymous.client.request(
            method, "/admin" + concrete(path), headers=anonymous.headers(), allow_redirects=False
        )
        assert response.status == 401, (method, path)
        assert (await response.json())["error"]
    for method, path, _, _ in pages.ROUTES:
        if path == "/login":
            continue
        response = await anonymous.client.request(
            method, "/admin" + concrete(path), headers=anonymous.headers(), allow_redirects=False
        )
        # a change from a page without a session never gets past the guard either
        assert response.status == 302, (method, path)
        assert response.headers["Location"].startswith("/admin/login?next=")
    wrong = await bearer(client, "carrel_not-a-real-token", "GET", "/admin/api/sessions")
    assert wrong.status == 401
    bare = await anonymous.get("/admin")
    assert bare.status == 302 and bare.headers["Location"] == "/admin/"


async def test_every_api_route_follows_the_role_table(setup: Any) -> None:
    client, tokens, _ = setup
    for user, token in tokens.items():
        role = Role({"ada": "admin", "eli": "editor", "dee": "desk"}[user])
        for method, path, _, needs in api.ROUTES:
            body = {"version": 0} if path.endswith("restore") else None
            if path.endswith("check") or path.endswith("explain") or method == "PUT":
                body = "Title X\nURL http://www.demo.test/\nHJ http://www.demo.test\n"
                if path.endswith("explain"):
                    body = "http://www.demo.test/x"
            response = await bearer(client, token, method, "/admin" + concrete(path), body)
            allowed = needs is None or needs in PERMISSIONS[role]
            if allowed:
                assert response.status not in (401, 403), (user, method, path, response.status)
            else:
                assert response.status == 403, (user, method, path, response.status)
                assert "may not" in (await response.json())["error"]


async def test_a_desk_account_cannot_edit_rules_in_the_pages_either(setup: Any) -> None:
    client, _, settings = setup
    desk = Console(Browser(client))
    assert (await desk.login("dee")).status == 302
    assert (await desk.browser.get("/admin/rules")).status == 403
    before = Path(settings.rules.dir, "demo.txt").read_text()
    saved = await desk.form("/admin/rules/demo.txt", text="Title X\n", action="save")
    assert saved.status == 403
    assert Path(settings.rules.dir, "demo.txt").read_text() == before
    assert (await desk.browser.get("/admin/sessions")).status == 200


async def test_csrf_and_cross_site_changes_are_refused(setup: Any) -> None:
    client, _, _ = setup
    await Browser(client).login()
    editor = Console(Browser(client))
    await editor.login("eli")
    no_token = await editor.call("POST", f"/admin/api/cards/{CARD}/block", **{"X-CSRF-Token": ""})
    assert no_token.status == 403
    wrong = await editor.call("POST", f"/admin/api/cards/{CARD}/block", **{"X-CSRF-Token": "x"})
    assert wrong.status == 403
    cross = await editor.call(
        "POST", f"/admin/api/cards/{CARD}/block", **{"Sec-Fetch-Site": "cross-site"}
    )
    assert cross.status == 403
    other_origin = await editor.call(
        "POST", f"/admin/api/cards/{CARD}/block", Origin="https://evil.example"
    )
    assert other_origin.status == 403
    page_form = await editor.browser.post(
        "/admin/cards", {"csrf_token": "forged", "card": CARD, "action": "block"}
    )
    assert page_form.status == 403
    state = await (await editor.call("GET", f"/admin/api/cards/{CARD}")).json()
    assert state["blocked"] is False and len(state["sessions"]) == 1  # nothing happened
    same_origin = await editor.call(
        "POST", f"/admin/api/cards/{CARD}/block", Origin="http://login.proxy.localhost:8080",
        **{"Sec-Fetch-Site": "same-origin"},
    )  # fmt: skip
    assert same_origin.status == 200


async def test_blocking_a_card_in_the_console_ends_its_live_session(setup: Any) -> None:
    client, _, _ = setup
    patron = Browser(client)
    login = await patron.login(query="url=http://www.demo.test/article")
    assert login.status == 302
    page = await patron.get("/article", host=DEMO_HOST)
    assert page.status == 200 and "vendor page" in await page.text()
    desk = Console(Browser(client))
    await desk.login("dee")
    await client.app[TRACKER].flush()  # what a second of waiting would do
    listed = await (await desk.call("GET", "/admin/api/sessions")).json()
    (row,) = listed["sessions"]
    assert row["card"] == CARD and "Demo Journals" in row["databases"] and row["bytes"] > 0
    blocked = await desk.form("/admin/cards", card=CARD, action="block")
    assert blocked.status == 200 and "blocked" in await blocked.text()
    after = await patron.get("/article", host=DEMO_HOST)
    assert after.status == 302
    assert after.headers["Location"].startswith("http://login.proxy.localhost:8080/login?qurl=")
    again = await Browser(client).login()
    assert again.status == 403  # blocked: no new session either
    await desk.call("POST", f"/admin/api/cards/{CARD}/unblock")
    assert (await Browser(client).login()).status == 302
    admin = Console(Browser(client))
    await admin.login("ada")
    audit = await (await admin.call("GET", "/admin/api/audit?kind=card_blocked")).json()
    pid = client.app[KEYRING].pseudonym(CARD)
    assert [(e["staff"], e["patron"]) for e in audit["entries"]] == [("dee", pid)]
    assert audit["entries"][0]["detail"]["sessions_ended"] == 1


async def test_sessions_can_be_ended_one_or_all_and_cards_hidden_by_role(
    aiohttp_client: Client, make_settings: Make, port: int
) -> None:
    settings = settings_with_vendor(make_settings, port, admin={"see_cards": ["admin"]})
    tokens = add_staff(settings)
    client = await start(aiohttp_client, settings)
    first, second, other = Browser(client), Browser(client), Browser(client)
    await first.login()
    await second.login()
    await other.login(OTHER_CARD, "5830")
    desk_view = await (await bearer(client, tokens["dee"], "GET", "/admin/api/sessions")).json()
    assert len(desk_view["sessions"]) == 3
    assert all(s["card"] is None and len(s["patron"]) == 20 for s in desk_view["sessions"])
    admin_view = await (await bearer(client, tokens["ada"], "GET", "/admin/api/sessions")).json()
    assert sorted(s["card"] for s in admin_view["sessions"]) == sorted([CARD, CARD, OTHER_CARD])
    target = next(s["id"] for s in admin_view["sessions"] if s["card"] == OTHER_CARD)
    ended = await bearer(client, tokens["dee"], "DELETE", f"/admin/api/sessions/{target}")
    assert ended.status == 200
    gone = await bearer(client, tokens["dee"], "DELETE", f"/admin/api/sessions/{target}")
    assert gone.status == 404
    assert (await other.get("/menu")).status == 302
    all_of_card = await bearer(client, tokens["dee"], "DELETE", f"/admin/api/cards/{CARD}/sessions")
    assert (await all_of_card.json())["ended"] == 2
    assert (await first.get("/menu")).status == 302 and (await second.get("/menu")).status == 302
    left = await (await bearer(client, tokens["dee"], "GET", "/admin/api/sessions")).json()
    assert left["sessions"] == []
    bad = await bearer(client, tokens["dee"], "POST", "/admin/api/cards/12ab/block")
    assert bad.status == 400


async def test_desk_pin_reset_and_unlock(setup: Any) -> None:
    client, tokens, _ = setup
    for _ in range(5):
        await Browser(client).login(pin="1111")
    state = await (await bearer(client, tokens["dee"], "GET", f"/admin/api/cards/{CARD}")).json()
    assert state["locked"] is True and state["known"] is True
    await bearer(client, tokens["dee"], "POST", f"/admin/api/cards/{CARD}/unlock")
    reset = await bearer(client, tokens["dee"], "POST", f"/admin/api/cards/{CARD}/reset-pin")
    new_pin = (await reset.json())["pin"]
    assert len(new_pin) == 4 and new_pin != PIN
    assert (await Browser(client).login(pin=PIN)).status == 401
    patron = Browser(client)
    login = await patron.login(pin=new_pin)
    assert login.status == 302 and login.headers["Location"].startswith("/pin/change")
    assert (await patron.get("/menu")).headers["Location"] == "/pin/change"  # not before it
    audit = await (await bearer(client, tokens["ada"], "GET", "/admin/api/audit")).json()
    kinds = [e["kind"] for e in audit["entries"]]
    assert {"patron_locked", "card_unlocked", "pin_reset"} <= set(kinds)
    assert new_pin not in str(audit)  # the audit never holds a PIN


async def test_rules_api_checks_saves_explains_and_restores(setup: Any) -> None:
    client, tokens, settings = setup
    token = tokens["eli"]
    listed = await (await bearer(client, token, "GET", "/admin/api/rules")).json()
    demo = next(f for f in listed["files"] if f["name"] == "demo.txt")
    assert demo["titles"] == ["Demo Journals"] and demo["hosts"] == ["www.demo.test"]
    original = (await (await bearer(client, token, "GET", "/admin/api/rules/demo.txt")).json())[
        "text"
    ]
    broken = original + "Replace nothing\n"
    refused = await bearer(client, token, "PUT", "/admin/api/rules/demo.txt", broken)
    assert refused.status == 422
    assert (4, "error") in finding_lines(await refused.json())
    assert Path(settings.rules.dir, "demo.txt").read_text() == original
    checked = await bearer(client, token, "POST", "/admin/api/rules/check", {"text": broken})
    assert (4, "error") in finding_lines(await checked.json())
    before = await bearer(client, token, "POST", "/admin/api/explain", "http://cdn.demo.test/a")
    assert (await before.json())["allowed"] is False
    fixed = original + "HJ http://cdn.demo.test\n"
    saved = await bearer(client, token, "PUT", "/admin/api/rules/demo.txt", {"text": fixed})
    assert saved.status == 200 and (await saved.json())["version"] == 1
    assert Path(settings.rules.dir, "demo.txt").read_text() == fixed
    after = await bearer(
        client, token, "POST", "/admin/api/explain", {"url": "http://cdn.demo.test/a"}
    )
    answer = await after.json()
    assert answer["allowed"] is True and answer["database"] == "Demo Journals"
    assert answer["proxied_url"] == "http://cdn-demo-test---http.proxy.localhost:8080/a"
    history = await (await bearer(client, token, "GET", "/admin/api/rules/demo.txt/history")).json()
    assert [(v["version"], v["staff"]) for v in history["versions"]] == [(1, "eli"), (0, "")]
    assert "+HJ http://cdn.demo.test" in history["versions"][0]["diff"]
    restored = await bearer(
        client, token, "POST", "/admin/api/rules/demo.txt/restore", {"version": 0}
    )
    assert restored.status == 200
    assert Path(settings.rules.dir, "demo.txt").read_text() == original
    audit = await (await bearer(client, tokens["ada"], "GET", "/admin/api/audit?staff=eli")).json()
    assert [e["kind"] for e in audit["entries"]] == ["rules_restored", "rules_saved"]
    assert "+HJ http://cdn.demo.test" in audit["entries"][1]["detail"]["diff"]
    for name in ("../etc/passwd", "nope.txt"):
        missing = await bearer(client, token, "GET", f"/admin/api/rules/{name}")
        assert missing.status == 404
    log_file = Path(settings.server.state_dir, "audit.log").read_text()
    assert '"kind": "rules_restored"' in log_file


@pytest.mark.parametrize(
    "line",
    [
        "HJ http://127.0.0.1:{port}",
        "URL http://169.254.169.254/latest/meta-data/",
        "D 10.0.0.1",
        "AnonymousURL +http://127.0.0.1/*",
        "HJ https://[::ffff:127.0.0.1]/",
        "HJ http://0x7f.1:{port}/",
    ],
)
async def test_a_rule_naming_a_private_address_is_never_saved_nor_live(
    setup: Any, port: int, line: str
) -> None:
    client, tokens, settings = setup
    token = tokens["eli"]
    path = Path(settings.rules.dir, "demo.txt")
    original = path.read_text()
    text = original + line.format(port=port) + "\n"
    checked = await (await bearer(client, token, "POST", "/admin/api/rules/check", text)).json()
    assert finding_lines(checked) == [(4, "error")]
    assert "the gateway never connects to non-public addresses" in checked["findings"][0]["message"]
    refused = await bearer(client, token, "PUT", "/admin/api/rules/demo.txt", {"text": text})
    assert refused.status == 422
    assert path.read_text() == original
    path.write_text(text)  # written behind the console's back: the last good version stays
    store = client.app[RULES]
    store.reload()
    assert store.current.errors == 1
    assert store.ruleset.allows(Origin.of("http", "www.demo.test")) is not None
    assert store.ruleset.allows(Origin.of("http", "127.0.0.1", port)) is None


async def test_a_new_database_from_a_pasted_stanza(setup: Any) -> None:
    client, _, settings = setup
    editor = Console(Browser(client))
    await editor.login("eli")
    stanza = "Title Example Press\nURL https://www.example-press.test/\nDJ example-press.test\n"
    created = await editor.form("/admin/rules/new", text=stanza, action="save")
    assert created.status == 302
    assert created.headers["Location"] == "/admin/rules/example_press.txt/history"
    assert Path(settings.rules.dir, "example_press.txt").read_text() == stanza
    listing = await (await editor.browser.get("/admin/rules")).text()
    assert "Example Press" in listing


async def test_staff_login_locks_after_five_wrong_passwords(setup: Any) -> None:
    client, tokens, _ = setup
    console = Console(Browser(client))
    for _ in range(5):
        assert (await console.login("eli", "a wrong password!")).status == 401
    locked = await console.login("eli", PASSWORDS["eli"])
    assert locked.status == 429
    audit = await (await bearer(client, tokens["ada"], "GET", "/admin/api/audit")).json()
    kinds = [e["kind"] for e in audit["entries"]]
    assert kinds.count("staff_login_failed") == 5 and "staff_locked" in kinds


async def test_disabled_accounts_stop_at_once(setup: Any) -> None:
    client, tokens, settings = setup
    from gateway.admin.staff import StaffStore

    console = Console(Browser(client))
    await console.login("dee")
    assert (await console.call("GET", "/admin/api/me")).status == 200
    StaffStore(settings.staff_path).set_disabled("dee", True)
    assert (await console.call("GET", "/admin/api/me")).status == 401
    assert (await bearer(client, tokens["dee"], "GET", "/admin/api/me")).status == 401


async def test_staff_cookie_is_host_only_with_the_host_prefix_over_https(
    aiohttp_client: Client, make_settings: Make, port: int
) -> None:
    settings = settings_with_vendor(make_settings, port, server={"public_scheme": "https"})
    add_staff(settings)
    client: TestClient = await start(aiohttp_client, settings)
    console = Console(Browser(client))
    response = await console.login("eli")
    cookie = next(
        c for c in response.headers.getall("Set-Cookie") if c.startswith("__Host-carrel_staff=")
    )
    attributes = cookie.lower()
    assert "secure" in attributes and "path=/" in attributes and "samesite=strict" in attributes
    assert "domain=" not in attributes


async def test_the_console_can_live_on_its_own_origin(
    aiohttp_client: Client, make_settings: Make, port: int
) -> None:
    settings = settings_with_vendor(
        make_settings, port, admin={"origin": "http://admin.library.test:8080"}
    )
    add_staff(settings)
    client: TestClient = await start(aiohttp_client, settings)
    on_login_host = await Browser(client).get("/admin/login")
    assert on_login_host.status == 404
    browser = Browser(client)
    own = await browser.get("/admin/login", host="admin.library.test")
    assert own.status == 200 and "Staff login" in await own.text()


async def test_console_pages_speak_spanish(setup: Any) -> None:
    client, _, _ = setup
    login = await Browser(client, lang="es").get("/admin/login")
    assert "Acceso del personal" in await login.text()
    console = Console(Browser(client, lang="es"))
    await console.login("eli")
    rules = await (await console.browser.get("/admin/rules")).text()
    assert "Nueva base de datos" in rules and 'lang="es"' in rules


async def test_staff_sessions_end_when_idle(
    aiohttp_client: Client, make_settings: Make, port: int
) -> None:
    clock = ManualClock()
    settings = settings_with_vendor(make_settings, port, admin={"idle_timeout": 60})
    add_staff(settings)
    client: TestClient = await start(aiohttp_client, settings, clock)
    console = Console(Browser(client))
    await console.login("dee")
    assert (await console.call("GET", "/admin/api/me")).status == 200
    clock.advance(61)
    assert (await console.call("GET", "/admin/api/me")).status == 401


async def test_admins_manage_staff_accounts_in_the_console(setup: Any) -> None:
    client, tokens, _ = setup
    added = await bearer(client, tokens["ada"], "POST", "/admin/api/staff",
                         {"user": "newdesk", "role": "desk"})  # fmt: skip
    password = (await added.json())["password"]
    assert added.status == 200 and len(password) >= 16
    newcomer = Console(Browser(client))
    assert (await newcomer.login("newdesk", password)).status == 302
    assert (await newcomer.browser.get("/admin/staff")).status == 403
    admin = Console(Browser(client))
    await admin.login("ada")
    page = await (await admin.browser.get("/admin/staff")).text()
    assert "newdesk" in page and "Add an account" in page
    disabled = await admin.form("/admin/staff", user="newdesk", action="disable")
    assert disabled.status == 200
    assert (await newcomer.call("GET", "/admin/api/me")).status == 401
    own = await bearer(client, tokens["ada"], "POST", "/admin/api/staff/ada/disable")
    assert own.status == 422
    renewed = await admin.form("/admin/staff", user="newdesk", action="password")
    new_password = re.search(r"shown once: (\S+)</p>", await renewed.text())
    assert new_password
    await bearer(client, tokens["ada"], "POST", "/admin/api/staff/newdesk/enable")
    assert (await Console(Browser(client)).login("newdesk", new_password[1])).status == 302
    audit = await (await bearer(client, tokens["ada"], "GET", "/admin/api/audit")).json()
    kinds = [e["kind"] for e in audit["entries"] if e["staff"] == "ada"]
    assert {"staff_added", "staff_disabled", "staff_password_set", "staff_enabled"} <= set(kinds)
    assert password not in str(audit) and new_password[1] not in str(audit)


async def test_redis_down_is_a_clear_503_in_the_console_and_its_api(
    aiohttp_client: Client, make_settings: Make, port: int, tmp_path: Path
) -> None:
    from tests.support import RedisProcess

    own = RedisProcess(tmp_path / "own-redis").start()
    try:
        settings = settings_with_vendor(make_settings, port, redis={"url": own.url})
        tokens = add_staff(settings)
        client = await start(aiohttp_client, settings)
        console = Console(Browser(client))
        await console.login("dee")
        own.kill()
        api = await bearer(client, tokens["dee"], "POST", f"/admin/api/cards/{CARD}/block")
        assert api.status == 503 and "Redis" in (await api.json())["error"]
        page = await console.browser.get("/admin/sessions")
        assert page.status == 503 and "temporarily unavailable" in await page.text()
    finally:
        own.kill()


@pytest.mark.parametrize(
    ("wanted", "lands"),
    [
        ("/admin/rules/demo.txt", "/admin/rules/demo.txt"),
        ("https://evil.example/admin/", "/admin/"),
        ("//evil.example/admin/", "/admin/"),
        ("/admin/\r\nSet-Cookie: x=1", "/admin/"),
        ("/admin\\..\\evil", "/admin/"),
    ],
)
async def test_staff_login_only_sends_people_on_to_console_paths(
    setup: Any, wanted: str, lands: str
) -> None:
    from urllib.parse import quote

    client, _, _ = setup
    console = Console(Browser(client))
    form = await console.browser.get(f"/admin/login?next={quote(wanted, safe='')}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', await form.text())
    assert token
    response = await console.browser.client.post(
        f"/admin/login?next={quote(wanted, safe='')}",
        data={"csrf_token": token[1], "user": "eli", "password": PASSWORDS["eli"]},
        headers=console.browser.headers(), allow_redirects=False,
    )  # fmt: skip
    assert response.status == 302 and response.headers["Location"] == lands
