"""The upstream client: one pooled aiohttp session per process, guarded against SSRF.

Vendors are reached only by names the rules allow (the handler checks that), and only at
addresses that are public: every address is checked before the connection is made, whether DNS
gave it or the URL names it (``http://127.0.0.1/``, ``http://0x7f.1/``, ``http://[::1]/``),
and a private, loopback, link-local or metadata one is refused, unless it comes from
``upstream.resolve`` (the library's own split DNS, and the tests' loopback servers).
``upstream.nameservers`` names DNS servers to ask (c-ares, through aiodns) instead of the
system's resolver. No redirect is followed (the patron's browser follows the rewritten
``Location``), no body is decompressed (the pipeline does that) and no proxy from the
environment is used.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.helpers import is_ip_address
from aiohttp.resolver import AsyncResolver, DefaultResolver
from aiohttp.tracing import Trace

from gateway.addresses import host_address, non_public, public, spelled
from gateway.config import UpstreamSettings

POOL_SIZE = 200


class BlockedAddress(OSError):
    """DNS gave, or the URL names, an address the gateway must not connect to."""


class GuardedResolver(AbstractResolver):
    """``upstream.resolve`` first; an address in the URL or DNS answers only when public."""

    def __init__(self, overrides: Mapping[str, str], dns: AbstractResolver | None = None) -> None:
        self.overrides = {host.lower(): target for host, target in overrides.items()}
        self.dns = dns or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Addresses for ``host``; raises BlockedAddress for a non-public literal or answer."""
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
            literal = host_address(host)
        except ValueError as exc:
            raise BlockedAddress(str(exc)) from None
        if literal is not None:
            reason = non_public(literal)
            if reason:
                raise BlockedAddress(f"{spelled(host, literal)} is {reason}, which is not public")
            kind = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
            return [
                ResolveResult(hostname=host, host=str(literal), port=port, family=kind, proto=0,
                              flags=socket.AI_NUMERICHOST)
            ]  # fmt: skip
        results = await self.dns.resolve(host, port, family)
        blocked = [r["host"] for r in results if not public(r["host"])]
        if blocked:
            raise BlockedAddress(f"{host} resolves to {', '.join(blocked)}, which is not public")
        return results

    async def close(self) -> None:
        """Close the DNS resolver."""
        await self.dns.close()


class GuardedConnector(aiohttp.TCPConnector):
    """A TCPConnector that asks its resolver about IP literals too.

    aiohttp answers a literal host itself and never calls the resolver, so without this the
    GuardedResolver's check would not run for ``http://127.0.0.1/``. ``_resolve_host`` is
    aiohttp's own step; tests/test_dns_guard.py fails if a new aiohttp stops calling it.
    """

    async def _resolve_host(
        self, host: str, port: int, traces: Sequence[Trace] | None = None
    ) -> list[ResolveResult]:
        if is_ip_address(host):
            return await self._resolver.resolve(host, port, family=self._family)
        return await super()._resolve_host(host, port, traces)


def client_ssl_context(settings: UpstreamSettings) -> ssl.SSLContext:
    """System CAs, plus the configured extra bundle."""
    context = ssl.create_default_context()
    if settings.ca_file:
        context.load_verify_locations(settings.ca_file)
    return context


def make_session(settings: UpstreamSettings, **overrides: Any) -> aiohttp.ClientSession:
    """The process's upstream session (call inside the running loop)."""
    dns = AsyncResolver(nameservers=settings.nameservers) if settings.nameservers else None
    connector = GuardedConnector(
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
