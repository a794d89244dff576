"""The ``HJ`` line an escaped host needs, and where it goes in a rule file's text (pure)."""

from __future__ import annotations

import re
from collections.abc import Iterable

_DIRECTIVE = re.compile(r"\s*([A-Za-z]+)\b")
HOST_DIRECTIVES = frozenset({"url", "u", "host", "h", "hj", "domain", "d", "dj"})
"""Lines that name a stanza's hosts: the new line goes after the last of them."""


def host_line(host: str, schemes: Iterable[str]) -> str:
    """``HJ https://host`` when every report of ``host`` said https (``http://`` likewise);
    ``HJ host`` (both schemes) when they said both, or only beacons named it."""
    said = {s for s in schemes if s}
    if len(said) == 1:
        return f"HJ {said.pop()}://{host}"
    return f"HJ {host}"


def _directive(line: str) -> str:
    found = _DIRECTIVE.match(line)
    return found[1].lower() if found else ""


def with_line(text: str, title_line: int, line: str) -> str:
    """``text`` with ``line`` added to the stanza whose ``Title`` is on ``title_line``
    (1-based): after the stanza's last URL/Host/HJ/Domain/DJ line, before the next ``Title``.

    ``ValueError`` when that line is no ``Title``: the file changed since the rules were read."""
    lines = text.splitlines()
    start = title_line - 1
    if not 0 <= start < len(lines) or _directive(lines[start]) not in ("title", "t"):
        raise ValueError(f"line {title_line} is not the stanza's Title any more")
    end = next(
        (i for i in range(start + 1, len(lines)) if _directive(lines[i]) in ("title", "t")),
        len(lines),
    )
    after = max(
        (i for i in range(start, end) if _directive(lines[i]) in HOST_DIRECTIVES), default=start
    )
    lines.insert(after + 1, line)
    return "\n".join(lines) + "\n"
