"""Where a patron wants to go after logging in, read as EZproxy reads it (pure)."""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit

from gateway.logsafe import UNSAFE

MAX_TARGET = 4096
NAMED_START = "/login/"
"""Where ``URL LABEL URL`` starting points are: ``/login/LABEL`` on the login host."""
FORM_START = "/__carrel/form/"
"""Over TLS, where a proxied host serves a ``URL -Form`` start's page (``FORM_START + LABEL``):
the session cookie there is the host's own, so the form is posted from the host itself."""


class BadTarget(ValueError):
    """A login link's target that cannot be read as a URL (``https://[::1/``)."""


def clean_target(value: str) -> str:
    """``value`` as a target: trimmed, control characters percent-encoded, empty when it is too
    long to be a link; ``BadTarget`` when it is not a URL at all.

    A URL never holds controls raw; decoded from ``%0a`` they would split the redirect's
    ``Location`` or the starting-point log line, so they go back to their encoded form."""
    value = UNSAFE.sub(lambda m: quote(m.group(), safe="", errors="replace"), value.strip())
    if len(value) > MAX_TARGET:
        return ""
    try:
        _ = urlsplit(value).port  # reads the host too: a broken [IPv6] or port fails here
    except ValueError as exc:
        raise BadTarget(f"not a URL: {exc}") from None
    return value


def target_from_query(raw_query: str) -> str:
    """The target URL of a login link.

    ``?url=`` is raw, as in EZproxy: everything after ``url=`` is the URL, ``&`` included, so
    ``/login?url=https://x.org/a?b=1&c=2`` means ``https://x.org/a?b=1&c=2``. ``?qurl=`` is one
    percent-encoded parameter, as a catalogue builds it. Empty when there is none; see
    ``clean_target`` for the rest.
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
        return clean_target(value)
    return ""


def named_start_path(target: str, public_url: str) -> str | None:
    """The ``/login/LABEL`` path when ``target`` is a named starting point on the login host
    (where the login form sends a patron who followed such a link), else None."""
    prefix = public_url + NAMED_START
    label = target[len(prefix) :] if target.startswith(prefix) else ""
    if label and not any(c in label for c in "/?#"):
        return NAMED_START + label
    return None
