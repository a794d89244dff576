"""The proxy's decisions as a table, without sockets: what arrives, and what the proxy does."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest

from gateway.hostmap import Origin
from gateway.proxy.exchange import (
    Arrival,
    ChangePin,
    Decision,
    ErrorPage,
    Exchange,
    ForgetAndReload,
    Forward,
    Handover,
    Located,
    Location,
    SubmitForm,
    Suspended,
    ToLogin,
    UnknownHost,
    WorkerRefused,
    decide,
    locate,
)
from gateway.rewrite.cors import SAME_ORIGIN, CorsRequest, Requester
from gateway.rewrite.target import HostIndex, ProxyTarget
from gateway.rules.parser import parse
from gateway.rules.ruleset import RuleSet, Why
from gateway.sessions import Session

RULES = RuleSet.from_results(
    [
        parse(
            "Title Vendor\nHTTPMethod PUT\nAnonymousURL https://www.vendor.test/open/*\n"
            "URL https://www.vendor.test/\nDJ vendor.test\nNeverProxy cdn.vendor.test\n",
            "vendor.txt",
        ),
        parse("Title Staff only\nGroup Staff\nURL https://staff.example.org/\n", "staff.txt"),
        parse(
            "Title Workers\nOption ServiceWorkers\nURL https://app.workers.test/\n", "workers.txt"
        ),
    ]
)
INDEX = HostIndex(RULES, ProxyTarget("https", "", "proxy.test"))
VENDOR = Origin.of("https", "www.vendor.test")
HANDOVER = frozenset({"/__carrel/handover"})


def arrive(host: str = "www-vendor-test.proxy.test", path: str = "/", **kw: object) -> Arrival:
    """A request as the proxy reads it; keyword arguments override the plain GET."""
    plain = Arrival("GET", path, host, False, False, True, HANDOVER)
    return dataclasses.replace(plain, **kw)  # type: ignore[arg-type]


LOCATIONS: list[tuple[str, Arrival, Location]] = [
    ("CONNECT is never proxied", arrive(method="CONNECT"), ErrorPage(405)),
    ("absolute-form request line", arrive(path="http://www.vendor.test/"), ErrorPage(400)),
    ("a //host path", arrive(path="//evil.test/x"), ErrorPage(400)),
    ("a name outside the proxy", arrive(host="www.vendor.test"), UnknownHost("www.vendor.test")),
    (
        "a proxied name no rule covers",
        arrive(host="www-other-test.proxy.test"),
        UnknownHost("https://www.other.test", RULES.lookup(Origin.of("https", "www.other.test"))),  # type: ignore[arg-type]
    ),
    (
        "NeverProxy wins over the domain",
        arrive(host="cdn-vendor-test.proxy.test"),
        UnknownHost("https://cdn.vendor.test", RULES.lookup(Origin.of("https", "cdn.vendor.test"))),  # type: ignore[arg-type]
    ),
    ("hand-over path over TLS", arrive(path="/__carrel/handover?c=1"), Handover(VENDOR)),
    (
        "hand-over path over http is the vendor's",
        arrive(path="/__carrel/handover", tls=False),
        Located(VENDOR, RULES.databases[0], "/__carrel/handover"),
    ),
    (
        "a service worker script, not opted in",
        arrive(path="/sw.js", service_worker_script=True),
        WorkerRefused("https://www.vendor.test/sw.js"),
    ),
    (
        "a form start's page over TLS",
        arrive(path="/__carrel/form/my%20label"),
        Located(VENDOR, RULES.databases[0], "/__carrel/form/my%20label", form_label="my label"),
    ),
    (
        "over http that path is the vendor's",
        arrive(path="/__carrel/form/x", tls=False),
        Located(VENDOR, RULES.databases[0], "/__carrel/form/x"),
    ),
    ("DELETE not in HTTPMethod", arrive(method="DELETE"), ErrorPage(405)),
    (
        "PUT named by HTTPMethod",
        arrive(method="PUT", path="/a"),
        Located(VENDOR, RULES.databases[0], "/a"),
    ),
    (
        "proxied URLs in the query go back as the vendor's",
        arrive(path="/r?u=https://www-vendor-test.proxy.test/x"),
        Located(VENDOR, RULES.databases[0], "/r?u=https://www.vendor.test/x"),
    ),
]


@pytest.mark.parametrize(
    ("arrival", "expected"), [(a, e) for _, a, e in LOCATIONS], ids=[n for n, _, _ in LOCATIONS]
)
def test_locate(arrival: Arrival, expected: Location) -> None:
    assert locate(arrival, INDEX) == expected


def test_a_worker_the_rules_allow_is_located() -> None:
    found = locate(
        arrive("app-workers-test.proxy.test", "/sw.js", service_worker_script=True), INDEX
    )
    assert isinstance(found, Located) and found.database.title == "Workers"


def session(**kw: object) -> Session:
    """A card session in the Default group; keyword arguments override its fields."""
    plain = Session("h", "pid", "card", frozenset(), 0.0, 0.0, "192.0.2.1", 1, False)
    return dataclasses.replace(plain, **kw)  # type: ignore[arg-type]


def exchange(path: str = "/", host: str = "www-vendor-test.proxy.test", **kw: object) -> Exchange:
    """An exchange for ``path`` at 1000 s; keyword arguments set its session and cookie."""
    arrival = arrive(host, path, **{k: v for k, v in kw.items() if k in ("method", "websocket")})
    located = locate(arrival, INDEX)
    assert isinstance(located, Located)
    return Exchange(
        arrival,
        located,
        INDEX,
        kw.get("session"),  # type: ignore[arg-type]
        None,
        bool(kw.get("had_cookie", False)),
        "192.0.2.1",
        1000.0,
        kw.get("cors", SAME_ORIGIN),  # type: ignore[arg-type]
    )


SIBLING_PREFLIGHT = CorsRequest(Requester.SIBLING, "https://api-other-test.proxy.test", "cors",
                                preflight=True, method="PUT")  # fmt: skip
FOREIGN_PREFLIGHT = CorsRequest(Requester.FOREIGN, "https://evil.test", "cors", preflight=True,
                                method="PUT")  # fmt: skip
FOREIGN_SOCKET = CorsRequest(Requester.FOREIGN, "https://evil.test", "websocket")


DECISIONS: list[tuple[str, Exchange, type[Decision] | Decision]] = [
    ("no session: log in", exchange("/a"), ToLogin("https://www.vendor.test/a", forget=False)),
    (
        "an ended session's cookie: log in and clear the host",
        exchange("/a", had_cookie=True),
        ToLogin("https://www.vendor.test/a", forget=True),
    ),
    ("AnonymousURL without a session", exchange("/open/x"), Forward),
    ("AnonymousURL with an ended cookie", exchange("/open/x", had_cookie=True), ForgetAndReload()),
    (
        "AnonymousURL, ended cookie, a POST is not repeated",
        exchange("/open/x", had_cookie=True, method="POST"),
        Forward,
    ),
    ("a session", exchange("/a", session=session()), Forward),
    (
        "a session paused by a usage limit",
        exchange("/a", session=session(suspended_until=2000.0, suspended_reason="too fast")),
        Suspended("too fast"),
    ),
    (
        "a pause that has ended",
        exchange("/a", session=session(suspended_until=999.0, suspended_reason="x")),
        Forward,
    ),
    (
        "a desk reset: choose a PIN first",
        exchange("/a", session=session(must_change_pin=True)),
        ChangePin("https://www.vendor.test/a"),
    ),
    (
        "a database for a group the patron is not in",
        exchange(host="staff-example-org.proxy.test", session=session()),
        ErrorPage(403),
    ),
    (
        "the group the database needs",
        exchange(host="staff-example-org.proxy.test", session=session(groups=frozenset({"Staff"}))),
        Forward,
    ),
    ("a proxied page's CORS preflight, no session", exchange(cors=SIBLING_PREFLIGHT), Forward),
    ("a preflight from outside the proxy", exchange(cors=FOREIGN_PREFLIGHT), ErrorPage(403)),
    (
        "a WebSocket opened by a page outside the proxy",
        exchange(session=session(), websocket=True, cors=FOREIGN_SOCKET),
        ErrorPage(403),
    ),
]


@pytest.mark.parametrize(
    ("ex", "expected"), [(x, e) for _, x, e in DECISIONS], ids=[n for n, _, _ in DECISIONS]
)
def test_decide(ex: Exchange, expected: type[Decision] | Decision) -> None:
    decision = decide(ex)
    if isinstance(expected, type):
        assert isinstance(decision, expected)
        assert isinstance(decision, Forward) and decision.exchange is ex
    else:
        assert decision == expected


def test_a_form_start_page_is_served_only_to_a_session() -> None:
    with_session = decide(exchange("/__carrel/form/lbl", session=session()))
    assert isinstance(with_session, SubmitForm) and with_session.label == "lbl"
    assert isinstance(decide(exchange("/__carrel/form/lbl")), ToLogin)


def test_a_websocket_upgrade_is_forwarded_as_one() -> None:
    decision = decide(exchange("/ws", session=session(), websocket=True))
    assert isinstance(decision, Forward) and decision.websocket


def test_the_proxy_passes_an_exchange_not_a_crowd_of_values() -> None:
    """Every function of gateway/proxy takes at most five values (self and cls aside)."""
    crowded = []
    for path in sorted((Path(__file__).parent.parent / "gateway" / "proxy").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                names = [a.arg for a in (*node.args.posonlyargs, *node.args.args,
                                         *node.args.kwonlyargs)]  # fmt: skip
                if len([n for n in names if n not in ("self", "cls")]) > 5:
                    crowded.append(f"{path.name}:{node.lineno} {node.name}")
    assert crowded == []


def test_never_proxy_is_the_reason_the_page_gives() -> None:
    found = locate(arrive(host="cdn-vendor-test.proxy.test"), INDEX)
    assert isinstance(found, UnknownHost) and found.refused is not None
    assert found.refused.why is Why.NEVER_PROXY
