"""The upstream client: one pooled aiohttp session per process, guarded against SSRF.

Vendors are reached only by names the rules allow (the handler checks that), and only at
addresses that are public: a name that DNS resolves to a private, loopback, link-local or
metadata address is refused, unless the address comes from ``upstream.resolve`` (the library's
own split DNS, and the tests' loopback servers). ``upstream.nameservers`` names DNS servers to
ask (c-ares, through aiodns) instead of the system's resolver. No redirect is followed (the
patron's browser follows the rewritten ``Location``), no body is decompressed (the pipeline
does that) and no proxy from the environment is used.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
from collections.abc import Mapping
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import AsyncResolver, DefaultResolver

from gateway.config import UpstreamSettings

POOL_SIZE = 200


class BlockedAddress(OSError):
    """DNS gave an address the gateway must not connect to."""


def public(address: str) -> bool:
    """Whether an address is on the public internet (not private, loopback, metadata, ...)."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class GuardedResolver(AbstractResolver):
    """``upstream.resolve`` first; DNS answers only when every address is public."""

    def __init__(self, overrides: Mapping[str, str], dns: AbstractResolver | None = None) -> None:
        self.overrides = {host.lower(): target for host, target in overrides.items()}
        self.dns = dns or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Addresses for ``host``; raises BlockedAddress for non-public DNS answers."""
        target = self.overrides.get(host.lower().rstrip("."))
        if target is not None:
            address, _, fixed_port = target.rpartition(":")
            address = address.strip("[]")
            kind = socket.AF_INET6 if ":" in address else socket.AF_INET
            return [
                ResolveResult(hostname=host, host=address, port=int(fixed_port), family=kind,
                              proto=0, flags=socket.AI_NUMERICHOST)
            ]  # fmt: skip
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            raise BlockedAddress(f"{host}: vendors are reached by name, not by address")
        results = await self.dns.resolve(host, port, family)
        blocked = [r["host"] for r in results if not public(r["host"])]
        if blocked:
            raise BlockedAddress(f"{host} resolves to {', '.join(blocked)}, which is not public")
        return results

    async def close(self) -> None:
        """Close the DNS resolver."""
        await self.dns.close()


def client_ssl_context(settings: UpstreamSettings) -> ssl.SSLContext:
    """System CAs, plus the configured extra bundle."""
    context = ssl.create_default_context()
    if settings.ca_file:
        context.load_verify_locations(settings.ca_file)
    return context


def make_session(settings: UpstreamSettings, **overrides: Any) -> aiohttp.ClientSession:
    """The process's upstream session (call inside the running loop)."""
    dns = AsyncResolver(nameservers=settings.nameservers) if settings.nameservers else None
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(settings.resolve, dns),
        ssl=client_ssl_context(settings),
        limit=POOL_SIZE,
        limit_per_host=32,
        ttl_dns_cache=60,
        enable_cleanup_closed=True,
    )
    timeout = aiohttp.ClientTimeout(
        total=None,
        connect=settings.connect_timeout,
        sock_connect=settings.connect_timeout,
        sock_read=settings.read_timeout,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        auto_decompress=False,
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
        **overrides,
    )
