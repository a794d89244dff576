"""What browsers tell the gateway about hosts a page reached outside the rules (pure).

Two sources: the ``Content-Security-Policy-Report-Only`` header the proxy adds to pages and
workers (``policy``), which allows only the proxy's own hosts, so that every request that leaves
the proxy is reported; and the companion's beacons (``{"hosts": [...]}``). Either way only the
escaped host is kept (with its scheme when the report says it): never a path, a query, the page
or the patron.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from gateway.hostmap import DEFAULT_PORTS, Origin, valid_host
from gateway.rules.ruleset import RuleSet

CSP_REPORT_PATH = "/__carrel/csp-report"
BEACON_PATH = "/__carrel/escaped"
REPORT_GROUP = "carrel-escapes"
"""The Reporting API endpoint name the policy's ``report-to`` names."""
MAX_BEACON_HOSTS = 20
MAX_REPORTS = 100
"""Reports read from one ``application/reports+json`` batch; the rest are ignored."""
MAX_HOST = 253 + 6
"""A DNS name and a ``:port``."""

SCHEMES = {"https": "https", "http": "http", "wss": "https", "ws": "http"}
"""URL schemes an escape can have -> the origin scheme an ``HJ`` line names (a WebSocket is
proxied through its http(s) origin)."""
ALWAYS_ALLOWED = ("'self'", "data:", "blob:", "mediastream:", "filesystem:")
KEYWORDS = ("'unsafe-inline'", "'unsafe-eval'", "'wasm-unsafe-eval'")
"""Allowed so that the policy reports hosts only, never a page's inline scripts or styles."""
_WS = {"https": "wss", "http": "ws"}


class BadReport(ValueError):
    """A body that is no report the gateway reads (the endpoint answers 400)."""


@dataclass(frozen=True, order=True)
class Escaped:
    """One host a page reached outside the rules."""

    host: str
    """Lower-case host name, with ``:port`` when a port is known and not its scheme's default."""
    scheme: str
    """``https`` or ``http`` when the report says it; ``""`` for a beacon's bare host."""

    def origin(self, scheme: str | None = None) -> Origin:
        """The origin this stands for, in ``scheme`` (default: its own, else https)."""
        name, _, port = self.host.partition(":")
        return Origin.of(scheme or self.scheme or "https", name, int(port) if port else None)


def policy(scheme: str, proxy_domain: str, port_suffix: str) -> str:
    """The Report-Only policy: the proxy's hosts (any under ``proxy_domain``, the gateway's
    public scheme and port, and the WebSocket scheme beside it), local schemes and inline code
    allowed, everything else reported to ``CSP_REPORT_PATH``.

    Only fetch directives are named (through ``default-src``): navigations and form targets
    outside the rules leave the proxy by design, as EZproxy's do. Over https the policy also
    names the Reporting API group (``reporting_endpoints``), which Chromium then uses instead
    of ``report-uri``; over plain http (development) Chromium delivers no Reporting API reports
    at all, even on ``localhost``, so there the policy has ``report-uri`` alone."""
    hosts = (
        f"{scheme}://*.{proxy_domain}{port_suffix}",
        f"{_WS[scheme]}://*.{proxy_domain}{port_suffix}",
    )
    sources = " ".join((*ALWAYS_ALLOWED, *hosts, *KEYWORDS))
    value = f"default-src {sources}; report-uri {CSP_REPORT_PATH}"
    return f"{value}; report-to {REPORT_GROUP}" if scheme == "https" else value


def reporting_endpoints() -> str:
    """The ``Reporting-Endpoints`` value that names the policy's ``report-to`` group."""
    return f'{REPORT_GROUP}="{CSP_REPORT_PATH}"'


def escaped_url(url: str) -> Escaped | None:
    """The escape an absolute http(s)/ws(s) URL stands for, or None (``inline``, ``data``, a
    relative or malformed URL)."""
    if not isinstance(url, str) or len(url) > 8192:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = SCHEMES.get(parts.scheme.lower())
    host = (parts.hostname or "").rstrip(".")
    if scheme is None or not host or not valid_host(host):
        return None
    suffix = f":{port}" if port is not None and port != DEFAULT_PORTS[scheme] else ""
    return Escaped(host.lower() + suffix, scheme)


def escaped_host(entry: object) -> Escaped | None:
    """A beacon's entry: ``host``, ``host:port`` or an absolute URL; None when it is none."""
    if not isinstance(entry, str) or not entry or len(entry) > 8192:
        return None
    if "://" in entry:
        return escaped_url(entry)
    if len(entry) > MAX_HOST:
        return None
    name, colon, port = entry.lower().rstrip(".").partition(":")
    if colon and not (port.isdigit() and port.isascii() and 0 < int(port) < 65536):
        return None
    if not valid_host(name.rstrip(".")):
        return None
    return Escaped(f"{name.rstrip('.')}:{int(port)}" if colon else name.rstrip("."), "")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise BadReport("not JSON") from None


def _blocked(reports: Any) -> Iterator[Any]:
    """The blocked URL of each report in a CSP report body, in either format."""
    if isinstance(reports, dict) and isinstance(reports.get("csp-report"), dict):
        yield reports["csp-report"].get("blocked-uri")  # application/csp-report (report-uri)
        return
    if not isinstance(reports, list):
        raise BadReport("neither a csp-report object nor a list of reports")
    for report in reports[:MAX_REPORTS]:  # application/reports+json (report-to)
        if not isinstance(report, dict):
            raise BadReport("a report is not an object")
        body = report.get("body")
        if report.get("type") == "csp-violation" and isinstance(body, dict):
            yield body.get("blockedURL")


def csp_reports(body: bytes) -> list[Escaped]:
    """The escapes in a CSP report body (``application/csp-report`` or
    ``application/reports+json``); ``BadReport`` when it is neither."""
    found = (escaped_url(url) for url in _blocked(_json(body)))
    return _distinct(found)


def beacon(body: bytes) -> list[Escaped]:
    """The escapes in a companion beacon, ``{"hosts": [...]}`` with at most
    ``MAX_BEACON_HOSTS`` entries; ``BadReport`` when it is not that."""
    data = _json(body)
    hosts = data.get("hosts") if isinstance(data, dict) else None
    if not isinstance(hosts, list) or len(hosts) > MAX_BEACON_HOSTS:
        raise BadReport(f'expects {{"hosts": [...]}} with at most {MAX_BEACON_HOSTS} hosts')
    return _distinct(escaped_host(entry) for entry in hosts)


def _distinct(found: Iterable[Escaped | None]) -> list[Escaped]:
    return sorted({e for e in found if e is not None})


def _public_address(host: str) -> bool:
    """False for an address literal the gateway would never connect to; True for a name."""
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        return True


def worth_recording(escaped: Escaped, ruleset: RuleSet, proxy_domain: str) -> bool:
    """Whether a librarian could add ``escaped``: not a host of the proxy itself, not one the
    rules cover already (in either scheme, for a bare host), not excluded by NeverProxy and
    not a private address."""
    name = escaped.origin().host
    if name == proxy_domain or name.endswith("." + proxy_domain):
        return False
    if not _public_address(name) or ruleset.never_proxied(name) is not None:
        return False
    schemes = (escaped.scheme,) if escaped.scheme else ("https", "http")
    return not any(ruleset.allows(escaped.origin(s)) for s in schemes)
