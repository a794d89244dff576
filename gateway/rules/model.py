"""The typed model of parsed database stanzas: plain frozen values, no behaviour beyond lookups."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from gateway.hostmap import Origin
from gateway.limits import Limit

DEFAULT_GROUPS = frozenset({"Default"})
"""The groups of a database without a ``Group`` line, and of a patron whose directory or
provider names none."""


class Severity(enum.Enum):
    """How bad a finding is: errors stop a file from going live, warnings do not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Source:
    """Where a rule came from."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class Finding:
    """A problem found in a rule file, for people: ``path:line: error: message``."""

    source: Source
    severity: Severity
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.severity.value}: {self.message}"


class CookieMode(enum.Enum):
    """EZproxy's ``Option Cookie|DomainCookieOnly|NoCookie|CookiePassThrough``."""

    COOKIE = "Cookie"
    DOMAIN_COOKIE_ONLY = "DomainCookieOnly"
    NO_COOKIE = "NoCookie"
    PASS_THROUGH = "CookiePassThrough"


@dataclass(frozen=True)
class HostRule:
    """``URL``/``Host``/``HJ``: one origin; ``javascript`` means rewrite it wherever it appears."""

    origin: Origin
    javascript: bool
    source: Source
    directive: str = "URL"
    """The directive as librarians know it (``URL``, ``Host``, ``HJ``), for explanations."""


@dataclass(frozen=True)
class DomainRule:
    """``Domain``/``DJ``: every host in ``domain`` (and the domain itself), http and https."""

    domain: str
    javascript: bool
    source: Source
    directive: str = "DJ"
    """The directive as librarians know it (``Domain``, ``DJ``), for explanations."""

    def covers(self, host: str) -> bool:
        """Whether ``host`` is the domain or a host below it."""
        return host == self.domain or host.endswith("." + self.domain)


@dataclass(frozen=True)
class AnonymousRule:
    """``AnonymousURL``: URLs matching ``pattern`` (``*`` wildcards) pass without a session."""

    allow: bool
    pattern: str
    methods: frozenset[str]
    source: Source


@dataclass(frozen=True)
class FindReplace:
    """``Find``/``Replace`` pair, applied to bodies before URL rewriting."""

    find: str
    replace: str
    source: Source


class HeaderDirection(enum.Enum):
    """Which way an ``HTTPHeader`` rule applies."""

    REQUEST = "request"
    RESPONSE = "response"


class HeaderAction(enum.StrEnum):
    """What an ``HTTPHeader`` line does to the header it names."""

    PROCESS = "process"
    """Pass it on (Carrel passes headers by default, so this undoes an earlier block)."""
    BLOCK = "block"
    """Do not pass it on: to the vendor (``-request``) or to the patron (``-response``)."""
    UNBLOCK = "unblock"
    """Undo an earlier ``-block`` of the same header."""
    EDIT = "edit"
    """Rewrite its value with a pattern; not implemented (the parser warns)."""


@dataclass(frozen=True)
class HeaderRule:
    """``HTTPHeader [-request|-response] [-process|-block|-unblock|-edit] name [args]``."""

    direction: HeaderDirection
    action: HeaderAction
    name: str
    args: tuple[str, ...]
    source: Source


@dataclass(frozen=True)
class HeaderPolicy:
    """A database's ``HTTPHeader`` lines compiled: lower-case names of the headers that do not
    reach the vendor (``request``) and do not reach the patron (``response``)."""

    request: frozenset[str] = frozenset()
    response: frozenset[str] = frozenset()

    @classmethod
    def compile(cls, rules: tuple[HeaderRule, ...]) -> HeaderPolicy:
        """The policy the lines give, in order: a later line for a header wins."""
        blocked: dict[HeaderDirection, set[str]] = {d: set() for d in HeaderDirection}
        for rule in rules:
            names = blocked[rule.direction]
            if rule.action is HeaderAction.BLOCK:
                names.add(rule.name.lower())
            elif rule.action in (HeaderAction.PROCESS, HeaderAction.UNBLOCK):
                names.discard(rule.name.lower())
        return cls(
            frozenset(blocked[HeaderDirection.REQUEST]),
            frozenset(blocked[HeaderDirection.RESPONSE]),
        )


class MimeAction(enum.StrEnum):
    """How a ``MimeFilter`` line has bodies of its type rewritten."""

    JAVASCRIPT = "javascript"
    TEXT = "text"
    """Like ``javascript``: every URL in the text."""
    HTML = "html"
    CSS = "css"
    JSON = "json"
    XML = "xml"
    NONE = "none"
    """Passed untouched."""


@dataclass(frozen=True)
class MimeFilter:
    """``MimeFilter mime-regex url-regex action``: how to rewrite bodies of that type."""

    mime: str
    url: str
    action: MimeAction
    source: Source


class FormMethod(enum.StrEnum):
    """``URL -Form=get|post``: how a named starting point sends its ``FormVariable`` values."""

    GET = "get"
    POST = "post"


@dataclass(frozen=True)
class NamedStart:
    """``URL [-Form=post] LABEL URL``: a starting point patrons open as ``/login/LABEL``; with
    ``-Form`` the gateway serves a page that submits ``variables`` to ``url`` (vendor logins)."""

    label: str
    url: str
    source: Source
    method: FormMethod | None = None
    variables: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Database:
    """One database stanza, with the position-dependent settings in force for it."""

    title: str
    url: str
    source: Source
    hidden: bool = False
    hosts: tuple[HostRule, ...] = ()
    starts: tuple[NamedStart, ...] = ()
    """The ``URL LABEL URL`` lines, in order."""
    domains: tuple[DomainRule, ...] = ()
    anonymous: tuple[AnonymousRule, ...] = ()
    find_replace: tuple[FindReplace, ...] = ()
    headers: tuple[HeaderRule, ...] = ()
    header_policy: HeaderPolicy = HeaderPolicy()
    """``headers`` compiled once, when the stanza is parsed."""
    methods: frozenset[str] = frozenset()
    cookie_mode: CookieMode = CookieMode.COOKIE
    mime_filters: tuple[MimeFilter, ...] = ()
    groups: frozenset[str] = DEFAULT_GROUPS
    user_headers: tuple[str, ...] = ()
    x_forwarded_for: bool = False
    service_workers: bool = False
    """``Option ServiceWorkers``: the vendor's pages may register service workers (refused
    otherwise, as a worker outlives the session)."""
    options: frozenset[str] = frozenset()
    usage_limits: tuple[Limit, ...] = ()
    """The ``UsageLimit`` lines in force for the stanza."""
    preamble: tuple[str, ...] = ()
    """Position-dependent lines in force at ``Title``, so the stanza can be written standalone."""
    lines: tuple[str, ...] = field(default=(), repr=False)
    """The stanza's own lines as written, from ``Title`` on."""

    @property
    def file(self) -> str:
        """The file the stanza is in."""
        return self.source.file
