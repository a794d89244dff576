"""Cross-origin requests through the proxy: who asks, what the vendor gets, what the browser is
told (pure).

Every database is served from hosts of its own under one proxy domain, and the gateway's
session is a cookie. A browser sends cookies on a cross-origin request only when the page asks
for credentials, so the companion script and the HTML rewriter ask for them (``credentials:
"include"``, ``crossorigin="use-credentials"``) on requests from one proxied host to another;
without them the gateway, which never serves a database without a session, would answer with
a login redirect that CORS then blocks. A credentialed response is readable only with
``Access-Control-Allow-Origin: <the exact origin>`` and ``Access-Control-Allow-Credentials:
true``, where the vendor, which never saw a credentialed request, says ``*`` or its own
origin. This module turns one into the other, and only for pages of the proxy.

Who asks (``Requester``, from the request's ``Origin``):

- ``SAME``: no ``Origin``, or the host itself: nothing to decide.
- ``DATABASE``: another proxied host of the same database (the rules' first database to name
  it, as for every lookup): the vendor's own hosts, as ``www.jstor.org`` and
  ``api.jstor.org`` are. The vendor gets its cookies from the session's jar, as it would.
- ``SIBLING``: a proxied host of another database: another vendor's page, which may be
  hostile. On a CORS request (``Sec-Fetch-Mode: cors`` or ``websocket``) the gateway still
  wants the patron's session, but the vendor gets none of the patron's cookies or user
  headers: what the sibling may read is what the vendor would show anyone at the library's
  address, and only where the vendor's own CORS answer allows that origin.
- ``FOREIGN``: anything else (outside the proxy domain, ``null``, the login host, a proxied
  name the rules do not allow): never a CORS grant, never a preflight or a WebSocket.

What the browser is told (``cors_response``): for ``DATABASE`` and ``SIBLING`` CORS requests
the vendor's grant (``*`` or the requester's vendor origin) becomes the exact proxied origin
with credentials, ``*`` in the allowed methods and headers becomes what the preflight asked
for (never ``Authorization``, which a wildcard does not cover), ``*`` in the exposed headers
becomes the response's header names; no grant stays no grant. ``FOREIGN`` loses every
``Access-Control-Allow-*`` header. Requests without ``Sec-Fetch-Mode`` (old browsers, other
clients) keep the vendor's answer as ``headers.py`` maps it: nothing is widened for them.

Preflights (``OPTIONS`` with ``Access-Control-Request-Method`` and ``Origin``, no body) carry
no cookies by design: those of ``DATABASE`` and ``SIBLING`` pages go to the vendor without a
session and without credentials, and the vendor's answer decides, as it would for the page
itself. (Answering them in the gateway would let any sibling send the vendor requests its own
preflight refuses, with the patron's cookies.)
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gateway.hostmap import Origin
from gateway.rewrite.target import HostIndex
from gateway.rules.model import Database

Headers = list[tuple[str, str]]

ALLOW_ORIGIN = "access-control-allow-origin"
ALLOW_CREDENTIALS = "access-control-allow-credentials"
ALLOW_METHODS = "access-control-allow-methods"
ALLOW_HEADERS = "access-control-allow-headers"
EXPOSE_HEADERS = "access-control-expose-headers"
GRANTS = frozenset(
    {ALLOW_ORIGIN, ALLOW_CREDENTIALS, ALLOW_METHODS, ALLOW_HEADERS, EXPOSE_HEADERS,
     "access-control-max-age", "access-control-allow-private-network"}
)  # fmt: skip
"""Every response header that lets another origin read or send something."""
NEVER_BY_WILDCARD = frozenset({"authorization"})
"""Request headers that ``Access-Control-Allow-Headers: *`` does not allow (Fetch standard)."""
CORS_MODES = frozenset({"cors", "websocket"})
"""``Sec-Fetch-Mode`` values of requests whose answer another origin may read."""


class Requester(enum.Enum):
    """Who sent a request, judged by its ``Origin`` (see the module docstring)."""

    SAME = "same"
    DATABASE = "database"
    SIBLING = "sibling"
    FOREIGN = "foreign"


PROXIED = frozenset({Requester.DATABASE, Requester.SIBLING})
"""Requesters that are pages of the proxy: CORS grants and preflights are for them alone."""
VENDOR_CREDENTIALS = frozenset({Requester.SAME, Requester.DATABASE})
"""Requesters whose CORS requests reach the vendor with the session's cookies and headers."""


@dataclass(frozen=True, slots=True)
class CorsRequest:
    """What one request says about CORS."""

    requester: Requester = Requester.SAME
    origin: str = ""
    """``Origin`` as the browser sent it (a proxied origin for ``PROXIED`` requesters)."""
    mode: str = ""
    """``Sec-Fetch-Mode``, lower case (``websocket`` for every WebSocket handshake); empty
    where the client does not send it."""
    preflight: bool = False
    method: str = ""
    """A preflight's ``Access-Control-Request-Method``."""
    headers: tuple[str, ...] = ()
    """A preflight's ``Access-Control-Request-Headers``, lower case."""

    @property
    def cors(self) -> bool:
        """A request whose answer another origin reads (a CORS fetch, preflight, WebSocket)."""
        return self.preflight or self.mode in CORS_MODES

    @property
    def vendor_credentials(self) -> bool:
        """Whether the vendor gets the session's cookies and ``AddUserHeader`` headers: not on
        preflights (a browser sends none), not on a sibling's or a foreign page's CORS
        requests. Navigations and plain subresources keep them, as before."""
        if self.preflight:
            return False
        return not self.cors or self.requester in VENDOR_CREDENTIALS

    @property
    def refused(self) -> bool:
        """The gateway answers 403 itself: a preflight or a WebSocket that no page of the proxy
        sent (a WebSocket has no CORS: whoever opens one reads it)."""
        if self.preflight:
            return self.requester not in PROXIED
        return self.mode == "websocket" and self.requester is Requester.FOREIGN


SAME_ORIGIN = CorsRequest()


def preflight_method(method: str, headers: Mapping[str, str]) -> str:
    """The method a CORS preflight asks about; empty when the request is not one (a
    preflight is ``OPTIONS`` with ``Access-Control-Request-Method`` and ``Origin``, and no
    body)."""
    if method != "OPTIONS" or not headers.get("Origin"):
        return ""
    if headers.get("Content-Length", "0").strip() != "0" or "Transfer-Encoding" in headers:
        return ""
    return headers.get("Access-Control-Request-Method", "").strip()


def requester(origin: str, page: Origin, database: Database, index: HostIndex) -> Requester:
    """Who sent a request with this ``Origin`` to ``page`` (a vendor origin of ``database``)."""
    text = origin.strip().lower()
    if not text:
        return Requester.SAME
    target = index.target
    scheme = f"{target.scheme}://"
    if not text.startswith(scheme) or not text.endswith(target.port_suffix):
        return Requester.FOREIGN  # "null", another scheme or port, anything malformed
    host = text[len(scheme) : len(text) - len(target.port_suffix)]
    if not host.endswith("." + target.proxy_domain) or any(c in host for c in ":/@?#\\"):
        return Requester.FOREIGN
    vendor = index.hostmap.origin_of(host)
    if vendor is None:
        return Requester.FOREIGN  # the login host, or no proxied name
    if vendor == page:
        return Requester.SAME
    allowed = index.ruleset.allows(vendor)
    if allowed is None:
        return Requester.FOREIGN
    return Requester.DATABASE if allowed.database is database else Requester.SIBLING


def cors_request(
    method: str, headers: Mapping[str, str], page: Origin, database: Database, index: HostIndex
) -> CorsRequest:
    """What the request with ``method`` and ``headers`` to ``page`` says about CORS."""
    origin = headers.get("Origin", "")
    who = requester(origin, page, database, index)
    asked = preflight_method(method, headers)
    if who is Requester.SAME and not asked:
        return SAME_ORIGIN  # the common case: one object for every same-origin request
    listed = headers.get("Access-Control-Request-Headers", "") if asked else ""
    # A WebSocket handshake is one whatever the browser's age (Sec-Fetch-Mode is newer).
    socket = headers.get("Upgrade", "").strip().lower() == "websocket"
    return CorsRequest(
        requester=who,
        origin=origin.strip(),
        mode="websocket" if socket else headers.get("Sec-Fetch-Mode", "").strip().lower(),
        preflight=bool(asked),
        method=asked,
        headers=tuple(h.strip().lower() for h in listed.split(",") if h.strip()),
    )


def _tokens(value: str) -> list[str]:
    return [token.strip() for token in value.split(",") if token.strip()]


def _methods(value: str, request: CorsRequest, headers: Headers) -> str:
    """``*`` means any method only without credentials: the one the preflight asked for."""
    return ", ".join(request.method if t == "*" and request.method else t for t in _tokens(value))


def _allowed_headers(value: str, request: CorsRequest, headers: Headers) -> str:
    """``*`` means any header but ``Authorization``, and only without credentials: the headers
    the preflight asked for, less those."""
    out: list[str] = []
    for token in _tokens(value):
        wild = [h for h in request.headers if h not in NEVER_BY_WILDCARD]
        for name in wild if token == "*" else [token]:
            if name.lower() not in (o.lower() for o in out):
                out.append(name)
    return ", ".join(out)


def _exposed(value: str, request: CorsRequest, headers: Headers) -> str:
    """``*`` means every response header only without credentials: the response's own."""
    names = [n for n, _ in headers if n.lower() not in GRANTS and n.lower() != "set-cookie"]
    out: list[str] = []
    for token in _tokens(value):
        for name in names if token == "*" else [token]:
            if name.lower() not in (o.lower() for o in out):
                out.append(name)
    return ", ".join(out)


WILDCARDS: Mapping[str, Callable[[str, CorsRequest, Headers], str]] = {
    ALLOW_METHODS: _methods,
    ALLOW_HEADERS: _allowed_headers,
    EXPOSE_HEADERS: _exposed,
}
"""Grant headers whose ``*`` a credentialed request takes literally, and what it stands for."""


def _vary_origin(headers: Headers) -> Headers:
    """``Vary`` with ``Origin`` in it: the answer depends on who asks."""
    for i, (name, value) in enumerate(headers):
        if name.lower() == "vary":
            tokens = [t.lower() for t in _tokens(value)]
            if "origin" in tokens or "*" in tokens:
                return headers
            headers[i] = (name, f"{value}, Origin" if value.strip() else "Origin")
            return headers
    headers.append(("Vary", "Origin"))
    return headers


def _granted(headers: Headers, request: CorsRequest) -> bool:
    """Whether the vendor's answer (mapped by ``headers.py``) lets the requester read: ``*``,
    or the requester's own proxied origin."""
    for name, value in headers:
        if name.lower() == ALLOW_ORIGIN:
            allowed = value.strip().lower()
            return allowed == "*" or allowed == request.origin.lower()
    return False


def cors_response(headers: Headers, request: CorsRequest) -> Headers:
    """The response headers (already mapped by ``headers.py``) as this requester gets them."""
    vendor_said = any(name.lower() == ALLOW_ORIGIN for name, _ in headers)
    who = request.requester
    if who is Requester.SAME or (who in PROXIED and not request.cors):
        return _vary_origin(headers) if vendor_said else headers
    granted = who in PROXIED and _granted(headers, request)
    out: Headers = []
    for name, value in headers:
        key = name.lower()
        if key not in GRANTS:
            out.append((name, value))
        elif granted and key in WILDCARDS:
            new = WILDCARDS[key](value, request, headers)
            if new:
                out.append((name, new))
        elif granted and key not in (ALLOW_ORIGIN, ALLOW_CREDENTIALS):
            out.append((name, value))
    if granted:
        out += [("Access-Control-Allow-Origin", request.origin),
                ("Access-Control-Allow-Credentials", "true")]  # fmt: skip
    return _vary_origin(out) if vendor_said or granted else out
