"""A rule set and helpers shared by the rewriter tests."""

from __future__ import annotations

import textwrap

from gateway.rewrite.body import BodyRewriter, body_rewriter
from gateway.rewrite.target import HostIndex, ProxyTarget
from gateway.rules.parser import parse
from gateway.rules.ruleset import RuleSet

RULES_TEXT = textwrap.dedent("""\
    Title JSTOR
    URL https://www.jstor.org/
    HJ www.jstor.org
    HJ https://www.jstor.org:8443
    DJ jstor.org
    NeverProxy static.jstor.org
    Find window.__NAME__ = "jstor"
    Replace window.__NAME__ = "^D ^L ^H ^Swww.jstor.org^ ^pwww.jstor.org^"
    Find <input name="back" value="https://
    Replace <input name="back" value="https://^A
    Title Hosts only
    URL https://h.example.org/
    D example.net
    """)

RULES = RuleSet.from_results([parse(RULES_TEXT, "rules.txt")])
TARGET = ProxyTarget("https", "", "proxy.lib.org")
INDEX = HostIndex(RULES, TARGET)
FIND_REPLACE = RULES.databases[0].find_replace


def rewriter(
    content_type: str = "text/html",
    page: str = "https://www.jstor.org/page",
    index: HostIndex = INDEX,
    find_replace: bool = False,
) -> BodyRewriter:
    pairs = FIND_REPLACE if find_replace else ()
    return body_rewriter(index, page, content_type, pairs)


def run(data: bytes, sizes: list[int] | None = None, **kwargs: object) -> bytes:
    """Feed ``data`` in chunks of ``sizes`` (cycled), or whole, and flush."""
    rw = rewriter(**kwargs)  # type: ignore[arg-type]
    if not sizes:
        return rw.feed(data) + rw.flush()
    out, pos, i = [], 0, 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        out.append(rw.feed(data[pos : pos + size]))
        pos, i = pos + size, i + 1
    out.append(rw.flush())
    return b"".join(out)
