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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.hostmap import DEFAULT_PORTS, Origin
from gateway.rewrite.csp import rewrite_csp
from gateway.rewrite.target import HostIndex
from gateway.rules.model import FindReplace, MimeFilter

MAX_TAG = 1024
_LABEL = rb"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST = rb"%s(?:\.%s){1,8}" % (_LABEL, _LABEL)
MAX_MATCH = MAX_TAG + 2 + len(b"<script")
TAIL = MAX_MATCH + 64
HISTORY = 1024

KEEP_MARK = b"\x00carrel-keep\x00"
"""What ``^A`` becomes: the host right after it is left alone (EZproxy's ^A)."""

_HOST_PORT = rb"(?P<host>%s)(?P<port>(?::|%%3a)[0-9]{1,5})?(?![a-z0-9_-])" % _HOST
_SLASH_FORMS: tuple[tuple[bytes | None, re.Pattern[bytes]], ...] = tuple(
    (guard, re.compile(rb"(?P<slashes>%s)%s" % (slashes, _HOST_PORT), re.IGNORECASE))
    for guard, slashes in (
        (None, rb"//"),
        (b"\\", rb"\\/\\/"),
        (b"%", rb"%2f%2f"),
        (b"\\", rb"\\u002f\\u002f"),
        (b"&", rb"&(?:#0*47|#x0*2f|sol);&(?:#0*47|#x0*2f|sol);"),
    )
)
"""Every way ``//host`` is written, each as a pattern that starts with a literal (so the regex
engine finds it fast), with a byte that must be in the buffer for it to occur (one byte:
``bytes.find`` of a single byte is memchr, of two bytes a much slower search)."""

_SCHEME_BEFORE = re.compile(
    rb"(?P<scheme>https?)(?P<colon>:|%3a|&#0*58;|&#x0*3a;|&colon;)\Z", re.IGNORECASE
)
_SCHEME_REACH = 16
"""How far before a ``//`` its scheme can start (``https&colon;`` is 12 bytes)."""
_NOT_BEFORE_BARE = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.:;%/\\_-"
)
"""A ``//host`` with no scheme is a URL only when it does not follow one of these bytes."""
_MAYBE_ENCODED_COLON = frozenset(b"aA;")

TAG_PATTERN = re.compile(rb"<(?P<tag>script|link|meta)\b[^<>]{0,%d}>" % MAX_TAG, re.IGNORECASE)
_TAG_HINT = re.compile(rb"<[sSlLmM][cCiIeE][rRnNtT][iIkKaA]")
"""A literal-first prefilter for TAG_PATTERN (twice as fast as searching with it)."""

Hit = tuple[int, int, "bytes | None"]
"""(start, end, replacement or None to leave the bytes as they are)."""

_UNKNOWN: Any = object()
_MEMO_LIMIT = 65536
"""Distinct URL prefixes remembered per rule set (bounded, like every buffer here)."""


def _first(hit: Hit) -> int:
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
_SRCSET_LIST = re.compile(rb"\s*,[^\"'<>]*[\"']\s*=\s*tescrs(?:gmi)?(?![a-z0-9_])", re.I)
_INTEGRITY = re.compile(rb"\s+integrity\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+)", re.IGNORECASE)
_CSP_META = re.compile(rb"http-equiv\s*=\s*[\"']?content-security-policy", re.IGNORECASE)
_CONTENT_ATTR = re.compile(rb"(\bcontent\s*=\s*)(\"[^\"]*\"|'[^']*')", re.IGNORECASE)
_CONTEXT_WINDOW = 96
_COMMON_CONTEXTS = (b'href="', b"href='", b'src="', b"src='", b"href=", b"src=")
"""The contexts most H-host URLs are in, checked with ``endswith`` before the full test."""
_CONTEXT_ENDS = frozenset(b"=\"'( \t\r\n,>")
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


class _Scanner:
    """Streams hits in order; subclasses say where they are and what replaces them."""

    def __init__(self, tail: int, history: int) -> None:
        self.tail = tail
        self.history = history
        self._buf = b""
        self._pos = 0

    def hits(self, buf: bytes, start: int, limit: int) -> Iterable[Hit]:
        """Non-overlapping hits starting in ``[start, limit)``, leftmost first."""
        raise NotImplementedError

    def _run(self, final: bool) -> bytes:
        buf = self._buf
        start = self._pos
        limit = len(buf) if final else len(buf) - self.tail
        if limit <= start:
            return b""
        out: list[bytes] = []
        last = start  # end of the last replaced hit: bytes before it are out
        scanned = start  # end of the last hit looked at, replaced or not
        for begin, end, new in self.hits(buf, start, limit):
            scanned = end
            if new is not None:
                out.append(buf[last:begin])
                out.append(new)
                last = end
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
        self._memo = index.replacements.setdefault(page.scheme, {})
        self._port = target.port_suffix[1:].encode()

    def _in_url_position(self, buf: bytes, start: int) -> bool:
        if self.context is None or (start > 0 and buf[start - 1] not in _CONTEXT_ENDS):
            return False
        if self.mode is Mode.HTML and buf.endswith(_COMMON_CONTEXTS, 0, start):
            word = buf.rfind(b" ", max(0, start - 12), start)  # the attribute starts a word
            if word >= 0 and buf[word + 1 : start].lower().startswith((b"href=", b"src=")):
                return True
        back = buf[max(0, start - _CONTEXT_WINDOW) : start][::-1]
        if self.context.match(back):
            return True
        if self.mode is Mode.HTML and back.lstrip()[:1] == b",":
            return bool(_SRCSET_LIST.match(buf[max(0, start - HISTORY) : start][::-1]))
        return False

    def url_hits(self, buf: bytes, start: int, limit: int) -> list[Hit]:
        """Every proxied URL starting in ``[start, limit)`` with its replacement, in order.

        The loop body runs once per ``//`` in the page, so it is written out in one place, with
        the common case (``https://`` in lower case, a host already in the memo) first."""
        reach = min(len(buf), limit + _SCHEME_REACH)
        found: list[Hit] = []
        append = found.append
        memo = self._memo
        lookup = memo.get
        for guard, pattern in _SLASH_FORMS:
            if guard is not None and buf.find(guard, start, reach) < 0:
                continue
            # No endpos: it would cut a host short at ``reach`` and match the stump.
            for match in pattern.finditer(buf, start):
                at, end = match.span()
                if at >= reach:
                    break
                prev = buf[at - 1] if at > start else 0
                begin = at
                if prev == 58:  # ":" -- the common case, checked without a regular expression
                    if at - 6 >= start and (
                        buf.startswith(b"https", at - 6) or buf[at - 6 : at - 1].lower() == b"https"
                    ):
                        begin = at - 6
                    elif at - 5 >= start and (
                        buf.startswith(b"http", at - 5) or buf[at - 5 : at - 1].lower() == b"http"
                    ):
                        begin = at - 5
                    else:
                        continue  # ftp://host and other schemes
                elif prev in _MAYBE_ENCODED_COLON:  # %3a, &#58; &colon; ...
                    scheme = _SCHEME_BEFORE.search(buf, max(start, at - _SCHEME_REACH), at)
                    if scheme is not None:
                        begin = scheme.start()
                if (begin == at and prev in _NOT_BEFORE_BARE) or begin >= limit:
                    continue  # a//b, x.//host: not a URL of ours; or it starts past the limit
                key = buf[begin:end]  # the URL prefix (and the page's scheme) decide the new one
                entry = lookup(key, _UNKNOWN)
                if entry is _UNKNOWN:
                    entry = self._replacement(match, at - begin)
                    if len(memo) >= _MEMO_LIMIT:
                        memo.clear()
                    memo[key] = entry
                if entry is None or (not entry[1] and not self._in_url_position(buf, begin)):
                    continue
                append((begin, end, entry[0]))
        if len(found) > 1:
            found.sort(key=_first)
        return found

    def _replacement(self, match: re.Match[bytes], scheme_length: int) -> tuple[bytes, bool] | None:
        """The proxied form of one URL prefix and whether it is an HJ/DJ host; None if not ours."""
        prefix = match.string[match.start() - scheme_length : match.start()]
        scheme_match = _SCHEME_BEFORE.match(prefix) if prefix else None
        scheme = scheme_match["scheme"].decode().lower() if scheme_match else self.page.scheme
        port_text = match["port"]
        port = int(port_text.lstrip(b":%3aA")) if port_text else DEFAULT_PORTS[scheme]
        mapped = self.index.lookup(scheme, match["host"].decode(), port)
        if mapped is None:
            return None
        slashes = match["slashes"]
        parts = [self._scheme, scheme_match["colon"]] if scheme_match else []
        parts += [slashes, mapped.host.encode()]
        if self._port:
            parts += [b"%3A" if slashes[:1] == b"%" else b":", self._port]
        return b"".join(parts), mapped.javascript

    def _span(self, data: bytes) -> bytes | None:
        """The URLs inside a matched tag rewritten, or None when none changed."""
        if b"/" not in data and b"%" not in data and b"&" not in data:
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
        return new

    def _csp_meta(self, tag: bytes) -> bytes:
        if self.drop_csp:
            return _CONTENT_ATTR.sub(b'\\1""', tag)

        def policy(match: re.Match[bytes]) -> bytes:
            quote, value = match[2][:1], match[2][1:-1].decode("latin-1")
            new = rewrite_csp(value, self.index, self.page.scheme).encode("latin-1")
            return match[1] + quote + new + quote

        return _CONTENT_ATTR.sub(policy, tag)

    def hits(self, buf: bytes, start: int, limit: int) -> Iterable[Hit]:
        """URLs, ^A marks and (in HTML) script/link/meta tags, leftmost first."""
        found = self.url_hits(buf, start, limit)
        extra: list[Hit] = []
        at = buf.find(KEEP_MARK, start, limit)
        while at >= 0:
            extra.append((at, at + len(KEEP_MARK), b""))
            at = buf.find(KEEP_MARK, at + 1, limit)
        if self.mode is Mode.HTML:
            for hint in _TAG_HINT.finditer(buf, start, min(len(buf), limit + 4)):
                if hint.start() >= limit:
                    break
                tag = TAG_PATTERN.match(buf, hint.start())
                if tag is not None:
                    extra.append((tag.start(), tag.end(), self._tag(tag)))
        if not extra:
            return found  # URL hits never overlap one another
        end = start
        kept = []
        for hit in sorted(found + extra, key=_first):
            if hit[0] >= end:  # not inside an earlier hit (URLs inside a tag go with the tag)
                end = hit[1]
                kept.append(hit)
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

    def hits(self, buf: bytes, start: int, limit: int) -> Iterable[Hit]:
        """Every Find with its Replace text, leftmost first."""
        for match in self.pattern.finditer(buf, start):
            if match.start() >= limit:
                return
            yield match.start(), match.end(), self.table[match.group()]


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
