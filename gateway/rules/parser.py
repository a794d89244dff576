"""EZproxy database-stanza parser: a state machine over lines, pure (text in, values out).

Directives fall in three kinds, kept in the ``DIRECTIVES`` table:

- stanza directives (``Title``, ``URL``, ``HJ``, ``Find`` ...) describe the current database;
- position-dependent directives (``Option Cookie``, ``HTTPHeader``, ``AnonymousURL``, ``Group``,
  ``MimeFilter`` ...) change the state that holds for every following stanza until reset;
- server directives (``LoginPort``, ``Name`` ...) belong to a whole EZproxy config.txt and are
  reported as not imported.

A stanza takes the position-dependent state as it stands at its last host-defining line
(``URL``/``Host``/``HJ``/``Domain``/``DJ``), so the resets that published stanzas put after
their hosts (``Option Cookie``, ``AnonymousURL -*``) apply to the next stanza, not this one.
Every file starts from the default state, so each file stands alone.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from urllib.parse import urlsplit

from gateway.addresses import host_address, non_public, spelled
from gateway.hostmap import DEFAULT_PORTS, HostnameEdit, Origin, valid_host
from gateway.limits import EndLimit, Limit, parse_usage_limit
from gateway.rules.model import (
    AnonymousRule,
    CookieMode,
    Database,
    DomainRule,
    Finding,
    FindReplace,
    FormMethod,
    HeaderAction,
    HeaderDirection,
    HeaderPolicy,
    HeaderRule,
    HostRule,
    MimeAction,
    MimeFilter,
    NamedStart,
    Severity,
    Source,
)

_DIRECTIVE = re.compile(r"(\S+)\s*(.*)", re.DOTALL)

Include = Callable[[str], str | None]
"""Returns the text of an ``IncludeFile`` target, or None when there is no such file."""

MAX_INCLUDE_DEPTH = 8


class RuleSyntaxError(Exception):
    """A directive that cannot be understood; becomes an error finding at its line."""


class Placeholder(Exception):
    """A vendor template value still to be filled in; becomes a warning and the line is skipped."""


_PLACEHOLDER = re.compile(r"[\[\]{}]|://\.|^\.")
_TEMPLATE = re.compile(r"<[A-Za-z][\w.-]*>|\$\{[^}]*\}")
"""``<Institution_ID>``, ``${name}``: a vendor's template left in a line (not in Find/Replace,
whose text is HTML)."""
_TEMPLATE_FREE = frozenset({"find", "replace"})


def _check_placeholder(value: str) -> None:
    if _PLACEHOLDER.search(value):
        raise Placeholder(
            f"{value!r} looks like a template placeholder: put in your library's own value"
        )


@dataclass(frozen=True)
class ParseResult:
    """What one file (with its includes) holds."""

    databases: tuple[Database, ...]
    findings: tuple[Finding, ...]
    server_directives: tuple[tuple[Source, str], ...] = ()
    never_proxy: tuple[tuple[str, Source], ...] = ()
    hostname_edits: tuple[HostnameEdit, ...] = ()
    redirect_safe: tuple[str, ...] = ()

    @property
    def errors(self) -> tuple[Finding, ...]:
        """The findings that are errors."""
        return tuple(f for f in self.findings if f.severity is Severity.ERROR)


@dataclass
class _Settings:
    """Position-dependent state; ``slots`` keeps the lines that set it, for standalone export."""

    cookie_mode: CookieMode = CookieMode.COOKIE
    headers: tuple[HeaderRule, ...] = ()
    methods: frozenset[str] = frozenset()
    anonymous: tuple[AnonymousRule, ...] = ()
    group: str = "Default"
    mime_filters: tuple[MimeFilter, ...] = ()
    user_headers: tuple[str, ...] = ()
    x_forwarded_for: bool = False
    service_workers: bool = False
    options: frozenset[str] = frozenset()
    usage_limits: tuple[Limit, ...] = ()
    slots: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def preamble(self) -> tuple[str, ...]:
        return tuple(line for slot in _SLOT_ORDER for line in self.slots.get(slot, ()))


_SLOT_ORDER = (
    "cookie", "xff", "sw", "options", "group", "method", "header", "anonymous", "mime", "user",
    "usage",
)  # fmt: skip


@dataclass
class _Stanza:
    title: str
    hidden: bool
    source: Source
    settings: _Settings
    preamble: tuple[str, ...]
    url: str = ""
    hosts: list[HostRule] = field(default_factory=list)
    starts: list[NamedStart] = field(default_factory=list)
    domains: list[DomainRule] = field(default_factory=list)
    find_replace: list[FindReplace] = field(default_factory=list)
    pending_find: tuple[str, Source] | None = None
    lines: list[str] = field(default_factory=list)


def _check_address(directive: str, host: str) -> None:
    """Refuse a host that is a non-public IP address, or an address spelled unusually.

    The gateway never connects to loopback, private or metadata addresses (the upstream client
    checks again at connect time); saying so here keeps such a file from ever going live.
    """
    host = host.rstrip(".")
    try:
        address = host_address(host)
    except ValueError:
        raise RuleSyntaxError(f"{host!r} is not a valid host name") from None
    if address is None:
        return
    reason = non_public(address)
    named = spelled(host, address)
    if reason:
        raise RuleSyntaxError(
            f"{directive} names {named}, {reason}: the gateway never connects to non-public "
            "addresses"
        )
    if address.version == 4 and host != str(address):
        raise RuleSyntaxError(f"{directive} names {named}: write the address as {address}")


_GLOB = re.compile(r"[*?\[]")


def _host_of(value: str) -> str:
    """The host of ``[scheme://]host[:port][/path]`` (IPv6 without brackets), or ""."""
    try:
        return urlsplit(value if "://" in value else "http://" + value).hostname or ""
    except ValueError:
        return ""


def _split_url_like(
    value: str, default_scheme: str | None, directive: str
) -> tuple[list[str], str, int | None]:
    """``[scheme://]host[:port][/path]`` -> (schemes, host, port); raises on nonsense."""
    text = value.strip()
    _check_address(directive, _host_of(text))
    _check_placeholder(text)  # after the address check: brackets around ::1 are no placeholder
    if "://" not in text:
        text = "http://" + text
        schemes = ["http", "https"] if default_scheme is None else [default_scheme]
    else:
        schemes = []
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise RuleSyntaxError(f"{value!r} is not a host: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise RuleSyntaxError(f"{value!r}: only http and https hosts can be proxied")
    host = (parts.hostname or "").rstrip(".")
    if not valid_host(host):
        raise RuleSyntaxError(f"{value!r} is not a valid host name")
    return (schemes or [scheme]), host.lower(), port


class _Parser:
    def __init__(self, include: Include | None) -> None:
        self.include = include
        self.settings = _Settings()
        self.stanza: _Stanza | None = None
        self.databases: list[Database] = []
        self.findings: list[Finding] = []
        self.server: list[tuple[Source, str]] = []
        self.never_proxy: list[tuple[str, Source]] = []
        self.hostname_edits: list[HostnameEdit] = []
        self.redirect_safe: list[str] = []
        self.trailing: list[tuple[Source, str]] = []
        """Position-dependent settings not yet followed by a host line or a Title."""
        self.loose_lines: list[str] = []
        """Global lines seen outside a stanza; exported with the stanza that follows them."""

    # -- findings -------------------------------------------------------------------------
    def error(self, src: Source, message: str) -> None:
        self.findings.append(Finding(src, Severity.ERROR, message))

    def warn(self, src: Source, message: str) -> None:
        self.findings.append(Finding(src, Severity.WARNING, message))

    # -- state ----------------------------------------------------------------------------
    def set_slot(self, slot: str, lines: tuple[str, ...], **changes: object) -> None:
        slots = dict(self.settings.slots)
        slots[slot] = lines
        self.settings = replace(self.settings, slots=slots, **changes)  # type: ignore[arg-type]

    def add_to_slot(self, slot: str, line: str, **changes: object) -> None:
        self.set_slot(slot, (*self.settings.slots.get(slot, ()), line), **changes)

    def need_stanza(self, name: str) -> _Stanza:
        if self.stanza is None:
            raise RuleSyntaxError(f"{name} before any Title: start the database with a Title line")
        return self.stanza

    def mark_hosts(self, stanza: _Stanza) -> None:
        stanza.settings = self.settings
        self.trailing.clear()  # they apply to this stanza

    # -- stanzas --------------------------------------------------------------------------
    def finish(self) -> None:
        stanza = self.stanza
        if stanza is None:
            return
        self.stanza = None
        if stanza.pending_find is not None:
            text, src = stanza.pending_find
            self.error(src, f"Find {text!r} has no Replace line after it")
        if not stanza.url and not stanza.hosts and not stanza.domains:
            self.warn(
                stanza.source, f"Title {stanza.title!r} has no URL or hosts; nothing to proxy"
            )
            return
        if not stanza.url:
            self.warn(
                stanza.source,
                f"Title {stanza.title!r} has no URL line: its hosts are proxied, "
                "but it is not on the menu and cannot start a session",
            )
        s = stanza.settings
        self.databases.append(
            Database(
                title=stanza.title,
                url=stanza.url,
                source=stanza.source,
                hidden=stanza.hidden or not stanza.url,
                hosts=tuple(stanza.hosts),
                starts=tuple(stanza.starts),
                domains=tuple(stanza.domains),
                anonymous=s.anonymous,
                find_replace=tuple(stanza.find_replace),
                headers=s.headers,
                header_policy=HeaderPolicy.compile(s.headers),
                methods=s.methods,
                cookie_mode=s.cookie_mode,
                mime_filters=s.mime_filters,
                groups=frozenset({s.group}),
                user_headers=s.user_headers,
                x_forwarded_for=s.x_forwarded_for,
                service_workers=s.service_workers,
                options=s.options,
                usage_limits=s.usage_limits,
                preamble=stanza.preamble,
                lines=tuple(stanza.lines),
            )
        )

    # -- driver ---------------------------------------------------------------------------
    def run(self, text: str, file: str, depth: int = 0, seen: tuple[str, ...] = ()) -> None:
        for number, raw in enumerate(text.splitlines(), start=1):
            src = Source(file, number)
            line = raw.strip().lstrip("\ufeff")
            if not line or line.startswith("#"):
                continue
            name, args = _DIRECTIVE.match(line).groups()  # type: ignore[union-attr]
            key = name.lower()
            if self.stanza is not None and key not in _NOT_STANZA_LINES:
                self.stanza.lines.append(line)
            elif key in GLOBAL_DIRECTIVES:
                self.loose_lines.append(line)
            if key == "includefile":
                self.include_file(args.strip(), src, depth, (*seen, file))
                continue
            handler = DIRECTIVES.get(key)
            template = _TEMPLATE.search(args) if key not in _TEMPLATE_FREE else None
            if template is not None:
                self.warn(
                    src,
                    f"{template.group()!r} looks like a template placeholder: put in your "
                    "library's own value; line ignored",
                )
                continue
            try:
                if handler is not None:
                    before = self.settings
                    handler(self, args.strip(), src, line)
                    changed = self.settings is not before  # an ignored Option changes nothing
                    if key in POSITION_DEPENDENT and changed and not _is_reset(key, args.strip()):
                        self.trailing.append((src, name))
                elif key in SERVER_DIRECTIVES:
                    self.server.append((src, line))
                    home = CONFIGURATION_KEYS.get(key)
                    where = f" (in Carrel: {home} in the gateway's configuration)" if home else ""
                    self.warn(src, f"{name} is a server directive, not a database rule; "
                                   f"ignored{where}")  # fmt: skip
                elif key in UNSUPPORTED:
                    self.warn(src, f"{name} is not implemented by Carrel; line ignored")
                else:
                    self.warn(src, f"unknown directive {name!r}; line ignored")
            except RuleSyntaxError as exc:
                self.error(src, str(exc))
            except Placeholder as exc:
                self.warn(src, f"{exc}; line ignored")

    def include_file(self, name: str, src: Source, depth: int, seen: tuple[str, ...]) -> None:
        if not name:
            self.error(src, "IncludeFile needs a file name")
            return
        if name in seen or depth >= MAX_INCLUDE_DEPTH:
            self.error(src, f"IncludeFile {name!r} includes itself")
            return
        text = self.include(name) if self.include else None
        if text is None:
            self.warn(src, f"IncludeFile {name!r}: no such file; nothing included")
            if self.stanza is not None:
                self.stanza.lines.append(f"IncludeFile {name}")
            return
        self.run(text, name, depth + 1, seen)


# -- directive handlers ---------------------------------------------------------------------


def _need(args: str, name: str, what: str) -> str:
    if not args:
        raise RuleSyntaxError(f"{name} needs {what}, got nothing")
    return args


def _title(p: _Parser, args: str, src: Source, raw: str) -> None:
    p.finish()
    p.trailing.clear()  # they apply to the stanza this Title starts
    hidden = False
    if args.lower().startswith("-hide"):
        hidden, args = True, args[5:].strip()
    _need(args, "Title", "a database name")
    p.stanza = _Stanza(
        title=args,
        hidden=hidden,
        source=src,
        settings=p.settings,
        preamble=(*p.settings.preamble(), *p.loose_lines),
        lines=[raw],
    )
    p.loose_lines = []


def _url(p: _Parser, args: str, src: Source, raw: str) -> None:
    tokens = _need(args, "URL", "a starting-point URL").split()
    words = [t for t in tokens if not t.startswith("-")]
    if not words:
        raise RuleSyntaxError("URL needs a starting-point URL after its options")
    if len(words) > 2:
        _check_placeholder(" ".join(words))  # "{URL supplied to you by the vendor}"
        raise RuleSyntaxError(f"URL takes a label and a URL, got {' '.join(words)!r}")
    url, label = words[-1], words[0] if len(words) == 2 else ""
    method = _url_method(p, [t for t in tokens if t.startswith("-")], src)
    if method is not None and not label:
        raise RuleSyntaxError("URL -Form needs a label: URL -Form=post LABEL URL")
    if p.stanza is None:
        p.warn(src, "URL before any Title: the database is titled by its URL")
        _title(p, url, src, f"Title {url}")
        assert p.stanza is not None
        p.stanza.lines.append(raw)
    stanza = p.stanza
    _check_address("URL", _host_of(url))
    _check_placeholder(url)
    if "://" not in url and "." in url.split("/")[0]:
        p.warn(src, f"URL {url!r} has no scheme; read as http://{url}")
        url = "http://" + url
    origin = Origin.from_url(url)
    if origin is None:
        raise RuleSyntaxError(f"URL needs an absolute http(s) URL, got {url!r}")
    if stanza.url:
        p.warn(src, f"second URL line in {stanza.title!r}; the first one stays the start URL")
    else:
        stanza.url = url
    stanza.hosts.append(HostRule(origin, False, src, "URL"))
    if label:
        stanza.starts.append(NamedStart(label, url, src, method))
    p.mark_hosts(stanza)


def _url_method(p: _Parser, flags: list[str], src: Source) -> FormMethod | None:
    """The ``-Form=get|post`` of a URL line; every other option is a warning."""
    method = None
    for flag in flags:
        name, _, value = flag[1:].partition("=")
        if name.lower() == "form" and value.lower() in _FORM_METHODS:
            method = _FORM_METHODS[value.lower()]
        else:
            p.warn(src, f"URL option {flag} is not implemented by Carrel; ignored")
    return method


_FORM_METHODS = {m.value: m for m in FormMethod}


def _form_variable(p: _Parser, args: str, src: Source, raw: str) -> None:
    stanza = p.need_stanza("FormVariable")
    form = stanza.starts[-1] if stanza.starts else None
    if form is None or form.method is None:
        p.warn(
            src,
            "FormVariable is not implemented without a 'URL -Form=post LABEL URL' line before "
            "it; ignored",
        )
        return
    if args.startswith("-"):
        p.warn(src, f"FormVariable {args.split()[0]} is not implemented by Carrel; not sent")
        return
    name, equals, value = _need(args, "FormVariable", "name=value").partition("=")
    if not equals:
        p.warn(
            src,
            f"FormVariable {name} has no value (EZproxy copies it from the link's query, "
            "which Carrel does not implement); not sent",
        )
        return
    stanza.starts[-1] = replace(form, variables=(*form.variables, (name.strip(), value.strip())))


def _host(javascript: bool) -> Handler:
    def handle(p: _Parser, args: str, src: Source, raw: str) -> None:
        name = "HJ" if javascript else "Host"
        stanza = p.need_stanza(name)
        value = _need(args, name, "a host").split()[0]
        if value.startswith("*."):
            p.warn(src, f"{name} {value}: a wildcard host is read as {'DJ' if javascript else 'D'}")
            _domain(javascript)(p, value[2:], src, raw)
            return
        schemes, host, port = _split_url_like(value, None, name)
        for scheme in schemes:
            origin = Origin.of(scheme, host, port)
            stanza.hosts.append(HostRule(origin, javascript, src, name))
        p.mark_hosts(stanza)

    return handle


def _domain(javascript: bool) -> Handler:
    def handle(p: _Parser, args: str, src: Source, raw: str) -> None:
        name = "DJ" if javascript else "Domain"
        stanza = p.need_stanza(name)
        value = _need(args, name, "a domain").split()[0]
        _, host, _ = _split_url_like(value.removeprefix("*.").lstrip("."), None, name)
        stanza.domains.append(DomainRule(host, javascript, src, name))
        p.mark_hosts(stanza)

    return handle


_WILDCARD_HOST = re.compile(r"(\*\.)?[a-z0-9*-]+(\.[a-z0-9*-]+)+")


def _never_proxy(p: _Parser, args: str, src: Source, raw: str) -> None:
    for value in _need(args, "NeverProxy", "a host").split():
        _check_placeholder(value)
        host = value.lower().split("://")[-1].split("/")[0].split(":")[0]
        if not _WILDCARD_HOST.fullmatch(host):
            raise RuleSyntaxError(f"NeverProxy needs a host (wildcards allowed), got {value!r}")
        p.never_proxy.append((host, src))


def _find(p: _Parser, args: str, src: Source, raw: str) -> None:
    stanza = p.need_stanza("Find")
    if stanza.pending_find is not None:
        raise RuleSyntaxError(f"Find {stanza.pending_find[0]!r} has no Replace line after it")
    stanza.pending_find = (_need(args, "Find", "the text to find"), src)


def _replace(p: _Parser, args: str, src: Source, raw: str) -> None:
    stanza = p.need_stanza("Replace")
    if stanza.pending_find is None:
        raise RuleSyntaxError("Replace without a Find line before it")
    find, _ = stanza.pending_find
    stanza.pending_find = None
    stanza.find_replace.append(FindReplace(find, args, src))


def _hostname_edit(p: _Parser, args: str, src: Source, raw: str) -> None:
    parts = args.split()
    if len(parts) != 2:
        raise RuleSyntaxError("ProxyHostnameEdit needs two values: the host part and its label")
    find, label = parts
    if not re.fullmatch(r"[a-z0-9-]+", label.lower()):
        raise RuleSyntaxError(f"ProxyHostnameEdit label {label!r} must be letters, digits and -")
    p.hostname_edits.append(HostnameEdit(find.lower(), label.lower()))


def _byte_serve(p: _Parser, args: str, src: Source, raw: str) -> None:
    """Accepted as is: Carrel always passes byte ranges through for every database."""


def _redirect_safe(p: _Parser, args: str, src: Source, raw: str) -> None:
    p.redirect_safe.extend(_need(args, "RedirectSafe", "a host").lower().split())


# -- position-dependent handlers ------------------------------------------------------------

_COOKIE_OPTIONS = {mode.value.lower(): mode for mode in CookieMode}
_ACCEPTED_OPTIONS = {
    # Carrel always decodes and re-encodes compressed bodies, and always uses hyphenated names.
    "allowsendgzip": "AllowSendGZip",
    "httpshyphens": "HttpsHyphens",
}


def _option(p: _Parser, args: str, src: Source, raw: str) -> None:
    value = _need(args, "Option", "an option name").split()[0]
    key = value.lower()
    if key in _COOKIE_OPTIONS:
        p.set_slot("cookie", (raw,), cookie_mode=_COOKIE_OPTIONS[key])
    elif key in ("x-forwarded-for", "nox-forwarded-for"):
        p.set_slot("xff", (raw,), x_forwarded_for=key == "x-forwarded-for")
    elif key in ("serviceworkers", "noserviceworkers"):
        p.set_slot("sw", (raw,), service_workers=key == "serviceworkers")
    elif key in _ACCEPTED_OPTIONS:
        options = p.settings.options | {_ACCEPTED_OPTIONS[key]}
        p.add_to_slot("options", raw, options=options)
    else:
        p.warn(src, f"Option {value} is not implemented by Carrel; line ignored")


_HEADER_DIRECTIONS = {d.value: d for d in HeaderDirection}
_HEADER_ACTIONS = {a.value: a for a in HeaderAction}


def _http_header(p: _Parser, args: str, src: Source, raw: str) -> None:
    if not args:
        p.warn(src, "HTTPHeader without a header name; line ignored")
        return
    tokens = args.split()
    if tokens == ["-*"]:
        p.set_slot("header", (), headers=())
        return
    direction, action = HeaderDirection.REQUEST, HeaderAction.PROCESS
    while tokens and tokens[0].startswith("-"):
        flag = tokens.pop(0).lower()[1:]
        if flag in _HEADER_DIRECTIONS:
            direction = _HEADER_DIRECTIONS[flag]
        elif flag in _HEADER_ACTIONS:
            action = _HEADER_ACTIONS[flag]
        else:
            p.warn(src, f"HTTPHeader option -{flag} is not implemented by Carrel; line ignored")
            return
    if not tokens:
        raise RuleSyntaxError("HTTPHeader needs a header name after its options")
    if action is HeaderAction.EDIT:
        p.warn(
            src,
            f"HTTPHeader -edit is not implemented by Carrel: {tokens[0]} passes unchanged; "
            "line ignored",
        )
        return
    rule = HeaderRule(direction, action, tokens[0], tuple(tokens[1:]), src)
    p.add_to_slot("header", raw, headers=(*p.settings.headers, rule))


def _http_method(p: _Parser, args: str, src: Source, raw: str) -> None:
    methods = _need(args, "HTTPMethod", "a method").upper().split()
    if methods == ["-*"]:
        p.set_slot("method", (), methods=frozenset())
        return
    if not all(re.fullmatch(r"[A-Z]+", m) for m in methods):
        raise RuleSyntaxError(f"HTTPMethod needs method names such as PUT, got {args!r}")
    p.add_to_slot("method", raw, methods=p.settings.methods | frozenset(methods))


def _anonymous_url(p: _Parser, args: str, src: Source, raw: str) -> None:
    tokens = _need(args, "AnonymousURL", "a URL pattern").split()
    if tokens[-1] in ("-*", "-"):
        if tokens[-1] == "-":
            p.warn(src, "AnonymousURL - is read as AnonymousURL -*, which ends anonymous access")
        p.set_slot("anonymous", (), anonymous=())
        return
    pattern = tokens[-1]
    if pattern[0] not in "+-":
        pattern = "+" + pattern  # EZproxy reads a bare pattern as one to allow
    host = _host_of(pattern[1:].split("://", 1)[-1])
    if not _GLOB.search(host):  # a wildcard host is no address; a literal one is checked
        _check_address("AnonymousURL", host)
    methods = frozenset(t[1:].upper() for t in tokens[:-1] if t.startswith("-"))
    rule = AnonymousRule(pattern[0] == "+", pattern[1:], methods, src)
    p.add_to_slot("anonymous", raw, anonymous=(*p.settings.anonymous, rule))


def _group(p: _Parser, args: str, src: Source, raw: str) -> None:
    name = _need(args, "Group", "a group name").split()[0]
    p.set_slot("group", (raw,), group=name.lstrip("+"))


def _mime_filter(p: _Parser, args: str, src: Source, raw: str) -> None:
    tokens = _need(args, "MimeFilter", "a MIME type").split()
    if tokens == ["-*"]:
        p.set_slot("mime", (), mime_filters=())
        return
    if len(tokens) != 3:
        raise RuleSyntaxError("MimeFilter needs three values: MIME type, URL pattern, action")
    mime, url, action = tokens
    for pattern in (mime, url):
        try:
            re.compile(pattern)
        except re.error as exc:
            raise RuleSyntaxError(f"MimeFilter pattern {pattern!r} is not valid: {exc}") from None
    try:
        kind = MimeAction(action.lower())
    except ValueError:
        known = ", ".join(a.value for a in MimeAction)
        raise RuleSyntaxError(f"MimeFilter action {action!r} is not one of {known}") from None
    rule = MimeFilter(mime, url, kind, src)
    p.add_to_slot("mime", raw, mime_filters=(*p.settings.mime_filters, rule))


def _add_user_header(p: _Parser, args: str, src: Source, raw: str) -> None:
    if not args:
        p.set_slot("user", (), user_headers=())
        return
    p.set_slot("user", (raw,), user_headers=(args.split()[0],))


def _usage_limit(p: _Parser, args: str, src: Source, raw: str) -> None:
    try:
        parsed = parse_usage_limit(args)
    except ValueError as exc:
        raise RuleSyntaxError(str(exc)) from None
    in_force = p.settings.usage_limits
    lines = p.settings.slots.get("usage", ())
    if isinstance(parsed, EndLimit):
        if all(limit.name != parsed.name for limit in in_force):
            p.warn(src, f"UsageLimit -end {parsed.name}: no limit of that name is in force")
        kept = tuple(limit for limit in in_force if limit.name != parsed.name)
        kept_lines = tuple(line for line in lines if line.split()[-1] != parsed.name)
        p.set_slot("usage", kept_lines, usage_limits=kept)
        return
    others = tuple(limit for limit in in_force if limit.name != parsed.name)
    other_lines = tuple(line for line in lines if line.split()[-1] != parsed.name)
    p.set_slot("usage", (*other_lines, raw), usage_limits=(*others, parsed))


Handler = Callable[[_Parser, str, Source, str], None]

DIRECTIVES: dict[str, Handler] = {
    "title": _title,
    "t": _title,
    "url": _url,
    "u": _url,
    "host": _host(False),
    "h": _host(False),
    "hostjavascript": _host(True),
    "hj": _host(True),
    "domain": _domain(False),
    "d": _domain(False),
    "domainjavascript": _domain(True),
    "dj": _domain(True),
    "neverproxy": _never_proxy,
    "find": _find,
    "replace": _replace,
    "proxyhostnameedit": _hostname_edit,
    "phe": _hostname_edit,
    "byteserve": _byte_serve,
    "redirectsafe": _redirect_safe,
    "option": _option,
    "httpheader": _http_header,
    "httpmethod": _http_method,
    "anonymousurl": _anonymous_url,
    "group": _group,
    "mimefilter": _mime_filter,
    "adduserheader": _add_user_header,
    "usagelimit": _usage_limit,
    "formvariable": _form_variable,
}
"""Every directive Carrel understands, by lower-case name (abbreviations included)."""

GLOBAL_DIRECTIVES = frozenset(
    {"neverproxy", "proxyhostnameedit", "phe", "redirectsafe", "byteserve"}
)
"""Directives that are not tied to one stanza and may come before any Title."""

UNSUPPORTED = frozenset(
    {
        "formselect", "formsubmit", "encryptvar", "tokenkey",
        "tokensignaturekey", "eblsecret", "ebrarysite", "books24x7site", "allowvars",
        "clienttimeout", "binarytimeout", "sso", "findtitle", "adduserheadertitle", "cookie",
        "referer", "proxyhostnamewildcards", "description", "edithostname",
        "optioncookie", "hideezproxy", "maxvirtualhosts", "httpheadermatch",
    }
)  # fmt: skip
"""EZproxy database directives Carrel knows of but does not implement (reported as warnings)."""

SERVER_DIRECTIVES = frozenset(
    {
        "loginport", "loginportssl", "name", "firstport", "maxsessions", "maxlifetime",
        "audit", "auditpurge", "intruderipattempts", "intruderuserattempts", "ssllisten",
        "connectwindow", "proxybyhostname", "logformat", "logfile", "logspu", "loginmenu",
        "localwildcardcert", "ipexternal", "interface", "excludeip", "includeip", "autologinip",
        "rejectip", "dnsport", "identifier", "logfilter", "monitor", "runas", "pidfile",
        "sslcipherlist", "ssloptions", "shibbolethmetadata", "xdebug",
    }
)  # fmt: skip
"""Directives of a whole EZproxy config.txt that are not database rules."""
CONFIGURATION_KEYS = {"autologinip": "onsite.auto_login_ip", "excludeip": "onsite.exclude_ip"}
"""Server directives whose job a key of the gateway's configuration does."""


def parse(text: str, file: str, include: Include | None = None) -> ParseResult:
    """Parse one rule file (resolving ``IncludeFile`` through ``include``)."""
    parser = _Parser(include)
    parser.run(text, file)
    parser.finish()
    for source, name in parser.trailing:
        parser.warn(
            source,
            f"{name} holds for the stanzas after it, and none follows; "
            "put it before the Title of the stanza it is for",
        )
    return ParseResult(
        databases=tuple(parser.databases),
        findings=tuple(parser.findings),
        server_directives=tuple(parser.server),
        never_proxy=tuple(parser.never_proxy),
        hostname_edits=tuple(parser.hostname_edits),
        redirect_safe=tuple(parser.redirect_safe),
    )


POSITION_DEPENDENT = frozenset(
    {
        "option", "httpheader", "httpmethod", "anonymousurl", "group", "mimefilter",
        "adduserheader", "usagelimit",
    }
)  # fmt: skip
"""Directives that change the state for the stanzas after them."""

_RESETS = {
    ("option", "cookie"), ("option", "nox-forwarded-for"), ("group", "default"),
    ("usagelimit", "-end"),
}  # fmt: skip


def _is_reset(key: str, args: str) -> bool:
    """Whether a position-dependent line only puts a setting back to its default."""
    value = args.lower()
    if not value or value.endswith("-*") or value == "-":
        return True
    return (key, value.split()[0]) in _RESETS


_NOT_STANZA_LINES = frozenset({"title", "t", "includefile"}) | SERVER_DIRECTIVES
"""Lines not copied into a stanza's own text (``Title`` starts it; includes are inlined)."""
