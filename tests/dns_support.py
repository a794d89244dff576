"""A real DNS server on loopback (UDP) with a fixed table of A records, for resolver tests."""

from __future__ import annotations

import asyncio
import ipaddress
import struct
from collections.abc import AsyncIterator, Mapping
from typing import Any

from gateway.embedded_redis import free_port


def _name(packet: bytes, offset: int) -> tuple[str, int]:
    labels = []
    while packet[offset]:
        length = packet[offset]
        labels.append(packet[offset + 1 : offset + 1 + length].decode("ascii"))
        offset += 1 + length
    return ".".join(labels), offset + 1


def answer(query: bytes, table: Mapping[str, str]) -> bytes:
    """The response to one query: A records from ``table``, NXDOMAIN otherwise."""
    ident, _flags, questions = struct.unpack("!HHH", query[:6])
    name, end = _name(query, 12)
    qtype = struct.unpack("!H", query[end : end + 2])[0]
    question = query[12 : end + 4]
    address = table.get(name.lower())
    records = b""
    count = 0
    if address is not None and qtype == 1:
        count = 1
        records = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4)
        records += ipaddress.IPv4Address(address).packed
    rcode = 0 if address is not None else 3
    header = struct.pack("!HHHHHH", ident, 0x8180 | rcode, questions, count, 0, 0)
    return header + question + records


class _Protocol(asyncio.DatagramProtocol):
    def __init__(self, table: Mapping[str, str], asked: list[str]) -> None:
        self.table = table
        self.asked = asked
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.asked.append(_name(data, 12)[0])
        self.transport.sendto(answer(data, self.table), addr)


async def dns_server(table: Mapping[str, str]) -> AsyncIterator[tuple[int, list[str]]]:
    """Serve ``table`` on 127.0.0.1 (UDP); yields the port and the names asked."""
    port = free_port()
    asked: list[str] = []
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: _Protocol(table, asked), local_addr=("127.0.0.1", port)
    )
    try:
        yield port, asked
    finally:
        transport.close()
