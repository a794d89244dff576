"""The HTTP client a sign-in provider is reached with: its own CA, its own timeout."""

from __future__ import annotations

import ssl

import aiohttp


def provider_client(ca_file: str, timeout: float) -> aiohttp.ClientSession:
    """A client for one provider: the system's CAs plus ``ca_file`` (when set), ``timeout``
    seconds for a whole exchange, and no environment proxy (``trust_env`` stays off), so the
    provider's answers come from the provider. Callers pass ``allow_redirects=False``."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(ca_file)
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=timeout),
        connector=aiohttp.TCPConnector(ssl=context, limit=16),
    )
