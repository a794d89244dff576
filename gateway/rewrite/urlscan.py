"""Finding URL prefixes in a body and looking them up: the rewriter's inner loop, pure.

``scan(buf, start, limit, memo, context_ends, attributes)`` finds every ``//host[:port]`` that
starts before ``limit + 16`` in any of the ways a page writes it (``//``, ``\\/\\/``,
``%2f%2f``, ``\\u002f\\u002f``, HTML entities), with the ``http:``/``https:`` (or WebSocket
``ws:``/``wss:``, not run on from another scheme's letters as in ``news:``) before it in any
written form, and sorts what it finds by the rule set's memo (URL prefix as written -> proxied
form and whether it is an HJ/DJ host, or None when the rules do not proxy it) into three lists,
each in order:

- ``hits``: ``(begin, end, replacement)`` of HJ/DJ hosts, to be rewritten wherever they are;
- ``maybe``: the same for H/D hosts whose preceding byte is in ``context_ends`` (the caller
  decides from the text before them whether they are in a URL position); with ``context_ends``
  None, H/D hosts are dropped; with ``attributes``, H/D hosts right after `` href=`` or
  `` src=`` (quoted or not, the commonest URL positions) go straight into ``hits``;
- ``unknown``: ``(begin, at, end)`` of prefixes not in the memo yet (``at`` is where the
  slashes start); the caller works them out with ``match_at`` and fills the memo.

``splice(buf, start, stop, hits)`` then builds the rewritten bytes, and
``tag_starts(buf, start, limit)`` says where a ``<script``, ``<link`` or ``<meta`` tag, or an
``<img``, ``<video`` or ``<audio`` tag with a ``crossorigin`` attribute, may start (HTML's tags
with URLs that need more than a URL's rewriting), in the one pass over the page's ``<``.

``scan_py``, ``splice_py`` and ``tag_starts_py`` are the reference, in Python with regular
expressions. When the C accelerator (``_urlscan.c``, built on install where a compiler is
present) is importable, ``scan``, ``splice`` and ``tag_starts`` are its twins, which give the
same answers and skip the Python work per match; tests compare the two.
``CARREL_PURE_PYTHON=1`` in the environment uses the reference.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

_LABEL = rb"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOST = rb"%s(?:\.%s){1,8}" % (_LABEL, _LABEL)
# Atomic groups: the host and port found are the greedy ones, and a host that runs on into
# something else (``host-``, ``host:123456``) is no match, never a shorter host.
_HOST_PORT = rb"(?P<host>(?>%s))(?>(?P<port>(?::|%%3a)[0-9]{1,5})?)(?![a-z0-9_-])" % _HOST
SLASH_FORMS: tuple[tuple[bytes | None, re.Pattern[bytes]], ...] = tuple(
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

SCHEME_BEFORE = re.compile(
    rb"(?P<scheme>https?|wss?)(?P<colon>:|%3a|&#0*58;|&#x0*3a;|&colon;)\Z", re.IGNORECASE
)
SCHEME_REACH = 16
"""How far before a ``//`` its scheme can start (``https&colon;`` is 12 bytes)."""
_NOT_BEFORE_BARE = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.:;%/\\_-"
)
"""A ``//host`` with no scheme is a URL only when it does not follow one of these bytes."""
_MAYBE_ENCODED_COLON = frozenset(b"aA;")
_SCHEME_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-")
"""Bytes of a URL scheme: ``ws`` right after one is the end of another scheme (``news:``)."""
_ATTRIBUTE_BEFORE = re.compile(rb"[ \t\r\n](?:href|src)=[\"']?\Z", re.IGNORECASE)
"""`` href="``, the commonest URL position, seen in the 7 bytes before a URL."""

Hit = tuple[int, int, bytes]
Unknown = tuple[int, int, int]
Memo = dict[bytes, "tuple[bytes, bool] | None"]
Found = tuple[list[Hit], list[Hit], list[Unknown]]
Scan = Callable[[bytes, int, int, Memo, "bytes | None", bool], Found]
Edit = tuple[int, int, "bytes | None"]
"""(start, end, replacement or None to leave the bytes as they are)."""
Splice = Callable[[bytes, int, int, list[Edit]], bytes]
TagStarts = Callable[[bytes, int, int], list[int]]
_MISSING: Any = object()


def match_at(buf: bytes, at: int) -> re.Match[bytes] | None:
    """The ``//host[:port]`` match whose slashes start at ``at`` (groups: slashes, host, port)."""
    for _guard, pattern in SLASH_FORMS:
        match = pattern.match(buf, at)
        if match is not None:
            return match
    return None


def _ws_at(buf: bytes, begin: int) -> bool:
    """A ``ws``/``wss`` scheme at ``begin`` is one: no scheme byte right before it."""
    return begin == 0 or buf[begin - 1] not in _SCHEME_BYTES


def scan_py(
    buf: bytes, start: int, limit: int, memo: Memo, context_ends: bytes | None, attributes: bool
) -> Found:
    """The reference ``scan``: see the module docstring."""
    reach = min(len(buf), limit + SCHEME_REACH)
    hits: list[Hit] = []
    maybe: list[Hit] = []
    unknown: list[Unknown] = []
    lookup = memo.get
    for guard, pattern in SLASH_FORMS:
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
                if at - 6 >= start and buf[at - 6 : at - 1].lower() == b"https":
                    begin = at - 6
                elif at - 5 >= start and buf[at - 5 : at - 1].lower() == b"http":
                    begin = at - 5
                elif at - 4 >= start and buf[at - 4 : at - 1].lower() == b"wss":
                    begin = at - 4
                elif at - 3 >= start and buf[at - 3 : at - 1].lower() == b"ws":
                    begin = at - 3
                else:
                    continue  # ftp://host and other schemes
                if begin >= at - 4 and not _ws_at(buf, begin):  # ws: or wss:
                    continue  # news://host: another scheme
            elif prev in _MAYBE_ENCODED_COLON:  # %3a, &#58; &colon; ...
                scheme = SCHEME_BEFORE.search(buf, max(start, at - SCHEME_REACH), at)
                if scheme is not None and (
                    scheme["scheme"][:1] in b"hH" or _ws_at(buf, scheme.start())
                ):
                    begin = scheme.start()
            if (begin == at and prev in _NOT_BEFORE_BARE) or begin >= limit:
                continue  # a//b, x.//host: not a URL of ours; or it starts past the limit
            entry = lookup(buf[begin:end], _MISSING)
            if entry is _MISSING:
                unknown.append((begin, at, end))
            elif entry is None:
                continue
            elif entry[1]:
                hits.append((begin, end, entry[0]))
            elif context_ends is None:
                continue
            elif attributes and _ATTRIBUTE_BEFORE.search(buf, max(0, begin - 7), begin):
                hits.append((begin, end, entry[0]))
            elif begin == 0 or buf[begin - 1] in context_ends:
                maybe.append((begin, end, entry[0]))
    hits.sort()
    maybe.sort()
    unknown.sort()
    return hits, maybe, unknown


def splice_py(buf: bytes, start: int, stop: int, hits: list[Edit]) -> bytes:
    """``buf[start:stop]`` with the bytes of each hit replaced (None: left as they are); the
    hits are in order, apart, inside the range."""
    out: list[bytes] = []
    last = start
    for begin, end, new in hits:
        if new is not None:
            out += (buf[last:begin], new)
            last = end
    out.append(buf[last:stop])
    return b"".join(out)


MEDIA_REACH = 1024
"""How far after ``<img`` a ``crossorigin`` may start to be seen (a tag's most bytes)."""
TAG_HINT = re.compile(rb"<[sSlLmM][cCiIeE][rRnNtT][iIkKaA]")
"""The first five bytes of ``<script``, ``<link`` and ``<meta`` in any case (and a few more)."""
MEDIA_HINT = re.compile(rb"<(?i:img|video|audio)\b(?i:[^<>]{0,%d}?crossorigin)" % MEDIA_REACH)
"""An ``<img``, ``<video`` or ``<audio`` tag name with ``crossorigin`` (any case) after it,
before the next ``<`` or ``>``."""


def tag_starts_py(buf: bytes, start: int, limit: int) -> list[int]:
    """Where ``TAG_HINT`` or ``MEDIA_HINT`` matches in ``buf``, starting in ``[start, limit)``
    (a media hint may run past ``limit``)."""
    starts = [hint.start() for hint in TAG_HINT.finditer(buf, start, min(len(buf), limit + 4))]
    # Media hints only where the attribute is in the buffer at all: a lower-case copy and a
    # find cost a fraction of trying a second pattern at every "<".
    if buf.lower().find(b"crossorigin", start) < 0:
        return starts
    media = []
    for hint in MEDIA_HINT.finditer(buf, start):
        if hint.start() >= limit:
            break
        media.append(hint.start())
    return sorted(starts + media)  # never the same "<": the byte after it differs


scan: Scan
splice: Splice
tag_starts: TagStarts
try:
    if os.environ.get("CARREL_PURE_PYTHON"):  # to compare, or to rule the accelerator out
        raise ImportError("CARREL_PURE_PYTHON is set")
    from gateway.rewrite._urlscan import scan as _scan_c
    from gateway.rewrite._urlscan import splice as _splice_c
    from gateway.rewrite._urlscan import tag_starts as _tag_starts_c
except ImportError:  # no compiler where it was installed: the reference does the same job
    ACCELERATED = False
    scan, splice, tag_starts = scan_py, splice_py, tag_starts_py
else:
    ACCELERATED = True
    scan, splice, tag_starts = _scan_c, _splice_c, _tag_starts_c
