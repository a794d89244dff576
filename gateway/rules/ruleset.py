"""The compiled rule set: fast, pure answers to "which database allows this origin, and how?"."""

from __future__ import annotations

import enum
import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import quote

from gateway.addresses import host_address, non_public
from gateway.bounded import remember
from gateway.hostmap import HostMap, HostnameEdit, Origin
from gateway.rules.model import Database, DomainRule, HostRule, NamedStart, Source
from gateway.rules.parser import ParseResult


class How(enum.Enum):
    """How an origin is allowed."""

    HOST = "host"
    """By a URL, Host or HJ line naming exactly this origin."""
    DOMAIN = "domain"
    """By a Domain or DJ line covering the host (default ports only)."""


@dataclass(frozen=True)
class Allowed:
    """An origin the rules proxy: the database, the rule and its strength.

    ``how`` and ``admitted_by`` say which line lets the origin in; ``source`` and ``directive``
    name the line that gives it its treatment, the strongest any line of the database gives it
    (a ``DJ`` covering a ``URL`` host makes it rewritten in scripts too, as in EZproxy)."""

    database: Database
    how: How
    source: Source
    javascript: bool
    directive: str = ""
    admitted_by: Source | None = None


ALLOWED_REMEMBERED = 4096
"""Allowed origins whose answer a rule set keeps (see ``RuleSet.lookup``)."""


class Why(enum.Enum):
    """Why an origin or starting point is refused, as a key pages translate."""

    NEVER_PROXY = "never_proxy"
    NO_RULE = "no_rule"
    NOT_HTTP = "not_http"
    DOMAIN_ONLY = "domain_only"


class Fix(enum.Enum):
    """What a librarian could do about a refusal, as a key pages translate."""

    NONE = "none"
    ADD_HJ = "add_hj"
    """Add an HJ line to the stanza of the database that uses the host."""
    ADD_HJ_TO = "add_hj_to"
    """Add an HJ line to the named database."""
    NON_PUBLIC = "non_public"
    """Nothing: the gateway never connects to the address."""
    LOOK_ALIKE = "look_alike"
    """Nothing: the host only contains a covered name (``www.jstor.org.evil.net``)."""


@dataclass(frozen=True)
class Refused:
    """Why an origin or starting point is not allowed, for librarians: in English
    (``reason``, ``hint``) and as keys with their words (``why``, ``fix``, ``url``,
    ``database``) for pages in the patron's language."""

    reason: str
    hint: str = ""
    source: Source | None = None
    why: Why = Why.NO_RULE
    fix: Fix = Fix.NONE
    url: str = ""
    """The origin or URL refused."""
    database: str = ""
    """The database title a fix names."""
    covered: str = ""
    """The covered name a look-alike host contains."""


@dataclass(frozen=True)
class Start:
    """A URL that may start a session, and the database it opens."""

    database: Database
    source: Source
    origin: Origin


class RuleSet:
    """All live databases, compiled for lookups by origin."""

    def __init__(
        self,
        databases: Iterable[Database] = (),
        never_proxy: Iterable[tuple[str, Source]] = (),
        hostname_edits: Iterable[HostnameEdit] = (),
    ) -> None:
        self.databases: tuple[Database, ...] = tuple(databases)
        self.hostname_edits: tuple[HostnameEdit, ...] = tuple(hostname_edits)
        self._hosts: dict[Origin, tuple[Database, HostRule]] = {}
        self._domains: dict[str, tuple[Database, DomainRule]] = {}
        for db in self.databases:
            for host in db.hosts:  # the first database to name a host owns it, as in EZproxy
                owner = self._hosts.setdefault(host.origin, (db, host))
                if owner[0] is db and host.javascript and not owner[1].javascript:
                    self._hosts[host.origin] = (db, host)  # HJ after URL/H: the stronger rule
            for dom in db.domains:
                self._domains.setdefault(dom.domain, (db, dom))
        self._allowed: dict[Origin, Allowed] = {}
        """``lookup``'s answers for allowed origins, worked out once per origin (bounded: the
        origins under a DJ domain come from requests)."""
        self._starts: dict[str, tuple[Database, NamedStart]] = {}
        for db in self.databases:
            for start in db.starts:  # the first database to use a label owns it
                self._starts.setdefault(start.label.lower(), (db, start))
        self._names: dict[str, Source] = {}
        """Every host and domain name the lines give, for telling look-alike hosts apart."""
        for db in self.databases:
            for host in db.hosts:
                self._names.setdefault(host.origin.host, host.source)
            for dom in db.domains:
                self._names.setdefault(dom.domain, dom.source)
        self._never_exact: dict[str, Source] = {}
        self._never_wild: list[tuple[re.Pattern[str], Source]] = []
        never = list(never_proxy)
        self.never_patterns: tuple[str, ...] = tuple(dict.fromkeys(p for p, _ in never))
        """Every NeverProxy host or ``*`` pattern, once each, in rule order."""
        for pattern, source in never:
            if "*" in pattern:
                self._never_wild.append((re.compile(fnmatch.translate(pattern)), source))
            else:
                self._never_exact.setdefault(pattern, source)

    @classmethod
    def from_results(cls, results: Iterable[ParseResult]) -> RuleSet:
        """Compile parsed files (in order) into one rule set."""
        results = list(results)
        return cls(
            databases=[db for r in results for db in r.databases],
            never_proxy=[n for r in results for n in r.never_proxy],
            hostname_edits=[e for r in results for e in r.hostname_edits],
        )

    def named_start(self, label: str) -> tuple[Database, NamedStart] | None:
        """The ``URL LABEL URL`` line for ``label`` (any case) and its database, if any."""
        return self._starts.get(label.lower())

    def hostmap(self, proxy_domain: str) -> HostMap:
        """The host-name mapping under ``proxy_domain`` with these rules' hostname edits."""
        return HostMap(proxy_domain, self.hostname_edits)

    def never_proxied(self, host: str) -> Source | None:
        """The NeverProxy line that excludes ``host``, if any."""
        host = host.lower()
        if host in self._never_exact:
            return self._never_exact[host]
        for pattern, source in self._never_wild:
            if pattern.fullmatch(host):
                return source
        return None

    @property
    def host_origins(self) -> tuple[Origin, ...]:
        """Every origin a URL, Host or HJ line names, in rule order."""
        return tuple(self._hosts)

    @property
    def domain_names(self) -> tuple[str, ...]:
        """Every domain a Domain or DJ line names (it covers the domain and hosts below it, on
        default ports), in rule order."""
        return tuple(self._domains)

    def origins_under(self, domain: str) -> list[Origin]:
        """The origins that URL, Host and HJ lines name on hosts below ``domain`` (not on
        ``domain`` itself), in rule order, without those NeverProxy excludes."""
        suffix = "." + domain.lower()
        return [
            origin
            for origin in self._hosts
            if origin.host.endswith(suffix) and self.never_proxied(origin.host) is None
        ]

    def _domain_rule(self, host: str) -> tuple[Database, DomainRule] | None:
        name = host
        while True:
            found = self._domains.get(name)
            if found is not None:
                return found
            _, dot, name = name.partition(".")
            if not dot or "." not in name:
                return None

    def lookup(self, origin: Origin) -> Allowed | Refused:
        """Which database allows ``origin`` and how; NeverProxy wins over every rule."""
        known = self._allowed.get(origin)
        if known is not None:
            return known
        never = self.never_proxied(origin.host)
        if never is not None:
            return Refused(f"{origin.host} is excluded by NeverProxy", source=never,
                           why=Why.NEVER_PROXY, url=origin.url())  # fmt: skip
        exact = self._hosts.get(origin)
        if exact is not None:
            db, rule = exact
            allowed = _strongest(db, origin, How.HOST, rule)
            return remember(self._allowed, origin, allowed, ALLOWED_REMEMBERED)
        by_domain = self._domain_rule(origin.host)
        if by_domain is not None and origin.default_port:
            db, dom = by_domain
            allowed = _strongest(db, origin, How.DOMAIN, dom)
            return remember(self._allowed, origin, allowed, ALLOWED_REMEMBERED)
        reason = f"no rule covers {origin.url()}"
        look_alike = self.look_alike(origin.host)
        if look_alike is not None:
            name, source = look_alike
            return Refused(
                reason,
                hint=f"{origin.host} only contains {name} ({source}): a look-alike host, not "
                "the vendor's; do not add a line for it",
                source=source,
                fix=Fix.LOOK_ALIKE,
                url=origin.url(),
                covered=name,
            )
        hint, fix = _hint_for(origin)
        return Refused(reason, hint=hint, fix=fix, url=origin.url())

    def look_alike(self, host: str) -> tuple[str, Source] | None:
        """A name the rules cover that ``host`` holds in its middle or at its start (as in
        ``www.jstor.org.evil.net``) while not being it or below it, and the line naming it."""
        labels = host.lower().split(".")
        for start in range(len(labels)):
            for end in range(len(labels) - 1, start + 1, -1):  # never a suffix: that is below
                name = ".".join(labels[start:end])
                if name in self._names:
                    return name, self._names[name]
        return None

    def allows(self, origin: Origin) -> Allowed | None:
        """The permission for ``origin``, or None."""
        found = self.lookup(origin)
        return found if isinstance(found, Allowed) else None

    def starting_point(self, url: str) -> Start | Refused:
        """Whether ``url`` may start a session: its origin needs a URL, Host or HJ line."""
        origin = Origin.from_url(url)
        if origin is None:
            return Refused(f"{url!r} is not an http(s) URL", why=Why.NOT_HTTP, url=url)
        found = self.lookup(origin)
        if isinstance(found, Refused):
            return found
        if found.how is How.DOMAIN:
            return Refused(
                f"{origin.host} is covered only by a Domain line ({found.source}); "
                "a starting point needs a URL, Host or HJ line",
                hint=f"add 'HJ {origin.url()}' to {found.database.title!r}",
                source=found.source,
                why=Why.DOMAIN_ONLY,
                fix=Fix.ADD_HJ_TO,
                url=origin.url(),
                database=found.database.title,
            )
        return Start(found.database, found.source, origin)


def _strongest(db: Database, origin: Origin, how: How, admitting: HostRule | DomainRule) -> Allowed:
    """``origin`` as ``db`` treats it: the first of its lines naming or covering the host that
    rewrites scripts too, else the line that admits it (attributes only)."""
    lines: list[HostRule | DomainRule] = [h for h in db.hosts if h.origin == origin]
    lines += [d for d in db.domains if d.covers(origin.host)]
    rule = next((line for line in lines if line.javascript), admitting)
    return Allowed(db, how, rule.source, rule.javascript, rule.directive, admitting.source)


def _hint_for(origin: Origin) -> tuple[str, Fix]:
    """The line a librarian would add for ``origin``; none for an address the gateway never
    connects to (the parser refuses such a line)."""
    try:
        address = host_address(origin.host)
    except ValueError:
        address = None
    reason = non_public(address) if address is not None else None
    if reason is not None:
        text = f"{origin.host} is {reason}: the gateway never connects to non-public addresses"
        return text, Fix.NON_PUBLIC
    return f"add 'HJ {origin.url()}' to the stanza of the database that uses it", Fix.ADD_HJ


def _origin_and_tail(url: str) -> tuple[Origin, str] | None:
    """An http(s) URL's origin and what follows it (``/`` at least); None for any other URL."""
    origin = Origin.from_url(url)
    if origin is None:
        return None
    _, _, rest = url.strip().partition("://")
    cut = re.search(r"[/?#]", rest)
    tail = rest[cut.start() :] if cut else "/"
    return origin, tail if tail.startswith("/") else "/" + tail


def proxied_url(url: str, hostmap: HostMap, scheme: str, port_suffix: str) -> str | None:
    """``url`` as patrons reach it through the gateway, or None when it is not http(s)."""
    split = _origin_and_tail(url)
    if split is None:
        return None
    origin, tail = split
    return f"{scheme}://{hostmap.proxied_host(origin)}{port_suffix}{tail}"


def vendor_url(url: str) -> str | None:
    """``url`` rebuilt from the origin the rules judge and its path, or None when it is not
    http(s): a browser sent there opens that origin, whatever the authority held (``user@``,
    or ``evil.example\\@www.jstor.org``, which Python reads as jstor and a browser as evil)."""
    split = _origin_and_tail(url)
    return None if split is None else split[0].url() + split[1]


def login_link(public_url: str, url: str) -> str:
    """The starting-point link a librarian puts in the catalogue for ``url``."""
    return f"{public_url}/login?qurl={quote(url, safe='')}"
