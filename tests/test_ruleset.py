"""The compiled RuleSet: which database allows an origin, and whether a URL may start a session."""

from __future__ import annotations

import textwrap

from gateway.hostmap import Origin
from gateway.rules.parser import parse
from gateway.rules.ruleset import Allowed, How, Refused, RuleSet, Start, login_link, proxied_url

RULES = RuleSet.from_results(
    [
        parse(
            textwrap.dedent("""\
                Title JSTOR
                URL https://www.jstor.org/
                HJ www.jstor.org
                DJ jstor.org
                NeverProxy static.jstor.org
                NeverProxy *.cdn.jstor.org
                Title Second JSTOR
                URL https://www.jstor.org/other
                """),
            "rewrite_rules/jstor.txt",
        ),
        parse("Title Wiley\nURL https://onlinelibrary.wiley.com\nD wiley.com\n", "wiley.txt"),
    ]
)


def test_exact_host_is_allowed_by_its_strongest_line() -> None:
    found = RULES.lookup(Origin.of("https", "www.jstor.org"))
    assert isinstance(found, Allowed)
    assert found.how is How.HOST and found.database.title == "JSTOR"
    assert str(found.source) == "rewrite_rules/jstor.txt:3"  # HJ after URL: rewritten anywhere
    assert found.javascript


def test_domain_covers_subdomains_on_default_ports_only() -> None:
    found = RULES.lookup(Origin.of("https", "ocr.jstor.org"))
    assert isinstance(found, Allowed) and found.how is How.DOMAIN and found.javascript
    assert isinstance(RULES.lookup(Origin.of("https", "ocr.jstor.org", 8443)), Refused)
    assert isinstance(RULES.lookup(Origin.of("http", "jstor.org")), Allowed)


def test_never_proxy_wins_over_domain_rules() -> None:
    for host in ("static.jstor.org", "a.cdn.jstor.org"):
        found = RULES.lookup(Origin.of("https", host))
        assert isinstance(found, Refused) and "NeverProxy" in found.reason


def test_look_alike_hosts_are_not_allowed() -> None:
    for host in ("www.jstor.org.evil.com", "notjstor.org", "jstor.org.evil.com"):
        assert RULES.allows(Origin.of("https", host)) is None


def test_first_definition_of_a_host_wins() -> None:
    found = RULES.allows(Origin.of("https", "www.jstor.org"))
    assert found is not None and found.database.title == "JSTOR"


def test_starting_point_needs_url_or_host_line_not_domain_alone() -> None:
    assert isinstance(RULES.starting_point("https://www.jstor.org/stable/1"), Start)
    refused = RULES.starting_point("https://ocr.jstor.org/x")
    assert isinstance(refused, Refused) and "only by a Domain line" in refused.reason
    unknown = RULES.starting_point("https://evil.example.com/")
    assert isinstance(unknown, Refused) and "HJ https://evil.example.com" in unknown.hint
    assert isinstance(RULES.starting_point("javascript:alert(1)"), Refused)


def test_proxied_url_and_login_link() -> None:
    hostmap = RULES.hostmap("proxy.localhost")
    assert (
        proxied_url("https://www.jstor.org/stable/1?x=1", hostmap, "http", ":8080")
        == "http://www-jstor-org.proxy.localhost:8080/stable/1?x=1"
    )
    assert (
        proxied_url("https://www.jstor.org?q=1", hostmap, "https", "")
        == "https://www-jstor-org.proxy.localhost/?q=1"
    )
    assert (
        login_link("https://login.proxy.org", "https://www.jstor.org/a?b=1&c=2")
        == "https://login.proxy.org/login?qurl=https%3A%2F%2Fwww.jstor.org%2Fa%3Fb%3D1%26c%3D2"
    )


def test_no_line_is_suggested_for_an_address_the_gateway_never_connects_to() -> None:
    for url in ("http://127.0.0.1:8080/", "http://169.254.169.254/latest", "http://10.1.2.3/"):
        refused = RULES.lookup(Origin.from_url(url))  # type: ignore[arg-type]
        assert isinstance(refused, Refused)
        assert "HJ" not in refused.hint and "non-public" in refused.hint, refused.hint
    public = RULES.lookup(Origin.of("http", "8.8.8.8"))
    assert isinstance(public, Refused) and "HJ http://8.8.8.8" in public.hint


def test_a_host_that_only_contains_a_covered_name_is_a_look_alike_with_no_line_to_add() -> None:
    for host, name in (
        ("www.jstor.org.evil.net", "www.jstor.org"),
        ("jstor.org.x.net", "jstor.org"),
    ):
        found = RULES.lookup(Origin.of("https", host))
        assert isinstance(found, Refused) and "look-alike" in found.hint, found
        assert f"only contains {name} (rewrite_rules/jstor.txt:" in found.hint
        assert "HJ" not in found.hint
    below = RULES.lookup(Origin.of("https", "x.onlinelibrary.wiley.org"))
    assert isinstance(below, Refused) and "add 'HJ https://x.onlinelibrary.wiley.org'" in below.hint
