"""Text from requests made safe to write into a log line (pure).

A log line is one line: anything a reader, ``grep`` or a terminal could take for the end of a
line or for a command must not arrive raw from a patron, a link or a vendor, or it forges a line
(``%0a`` in a starting-point URL) or rewrites what the reader sees (ANSI escapes, bidi
overrides).
"""

from __future__ import annotations

import re

UNSAFE = re.compile(
    "["
    "\x00-\x1f\x7f-\x9f"  # C0 controls, DEL, C1 controls (NEL U+0085 ends lines too)
    "\u2028\u2029"  # line and paragraph separators: line ends for many readers
    "\u202a-\u202e\u2066-\u2069"  # bidi embeddings, overrides and isolates: they reorder text
    "\ud800-\udfff"  # lone surrogates (undecodable request bytes): a log file cannot hold them
    "]"
)
"""The characters ``printable`` escapes."""


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with every character of ``UNSAFE`` written as ``\\xNN`` or ``\\uNNNN``.

    Everything else, non-ASCII letters included, stays as it is, so a URL or a title still
    reads normally."""
    return UNSAFE.sub(_escape, text)
