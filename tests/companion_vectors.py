"""Vectors for the companion's mapping, worked out by the Python side (hostmap + RuleSet), which
tests/js/map.test.js checks the JavaScript side against."""

from __future__ import annotations

import json
from pathlib import Path

from gateway.companion.scope import scope_of
from gateway.hostmap import Origin
from gateway.rewrite.target import HostIndex, ProxyTarget
from gateway.rules.parser import parse
from gateway.rules.ruleset import RuleSet

RULES = """Title Vectors
URL https://www.jstor.org/
HJ https://www.vendor-a.com
HJ http://old.example.org
H http://odd.example.org:8080
H https://secure.example.org:8443
DJ jstor.org
D ebsco.com
D under_score.example.net
HJ 203.0.113.7
NeverProxy *.cdn.jstor.org ads.ebsco.com
ProxyHostnameEdit search.ebscohost.com$ seh
DJ ebscohost.com
"""

HOSTS = [
    "www.jstor.org", "WWW.JSTOR.ORG", "www.jstor.org.", "jstor.org", "a.b.jstor.org",
    "x.cdn.jstor.org", "cdn.jstor.org", "www.vendor-a.com", "vendor-a.com", "old.example.org",
    "odd.example.org", "secure.example.org", "ebsco.com", "ads.ebsco.com", "my-ads.ebsco.com",
    "under_score.example.net", "a.under_score.example.net", "search.ebscohost.com",
    "x.search.ebscohost.com", "203.0.113.7", "www.jstor.org.evil.net", "localhost", "evil.org",
    "xn--bcher-kva.example", "www.vendor--a.com",
]  # fmt: skip
SCHEMES_PORTS = [("https", ""), ("http", ""), ("https", ":8443"), ("http", ":8080"),
                 ("https", ":443"), ("http", ":80"), ("wss", ""), ("ws", ":8080")]  # fmt: skip
TARGETS = [ProxyTarget("https", "", "proxy.library.org"),
           ProxyTarget("http", ":8080", "proxy.localhost")]  # fmt: skip
SOCKETS = {"ws": "http", "wss": "https"}


def _expected(index: HostIndex, url: str) -> str | None:
    scheme, _, rest = url.partition("://")
    web = SOCKETS.get(scheme, scheme)
    origin = Origin.from_url(f"{web}://{rest}")
    if origin is None:
        return None
    mapped = index.lookup(origin.scheme, origin.host, origin.port)
    if mapped is None:
        return None
    target = index.target
    out_scheme = target.scheme if scheme == web else target.scheme.replace("http", "ws")
    return f"{out_scheme}://{mapped.host}{target.port_suffix}/p/a?q=1#f"


def vectors() -> list[dict[str, object]]:
    """One case per proxy address: the scope, URLs with what they map to (None: left alone)
    and proxied host names with the origin they stand for (None: not a proxied host)."""
    ruleset = RuleSet.from_results([parse(RULES, "vectors.txt")])
    cases = []
    for target in TARGETS:
        index = HostIndex(ruleset, target)
        urls = []
        for host in HOSTS:
            for scheme, port in SCHEMES_PORTS:
                url = f"{scheme}://{host}{port}/p/a?q=1#f"
                urls.append([url, _expected(index, url)])
        names = []
        for origin in sorted({o for o in ruleset.host_origins}):
            names.append([index.hostmap.proxied_host(origin) + target.port_suffix, origin.url()])
        for label in ("www-jstor-org---http", "a---b", "x---http-99999", "x---0", "www--jstor-org",
                      "login", "a-b---", "seh", "x-seh", "www-jstor-org---8443"):  # fmt: skip
            host = f"{label}.{target.proxy_domain}"
            origin = index.hostmap.origin_of(host)
            names.append([host + target.port_suffix, origin.url() if origin else None])
        names.append([f"www-jstor-org.{target.proxy_domain}:1", None])  # not the proxy's port
        cases.append({"scope": json.loads(scope_of(ruleset, target).text), "urls": urls,
                      "names": names})  # fmt: skip
    return cases


def write(path: Path) -> Path:
    """The vectors as JSON at ``path``."""
    path.write_text(json.dumps(vectors(), indent=1))
    return path
