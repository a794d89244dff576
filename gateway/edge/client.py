"""Who the client is: the connection's address, or what a trusted front says it is; and the
bearer token it shows.

A TLS front or load balancer connects on every patron's behalf, so its address is the same for
all of them; lockouts per address would then lock everyone out together. The fronts listed in
``server.trusted_proxies`` are believed about the address they received the request from
(``X-Forwarded-For``, read from the right, skipping the trusted hops); anyone else's header is
ignored, and the proxy never passes it on.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING

from aiohttp import hdrs, web

from gateway.appkeys import SETTINGS
from gateway.netblocks import Network, address_ranges

if TYPE_CHECKING:
    from gateway.config import Settings


@cache
def networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """The networks a configured list names (``netblocks.address_ranges``), parsed once."""
    return address_ranges(entries)


def _trusted(address: str, trusted: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket's ::ffff:10.0.0.7 is 10.0.0.7
    return any(ip in network for network in trusted)


def forwarded_address(peer: str, header: str, trusted: tuple[Network, ...]) -> str:
    """The client's address, given the peer and its X-Forwarded-For (pure)."""
    if not header or not _trusted(peer, trusted):
        return peer
    for hop in reversed([h.strip() for h in header.split(",") if h.strip()]):
        if not _trusted(hop, trusted):
            try:
                return str(ipaddress.ip_address(hop.strip("[]")))
            except ValueError:
                return peer  # a garbled header from a trusted front: fall back to the peer
    return peer


def client_address(request: web.Request, settings: Settings | None = None) -> str:
    """The patron's address for lockouts, throttles, sessions and the access log; ``settings``
    when the caller has them (``config_dict`` builds a chain of mappings on every use)."""
    if settings is None:
        settings = request.config_dict[SETTINGS]
    peer = request.remote or "unknown"
    trusted = networks(tuple(settings.server.trusted_proxies))
    if not trusted:
        return peer
    return forwarded_address(peer, request.headers.get("X-Forwarded-For", ""), trusted)


def address_in(address: str, entries: Iterable[str]) -> bool:
    """Whether ``address`` is in one of the networks ``entries`` names."""
    return _trusted(address, networks(tuple(entries)))


def bearer_token(request: web.Request) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None without one."""
    scheme, _, token = request.headers.get(hdrs.AUTHORIZATION, "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None
