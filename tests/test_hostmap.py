"""Origin <-> proxied host name: round trips, no collisions, refusals (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.hostmap import HostMap, HostnameEdit, Origin, decode, encode
from gateway.rules.parser import parse
from gateway.rules.ruleset import RuleSet

label = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
hosts = st.lists(label, min_size=2, max_size=5).map(".".join)
origins = st.builds(
    Origin.of,
    st.sampled_from(["http", "https"]),
    hosts,
    st.one_of(st.none(), st.integers(min_value=1, max_value=65535)),
)
EDITS = (
    HostnameEdit("intelliconnect.cch.com$", "intelliconnect"),
    HostnameEdit(".exacteditions.com$", "-exacteditions-com"),
)


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("https://www.jstor.org", "www-jstor-org"),
        ("http://www.jstor.org", "www-jstor-org---http"),
        ("https://www.jstor.org:8443", "www-jstor-org---8443"),
        ("http://www.jstor.org:8080", "www-jstor-org---http-8080"),
        ("https://my-host.example.com", "my--host-example-com"),
        ("https://xn--bcher-kva.example", "xn----bcher--kva-example"),
        ("HTTPS://WWW.JSTOR.ORG:443", "www-jstor-org"),
    ],
)
def test_known_labels(url: str, label: str) -> None:
    origin = Origin.from_url(url)
    assert origin is not None
    assert encode(origin) == label
    assert decode(label) == origin


@given(origins)
def test_every_valid_origin_round_trips(origin: Origin) -> None:
    assert decode(encode(origin)) == origin


@given(origins)
def test_round_trips_with_hostname_edits(origin: Origin) -> None:
    assert decode(encode(origin, EDITS), EDITS) == origin


@given(origins, origins)
def test_no_two_origins_share_a_label(a: Origin, b: Origin) -> None:
    if a != b:
        assert encode(a) != encode(b)
        assert encode(a, EDITS) != encode(b, EDITS)


@given(st.text(alphabet="abc-019", min_size=1, max_size=30))
def test_any_label_decodes_to_nothing_or_to_an_origin_that_encodes_back(text: str) -> None:
    origin = decode(text)
    assert origin is None or encode(origin) == text


@pytest.mark.parametrize(
    "label",
    [
        "login",
        "www-jstor-org---https",
        "www-jstor-org---0443",
        "www-jstor-org---443",
        "www-jstor-org---http-80",
        "a-----b",
        "-www-jstor-org",
        "WWW-jstor-org",
        "www-jstor-org---99999",
    ],
)
def test_malformed_or_non_canonical_labels_are_refused(label: str) -> None:
    assert decode(label) is None


def test_hostname_edit_gives_a_short_label_and_reverses() -> None:
    origin = Origin.of("https", "intelliconnect.cch.com")
    assert encode(origin, EDITS) == "intelliconnect"
    assert encode(Origin.of("https", "x.exacteditions.com"), EDITS) == "x-exacteditions-com"
    assert decode("intelliconnect", EDITS) == origin


def test_hostmap_reads_full_host_names_with_port_and_case() -> None:
    hostmap = HostMap("proxy.library.org")
    origin = Origin.of("https", "www.jstor.org")
    assert hostmap.proxied_host(origin) == "www-jstor-org.proxy.library.org"
    assert hostmap.origin_of("WWW-JSTOR-ORG.proxy.library.org:443") == origin
    assert hostmap.origin_of("www-jstor-org.elsewhere.org") is None
    assert hostmap.origin_of("a.www-jstor-org.proxy.library.org") is None


RULES = RuleSet.from_results(
    [parse("Title J\nURL https://www.jstor.org\nHJ https://www.jstor.org\n", "j.txt")]
)


@given(origins)
def test_a_label_whose_origin_the_rules_do_not_allow_is_refused(origin: Origin) -> None:
    hostname = RULES.hostmap("proxy.localhost").proxied_host(origin)
    allowed = origin == Origin.of("https", "www.jstor.org")
    decoded = RULES.hostmap("proxy.localhost").origin_of(hostname)  # as the proxy asks
    assert (decoded is not None and RULES.allows(decoded) is not None) == allowed


def test_origins_of_host_headers_are_remembered_within_a_bound() -> None:
    from gateway.hostmap import ORIGINS_REMEMBERED

    hostmap = HostMap("proxy.example.edu")
    first = hostmap.origin_of("www-jstor-org.proxy.example.edu:8080")
    assert first == Origin("https", "www.jstor.org", 443)
    assert hostmap.origin_of("WWW-JSTOR-ORG.proxy.example.edu") == first
    for i in range(ORIGINS_REMEMBERED + 10):  # anyone can send any Host header
        assert hostmap.origin_of(f"h{i}.example.com") is None
    assert len(hostmap._origins) <= ORIGINS_REMEMBERED
    assert hostmap.origin_of("www-jstor-org.proxy.example.edu:8080") == first


def test_an_edited_label_that_also_reads_as_a_plain_host_means_the_edited_one() -> None:
    edits = (HostnameEdit("search.ebscohost.com$", "seh"),)
    origin = Origin.of("https", "x.search.ebscohost.com")
    assert encode(origin, edits) == "x-seh"
    assert decode("x-seh", edits) == origin  # not x.seh, which would leave origin unreachable
