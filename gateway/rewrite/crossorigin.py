"""``crossorigin`` on elements that load from proxied hosts: with credentials (pure).

A page asks for a cross-origin resource in CORS mode with ``crossorigin`` (``anonymous``, the
default for a bare attribute or any unknown value, or ``use-credentials``), and module scripts
always load in CORS mode, ``anonymous`` unless told otherwise. An anonymous request from one
proxied host to another carries no cookies, so the gateway finds no session and answers with a
login redirect, which CORS then blocks. Through the proxy such an element therefore asks with
credentials: the gateway's session cookie goes along and ``gateway.rewrite.cors`` answers with
the exact origin.

Which elements (``ELEMENTS``), and when:

- an element whose URL is proxied (the rewriter changed it): an anonymous ``crossorigin``
  becomes ``use-credentials``; module scripts and ``<link rel=modulepreload>`` get one where
  they have none (a preload must be fetched as the module script will be);
- a module script or module preload with no absolute URL (inline, or a relative ``src``): the
  same, for the modules it imports from other proxied hosts;
- an element loading from a host the rules do not cover: left alone (that host would have to
  allow credentials, which it need not do).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

CREDENTIALED = b'crossorigin="use-credentials"'
_ATTRIBUTE = re.compile(
    rb"(?<=[\s\"'/])crossorigin(?:\s*=\s*(?P<value>\"[^\"]*\"|'[^']*'|[^\s\"'=<>`]+))?(?=[\s/>])",
    re.IGNORECASE,
)
_TYPE_MODULE = re.compile(rb"\stype\s*=\s*[\"']?\s*module\s*[\"'\s/>]", re.IGNORECASE)
_REL_MODULEPRELOAD = re.compile(
    rb"\srel\s*=\s*(?:\"[^\"]*\bmodulepreload\b[^\"]*\"|'[^']*\bmodulepreload\b[^']*'"
    rb"|modulepreload[\s/>])",
    re.IGNORECASE,
)
_ABSOLUTE_URL = re.compile(
    rb"\s(?:src|href)\s*=\s*[\"']?\s*(?:[a-z][a-z0-9+.-]*:|[/\\]{2})", re.IGNORECASE
)


def _never(tag: bytes) -> bool:
    return False


def _module_script(lowered: bytes) -> bool:
    return _TYPE_MODULE.search(lowered) is not None


def _module_preload(lowered: bytes) -> bool:
    return _REL_MODULEPRELOAD.search(lowered) is not None


ELEMENTS: Mapping[bytes, Callable[[bytes], bool]] = {
    b"script": _module_script,
    b"link": _module_preload,
    b"img": _never,
    b"video": _never,
    b"audio": _never,
}
"""Elements with a ``crossorigin`` attribute, each with whether it (its tag in lower case)
loads in CORS mode even without one (so that it needs the attribute added)."""


def _credentialed(found: re.Match[bytes]) -> bool:
    value = found["value"] or b""
    return value.strip(b"\"'").strip().lower() == b"use-credentials"


def _insert_at(tag: bytes) -> int:
    """Where `` attribute`` goes: before ``>``, or before `` />`` or ``"/>`` (after an
    unquoted value, ``/`` would be part of it)."""
    end = len(tag) - 1
    if tag[end - 1 : end] == b"/":
        before = tag[end - 2 : end - 1]
        if before in (b" ", b"\t", b"\n", b"\r", b"\f"):
            return end - 2
        if before in (b'"', b"'"):
            return end - 1
    return end


def credentialed(tag: bytes, name: bytes, proxied: bool) -> bytes | None:
    """``tag`` (a whole start tag of element ``name``, lower case) asking for its resource with
    credentials where it loads from a proxied host (``proxied``: the rewriter changed its URL)
    or, for module scripts and preloads, from no absolute URL; None when it stays as it is."""
    adds = ELEMENTS.get(name)
    if adds is None:
        return None
    # The common case, on every script and link tag, is neither word: a lower-case copy and
    # two finds tell (``find``, not ``in``, which first tries a bytes operand as an integer).
    lowered = tag.lower()
    module = lowered.find(b"module") >= 0 and adds(lowered)
    if not module and lowered.find(b"crossorigin") < 0:
        return None
    if not proxied and not (module and _ABSOLUTE_URL.search(tag) is None):
        return None
    found = _ATTRIBUTE.search(tag)
    if found is not None:
        if _credentialed(found):
            return None
        return tag[: found.start()] + CREDENTIALED + tag[found.end() :]
    if not module:
        return None  # no attribute: no CORS request, nothing to ask for
    at = _insert_at(tag)
    return tag[:at] + b" " + CREDENTIALED + tag[at:]
