"""Where proxied URLs point, and which hosts are proxied: the rewriters' only view of the rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from gateway.hostmap import DEFAULT_PORTS, HostMap, Origin, login_host
from gateway.rules.ruleset import RuleSet

_CACHE_LIMIT = 65536


class _Server(Protocol):
    @property
    def public_scheme(self) -> str: ...
    @property
    def proxy_domain(self) -> str: ...


class PublicAddress(Protocol):
    """What the rewriters need of the settings (typed here, so that this pure package does not
    import the configuration)."""

    @property
    def server(self) -> _Server: ...
    @property
    def port_suffix(self) -> str: ...


@dataclass(frozen=True)
class ProxyTarget:
    """How patrons reach the gateway: scheme, port suffix and the proxy domain."""

    scheme: str = "http"
    port_suffix: str = ""
    proxy_domain: str = "proxy.localhost"

    @classmethod
    def of(cls, settings: PublicAddress) -> ProxyTarget:
        """How patrons reach the gateway these settings describe."""
        return cls(
            settings.server.public_scheme, settings.port_suffix, settings.server.proxy_domain
        )

    @property
    def login_host(self) -> str:
        """The gateway's own host name."""
        return login_host(self.proxy_domain)


@dataclass(frozen=True)
class Mapped:
    """A proxied origin as the rewriters need it."""

    javascript: bool
    """True for HJ/DJ hosts: rewrite wherever the URL appears, not only in attributes."""
    host: str
    """The proxied host name, without port."""


@dataclass
class HostIndex:
    """Answers "is this origin proxied, how strongly, and under which name?", with a cache."""

    ruleset: RuleSet
    target: ProxyTarget
    hostmap: HostMap = field(init=False)
    _cache: dict[tuple[str, str, int], Mapped | None] = field(default_factory=dict, init=False)
    replacements: dict[str, dict[bytes, tuple[bytes, bool] | None]] = field(
        default_factory=dict, init=False
    )
    """The body rewriters' memo: page scheme -> URL prefix as written -> its proxied form."""
    _under: dict[str, tuple[Origin, ...]] = field(default_factory=dict, init=False)

    def __post_init__(self) -> None:
        self.hostmap = self.ruleset.hostmap(self.target.proxy_domain)

    def lookup(self, scheme: str, host: str, port: int | None = None) -> Mapped | None:
        """The proxied form of ``scheme://host:port`` or None when the rules do not proxy it."""
        scheme = scheme.lower()
        key = (scheme, host.lower(), port or DEFAULT_PORTS.get(scheme, 0))
        if key in self._cache:
            return self._cache[key]
        found: Mapped | None = None
        if scheme in DEFAULT_PORTS:
            origin = Origin(*key)
            allowed = self.ruleset.allows(origin)
            if allowed is not None:
                found = Mapped(allowed.javascript, self.hostmap.proxied_host(origin))
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()  # bounded: a page full of odd hosts cannot grow it forever
        self._cache[key] = found
        return found

    def origins_under(self, domain: str) -> tuple[Origin, ...]:
        """The origins the rules name, host by host, below ``domain`` (see
        ``RuleSet.origins_under``); remembered, as CSP names the same domains on every page."""
        key = domain.lower()
        found = self._under.get(key)
        if found is None:
            if len(self._under) >= _CACHE_LIMIT:
                self._under.clear()
            found = self._under[key] = tuple(self.ruleset.origins_under(key))
        return found

    def proxied_origin(self, origin: Origin) -> str | None:
        """``scheme://proxied-host[:port]`` for an allowed origin, else None."""
        mapped = self.lookup(origin.scheme, origin.host, origin.port)
        if mapped is None:
            return None
        return f"{self.target.scheme}://{mapped.host}{self.target.port_suffix}"
