"""``gateway rewrite``: what the gateway would send a patron for a document from a URL."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import BinaryIO

from gateway.config import Settings
from gateway.hostmap import Origin
from gateway.rewrite.select import guess_content_type, response_rewriter
from gateway.rewrite.target import HostIndex, ProxyTarget
from gateway.rules.loader import RuleStore


def rewrite_file(
    settings: Settings,
    url: str,
    path: str,
    content_type: str | None,
    chunk_size: int,
    out: BinaryIO,
) -> int:
    """Stream ``path`` (``-``: stdin) through the rewriter for ``url`` to ``out``."""
    if Origin.from_url(url) is None:
        print(f"gateway rewrite: {url!r} is not an absolute http(s) URL", file=sys.stderr)
        return 2
    source: BinaryIO = sys.stdin.buffer if path == "-" else Path(path).open("rb")  # noqa: SIM115
    with source:
        first = source.read(chunk_size)
        kind = content_type or guess_content_type(path, first)
        index = HostIndex(RuleStore(Path(settings.rules.dir)).ruleset, ProxyTarget.of(settings))
        rewriter = response_rewriter(index, url, kind)
        chunk = first
        while chunk:
            out.write(rewriter.feed(chunk))
            chunk = source.read(chunk_size)
        out.write(rewriter.flush())
    out.flush()
    return 0
