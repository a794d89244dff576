"""The session's server-side cookie jar (RFC 6265), as plain values that fit in Redis (pure).

Vendor cookies never reach the patron's browser (unless a rule says ``CookiePassThrough``): the
gateway keeps them per session and sends them upstream, as a browser would, to every host of the
session whose domain and path they match.
"""

from __future__ import annotations

import ipaddress
import time
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from functools import cache
from typing import Any

from publicsuffixlist import PublicSuffixList

from gateway.hostmap import Origin

MAX_COOKIES = 300
MAX_COOKIE_BYTES = 4096
GATEWAY_PREFIX = "carrel_"
"""Every cookie of the gateway's own starts so (after a ``__Host-`` prefix)."""
GUARDED_PREFIXES = ("__host-", "__secure-")
"""Prefixes browsers guard (without regard to case). On a proxied host the browser would keep
a vendor's such cookie beside the gateway's own ``__Host-`` ones, so none is passed through to
the browser; in the server-side jar, which only the vendor ever sees, they are kept when they
meet the prefix's rules, as a browser talking to the vendor would keep them."""


def _bare(name: str) -> str:
    for prefix in GUARDED_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


@dataclass(frozen=True)
class GatewayCookies:
    """The cookie names that belong to the gateway: a vendor may neither set nor read them.

    Matched without regard to case: no vendor needs a cookie whose name differs from one of
    the gateway's only in case, and refusing it leaves no doubt.
    """

    names: frozenset[str]
    """Lower-case exact names (the configured ones, which need not start ``carrel_``)."""

    @classmethod
    def of(cls, *names: str) -> GatewayCookies:
        """The gateway's cookies: these names and every ``carrel_`` name."""
        return cls(frozenset(name.lower() for name in names))

    def owns(self, name: str) -> bool:
        """Whether ``name`` is one of the gateway's cookies (with or without a guarded
        prefix)."""
        key = name.strip().lower()
        bare = _bare(key)
        return key in self.names or bare in self.names or bare.startswith(GATEWAY_PREFIX)

    def __contains__(self, name: object) -> bool:
        """Whether a cookie of this name in the patron's browser, on a proxied host, may be the
        gateway's: its own names, and every guarded prefix."""
        if not isinstance(name, str):
            return False
        return self.owns(name) or name.strip().lower().startswith(GUARDED_PREFIXES)


def _prefix_rules_hold(name: str, attributes: list[str]) -> bool:
    """RFC 6265bis 4.1.3: ``__Secure-`` needs ``Secure``; ``__Host-`` also ``Path=/`` and no
    ``Domain``."""
    key = name.strip().lower()
    if not key.startswith(GUARDED_PREFIXES):
        return True
    names = {a.partition("=")[0].strip().lower() for a in attributes}
    if "secure" not in names:
        return False
    if key.startswith("__host-"):
        paths = [a.partition("=")[2].strip() for a in attributes
                 if a.partition("=")[0].strip().lower() == "path"]  # fmt: skip
        return "domain" not in names and paths[-1:] == ["/"]
    return True


def vendor_may_set(header: str, gateway: GatewayCookies, to_browser: bool) -> bool:
    """Whether a vendor's ``Set-Cookie`` value may be kept: never when it sets one of the
    gateway's cookies, nor when it has no name (a browser sends a nameless cookie's value
    alone, ``Cookie: carrel_session=x`` for ``Set-Cookie: =carrel_session=x``, and servers read
    that as a name); on its way ``to_browser`` (pass-through), never with a guarded prefix."""
    first, *attributes = header.split(";")
    name, sep, _ = first.partition("=")
    if not (sep and name.strip()):
        return False
    if to_browser:
        return name not in gateway
    return not gateway.owns(name) and _prefix_rules_hold(name, attributes)


@dataclass(frozen=True)
class Cookie:
    """One stored cookie."""

    name: str
    value: str
    domain: str
    host_only: bool
    path: str
    secure: bool = False
    http_only: bool = False
    expires: float | None = None
    """Seconds since the epoch; None for a session cookie."""
    same_site: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        """Name, domain and path: what makes a cookie the same cookie."""
        return (self.name, self.domain, self.path)


def _default_path(path: str) -> str:
    if not path.startswith("/") or path.count("/") == 1:
        return "/"
    return path[: path.rfind("/")]


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def domain_match(host: str, domain: str) -> bool:
    """RFC 6265 5.1.3: ``host`` is ``domain``, or a subdomain of it and a name, not an address."""
    return host == domain or (host.endswith("." + domain) and not _is_address(host))


@cache
def _public_suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # the list the package ships: read once, never fetched


def is_public_suffix(domain: str) -> bool:
    """Whether cookies may not be set for ``domain`` as a whole: ``com``, ``co.uk``,
    ``github.io`` (the Public Suffix List, its private entries too, as browsers use it; an
    unknown top-level domain is one by the list's default rule)."""
    return _public_suffixes().is_public(domain)


def path_match(request_path: str, cookie_path: str) -> bool:
    """RFC 6265 5.1.4."""
    if request_path == cookie_path:
        return True
    if request_path.startswith(cookie_path):
        return cookie_path.endswith("/") or request_path[len(cookie_path)] == "/"
    return False


def parse_set_cookie(header: str, origin: Origin, path: str, now: float) -> Cookie | None:
    """A ``Set-Cookie`` value from ``origin`` for a request to ``path``; None when refused."""
    if len(header) > MAX_COOKIE_BYTES:
        return None
    pair, *attributes = header.split(";")
    name, sep, value = pair.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name:
        return None
    domain, cookie_path = "", ""
    secure = http_only = False
    expires: float | None = None
    max_age: float | None = None
    same_site = ""
    for attribute in attributes:
        key, _, val = attribute.partition("=")
        key, val = key.strip().lower(), val.strip()
        if key == "domain" and val:
            domain = val.lstrip(".").lower()
        elif key == "path" and val.startswith("/"):
            cookie_path = val
        elif key == "secure":
            secure = True
        elif key == "httponly":
            http_only = True
        elif key == "samesite":
            same_site = val
        elif key == "max-age":
            try:
                max_age = float(int(val))
            except ValueError:
                continue
        elif key == "expires":
            try:
                expires = parsedate_to_datetime(val).timestamp()
            except (TypeError, ValueError, IndexError):
                continue
    if max_age is not None:
        expires = now + max_age
    host = origin.host
    if domain and is_public_suffix(domain):  # RFC 6265 5.3 step 5
        if domain != host:
            return None  # a cookie for every site under a public suffix
        domain = ""  # the host's own name is a public suffix: a cookie for the host only
    if domain:
        if not domain_match(host, domain):
            return None  # a cookie for another site
        host_only = False
    else:
        domain, host_only = host, True
    if secure and origin.scheme != "https":
        return None
    return Cookie(
        name, value, domain, host_only, cookie_path or _default_path(path),
        secure, http_only, expires, same_site,
    )  # fmt: skip


class CookieJar:
    """Cookies of one patron session, for every vendor host it visits."""

    def __init__(self, cookies: list[Cookie] | None = None) -> None:
        self._cookies: dict[tuple[str, str, str], Cookie] = {c.key: c for c in cookies or []}

    def __len__(self) -> int:
        return len(self._cookies)

    def set(self, header: str, origin: Origin, path: str, now: float | None = None) -> bool:
        """Store (or delete, when expired) the cookie a response sets; False if refused."""
        now = time.time() if now is None else now
        cookie = parse_set_cookie(header, origin, path, now)
        if cookie is None:
            return False
        if cookie.expires is not None and cookie.expires <= now:
            self._cookies.pop(cookie.key, None)
            return True
        self._cookies[cookie.key] = cookie
        if len(self._cookies) > MAX_COOKIES:  # drop the oldest-stored first
            del self._cookies[next(iter(self._cookies))]
        return True

    def header(self, origin: Origin, path: str, now: float | None = None) -> str:
        """The ``Cookie`` header a browser would send to ``origin`` for ``path``."""
        now = time.time() if now is None else now
        chosen = [
            c
            for c in self._cookies.values()
            if (c.domain == origin.host if c.host_only else domain_match(origin.host, c.domain))
            and path_match(path or "/", c.path)
            and (not c.secure or origin.scheme == "https")
            and (c.expires is None or c.expires > now)
        ]
        chosen.sort(key=lambda c: -len(c.path))  # longer paths first (RFC 6265 5.4)
        return "; ".join(f"{c.name}={c.value}" for c in chosen)

    def to_plain(self) -> list[dict[str, Any]]:
        """The jar as plain values (for JSON in Redis)."""
        return [asdict(c) for c in self._cookies.values()]

    @classmethod
    def from_plain(cls, data: list[dict[str, Any]]) -> CookieJar:
        """A jar from ``to_plain`` output; malformed entries are skipped."""
        cookies = []
        for item in data:
            try:
                cookies.append(Cookie(**item))
            except TypeError:
                continue
        return cls(cookies)
