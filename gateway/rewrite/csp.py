"""Content-Security-Policy: map the vendor's host sources to their proxied names (pure)."""

from __future__ import annotations

import re

from gateway.hostmap import DEFAULT_PORTS
from gateway.rewrite.target import HostIndex

_HOST_SOURCE = re.compile(
    r"(?:(?P<scheme>[a-z][a-z0-9+.-]*)://)?(?P<wild>\*\.)?(?P<host>[a-z0-9_.-]+\.[a-z0-9_-]+)"
    r"(?::(?P<port>[0-9]+|\*))?(?P<path>/\S*)?",
    re.IGNORECASE,
)


def _source(token: str, index: HostIndex, page_scheme: str) -> list[str]:
    match = _HOST_SOURCE.fullmatch(token)
    if match is None:
        return [token]
    if match["wild"]:
        # Every proxied host lives under the proxy domain; allow them alongside the original.
        return [token, f"*.{index.target.proxy_domain}{index.target.port_suffix}"]
    scheme = (match["scheme"] or page_scheme).lower()
    port = int(match["port"]) if match["port"] and match["port"] != "*" else None
    if scheme not in DEFAULT_PORTS:
        return [token]
    mapped = index.lookup(scheme, match["host"], port)
    if mapped is None:
        return [token]
    target = index.target
    return [f"{target.scheme}://{mapped.host}{target.port_suffix}{match['path'] or ''}"]


def rewrite_csp(policy: str, index: HostIndex, page_scheme: str) -> str:
    """The policy with proxied host sources; ``upgrade-insecure-requests`` dropped on http."""
    directives = []
    for directive in policy.split(";"):
        tokens = directive.split()
        if not tokens:
            continue
        name = tokens[0].lower()
        if name == "upgrade-insecure-requests" and index.target.scheme == "http":
            continue  # the gateway itself may be plain http (development)
        values = [out for token in tokens[1:] for out in _source(token, index, page_scheme)]
        directives.append(" ".join([tokens[0], *values]))
    return "; ".join(directives)
