"""The HTTP client a sign-in provider is reached with: its own CA, its own timeout."""

from __future__ import annotations

import ssl
from typing import Generic, Protocol, TypeVar

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


class ReachSettings(Protocol):
    """What a provider's settings say about reaching it."""

    @property
    def ca_file(self) -> str: ...

    @property
    def timeout(self) -> float: ...


Reach = TypeVar("Reach", bound=ReachSettings)


class ProviderHttp(Generic[Reach]):
    """A method's own client to its provider (``provider_client``), made at first use, and
    closed with the method: for OIDC, CAS and SAML alike."""

    settings: Reach
    _http: aiohttp.ClientSession | None = None

    @property
    def http(self) -> aiohttp.ClientSession:
        """The provider's client: its CA, its timeout, no environment proxy."""
        if self._http is None:
            self._http = provider_client(self.settings.ca_file, self.settings.timeout)
        return self._http

    async def close(self) -> None:
        """Close the provider's client."""
        if self._http is not None:
            await self._http.close()
