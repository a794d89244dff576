"""Putting the companion into proxied pages and workers, and letting the vendor's CSP run it
(pure).

Pages get two script tags right after ``<head>``, before any vendor script: the scope (what the
rules cover) and the bundle, both from the login host, so that one cached copy serves every
vendor host. Workers get the same two scripts imported first. Only navigations and workers are
touched (``Sec-Fetch-Dest``): an HTML fragment a script fetches is data, not a document.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

PATH = "/__carrel/companion/"
"""Where the login host serves the scope and the bundle."""


class Role(enum.Enum):
    """What a response is to the browser that asked for it, as far as the companion cares."""

    PAGE = "page"
    CLASSIC_WORKER = "classic worker"
    MODULE_WORKER = "module worker"


_DESTINATIONS = {
    "document": Role.PAGE,
    "iframe": Role.PAGE,
    "frame": Role.PAGE,
    "worker": Role.CLASSIC_WORKER,
    "sharedworker": Role.CLASSIC_WORKER,
}
"""``Sec-Fetch-Dest`` values that get the companion. Service workers do not: the gateway refuses
vendor service workers (see the hardening notes in the README)."""


def role_of(dest: str, mode: str) -> Role | None:
    """The role of a response to a request with these ``Sec-Fetch-Dest``/``-Mode`` values; a
    worker script fetched in ``cors`` mode is a module worker's import (Chromium fetches a
    module worker's own script in ``same-origin`` mode, like a classic one)."""
    role = _DESTINATIONS.get(dest.lower())
    if role is Role.CLASSIC_WORKER and mode.lower() == "cors":
        return Role.MODULE_WORKER
    return role


@dataclass(frozen=True)
class Scripts:
    """The companion's two script URLs for one rule set, and the login host's origin."""

    scope_url: str
    bundle_url: str
    login_origin: str

    def page_tags(self, nonce: str) -> bytes:
        """The tags a page gets after ``<head>``."""
        return "".join(
            f'<script src="{url}" nonce="{nonce}"></script>'
            for url in (self.scope_url, self.bundle_url)
        ).encode()

    def worker_prelude(self, role: Role) -> bytes:
        """What a worker script gets before its first line."""
        if role is Role.MODULE_WORKER:
            return f'import "{self.scope_url}";\nimport "{self.bundle_url}";\n'.encode()
        # A module worker's own script is fetched like a classic one (same Sec-Fetch-Mode), and
        # importScripts throws in a module: the prelude must not stop it (the page's companion
        # starts module workers through a wrapper that imports the companion first).
        return (
            f'try {{ importScripts("{self.scope_url}", "{self.bundle_url}"); }} catch (e) {{}}\n'
        ).encode()


# A tag the insertion may pass over: comments, <!doctype>, <?xml?>, and <html ...>.
_SKIPPABLE = re.compile(rb"<!--.*?-->|<![^>]*>|<\?[^>]*>|<html\b[^>]*>", re.IGNORECASE | re.DOTALL)
_HEAD = re.compile(rb"<head\b[^>]*>", re.IGNORECASE)
_UNDECIDED_LIMIT = 65536
"""Bytes held back while looking for ``<head>``: past this the tags go in where it stands."""


class HeadInsert:
    """A body stage that puts ``tags`` right after ``<head ...>``, or before the first other
    element when the page has no head tag (browsers imply one); streaming, in a single pass."""

    def __init__(self, tags: bytes) -> None:
        self.tags = tags
        self._held = b""
        self._done = False

    def _place(self, final: bool) -> int | None:
        """Where the tags go in what is held, or None while that cannot be told yet."""
        buf = self._held
        pos = 0
        while True:
            lt = buf.find(b"<", pos)
            if lt < 0:
                return len(buf) if final else None
            skip = _SKIPPABLE.match(buf, lt)
            if skip is not None:
                pos = skip.end()
                continue
            head = _HEAD.match(buf, lt)
            if head is not None:
                return head.end()
            if not final and (buf.find(b">", lt) < 0 or len(buf) - lt < len(b"<head ")):
                return None  # a tag still arriving
            return lt

    def _emit(self, final: bool) -> bytes:
        at = self._place(final or len(self._held) > _UNDECIDED_LIMIT)
        if at is None:
            return b""
        out = self._held[:at] + self.tags + self._held[at:]
        self._held, self._done = b"", True
        return out

    def feed(self, chunk: bytes) -> bytes:
        """Take the next chunk; return what can be passed on now."""
        if self._done:
            return chunk
        self._held += chunk
        return self._emit(final=False)

    def flush(self) -> bytes:
        """Return what is still held (with the tags, if they have not gone out yet)."""
        if self._done:
            return b""
        return self._emit(final=True)


class Prepend:
    """A body stage that puts ``prelude`` before the first byte."""

    def __init__(self, prelude: bytes) -> None:
        self._prelude: bytes | None = prelude

    def feed(self, chunk: bytes) -> bytes:
        """The chunk, the first time after the prelude."""
        if self._prelude is None:
            return chunk
        out, self._prelude = self._prelude + chunk, None
        return out

    def flush(self) -> bytes:
        """The prelude, if no chunk came."""
        return self.feed(b"")


_SCRIPT_DIRECTIVES = ("script-src-elem", "script-src")
_STRICT = re.compile(r"'(?:strict-dynamic|nonce-[^']*|sha(?:256|384|512)-[^']*)'", re.IGNORECASE)


def _allowing(tokens: list[str], nonce: str, login_origin: str) -> list[str]:
    """A script directive's sources with the companion allowed: by nonce where the policy
    already trusts nonces or hashes (host sources would be ignored there), else by the login
    host as a source (a nonce would switch off the vendor's ``'unsafe-inline'``)."""
    values = tokens[1:]
    if [v.lower() for v in values] == ["'none'"]:
        return tokens  # no script runs on this page, so no vendor script needs the companion
    if any(_STRICT.fullmatch(v) for v in values):
        return [*tokens, f"'nonce-{nonce}'"]
    return [*tokens, login_origin]


def allow_companion(policy: str, nonce: str, login_origin: str) -> str:
    """A vendor ``Content-Security-Policy`` that also runs the companion's script tags (and
    lets its Trusted Types policy, ``carrel``, be created)."""
    directives = [d.split() for d in policy.split(";") if d.strip()]
    names = [d[0].lower() for d in directives]
    out = []
    for tokens, name in zip(directives, names, strict=True):
        if name in _SCRIPT_DIRECTIVES:
            tokens = _allowing(tokens, nonce, login_origin)
        elif name == "trusted-types" and "*" not in tokens[1:] and "'none'" not in tokens[1:]:
            tokens = [*tokens, "carrel"]
        out.append(" ".join(tokens))
    if not any(n in _SCRIPT_DIRECTIVES for n in names) and "default-src" in names:
        # Scripts follow default-src: a script-src copied from it, plus the companion, changes
        # nothing else (a nonce on default-src would also switch off inline styles).
        default = directives[names.index("default-src")]
        out.append(" ".join(_allowing(["script-src", *default[1:]], nonce, login_origin)))
    return "; ".join(out)


_ENFORCED_CSP = "content-security-policy"


@dataclass(frozen=True)
class Plan:
    """The companion for one response: which scripts, in what role, under which nonce."""

    scripts: Scripts
    role: Role
    nonce: str

    def headers(self, headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """Response headers with every enforced CSP allowing the companion (Report-Only
        policies block nothing, so they stay as they are)."""
        origin = self.scripts.login_origin
        return [
            (name, allow_companion(value, self.nonce, origin))
            if name.lower() == _ENFORCED_CSP
            else (name, value)
            for name, value in headers
        ]

    def stage(self) -> HeadInsert | Prepend:
        """The body stage that puts the companion in (after the URL rewriting)."""
        if self.role is Role.PAGE:
            return HeadInsert(self.scripts.page_tags(self.nonce))
        return Prepend(self.scripts.worker_prelude(self.role))
