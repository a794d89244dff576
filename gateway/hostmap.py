"""Origin <-> proxied host name, pure.

``https://www.jstor.org`` is served as ``www-jstor-org.<proxy_domain>``: a dot becomes ``-`` and a
literal ``-`` becomes ``--``. Host labels never start or end with ``-``, so a dot is never next to
a hyphen and the encoded host holds only runs of one hyphen (a dot) or of an even number (that
many halved). A run of exactly three hyphens is therefore free: it marks a scheme other than https
or a non-default port, as ``---http``, ``---8443`` or ``---http-8080``. Every origin has exactly
one label and decoding is checked by encoding again, so two origins never share a label.

``ProxyHostnameEdit`` rules (EZproxy's PHE) replace part of a host with a shorter label text; the
replacement is reversed on decoding and verified by the same round trip.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from gateway.bounded import remember

DEFAULT_PORTS = {"http": 80, "https": 443}
ORIGINS_REMEMBERED = 4096
# Underscores are not DNS-valid but real vendor hosts use them and browsers accept them.
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
"""A label of a vendor's host: ``_`` occurs in real ones (DNS allows it)."""
_NAME_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")
"""A label of a name the gateway answers to: letters, digits and hyphens only, as host names
(RFC 1123) and certificates for them must be."""
_PROXY_LABEL = re.compile(r"(?!-)[a-z0-9_-]+(?<!-)")
_MARKER = re.compile(r"(?<!-)---(?!-)")
_HYPHEN_RUNS = re.compile(r"-+")
_PORT = r"[1-9][0-9]{0,4}"
_MARKER_SUFFIX = re.compile(rf"(?:(?P<http>http)(?:-(?P<hport>{_PORT}))?|(?P<sport>{_PORT}))")


@dataclass(frozen=True, order=True)
class Origin:
    """A scheme, host and port, lower-case and with the default port filled in."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, scheme: str, host: str, port: int | None = None) -> Origin:
        """Build a normalised origin (port defaults from the scheme)."""
        scheme = scheme.lower()
        return cls(scheme, host.lower().rstrip("."), port or DEFAULT_PORTS[scheme])

    @classmethod
    def from_url(cls, url: str) -> Origin | None:
        """The origin of an absolute http(s) URL, or None when it has none or is malformed."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:
            return None
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS or not parts.hostname or not valid_host(parts.hostname):
            return None
        return cls.of(scheme, parts.hostname, port)

    @property
    def default_port(self) -> bool:
        """Whether the port is the scheme's default."""
        return DEFAULT_PORTS[self.scheme] == self.port

    def url(self) -> str:
        """``scheme://host[:port]``, the port only when it is not the default."""
        port = "" if self.default_port else f":{self.port}"
        return f"{self.scheme}://{self.host}{port}"


def valid_host(host: str, underscore: bool = True) -> bool:
    """A DNS host name of at least two labels (IPv4 literals included), lower or upper case;
    ``underscore=False`` for names the gateway itself answers to."""
    labels = host.lower().rstrip(".").split(".")
    pattern = _HOST_LABEL if underscore else _NAME_LABEL
    return len(labels) >= 2 and all(pattern.fullmatch(label) for label in labels)


def login_host(proxy_domain: str) -> str:
    """The gateway's own host name under ``proxy_domain``."""
    return f"login.{proxy_domain}"


@dataclass(frozen=True)
class HostnameEdit:
    """One ``ProxyHostnameEdit find replace``: ``find`` may be anchored with ``^`` and ``$``."""

    find: str
    replace: str

    @property
    def literal(self) -> str:
        """The text to find, without its anchors."""
        return self.find.removeprefix("^").removesuffix("$")

    def span(self, host: str) -> tuple[int, int] | None:
        """Where ``find`` matches in ``host``, honouring the anchors."""
        text = self.literal.lower()
        if not text:
            return None
        if self.find.startswith("^"):
            start = 0 if host.startswith(text) else -1
        elif self.find.endswith("$"):
            start = len(host) - len(text) if host.endswith(text) else -1
        else:
            start = host.find(text)
        if start < 0 or (self.find.endswith("$") and start + len(text) != len(host)):
            return None
        return start, start + len(text)


def _encode_host(host: str) -> str:
    return host.replace("-", "--").replace(".", "-")


def _decode_host(text: str) -> str | None:
    out: list[str] = []
    pos = 0
    for run in _HYPHEN_RUNS.finditer(text):
        out.append(text[pos : run.start()])
        n = len(run.group())
        if n == 1:
            out.append(".")
        elif n % 2 == 0:
            out.append("-" * (n // 2))
        else:
            return None
        pos = run.end()
    out.append(text[pos:])
    return "".join(out)


def _edited_host(host: str, edits: Sequence[HostnameEdit]) -> str:
    for edit in edits:
        span = edit.span(host)
        if span:
            start, end = span
            return _encode_host(host[:start]) + edit.replace + _encode_host(host[end:])
    return _encode_host(host)


def encode(origin: Origin, edits: Sequence[HostnameEdit] = ()) -> str:
    """The single label that stands for ``origin`` under the proxy domain."""
    label = _edited_host(origin.host, edits)
    if origin.scheme == "https" and origin.default_port:
        return label
    if origin.scheme == "https":
        return f"{label}---{origin.port}"
    if origin.default_port:
        return f"{label}---http"
    return f"{label}---http-{origin.port}"


def _split_marker(label: str) -> tuple[str, str, int | None] | None:
    """Split a label into (host text, scheme, port); None when the marker is malformed."""
    found = _MARKER.search(label)
    if found is None:
        return label, "https", None
    head, tail = label[: found.start()], label[found.end() :]
    match = _MARKER_SUFFIX.fullmatch(tail)
    if match is None:
        return None
    if match["http"]:
        port = int(match["hport"]) if match["hport"] else None
        return head, "http", port
    return head, "https", int(match["sport"])


def _candidates(text: str, edits: Sequence[HostnameEdit]) -> list[str]:
    """Hosts ``text`` may stand for, the edited readings first: ``x-seh`` is both ``x.seh`` and,
    under ``ProxyHostnameEdit search.ebscohost.com$ seh``, ``x.search.ebscohost.com``; the
    librarian's edit is what was meant (a plain reading would make the edited host unreachable)."""
    hosts: list[str] = []
    for edit in edits:
        start = text.find(edit.replace) if edit.replace else -1
        while start >= 0:
            before = _decode_host(text[:start])
            after = _decode_host(text[start + len(edit.replace) :])
            if before is not None and after is not None:
                hosts.append(before + edit.literal.lower() + after)
            start = text.find(edit.replace, start + 1)
    plain = _decode_host(text)
    if plain is not None:
        hosts.append(plain)
    return hosts


def decode(label: str, edits: Sequence[HostnameEdit] = ()) -> Origin | None:
    """The origin a label stands for, or None when no origin encodes to exactly this label.

    This is syntax only: whether the rules allow the origin is the RuleSet's question.
    """
    if not _PROXY_LABEL.fullmatch(label):
        return None
    parts = _split_marker(label)
    if parts is None:
        return None
    text, scheme, port = parts
    for host in _candidates(text, edits):
        if not valid_host(host) or (port is not None and port > 65535):
            continue
        origin = Origin.of(scheme, host, port)
        if encode(origin, edits) == label:
            return origin
    return None


@dataclass(frozen=True)
class HostMap:
    """Proxied host names under one ``proxy_domain``."""

    proxy_domain: str
    edits: tuple[HostnameEdit, ...] = ()
    _origins: dict[str, Origin | None] = field(
        default_factory=dict, init=False, repr=False, compare=False, hash=False
    )
    """Host header -> origin: decoding a label costs more than the rest of routing."""

    def proxied_host(self, origin: Origin) -> str:
        """``www-jstor-org.proxy.library.org`` for ``https://www.jstor.org``."""
        return f"{encode(origin, self.edits)}.{self.proxy_domain}"

    def origin_of(self, hostname: str) -> Origin | None:
        """The origin behind a proxied host name (port and case ignored), syntax only."""
        try:
            return self._origins[hostname]
        except KeyError:
            pass
        name = hostname.lower().rpartition(":")[0] if ":" in hostname else hostname.lower()
        label, dot, domain = name.partition(".")
        origin = decode(label, self.edits) if dot and domain == self.proxy_domain else None
        return remember(self._origins, hostname, origin, ORIGINS_REMEMBERED)
