"""Where a patron wants to go after logging in, read as EZproxy reads it (pure)."""

from __future__ import annotations

from urllib.parse import unquote

MAX_TARGET = 4096


def target_from_query(raw_query: str) -> str:
    """The target URL of a login link.

    ``?url=`` is raw, as in EZproxy: everything after ``url=`` is the URL, ``&`` included, so
    ``/login?url=https://x.org/a?b=1&c=2`` means ``https://x.org/a?b=1&c=2``. ``?qurl=`` is one
    percent-encoded parameter, as a catalogue builds it. Empty when there is none or it is too
    long to be a link.
    """
    for name, encoded in (("qurl=", True), ("url=", False)):
        if raw_query.startswith(name):
            value = raw_query[len(name) :]
        elif f"&{name}" in raw_query:
            value = raw_query.split(f"&{name}", 1)[1]
        else:
            continue
        if encoded:
            value = unquote(value.split("&", 1)[0].replace("+", " "))
        value = value.strip()
        return value if len(value) <= MAX_TARGET else ""
    return ""
