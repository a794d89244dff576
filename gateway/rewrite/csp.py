"""Content-Security-Policy: map the vendor's host sources to their proxied names (pure)."""

from __future__ import annotations

import re

from gateway.hostmap import DEFAULT_PORTS
from gateway.rewrite.target import HostIndex

_WEBSOCKET = {"ws": ("http", "ws"), "wss": ("https", "wss")}
"""A WebSocket source's http(s) origin (whose rules it goes by) and the scheme it keeps."""
_PROXY_WEBSOCKET = {"http": "ws", "https": "wss"}

_HOST_SOURCE = re.compile(
    r"(?:(?P<scheme>[a-z][a-z0-9+.-]*)://)?(?P<wild>\*\.)?(?P<host>[a-z0-9_.-]+\.[a-z0-9_-]+)"
    r"(?::(?P<port>[0-9]+|\*))?(?P<path>/\S*)?",
    re.IGNORECASE,
)


def _wildcard(match: re.Match[str], index: HostIndex, page_scheme: str) -> list[str]:
    """The proxied origins of the hosts the rules name under a ``*.domain`` source, which it
    would match (CSP3 6.7.2.8: scheme, or the page's; port, or the scheme's default)."""
    written = (match["scheme"] or page_scheme).lower()
    scheme = _WEBSOCKET.get(written, (written,))[0]
    schemes = {scheme, "https"} if scheme == "http" else {scheme}  # http sources allow https
    port = match["port"]
    out = []
    for origin in index.origins_under(match["host"]):
        if origin.scheme not in schemes:
            continue
        if port != "*" and origin.port != (int(port) if port else DEFAULT_PORTS[origin.scheme]):
            continue
        proxied = index.proxied_origin(origin)
        if proxied is not None:
            out.append(_websocket(proxied, written, index) + (match["path"] or ""))
    return out


def _websocket(proxied: str, written: str, index: HostIndex) -> str:
    """``proxied`` (``scheme://host``) with the proxy's WebSocket scheme when the source was a
    WebSocket one: ``wss://api.vendor.com`` allows ``wss://api-vendor-com.<proxy_domain>``."""
    if written not in _WEBSOCKET:
        return proxied
    return _PROXY_WEBSOCKET[index.target.scheme] + proxied[proxied.index(":") :]


def _source(token: str, index: HostIndex, page_scheme: str) -> list[str]:
    match = _HOST_SOURCE.fullmatch(token)
    if match is None:
        return [token]
    if match["wild"]:
        # Each proxied host the rules name under the wildcard's domain, by its proxied name,
        # never the proxy domain's own wildcard: that would allow every database (and a
        # Domain/DJ line has no proxied name for its hosts as a whole). The vendor's wildcard
        # stays, as any source the rules do not proxy does: it names no host of the gateway.
        return [token, *_wildcard(match, index, page_scheme)]
    written = (match["scheme"] or page_scheme).lower()
    scheme = _WEBSOCKET.get(written, (written,))[0]
    port = int(match["port"]) if match["port"] and match["port"] != "*" else None
    if scheme not in DEFAULT_PORTS:
        return [token]
    mapped = index.lookup(scheme, match["host"], port)
    if mapped is None:
        return [token]
    target = index.target
    proxied = f"{target.scheme}://{mapped.host}{target.port_suffix}"
    return [_websocket(proxied, written, index) + (match["path"] or "")]


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
