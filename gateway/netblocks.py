"""Which client addresses count together, for throttles and caps, and which networks a list
of addresses in the configuration names (pure: no I/O).

A throttle per address is only as good as the address it counts: one IPv6 host is handed a
whole /64 (SLAAC, privacy addresses), so it has 2**64 addresses to rotate through, and an
IPv4-mapped IPv6 address (``::ffff:192.0.2.7``, from a dual-stack socket) is the IPv4 host
itself. A *host* key folds those together; a *block* key is a network one operator usually
holds (IPv4 /24, IPv6 /48: a site's allocation), for throttles that must hold against someone
spreading attempts over their neighbours' addresses too.
"""

from __future__ import annotations

import ipaddress

PREFIXES: dict[str, dict[int, int]] = {
    "host": {4: 32, 6: 64},
    "block": {4: 24, 6: 48},
}
"""Prefix length per kind of key and IP version."""

_NETWORKS: dict[int, type[ipaddress.IPv4Network] | type[ipaddress.IPv6Network]] = {
    4: ipaddress.IPv4Network,
    6: ipaddress.IPv6Network,
}


def _key(address: str, kind: str) -> str:
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return address  # not an address ("unknown", a unix socket): counts as itself
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = PREFIXES[kind][ip.version]
    if prefix == ip.max_prefixlen:
        return str(ip)
    # From the integer: a scoped address (fe80::1%eth0) has no network form of its own.
    return str(_NETWORKS[ip.version]((int(ip), prefix), strict=False))


def host_key(address: str) -> str:
    """The key one host's address counts under: IPv4 as is, IPv6 its /64, IPv4-mapped IPv6
    the IPv4 address; anything that is not an address, as given."""
    return _key(address, "host")


def block_key(address: str) -> str:
    """The address block an address belongs to: its IPv4 /24 or IPv6 /48 (IPv4-mapped IPv6
    as IPv4); anything that is not an address, as given."""
    return _key(address, "block")


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def address_ranges(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """The networks ``entries`` name: single addresses, CIDRs (``10.0.0.0/8``, ``2001:db8::/32``)
    and ranges written as EZproxy writes them, ``10.0.0.1-10.0.0.255`` (as the CIDRs that cover
    exactly that range). ValueError, naming the entry, for anything else."""
    found: list[Network] = []
    for entry in entries:
        first, dash, last = entry.strip().partition("-")
        try:
            if not dash:
                found.append(ipaddress.ip_network(first.strip(), strict=False))
                continue
            start, end = ipaddress.ip_address(first.strip()), ipaddress.ip_address(last.strip())
            found.extend(ipaddress.summarize_address_range(start, end))
        except (ValueError, TypeError) as exc:
            message = f"{entry!r} is not an address, a CIDR or a range first-last (first <= last)"
            raise ValueError(message) from exc
    return tuple(found)
