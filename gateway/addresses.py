"""Which IP addresses the gateway may connect to, and which hosts are addresses at all (pure).

The gateway reaches vendors on the public internet only. An address is public unless a row of
the tables below (the IANA special-purpose registries, RFC 6890) says what else it is; anything
the ``ipaddress`` module knows not to be global is refused too, as reserved. IPv6 forms that
carry an IPv4 address (IPv4-mapped and -compatible, NAT64, 6to4, Teredo) are judged by the IPv4
address inside them, because that is where the packets may end up.

A URL host is an address when it is an IPv6 literal or when it ends in a number, as browsers
read it (the WHATWG URL standard) and as ``socket`` does: ``2130706433``, ``0x7f.1`` and
``127.1`` all name 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address

_IPV4_RANGES: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(network), reason)
    for network, reason in (
        ("0.0.0.0/8", "an unspecified ('this network') address"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a carrier-grade NAT address"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.169.254/32", "the cloud metadata address"),
        ("169.254.0.0/16", "a link-local address"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "an IETF protocol address"),
        ("192.0.2.0/24", "a documentation address"),
        ("192.88.99.0/24", "a 6to4 relay address"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a benchmarking address"),
        ("198.51.100.0/24", "a documentation address"),
        ("203.0.113.0/24", "a documentation address"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
    )
)
"""IPv4 ranges that are not public, first match wins (metadata before link-local)."""

_IPV6_RANGES: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(network), reason)
    for network, reason in (
        ("::/128", "an unspecified address"),
        ("::1/128", "a loopback address"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("100::/64", "a discard address"),
        ("2001:db8::/32", "a documentation address"),
        ("fc00::/7", "a private (unique local) address"),
        ("fe80::/10", "a link-local address"),
        ("fec0::/10", "a site-local address"),
        ("ff00::/8", "a multicast address"),
    )
)
"""IPv6 ranges that are not public whatever they carry, first match wins."""


_LOW32 = 0xFFFFFFFF

_CARRIERS: tuple[tuple[IPv6Network, str, tuple[tuple[int, int], ...]], ...] = tuple(
    (IPv6Network(network), form, inside)
    for network, form, inside in (
        ("::ffff:0:0/96", "an IPv4-mapped address", ((0, 0),)),
        ("64:ff9b::/96", "a NAT64 address", ((0, 0),)),
        # Teredo: the server's address in bits 32-63, the client's in the last 32, inverted.
        ("2001::/32", "a Teredo address", ((64, 0), (0, _LOW32))),
        ("2002::/16", "a 6to4 address", ((80, 0),)),
        ("::/96", "an IPv4-compatible address", ((0, 0),)),
    )
)
"""IPv6 ranges that carry IPv4 addresses: (range, its name, (shift, mask) of each IPv4 inside)."""


def _ipv4_reason(ip: IPv4Address) -> str | None:
    for network, reason in _IPV4_RANGES:
        if ip in network:
            return reason
    return None if ip.is_global else "a reserved address"


def non_public(ip: IPAddress) -> str | None:
    """Why the gateway must not connect to ``ip`` ("a loopback address", ...); None if public."""
    if isinstance(ip, IPv4Address):
        return _ipv4_reason(ip)
    for network, range_reason in _IPV6_RANGES:
        if ip in network:
            return range_reason
    for carrier, form, inside in _CARRIERS:
        if ip in carrier:
            for shift, mask in inside:
                carried = IPv4Address(((int(ip) >> shift) ^ mask) & _LOW32)
                reason = _ipv4_reason(carried)
                if reason:
                    return f"{form} for {carried}, {reason}"
            return None  # judged by what it carries, whatever Python thinks of the range
    return None if ip.is_global else "a reserved address"


def public(address: str) -> bool:
    """Whether a numeric address (as DNS or getaddrinfo gives it, zone allowed) is public."""
    return non_public(ipaddress.ip_address(address.split("%")[0])) is None


def spelled(host: str, address: IPAddress) -> str:
    """The host as written, plus the address when they differ: ``127.1 (127.0.0.1)``."""
    text = host.strip("[]")
    return text if text == str(address) else f"{text} ({address})"


def _ipv4_number(part: str) -> int | None:
    """One part of an IPv4 host, read as the WHATWG URL standard does (0x hex, 0 octal)."""
    base = 10
    if part[:2].lower() == "0x":
        part, base = part[2:] or "0", 16
    elif len(part) > 1 and part.startswith("0"):
        part, base = part[1:], 8
    digits = "0123456789abcdef"[:base]
    if not part or not all(c in digits for c in part.lower()):
        return None
    return int(part, base)


def host_address(host: str) -> IPAddress | None:
    """The address a URL host names, or None when it is a name.

    ``[::1]`` and ``::1`` are IPv6; a host whose last label is a number is IPv4 in any of the
    spellings browsers and ``socket`` accept. Raises ValueError for a host that ends in a number
    but is no address (``1.2.3.4.5``, ``example.300``): browsers refuse those as hosts.
    """
    text = host.strip("[]").split("%")[0] if ":" in host else host
    if ":" in text:
        return ipaddress.IPv6Address(text)
    parts = text.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()  # one trailing dot, as in a fully qualified name
    final = parts[-1]
    if not (final.isascii() and final.isdigit()) and _ipv4_number(final) is None:
        return None
    numbers = [_ipv4_number(part) for part in parts]
    if len(parts) > 4 or None in numbers:
        raise ValueError(f"{host!r} ends in a number but is not an IPv4 address")
    *leading, last = [n for n in numbers if n is not None]
    if any(n > 255 for n in leading) or last >= 256 ** (4 - len(leading)):
        raise ValueError(f"{host!r} ends in a number but is not an IPv4 address")
    return IPv4Address(last + sum(n << (8 * (3 - i)) for i, n in enumerate(leading)))
