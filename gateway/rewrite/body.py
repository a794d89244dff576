"""Streaming body rewriters: ``feed(chunk) -> bytes`` and ``flush() -> bytes``, pure.

Bodies are rewritten as bytes, so nothing outside a URL is ever decoded or re-encoded. The scan
in ``urlscan`` (C where it was built, else its Python reference) finds every place a URL can
start (``https://``, ``//``, ``https:\\/\\/``, ``https%3A%2F%2F``, HTML entities ...) and looks
the prefix up in a dict; a big alternation of host names would be 10-100 times slower.
``<script>``, ``<link>`` and ``<meta>`` tags up to ``MAX_TAG`` bytes are matched whole so that
``integrity``, ``crossorigin`` and ``<meta>`` CSP can be handled, and so are ``<img>``,
``<video>`` and ``<audio>`` tags with a ``crossorigin`` attribute (``gateway.rewrite.crossorigin``;
found in the same pass as the others).

Hosts from HJ/DJ rules are rewritten wherever they appear. Hosts from H/D rules are rewritten
only in URL positions: URL-bearing attributes, CSS ``url()`` and ``@import``, meta refresh. That
is decided by looking back at most ``HISTORY`` bytes, never further.

Streaming equals one-shot: every decision depends on at most ``MAX_MATCH`` bytes after a match
start and ``HISTORY`` bytes before it, so the rewriter holds back ``TAIL`` bytes (more than
``MAX_MATCH``) of every chunk and keeps ``HISTORY`` bytes of what it has passed on.
"""

from __future__ import annotations

import enum
import re
from bisect import bisect_left
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.bounded import remember
from gateway.hostmap import DEFAULT_PORTS, Origin
from gateway.rewrite.crossorigin import credentialed
from gateway.rewrite.csp import rewrite_csp
from gateway.rewrite.target import HostIndex
from gateway.rewrite.urlscan import SCHEME_BEFORE, Edit, Scan, match_at, scan, splice, tag_starts
from gateway.rules.model import FindReplace, MimeAction, MimeFilter

MAX_TAG = 1024
MAX_MATCH = MAX_TAG + 2 + len(b"<script")
TAIL = MAX_MATCH + 64
HISTORY = 1024

KEEP_MARK = b"\x00carrel-keep\x00"
"""What ``^A`` becomes: the host right after it is left alone (EZproxy's ^A)."""

TAG_PATTERN = re.compile(rb"<(?P<tag>script|link|meta)\b[^<>]{0,%d}>" % MAX_TAG, re.IGNORECASE)
MEDIA_PATTERN = re.compile(rb"<(?P<tag>img|video|audio)\b[^<>]{0,%d}>" % MAX_TAG, re.IGNORECASE)
"""Tags matched whole only when ``tag_starts`` saw a ``crossorigin`` in them."""

WEBSOCKET_ORIGINS = {"ws": "http", "wss": "https"}
"""The http(s) origin whose rules a WebSocket URL goes by: a socket to ``wss://host`` is the
page ``https://host``'s (RFC 6455 4.1), so it is proxied where that origin is."""
WEBSOCKET_SCHEMES = {"http": b"ws", "https": b"wss"}
"""The WebSocket scheme of the proxy's own scheme: ``wss`` when patrons reach it over https."""

_MEMO_LIMIT = 65536
"""Distinct URL prefixes remembered per rule set (bounded, like every buffer here)."""


def _first(hit: Edit) -> int:
    return hit[0]


URL_ATTRIBUTES = (
    "href", "src", "action", "formaction", "poster", "data", "background", "cite", "longdesc",
    "manifest", "icon", "codebase", "usemap", "profile", "srcset", "imagesrcset", "xlink:href",
    "ping", "lowsrc", "dynsrc", "content-src",
)  # fmt: skip
"""HTML attributes whose value is a URL (or, for srcset, a list of them)."""

# What comes right before a URL in a URL position, written backwards: the check reads the bytes
# before a match in reverse, so that it is one anchored match instead of a search.
_QUOTE_EQ = rb"[\"']?\s*=\s*"
_ATTR_CONTEXT = _QUOTE_EQ + rb"(?:%s)(?![a-z0-9_])" % b"|".join(
    re.escape(a[::-1].encode()) for a in URL_ATTRIBUTES
)
_CSS_CONTEXT = rb"[\"']?\s*\(lru|[\"']?\s+tropmi@"
_REFRESH_CONTEXT = _QUOTE_EQ + rb"lru\s*[;,]"
_XML_TEXT_CONTEXT = rb"\s*>(?:knil|col|lru|diug|di|iru)<"
_SRCSET_LIST = re.compile(rb"\s*,[^\"'<>]*[\"']\s*=\s*tescrs(?:egami)?(?![a-z0-9_])", re.I)
_INTEGRITY = re.compile(rb"\s+integrity\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+)", re.IGNORECASE)
_CSP_META = re.compile(rb"http-equiv\s*=\s*[\"']?content-security-policy", re.IGNORECASE)
_CONTENT_ATTR = re.compile(rb"(\bcontent\s*=\s*)(\"[^\"]*\"|'[^']*')", re.IGNORECASE)
_CONTEXT_WINDOW = 96
_CONTEXT_ENDS = b"=\"'( \t\r\n,>"
"""The last byte of every URL-position context above: anything else is a quick no."""


class Mode(enum.Enum):
    """How a body is rewritten, chosen from its content type (and MimeFilter rules)."""

    HTML = "html"
    CSS = "css"
    JAVASCRIPT = "javascript"
    JSON = "json"
    XML = "xml"
    PASS = "pass"


_HTML_CONTEXT = b"|".join((_ATTR_CONTEXT, _CSS_CONTEXT, _REFRESH_CONTEXT))
_CONTEXTS: dict[Mode, re.Pattern[bytes] | None] = {
    Mode.HTML: re.compile(rb"(?:%s)" % _HTML_CONTEXT, re.I),
    Mode.CSS: re.compile(rb"(?:%s)" % _CSS_CONTEXT, re.I),
    Mode.XML: re.compile(rb"(?:%s|%s)" % (_ATTR_CONTEXT, _XML_TEXT_CONTEXT), re.I),
    Mode.JAVASCRIPT: None,
    Mode.JSON: None,
}  # fmt: skip
"""Where H/D hosts count as URLs, per mode (None: nowhere, only HJ/DJ hosts are rewritten);
each is matched against the bytes before the URL, reversed."""

_TYPES: dict[str, Mode] = {
    "text/html": Mode.HTML,
    "application/xhtml+xml": Mode.HTML,
    "text/css": Mode.CSS,
    "text/javascript": Mode.JAVASCRIPT,
    "application/javascript": Mode.JAVASCRIPT,
    "application/x-javascript": Mode.JAVASCRIPT,
    "application/ecmascript": Mode.JAVASCRIPT,
    "text/ecmascript": Mode.JAVASCRIPT,
    "application/json": Mode.JSON,
    "text/json": Mode.JSON,
    "application/ld+json": Mode.JSON,
    "text/xml": Mode.XML,
    "application/xml": Mode.XML,
    "image/svg+xml": Mode.XML,
    "application/rss+xml": Mode.XML,
    "application/atom+xml": Mode.XML,
}
"""Content types that carry URLs, and how to rewrite them; everything else passes untouched."""

_MIME_FILTER_ACTIONS = {
    MimeAction.JAVASCRIPT: Mode.JAVASCRIPT, MimeAction.HTML: Mode.HTML, MimeAction.CSS: Mode.CSS,
    MimeAction.JSON: Mode.JSON, MimeAction.XML: Mode.XML, MimeAction.NONE: Mode.PASS,
    MimeAction.TEXT: Mode.JAVASCRIPT,
}  # fmt: skip


def choose_mode(content_type: str, url: str = "", filters: Sequence[MimeFilter] = ()) -> Mode:
    """The rewriting mode for a response of ``content_type`` fetched from ``url``."""
    mime = content_type.split(";")[0].strip().lower()
    for rule in filters:
        if re.fullmatch(rule.mime, mime, re.IGNORECASE) and re.search(rule.url, url):
            return _MIME_FILTER_ACTIONS[rule.action]
    if mime in _TYPES:
        return _TYPES[mime]
    if mime.endswith("+json"):
        return Mode.JSON
    if mime.endswith("+xml"):
        return Mode.XML
    return Mode.PASS


class BodyRewriter(Protocol):
    """Every body transform: bytes in, bytes out, and whatever was held back at the end."""

    def feed(self, chunk: bytes) -> bytes:
        """Take the next chunk; return what can be passed on now."""
        ...

    def flush(self) -> bytes:
        """Return everything still held back; the rewriter is then done."""
        ...


class Passthrough:
    """Leaves bytes exactly as they are (images, PDFs, fonts, unknown types)."""

    def feed(self, chunk: bytes) -> bytes:
        """Pass the chunk on."""
        return chunk

    def flush(self) -> bytes:
        """Nothing is held back."""
        return b""


class Chain:
    """Stages in order: what one passes on, the next one takes."""

    def __init__(self, stages: Sequence[BodyRewriter]) -> None:
        self.stages = list(stages)

    def feed(self, chunk: bytes) -> bytes:
        """Run the chunk through every stage."""
        for stage in self.stages:
            chunk = stage.feed(chunk) if chunk else chunk
        return chunk

    def flush(self) -> bytes:
        """Flush the stages in order, each flush going through the stages after it."""
        data = b""
        for stage in self.stages:
            data = (stage.feed(data) if data else b"") + stage.flush()
        return data


class _Scanner:
    """Streams hits in order; subclasses say where they are and what replaces them."""

    def __init__(self, tail: int, history: int) -> None:
        self.tail = tail
        self.history = history
        self._buf = b""
        self._pos = 0

    def hits(self, buf: bytes, start: int, limit: int) -> list[Edit]:
        """Non-overlapping hits starting in ``[start, limit)``, leftmost first."""
        raise NotImplementedError

    def _run(self, final: bool) -> bytes:
        buf = self._buf
        start = self._pos
        limit = len(buf) if final else len(buf) - self.tail
        if limit <= start:
            return b""
        hits = self.hits(buf, start, limit)
        resume = max(hits[-1][1], limit) if hits else limit  # past the last hit looked at
        out = splice(buf, start, resume, hits)
        keep_from = max(0, resume - self.history)
        self._buf = buf[keep_from:]
        self._pos = resume - keep_from
        return out

    def feed(self, chunk: bytes) -> bytes:
        """Take the next chunk; return what can be passed on now."""
        self._buf += chunk
        return self._run(final=False)

    def flush(self) -> bytes:
        """Return everything still held back."""
        out = self._run(final=True)
        self._buf, self._pos = b"", 0
        return out


class UrlRewriter(_Scanner):
    """Maps every proxied URL in a body to its proxied form, leaving all other bytes alone."""

    def __init__(
        self, index: HostIndex, page: Origin, mode: Mode, drop_csp: bool = False, scan: Scan = scan
    ) -> None:
        super().__init__(TAIL, HISTORY)
        self.scan = scan  # the C accelerator where it was built, else its Python reference
        self.index = index
        self.page = page
        self.mode = mode
        self.context = _CONTEXTS.get(mode)
        self.attributes = mode in (Mode.HTML, Mode.XML)  # H hosts after ``href=`` are URLs
        self.drop_csp = drop_csp
        target = index.target
        self._scheme = target.scheme.encode()
        self._ws_scheme = WEBSOCKET_SCHEMES[target.scheme]
        self._memo = index.replacements.setdefault(page.scheme, {})
        self._port = target.port_suffix[1:].encode()

    def _in_url_position(self, buf: bytes, start: int) -> bool:
        if self.context is None or (start > 0 and buf[start - 1] not in _CONTEXT_ENDS):
            return False
        back = buf[max(0, start - _CONTEXT_WINDOW) : start][::-1]
        if self.context.match(back):
            return True
        if self.mode is Mode.HTML and back.lstrip()[:1] == b",":
            return bool(_SRCSET_LIST.match(buf[max(0, start - HISTORY) : start][::-1]))
        return False

    def url_hits(self, buf: bytes, start: int, limit: int) -> list[Edit]:
        """Every proxied URL starting in ``[start, limit)`` with its replacement, in order."""
        ends = None if self.context is None else _CONTEXT_ENDS
        hits, maybe, unknown = self.scan(buf, start, limit, self._memo, ends, self.attributes)
        found: list[Edit] = list(hits)
        for begin, end, new in maybe:
            if self._in_url_position(buf, begin):
                found.append((begin, end, new))
        for begin, at, end in unknown:
            entry = remember(self._memo, buf[begin:end], self._replacement(buf, begin, at),
                             _MEMO_LIMIT)  # fmt: skip
            if entry is not None and (entry[1] or self._in_url_position(buf, begin)):
                found.append((begin, end, entry[0]))
        if maybe or unknown:
            found.sort()  # by start: no two hits start at the same byte
        return found

    def _replacement(self, buf: bytes, begin: int, at: int) -> tuple[bytes, bool] | None:
        """The proxied form of the URL prefix at ``begin`` (slashes at ``at``) and whether it
        is an HJ/DJ host; None if the rules do not proxy it."""
        match = match_at(buf, at)
        assert match is not None  # scan found it there
        scheme_match = SCHEME_BEFORE.match(buf[begin:at]) if begin < at else None
        written = scheme_match["scheme"].decode().lower() if scheme_match else self.page.scheme
        scheme = WEBSOCKET_ORIGINS.get(written, written)
        port_text = match["port"]
        # ":" or "%3A" then the digits (lstrip(b":%3aA") would eat a port's leading 3s too).
        if port_text:
            port = int(port_text[1:] if port_text[:1] == b":" else port_text[3:])
        else:
            port = DEFAULT_PORTS[scheme]
        mapped = self.index.lookup(scheme, match["host"].decode(), port)
        if mapped is None:
            return None
        slashes = match["slashes"]
        proxy_scheme = self._scheme if scheme == written else self._ws_scheme
        parts = [proxy_scheme, scheme_match["colon"]] if scheme_match else []
        parts += [slashes, mapped.host.encode()]
        if self._port:
            parts += [b"%3A" if slashes[:1] == b"%" else b":", self._port]
        return b"".join(parts), mapped.javascript

    def _span(self, data: bytes) -> bytes | None:
        """The URLs inside a matched tag rewritten, or None when none changed."""
        # find, not ``in``: on bytes ``in`` first tries its operand as an integer (and raises
        # and clears an error for it), which costs more than the search on a tag's bytes.
        if data.find(b"/") < 0 and data.find(b"%") < 0 and data.find(b"&") < 0:
            return None  # no URL form can be in it
        out: list[bytes] = []
        last = 0
        for begin, end, new in self.url_hits(data, 0, len(data)):
            out += [data[last:begin], new or b""]
            last = end
        if not out:
            return None
        out.append(data[last:])
        return b"".join(out)

    def _tag(self, match: re.Match[bytes]) -> bytes | None:
        tag = match.group()
        name = match["tag"].lower()
        if name == b"meta" and _CSP_META.search(tag):
            return self._csp_meta(tag)
        new = self._span(tag)
        if new is not None and name in (b"script", b"link"):
            new = _INTEGRITY.sub(b"", new)  # the browser would refuse the rewritten file
        # Across proxied hosts only a credentialed CORS request finds the session.
        return credentialed(new or tag, name, new is not None) or new

    def _csp_meta(self, tag: bytes) -> bytes:
        if self.drop_csp:
            return _CONTENT_ATTR.sub(b'\\1""', tag)

        def policy(match: re.Match[bytes]) -> bytes:
            quote, value = match[2][:1], match[2][1:-1].decode("latin-1")
            new = rewrite_csp(value, self.index, self.page.scheme).encode("latin-1")
            return match[1] + quote + new + quote

        return _CONTENT_ATTR.sub(policy, tag)

    def hits(self, buf: bytes, start: int, limit: int) -> list[Edit]:
        """URLs, ^A marks and (in HTML) script/link/meta tags, leftmost first."""
        found = self.url_hits(buf, start, limit)
        marks: list[Edit] = []
        # A NUL byte first: one memchr, where a search for the whole mark costs as much as the scan.
        at = buf.find(KEEP_MARK, start, limit) if buf.find(0, start, limit) >= 0 else -1
        while at >= 0:
            marks.append((at, at + len(KEEP_MARK), b""))
            at = buf.find(KEEP_MARK, at + 1, limit)
        tags: list[Edit] = []
        if self.mode is Mode.HTML:
            for at in tag_starts(buf, start, limit):  # a prefilter: the patterns decide
                tag = TAG_PATTERN.match(buf, at) or MEDIA_PATTERN.match(buf, at)
                if tag is not None:
                    tags.append((tag.start(), tag.end(), self._tag(tag)))
        if marks:
            return _outermost(sorted(found + marks + tags, key=_first), start)
        return _with_tags(found, tags) if tags else found


def _outermost(hits: list[Edit], start: int) -> list[Edit]:
    """Sorted hits without those inside an earlier one (URLs inside a tag go with the tag)."""
    end = start
    kept = []
    for hit in hits:
        if hit[0] >= end:
            end = hit[1]
            kept.append(hit)
    return kept


def _with_tags(urls: list[Edit], tags: list[Edit]) -> list[Edit]:
    """``_outermost`` for sorted URL hits and sorted tags, which never overlap one another (a
    URL match holds no ``<``): only URL hits inside a tag go, found by bisection."""
    begins = [hit[0] for hit in urls]
    kept: list[Edit] = []
    done = 0
    for tag in tags:
        inside = bisect_left(begins, tag[0], done)
        kept += urls[done:inside]
        kept.append(tag)
        done = bisect_left(begins, tag[1], inside)
    kept += urls[done:]
    return kept


@dataclass(frozen=True)
class Tokens:
    """Values for EZproxy's Replace tokens (^D ^H ^L ^P host^ ^S host^ ^A)."""

    index: HostIndex

    def expand(self, text: str) -> bytes:
        """``Replace`` text with its tokens filled in."""
        target = self.index.target

        def host(scheme: str) -> Callable[[re.Match[str]], str]:
            def mapped(match: re.Match[str]) -> str:
                found = self.index.lookup(scheme, match[1])
                return found.host if found else match[1]

            return mapped

        text = re.sub(r"\^P([^\^]+)\^", host("http"), text, flags=re.IGNORECASE)
        text = re.sub(r"\^S([^\^]+)\^", host("https"), text, flags=re.IGNORECASE)
        simple = {"d": target.proxy_domain, "h": target.login_host, "l": "." + target.proxy_domain}
        text = re.sub(r"\^([DHLdhl])", lambda m: simple[m[1].lower()], text)
        return text.encode("utf-8").replace(b"^A", KEEP_MARK).replace(b"^a", KEEP_MARK)


class FindReplaceRewriter(_Scanner):
    """EZproxy's Find/Replace pairs, literal, applied in one pass before URL rewriting."""

    def __init__(self, pairs: Sequence[FindReplace], tokens: Tokens) -> None:
        self.table: dict[bytes, bytes] = {}
        for pair in pairs:
            self.table.setdefault(pair.find.encode("utf-8"), tokens.expand(pair.replace))
        finds = sorted(self.table, key=len, reverse=True)  # longest first at a position
        self.pattern = re.compile(b"|".join(re.escape(f) for f in finds))
        super().__init__(max(map(len, finds)), 0)

    def hits(self, buf: bytes, start: int, limit: int) -> list[Edit]:
        """Every Find with its Replace text, leftmost first."""
        found: list[Edit] = []
        for match in self.pattern.finditer(buf, start):
            if match.start() >= limit:
                break
            found.append((match.start(), match.end(), self.table[match.group()]))
        return found


def body_rewriter(
    index: HostIndex,
    page_url: str,
    content_type: str,
    find_replace: Sequence[FindReplace] = (),
    mime_filters: Sequence[MimeFilter] = (),
    drop_csp: bool = False,
    page: Origin | None = None,
) -> BodyRewriter:
    """The rewriter for one response body: Find/Replace, then URLs; or passthrough.
    ``page`` is ``page_url``'s origin, where the caller has it already."""
    page = page or Origin.from_url(page_url)
    mode = choose_mode(content_type, page_url, mime_filters)
    if mode is Mode.PASS or page is None:
        return Passthrough()
    urls = UrlRewriter(index, page, mode, drop_csp=drop_csp)
    if not find_replace:
        return urls
    return Chain([FindReplaceRewriter(find_replace, Tokens(index)), urls])
