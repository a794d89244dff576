"""The companion script as served: its parts joined into one classic script (pure but for
reading the files it ships with, once).

No build step: the parts are plain JavaScript files in ``js/``, joined in ``PARTS`` order inside
one function, so that they share one scope and a ``return`` ends the script (see core.js). The
same text runs as a page script, a classic worker's ``importScripts`` and a module worker's
``import``. The URL carries a hash of the text, so it can be cached for a year.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

JS = Path(__file__).resolve().parent / "js"
PARTS = ("map.js", "core.js", "net.js", "markup.js", "dom.js", "escape.js")
"""The parts, in the order they run."""
DIGEST_LENGTH = 16


@dataclass(frozen=True)
class Bundle:
    """One joined script, its content hash and its gzip form (compressed once)."""

    body: bytes
    digest: str
    gzipped: bytes


# Whole-line comments and doc comments (the parts hold no multi-line strings, so a line that
# starts one is a comment): they stay in the source, not on every patron's wire (22 -> 14 KB
# gzipped).
_DOC_COMMENT = re.compile(r"^[ \t]*/\*\*.*?\*/[ \t]*\n", re.DOTALL | re.MULTILINE)
_LINE_COMMENT = re.compile(r"^[ \t]*//.*\n", re.MULTILINE)


def _without_comments(text: str) -> str:
    return _LINE_COMMENT.sub("", _DOC_COMMENT.sub("", text))


def join(parts: dict[str, str]) -> Bundle:
    """The bundle of ``parts`` (file name -> text), in their order, without their comment
    lines."""
    # ``module`` is shadowed so that map.js's CommonJS export never touches a page's own global.
    code = "\n".join(_without_comments(text) for text in parts.values())
    text = "(function (module) {\n'use strict';\n" + code + "\n})();\n"
    body = text.encode()
    digest = hashlib.sha256(body).hexdigest()[:DIGEST_LENGTH]
    return Bundle(body, digest, gzip.compress(body, 9, mtime=0))


@cache
def shipped() -> Bundle:
    """The bundle of the parts this release ships."""
    return join({name: (JS / name).read_text() for name in PARTS})
