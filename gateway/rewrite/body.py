"""Streaming body rewriters: ``feed(chunk) -> bytes`` and ``flush() -> bytes``, pure.

Bodies are rewritten as bytes, so nothing outside a URL is ever decoded or re-encoded. One regular
expression finds every place a URL can start (``https://``, ``//``, ``https:\\/\\/``,
``https%3A%2F%2F``, HTML entities ...) and the host is looked up in a dict; a big alternation of
host names would be 10-100 times slower. ``<script>``, ``<link>`` and ``<meta>`` tags up to
``MAX_TAG`` bytes are matched whole so that ``integrity`` and ``<meta>`` CSP can be handled.

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
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.hostmap import DEFAULT_PORTS, Origin
from gateway.rewrite.csp import rewrite_csp
from gateway.rewrite.target import HostIndex, Mapped
from gateway.rules.model import FindReplace, MimeFilter

MAX_TAG = 1024
_LABEL = rb"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST = rb"%s(?:\.%s){1,8}" % (_LABEL, _LABEL)
MAX_MATCH = MAX_TAG + 2 + len(b"<script")
TAIL = MAX_MATCH + 64
HISTORY = 1024

KEEP_MARK = b"\x00carrel-keep\x00"
"""What ``^A`` becomes: the host right after it is left alone (EZproxy's ^A)."""

_URL = (
    rb"(?:(?P<scheme>https?)(?P<colon>:|%3a|&#0*58;|&#x0*3a;|&colon;)"
    rb"|(?<![a-z0-9+.:;%/\\_-]))"
    rb"(?P<slashes>//|\\/\\/|%2f%2f|\\u002f\\u002f|(?:&#0*47;|&#x0*2f;|&sol;){2})"
    rb"(?P<host>" + _HOST + rb")"
    rb"(?P<port>(?::|%3a)[0-9]{1,5})?"
    rb"(?![a-z0-9_-])"
)
URL_PATTERN = re.compile(_URL, re.IGNORECASE)
TAG_PATTERN = re.compile(rb"<(?P<tag>script|link|meta)\b[^<>]{0,%d}>" % MAX_TAG, re.IGNORECASE)
KEEP_PATTERN = re.compile(re.escape(KEEP_MARK))
_SCHEME_BEFORE = re.compile(rb"https?(?::|%3a|&#0*58;|&#x0*3a;|&colon;)\Z", re.IGNORECASE)
_SCHEME_REACH = 16
"""How far before a ``//`` the scheme can start (``https&colon;`` is 12 bytes)."""

_SLASH_ANCHORS: tuple[tuple[bytes, tuple[bytes, ...]], ...] = (
    (b"//", (b"//",)),
    (b"\\", (b"\\/\\/", b"\\u002f\\u002f")),
    (b"%", (b"%2f%2f",)),
    (b"&", (b"&#", b"&sol;")),
)
"""Where the ``//`` of every URL form can be, as (byte to search for, what must start there),
in lower case. Searching for one rare byte is far faster than for a longer literal."""
_TAG_START = re.compile(rb"<(?:script|link|meta)")

URL_ATTRIBUTES = (
    "href", "src", "action", "formaction", "poster", "data", "background", "cite", "longdesc",
    "manifest", "icon", "codebase", "usemap", "profile", "srcset", "imagesrcset", "xlink:href",
    "ping", "lowsrc", "dynsrc", "content-src",
)  # fmt: skip
"""HTML attributes whose value is a URL (or, for srcset, a list of them)."""

_ATTR_CONTEXT = rb"\b(?:%s)\s*=\s*[\"']?" % b"|".join(a.encode() for a in URL_ATTRIBUTES)
_CSS_CONTEXT = rb"url\(\s*[\"']?|@import\s+[\"']?"
_REFRESH_CONTEXT = rb"[;,]\s*url\s*=\s*[\"']?"
_XML_TEXT_CONTEXT = rb"<(?:link|loc|url|guid|id|uri)>\s*"
_SRCSET_LIST = re.compile(rb"\b(?:img)?srcset\s*=\s*([\"'])[^\"'<>]*,\s*\Z", re.IGNORECASE)
_INTEGRITY = re.compile(rb"\s+integrity\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+)", re.IGNORECASE)
_CSP_META = re.compile(rb"http-equiv\s*=\s*[\"']?content-security-policy", re.IGNORECASE)
_CONTENT_ATTR = re.compile(rb"(\bcontent\s*=\s*)(\"[^\"]*\"|'[^']*')", re.IGNORECASE)
_CONTEXT_WINDOW = 96


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
    Mode.HTML: re.compile(rb"(?:%s)\Z" % _HTML_CONTEXT, re.I),
    Mode.CSS: re.compile(rb"(?:%s)\Z" % _CSS_CONTEXT, re.I),
    Mode.XML: re.compile(rb"(?:%s|%s)\Z" % (_ATTR_CONTEXT, _XML_TEXT_CONTEXT), re.I),
    Mode.JAVASCRIPT: None,
    Mode.JSON: None,
}  # fmt: skip
"""Where H/D hosts count as URLs, per mode (None: nowhere, only HJ/DJ hosts are rewritten)."""

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
    "javascript": Mode.JAVASCRIPT, "html": Mode.HTML, "css": Mode.CSS, "json": Mode.JSON,
    "xml": Mode.XML, "none": Mode.PASS, "text": Mode.JAVASCRIPT,
}  # fmt: skip


def choose_mode(content_type: str, url: str = "", filters: Sequence[MimeFilter] = ()) -> Mode:
    """The rewriting mode for a response of ``content_type`` fetched from ``url``."""
    mime = content_type.split(";")[0].strip().lower()
    for rule in filters:
        if re.fullmatch(rule.mime, mime, re.IGNORECASE) and re.search(rule.url, url):
            return _MIME_FILTER_ACTIONS.get(rule.action, Mode.JAVASCRIPT)
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


Replacer = Callable[["re.Match[bytes]", bytes], "bytes | None"]


class _Scanner:
    """Streams matches in order; ``replace`` gives new bytes for one, or None (leave as is)."""

    def __init__(self, tail: int, history: int) -> None:
        self.tail = tail
        self.history = history
        self._buf = b""
        self._pos = 0

    def replace(self, match: re.Match[bytes], buf: bytes) -> bytes | None:
        raise NotImplementedError

    def matches(self, buf: bytes, start: int, limit: int) -> Iterator[re.Match[bytes]]:
        """Non-overlapping matches starting in ``[start, limit)``, leftmost first."""
        raise NotImplementedError

    def _run(self, final: bool) -> bytes:
        buf = self._buf
        start = self._pos
        limit = len(buf) if final else len(buf) - self.tail
        if limit <= start:
            return b""
        out: list[bytes] = []
        last = start  # end of the last replaced match: bytes before it are out
        scanned = start  # end of the last match looked at, replaced or not
        for match in self.matches(buf, start, limit):
            scanned = match.end()
            new = self.replace(match, buf)
            if new is not None:
                out.append(buf[last : match.start()])
                out.append(new)
                last = match.end()
        resume = max(scanned, limit)
        out.append(buf[last:resume])
        keep_from = max(0, resume - self.history)
        self._buf = buf[keep_from:]
        self._pos = resume - keep_from
        return b"".join(out)

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

    def __init__(self, index: HostIndex, page: Origin, mode: Mode, drop_csp: bool = False) -> None:
        super().__init__(TAIL, HISTORY)
        self.index = index
        self.page = page
        self.mode = mode
        self.context = _CONTEXTS.get(mode)
        self.drop_csp = drop_csp
        target = index.target
        self._scheme = target.scheme.encode()
        self._port = target.port_suffix[1:].encode()

    def _in_url_position(self, buf: bytes, start: int) -> bool:
        if self.context is None:
            return False
        window = buf[max(0, start - _CONTEXT_WINDOW) : start]
        if self.context.search(window):
            return True
        if self.mode is Mode.HTML and window.rstrip().endswith(b","):
            return bool(_SRCSET_LIST.search(buf[max(0, start - HISTORY) : start]))
        return False

    def _mapped(self, match: re.Match[bytes]) -> Mapped | None:
        raw_scheme = match["scheme"]
        scheme = raw_scheme.decode().lower() if raw_scheme else self.page.scheme
        port_text = match["port"]
        port = int(port_text.lstrip(b":%3aA")) if port_text else DEFAULT_PORTS[scheme]
        return self.index.lookup(scheme, match["host"].decode(), port)

    def _url(self, match: re.Match[bytes], buf: bytes, start: int) -> bytes | None:
        mapped = self._mapped(match)
        if mapped is None:
            return None
        if not mapped.javascript and not self._in_url_position(buf, start):
            return None
        parts = [self._scheme, match["colon"]] if match["scheme"] else []
        slashes = match["slashes"]
        parts += [slashes, mapped.host.encode()]
        if self._port:
            parts += [b"%3A" if slashes[:1] == b"%" else b":", self._port]
        return b"".join(parts)

    def _span(self, data: bytes) -> tuple[bytes, bool]:
        """Rewrite the URLs inside a matched tag; say whether any changed."""
        changed = False

        def one(match: re.Match[bytes]) -> bytes:
            nonlocal changed
            new = self._url(match, data, match.start())
            if new is None:
                return match.group()
            changed = True
            return new

        return URL_PATTERN.sub(one, data), changed

    def _tag(self, match: re.Match[bytes]) -> bytes | None:
        tag = match.group()
        if match["tag"].lower() == b"meta" and _CSP_META.search(tag):
            return self._csp_meta(tag)
        new, changed = self._span(tag)
        if changed and match["tag"].lower() in (b"script", b"link"):
            new = _INTEGRITY.sub(b"", new)  # the browser would refuse the rewritten file
        return new if changed else None

    def _csp_meta(self, tag: bytes) -> bytes:
        if self.drop_csp:
            return _CONTENT_ATTR.sub(b'\\1""', tag)

        def policy(match: re.Match[bytes]) -> bytes:
            quote, value = match[2][:1], match[2][1:-1].decode("latin-1")
            new = rewrite_csp(value, self.index, self.page.scheme).encode("latin-1")
            return match[1] + quote + new + quote

        return _CONTENT_ATTR.sub(policy, tag)

    def matches(self, buf: bytes, start: int, limit: int) -> Iterator[re.Match[bytes]]:
        """URLs, ^A marks and (in HTML) script/link/meta tags, leftmost first.

        Fast literal searches find the few places worth a regular-expression match; the result
        is the same as one ``finditer`` over an alternation, which is 10 times slower.
        """
        low = buf.lower()
        found: list[tuple[int, int, re.Match[bytes]]] = []
        reach = min(len(buf), limit + _SCHEME_REACH)
        for byte, starts in _SLASH_ANCHORS:
            at = low.find(byte, start, reach)
            while at >= 0:
                if low.startswith(starts, at):
                    match = self._url_at(buf, at, start)
                    if match is not None and match.start() < limit:
                        found.append((match.start(), 1, match))
                at = low.find(byte, at + 1, reach)
        if self.mode is Mode.HTML:
            for tag in _TAG_START.finditer(low, start, limit):
                match = TAG_PATTERN.match(buf, tag.start())
                if match is not None:
                    found.append((tag.start(), 0, match))
        at = buf.find(KEEP_MARK, start, limit)
        while at >= 0:
            found.append((at, 0, KEEP_PATTERN.match(buf, at)))  # type: ignore[arg-type]
            at = buf.find(KEEP_MARK, at + 1, limit)
        found.sort(key=lambda item: (item[0], item[1]))
        end = start
        for begin, _, match in found:
            if begin >= end:  # not inside an earlier match
                end = match.end()
                yield match

    @staticmethod
    def _url_at(buf: bytes, anchor: int, start: int) -> re.Match[bytes] | None:
        scheme = _SCHEME_BEFORE.search(buf, max(start, anchor - _SCHEME_REACH), anchor)
        if scheme is not None:
            match = URL_PATTERN.match(buf, scheme.start())
            if match is not None:
                return match
        return URL_PATTERN.match(buf, anchor)

    def replace(self, match: re.Match[bytes], buf: bytes) -> bytes | None:
        """The new bytes for one match, or None to leave it."""
        if match.re is KEEP_PATTERN:
            return b""
        if match.re is TAG_PATTERN:
            return self._tag(match)
        return self._url(match, buf, match.start())


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

    def matches(self, buf: bytes, start: int, limit: int) -> Iterator[re.Match[bytes]]:
        """Every Find, leftmost first."""
        for match in self.pattern.finditer(buf, start):
            if match.start() >= limit:
                return
            yield match

    def replace(self, match: re.Match[bytes], buf: bytes) -> bytes | None:
        """The Replace text of the Find that matched."""
        return self.table[match.group()]


def body_rewriter(
    index: HostIndex,
    page_url: str,
    content_type: str,
    find_replace: Sequence[FindReplace] = (),
    mime_filters: Sequence[MimeFilter] = (),
    drop_csp: bool = False,
) -> BodyRewriter:
    """The rewriter for one response body: Find/Replace, then URLs; or passthrough."""
    page = Origin.from_url(page_url)
    mode = choose_mode(content_type, page_url, mime_filters)
    if mode is Mode.PASS or page is None:
        return Passthrough()
    urls = UrlRewriter(index, page, mode, drop_csp=drop_csp)
    if not find_replace:
        return urls
    return Chain([FindReplaceRewriter(find_replace, Tokens(index)), urls])
