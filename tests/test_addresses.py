"""Which addresses are public, IPv6 forms judged by the IPv4 address they carry, and hosts
that are addresses in the spellings browsers and socket accept."""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.addresses import host_address, non_public, public

NOT_PUBLIC = [
    ("127.0.0.1", "a loopback address"),
    ("127.255.255.254", "a loopback address"),
    ("10.1.2.3", "a private address"),
    ("172.16.0.1", "a private address"),
    ("172.31.255.255", "a private address"),
    ("192.168.0.1", "a private address"),
    ("169.254.169.254", "the cloud metadata address"),
    ("169.254.1.1", "a link-local address"),
    ("100.64.0.1", "a carrier-grade NAT address"),
    ("100.100.100.200", "a carrier-grade NAT address"),  # Alibaba's metadata address
    ("0.0.0.0", "an unspecified ('this network') address"),
    ("0.1.2.3", "an unspecified ('this network') address"),
    ("224.0.0.1", "a multicast address"),
    ("239.255.255.250", "a multicast address"),
    ("240.0.0.1", "a reserved address"),
    ("255.255.255.255", "a reserved address"),
    ("192.0.2.1", "a documentation address"),
    ("198.51.100.7", "a documentation address"),
    ("203.0.113.9", "a documentation address"),
    ("198.18.0.1", "a benchmarking address"),
    ("192.0.0.8", "an IETF protocol address"),
    ("::", "an unspecified address"),
    ("::1", "a loopback address"),
    ("fe80::1", "a link-local address"),
    ("fc00::1", "a private (unique local) address"),
    ("fd00:ec2::254", "a private (unique local) address"),  # AWS's IPv6 metadata address
    ("fec0::1", "a site-local address"),
    ("ff02::1", "a multicast address"),
    ("2001:db8::1", "a documentation address"),
    ("100::1", "a discard address"),
    ("64:ff9b:1::808:808", "a local-use NAT64 address"),
    ("::ffff:127.0.0.1", "an IPv4-mapped address for 127.0.0.1, a loopback address"),
    ("::ffff:169.254.169.254", "an IPv4-mapped address for 169.254.169.254, the cloud metadata"),
    ("::127.0.0.1", "an IPv4-compatible address for 127.0.0.1, a loopback address"),
    ("::10.0.0.1", "an IPv4-compatible address for 10.0.0.1, a private address"),
    ("64:ff9b::7f00:1", "a NAT64 address for 127.0.0.1, a loopback address"),
    ("64:ff9b::a9fe:a9fe", "a NAT64 address for 169.254.169.254, the cloud metadata address"),
    ("2002:7f00:1::", "a 6to4 address for 127.0.0.1, a loopback address"),
    ("2002:c0a8:101::1", "a 6to4 address for 192.168.1.1, a private address"),
    # Teredo: server 65.54.227.120, client 192.0.2.45 (the last 32 bits, inverted)
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "a Teredo address for 192.0.2.45, a documentation"),
    ("2001:0:7f00:1::f7f7:f7f7", "a Teredo address for 127.0.0.1, a loopback address"),  # server
    ("2001:0:808:808::80ff:fffe", "a Teredo address for 127.0.0.1, a loopback address"),  # client
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "65.245.134.215",
    "100.63.255.255",  # just below carrier-grade NAT
    "100.128.0.0",  # just above it
    "172.32.0.1",  # just above 172.16/12
    "2001:4860:4860::8888",
    "2606:4700::1111",
    "::ffff:8.8.8.8",
    "::8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
    "2001:0:808:808::f7f7:f7f7",  # Teredo with public server and client
]


@pytest.mark.parametrize(("address", "reason"), NOT_PUBLIC)
def test_non_public_addresses_say_what_they_are(address: str, reason: str) -> None:
    found = non_public(ipaddress.ip_address(address))
    assert found is not None and found.startswith(reason), found
    assert not public(address)


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_public(address: str) -> None:
    assert non_public(ipaddress.ip_address(address)) is None
    assert public(address)


def test_a_zone_does_not_hide_a_link_local_address() -> None:
    assert not public("fe80::1%eth0")


ipv4 = st.integers(0, 2**32 - 1).map(IPv4Address)


def _carriers(v4: IPv4Address) -> list[IPv6Address]:
    low, google = int(v4), int(IPv4Address("8.8.8.8"))
    teredo = int(IPv6Address("2001::"))
    return [
        IPv6Address((0xFFFF << 32) | low),  # ::ffff:a.b.c.d
        IPv6Address(int(IPv6Address("64:ff9b::")) | low),  # NAT64
        IPv6Address(int(IPv6Address("2002::")) | (low << 80)),  # 6to4
        IPv6Address(teredo | (low << 64) | (~google & 0xFFFFFFFF)),  # Teredo server, public client
        IPv6Address(teredo | (google << 64) | (~low & 0xFFFFFFFF)),  # Teredo client, public server
    ]


@given(ipv4)
def test_ipv6_forms_carrying_an_ipv4_address_are_judged_by_it(v4: IPv4Address) -> None:
    for v6 in _carriers(v4):
        assert (non_public(v6) is None) == (non_public(v4) is None), (v6, v4)


@given(ipv4)
def test_ipv4_compatible_forms_are_judged_by_their_ipv4_address(v4: IPv4Address) -> None:
    v6 = IPv6Address(int(v4))
    if int(v4) > 1:  # :: and ::1 are IPv6's own unspecified and loopback addresses
        assert (non_public(v6) is None) == (non_public(v4) is None)
    else:
        assert non_public(v6) is not None


SPELLINGS = [
    ("127.0.0.1", "127.0.0.1"),
    ("127.0.0.1.", "127.0.0.1"),
    ("2130706433", "127.0.0.1"),
    ("0x7f000001", "127.0.0.1"),
    ("0x7f.1", "127.0.0.1"),
    ("0X7F.0.0.1", "127.0.0.1"),
    ("127.1", "127.0.0.1"),
    ("0177.0.0.1", "127.0.0.1"),
    ("017700000001", "127.0.0.1"),
    ("169.254.43518", "169.254.169.254"),
    ("0xa9fea9fe", "169.254.169.254"),
    ("10.0x10203", "10.1.2.3"),
    ("0x.0x.0x.0x", "0.0.0.0"),
    ("[::1]", "::1"),
    ("::1", "::1"),
    ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
    ("[fe80::1%25eth0]", "fe80::1"),
]


@pytest.mark.parametrize(("host", "address"), SPELLINGS)
def test_hosts_that_are_addresses_however_spelled(host: str, address: str) -> None:
    assert host_address(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    "host", ["www.jstor.org", "jstor.org", "a1.example.org", "1a.example.org", "example.0x1g", ""]
)
def test_names_are_not_addresses(host: str) -> None:
    assert host_address(host) is None


@pytest.mark.parametrize(
    "host", ["1.2.3.4.5", "256.1.1.1", "1.2.65536", "www.example.300", "a.08", "1..2", "[::1::2]"]
)
def test_a_host_that_ends_in_a_number_but_is_no_address_is_refused(host: str) -> None:
    with pytest.raises(ValueError):
        host_address(host)


@given(ipv4, st.integers(1, 4), st.sampled_from(["{:d}", "0x{:x}", "0{:o}"]))
def test_every_spelling_of_an_ipv4_address_reads_back_as_it(
    v4: IPv4Address, parts: int, spelling: str
) -> None:
    value = int(v4)
    numbers = [(value >> (8 * (3 - i))) & 0xFF for i in range(parts - 1)]
    numbers.append(value & (2 ** (8 * (5 - parts)) - 1))
    host = ".".join(spelling.format(n) for n in numbers)
    assert host_address(host) == v4, host
