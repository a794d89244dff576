"""One validated settings object, read from a TOML file and ``GATEWAY_*`` environment variables.

Every key lives in a section dataclass below; its type comes from the annotation and its
meaning and checks from the field's metadata, so the schema, the validation and the
documentation in ``gateway.example.toml`` are one table rather than a chain of ifs.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import ipaddress
import os
import re
import secrets
import shutil
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway.auth.attribute_rules import rule_problem
from gateway.hostmap import login_host, valid_host
from gateway.limits import EndLimit, parse_usage_limit
from gateway.netblocks import address_ranges

ENV_PREFIX = "GATEWAY_"
ENV_CONFIG_FILE = "GATEWAY_CONFIG"

Check = Callable[[Any], str | None]
"""A check returns None when the value is fine, else what the key expects."""


class ConfigError(Exception):
    """A setting is unknown, of the wrong type or impossible; the message names the key."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"configuration error: {key}: {message}")
        self.key = key


def _host_port(value: str) -> str | None:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return "expects host:port such as 127.0.0.1:8080"
    return None


def _domain(value: str) -> str | None:
    if value.endswith(".") or not valid_host(value, underscore=False):
        return "expects a DNS domain such as proxy.library.org"
    return None


def _one_of(*choices: str) -> Check:
    def check(value: str) -> str | None:
        return None if value in choices else f"expects one of {', '.join(choices)}"

    return check


def _port_or_zero(value: int) -> str | None:
    return None if 0 <= value < 65536 else "expects a TCP port (1-65535), or 0 for the listen port"


def _networks(value: list[str]) -> str | None:
    for entry in value:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            return f"expects addresses or CIDRs such as 10.0.0.0/8, not {entry!r}"
    return None


def _positive(value: float) -> str | None:
    return None if value > 0 else "expects a number greater than 0"


def _non_negative(value: int) -> str | None:
    return None if value >= 0 else "expects 0 or more"


def _host_ports(value: list[str]) -> str | None:
    for entry in value:
        if _host_port(entry):
            return f"expects host:port entries, not {entry!r}"
    return None


def _redis_url(value: str) -> str | None:
    schemes = ("redis://", "rediss://", "unix://")
    if value and not value.startswith(schemes):
        return "expects empty (embedded Redis) or a redis://, rediss:// or unix:// URL"
    return None


def _resolve_table(value: dict[str, str]) -> str | None:
    for host, target in value.items():
        if _domain(host) and host != "localhost":
            return f"host {host!r} is not a host name"
        addr, sep, port = target.rpartition(":")
        try:
            ipaddress.ip_address(addr.strip("[]"))
        except ValueError:
            return f"{host!r} expects an 'ip:port' target, got {target!r}"
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            return f"{host!r} expects an 'ip:port' target, got {target!r}"
    return None


def _nameservers(value: list[str]) -> str | None:
    for entry in value:
        host, _, port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "53")
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return (
                f"expects DNS server addresses such as 10.0.0.53 or 127.0.0.1:5353, not {entry!r}"
            )
        if not port.isdigit() or not 0 < int(port) < 65536:
            return f"expects a port from 1 to 65535 in {entry!r}"
    return None


def _existing_file_or_empty(value: str) -> str | None:
    return None if not value or Path(value).is_file() else f"file {value!r} does not exist"


def _key_text(value: str) -> str | None:
    return None if not value or len(value) >= 32 else "expects at least 32 characters"


def _log_level(value: str) -> str | None:
    return _one_of("debug", "info", "warning", "error")(value.lower())


def setting(
    default: Any, doc: str, check: Check | None = None, required: bool = False,
    each: Check | None = None,
) -> Any:  # fmt: skip
    """Declare a configuration key: its default, its one-line documentation and its check
    (``required``: an entry of a list section must give it; ``each``: a check of every item of
    a list, whose error names the item, ``oidc.campus.rules[2]``)."""
    meta = {"doc": doc, "check": check, "required": required, "each": each}
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata=meta)
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ServerSettings:
    """Where the gateway listens and the names patrons see."""

    listen: str = setting("127.0.0.1:8080", "address and port to listen on", _host_port)
    proxy_domain: str = setting(
        "proxy.localhost",
        "domain under which databases are served; pages live on login.<proxy_domain>",
        _domain,
    )
    public_scheme: str = setting(
        "http", "scheme patrons use (https behind a TLS front)", _one_of("http", "https")
    )
    public_port: int = setting(
        0, "port patrons use; 0 means the listen port; 80/443 are left out of URLs", _port_or_zero
    )
    state_dir: str = setting(
        "state", "directory for the secret key, embedded Redis data, patrons and logs"
    )
    tls_cert: str = setting(
        "",
        "certificate chain (PEM) to serve https directly; empty: plain http",
        _existing_file_or_empty,
    )
    tls_key: str = setting("", "private key (PEM) of tls_cert", _existing_file_or_empty)
    trusted_proxies: list[str] = setting(
        [], "addresses or CIDRs of fronts whose X-Forwarded-For is believed", _networks
    )
    shutdown_grace: float = setting(
        30.0, "seconds a stopping gateway gives requests in flight to finish", _positive
    )
    max_connections_per_address: int = setting(
        64,
        "connections one client address (an IPv6 /64) may hold open at once, per process; "
        "0: no cap; trusted_proxies are not capped",
        _non_negative,
    )
    idle_timeout: float = setting(
        75.0,
        "seconds a connection may sit idle, or leave a request's headers unfinished, before "
        "it is closed; keep it above a front's idle timeout to the gateway",
        _positive,
    )
    hsts_max_age: int = setting(
        31536000,
        "seconds browsers keep to https (Strict-Transport-Security) when public_scheme is "
        "https; 0 sends no header",
        _non_negative,
    )
    hsts_include_subdomains: bool = setting(
        False, "add includeSubDomains to Strict-Transport-Security (every name below must do https)"
    )


@dataclass(frozen=True)
class RedisSettings:
    """The shared state: sessions, lockouts, cookie jars, reload messages."""

    url: str = setting("", "Redis URL; empty starts an embedded redis-server", _redis_url)
    connect_timeout: float = setting(1.0, "seconds to wait for a connection", _positive)
    timeout: float = setting(1.0, "seconds to wait for an answer", _positive)
    retries: int = setting(2, "retries of a failed command before giving up", _non_negative)
    cluster: bool = setting(False, "url names a node of a Redis Cluster")
    sentinels: list[str] = setting(
        [], "Redis Sentinel addresses (host:port); set instead of url", _host_ports
    )
    service_name: str = setting("mymaster", "the primary's name the sentinels monitor")
    password: str = setting("", "password of the Redis nodes behind the sentinels")

    wait_replicas: int = setting(
        0,
        "replicas that must have a new session before login answers (Redis WAIT); 0: none",
        _non_negative,
    )

    @property
    def embedded(self) -> bool:
        """No Redis is configured: the gateway runs its own."""
        return not self.url and not self.sentinels


@dataclass(frozen=True)
class RulesSettings:
    """The librarians' database rules."""

    dir: str = setting("rewrite_rules", "directory of rule files, one per database")
    reload_interval: float = setting(
        0.5, "seconds between checks of the rules directory for changes", _positive
    )


@dataclass(frozen=True)
class UpstreamSettings:
    """How the gateway reaches vendors."""

    resolve: dict[str, str] = setting(
        {}, 'table "host" = "ip:port" overriding DNS for upstream connections', _resolve_table
    )
    nameservers: list[str] = setting(
        [],
        "DNS servers ('ip' or 'ip:port') asked for vendors' addresses instead of the system's",
        _nameservers,
    )
    ca_file: str = setting(
        "", "extra CA bundle (PEM) to trust for upstream TLS", _existing_file_or_empty
    )
    connect_timeout: float = setting(10.0, "seconds to wait for a vendor's connection", _positive)
    read_timeout: float = setting(
        60.0, "seconds to wait for a vendor's next bytes before a 504", _positive
    )


@dataclass(frozen=True)
class SecretsSettings:
    """Keys for signing tokens and hashing identities."""

    key: str = setting(
        "", "secret key (32+ characters); empty: generated into the state dir", _key_text
    )


def _regex(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"expects a regular expression ({exc})"
    return None


@dataclass(frozen=True)
class PatronsSettings:
    """Where patrons and their PINs are kept."""

    backend: str = setting(
        "local",
        "patron directory: local (SQLite in the state dir) or sip2 (the library's ILS)",
        _one_of("local", "sip2"),
    )
    card_pattern: str = setting(
        "[0-9]{14}", "regular expression a card number must match in full", _regex
    )
    database: str = setting(
        "", "SQLite file of the local directory; empty: <state_dir>/patrons.sqlite3"
    )


SIP2_FLAGS = (
    "charge_privileges_denied", "renewal_privileges_denied", "recall_privileges_denied",
    "hold_privileges_denied", "card_reported_lost", "too_many_items_charged",
    "too_many_items_overdue", "too_many_renewals", "too_many_claims_of_items_returned",
    "too_many_items_lost", "excessive_outstanding_fines", "excessive_outstanding_fees",
    "recall_overdue", "too_many_items_billed",
)  # fmt: skip


def _flags(value: list[str]) -> str | None:
    unknown = [v for v in value if v not in SIP2_FLAGS]
    return f"knows no flag {unknown[0]!r}; flags are {', '.join(SIP2_FLAGS)}" if unknown else None


@dataclass(frozen=True)
class Sip2Settings:
    """The library's ILS, reached over SIP2 (patrons.backend = "sip2")."""

    host: str = setting("", "SIP2 server host")
    port: int = setting(6001, "SIP2 server port", _port_or_zero)
    tls: bool = setting(False, "connect with TLS")
    tls_ca_file: str = setting("", "CA bundle for the ILS's certificate", _existing_file_or_empty)
    tls_verify: bool = setting(True, "check the ILS's certificate and host name")
    login_user: str = setting("", "SC login user (93 CN); empty: no login")
    login_password: str = setting("", "SC login password (93 CO)")
    location_code: str = setting("", "SC location code (93 CP)")
    institution_id: str = setting("", "institution id (AO)")
    terminal_password: str = setting("", "terminal password (AC)")
    encoding: str = setting("cp850", "character set of the ILS (often cp850 or latin-1)")
    message: str = setting(
        "63", "63 (patron information) or 23 (patron status)", _one_of("63", "23")
    )
    error_detection: bool = setting(True, "send sequence numbers and checksums (AY/AZ)")
    deny_flags: list[str] = setting(
        ["charge_privileges_denied", "card_reported_lost"],
        "patron status flags that block database access",
        _flags,
    )
    expiry_field: str = setting("PA", "extension field with the expiry date (YYYYMMDD)")
    pool_size: int = setting(4, "connections kept open to the ILS", _positive)
    connect_timeout: float = setting(5.0, "seconds to wait for a connection", _positive)
    read_timeout: float = setting(5.0, "seconds to wait for an answer", _positive)
    breaker_failures: int = setting(3, "failures in a row before the ILS gets a rest", _positive)
    breaker_cooldown: float = setting(
        30.0, "seconds of rest before trying the ILS again", _positive
    )
    cache_seconds: int = setting(0, "seconds a right card+PIN is remembered; 0: off", _non_negative)


@dataclass(frozen=True)
class SessionsSettings:
    """Patron sessions, kept in Redis."""

    idle_timeout: int = setting(1800, "seconds without a request before a session ends", _positive)
    absolute_timeout: int = setting(
        43200, "seconds after login when a session ends anyway", _positive
    )
    max_per_card: int = setting(3, "concurrent sessions per card; the oldest ends first", _positive)
    cookie_name: str = setting("carrel_session", "name of the session cookie")


@dataclass(frozen=True)
class LockoutSettings:
    """Protection of four-digit PINs against guessing."""

    card_failures: int = setting(
        5, "wrong PINs per card within card_window before a lock", _positive
    )
    card_window: int = setting(900, "seconds over which a card's failures count", _positive)
    card_lock: int = setting(900, "seconds a card stays locked", _positive)
    address_failures: int = setting(
        20, "failed logins per client address within the window", _positive
    )
    address_window: int = setting(900, "seconds over which an address's failures count", _positive)
    address_lock: int = setting(900, "seconds an address stays throttled", _positive)
    pin_spray_cards: int = setting(
        20,
        "distinct cards one PIN may fail on within pin_spray_window from one address block "
        "(IPv4 /24, IPv6 /48); over all addresses the same count raises an alarm",
        _positive,
    )
    pin_spray_window: int = setting(3600, "seconds over which one PIN's cards count", _positive)


@dataclass(frozen=True)
class MailSettings:
    """The SMTP server for PIN reset links and notices."""

    host: str = setting("", "SMTP host; empty: no email is sent (patrons are told to visit)")
    port: int = setting(25, "SMTP port (587 for STARTTLS, 465 for TLS)", _port_or_zero)
    security: str = setting("none", "none, starttls or tls", _one_of("none", "starttls", "tls"))
    user: str = setting("", "SMTP user name; empty: no login")
    password: str = setting("", "SMTP password")
    from_address: str = setting("library@localhost", "the From address of messages to patrons")
    timeout: float = setting(10.0, "seconds to wait for the SMTP server", _positive)


def _reset_minutes(value: int) -> str | None:
    return None if 1 <= value <= 30 else "expects 1 to 30 (minutes)"


@dataclass(frozen=True)
class PinSettings:
    """PIN self-service."""

    reset_minutes: int = setting(
        30, "minutes a reset link stays valid (30 at most)", _reset_minutes
    )
    forgot_per_card: int = setting(3, "reset emails per card per hour", _positive)
    forgot_per_address: int = setting(10, "reset requests per client address per hour", _positive)
    change_elsewhere: str = setting(
        "", "where patrons change their PIN when the directory cannot (shown on the PIN pages)"
    )


@dataclass(frozen=True)
class CompanionSettings:
    """The companion script that keeps URLs vendor scripts build at run time on the proxy."""

    enabled: bool = setting(
        True, "insert the companion into proxied pages and workers (false: server-side only)"
    )


@dataclass(frozen=True)
class MetricsSettings:
    """Prometheus metrics at /metrics on the login host (off unless one of these is set)."""

    token: str = setting("", "bearer token a scraper must send")
    allow: list[str] = setting(
        [], "addresses or CIDRs allowed to scrape without the token", _networks
    )


@dataclass(frozen=True)
class LoggingSettings:
    """What the gateway writes to its log."""

    level: str = setting("info", "log level: debug, info, warning or error", _log_level)
    access_log: str = setting(
        "", "access log (ezPAARSE-ready); empty: <state_dir>/access.log; '-' to turn it off"
    )
    access_log_max_mb: int = setting(100, "size at which the access log rotates", _positive)
    access_log_backups: int = setting(10, "rotated access logs kept", _non_negative)
    spu_log: str = setting(
        "", "starting-point log, a line per database opened; empty: <state_dir>/spu.log; '-' off"
    )


def _origin_or_empty(value: str) -> str | None:
    if not value:
        return None
    scheme, sep, rest = value.partition("://")
    if scheme not in ("http", "https") or not sep or not rest or "/" in rest:
        return "expects an origin such as https://admin.library.example (no path), or empty"
    return None


STAFF_ROLES = ("desk", "editor", "admin")


def _roles(value: list[str]) -> str | None:
    unknown = [r for r in value if r not in STAFF_ROLES]
    return f"expects roles from {', '.join(STAFF_ROLES)}, not {unknown[0]!r}" if unknown else None


@dataclass(frozen=True)
class AdminSettings:
    """The librarians' console at /admin: staff accounts, its own sessions and lockout, audit."""

    origin: str = setting(
        "",
        "serve the console on its own origin (https://admin.library.example) instead of "
        "/admin on the login host",
        _origin_or_empty,
    )
    staff_database: str = setting(
        "", "SQLite file of staff accounts; empty: <state_dir>/staff.sqlite3"
    )
    idle_timeout: int = setting(
        900, "seconds without a request before a staff session ends", _positive
    )
    absolute_timeout: int = setting(
        28800, "seconds after login when a staff session ends anyway", _positive
    )
    login_failures: int = setting(
        5, "wrong passwords per staff account within login_window before a lock", _positive
    )
    login_window: int = setting(
        900, "seconds over which a staff account's failures count", _positive
    )
    login_lock: int = setting(900, "seconds a staff account (or address) stays locked", _positive)
    address_failures: int = setting(
        20, "failed staff logins per client address within login_window", _positive
    )
    see_cards: list[str] = setting(
        ["desk", "editor", "admin"],
        "roles that see card numbers in the sessions list (others see pseudonyms only)",
        _roles,
    )
    audit_log: str = setting(
        "", "audit log file (JSON lines); empty: <state_dir>/audit.log; '-' for Redis only"
    )
    audit_keep: int = setting(100000, "audit entries kept in Redis (the file keeps all)", _positive)
    history_versions: int = setting(50, "earlier versions kept per rule file", _positive)


def _usage_limits(value: list[str]) -> str | None:
    for line in value:
        try:
            if isinstance(parse_usage_limit(line), EndLimit):
                return f"-end has no meaning here, in {line!r}"
        except ValueError as exc:
            return f"{exc}, in {line!r}"
    return None


URL_AUTHORITY = re.compile(r"([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?")
"""A URL's host and port, nothing else (no user, no characters a header would split on)."""


def _http_url_or_empty(value: str) -> str | None:
    parts = urlsplit(value)
    authority = URL_AUTHORITY.fullmatch(parts.netloc)
    ok = not value or (parts.scheme in ("http", "https") and authority is not None)
    return None if ok else "expects an http(s) URL, or empty"


@dataclass(frozen=True)
class UsageSettings:
    """Abuse controls and usage counts: limits for every database, and who hears of a trip."""

    limits: list[str] = setting(
        [],
        "limits for every database, in UsageLimit syntax without the keyword, e.g. "
        "'-enforce -interval=60 -expires=60 -downloads=100 -per=session pdfs'",
        _usage_limits,
    )
    download_types: list[str] = setting(
        ["application/pdf"], "content types counted as downloads (-downloads=, reports)"
    )
    notify_email: list[str] = setting([], "staff addresses told when a -notify limit trips")
    webhook: str = setting(
        "", "URL that gets a JSON POST when a -notify limit trips", _http_url_or_empty
    )
    report_months: int = setting(25, "months the usage counts are kept in Redis", _positive)


PHONE = re.compile(r"\+?[0-9][0-9 ().-]{2,30}")
"""A phone number as a library prints it: digits with spaces, dots, dashes, brackets, a +."""
EMAIL = re.compile(r"[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+")


def _phone_or_empty(value: str) -> str | None:
    ok = not value or PHONE.fullmatch(value)
    return None if ok else "expects a phone number such as +1 555 010 0199, or empty"


def _email_or_empty(value: str) -> str | None:
    ok = not value or EMAIL.fullmatch(value)
    return None if ok else "expects an email address such as ask@library.example, or empty"


def _plain_text(value: str) -> str | None:
    bad = any(ord(c) < 32 and c != "\n" for c in value) or len(value) > 300
    return "expects plain text of at most 300 characters" if bad else None


@dataclass(frozen=True)
class LibrarySettings:
    """Who runs the gateway: the name, logo and contacts every patron page shows."""

    name: str = setting(
        "",
        "the library's name in every page's title and header; empty: a neutral title",
        _plain_text,
    )
    name_es: str = setting("", "the name on Spanish pages; empty: name", _plain_text)
    logo_url: str = setting(
        "",
        "http(s) URL of the library's logo, shown in the header with the name as its text",
        _http_url_or_empty,
    )
    address: str = setting(
        "", "postal address for patrons who need a person (lines separated by \\n)", _plain_text
    )
    phone: str = setting("", "phone number patrons can call for help", _phone_or_empty)
    email: str = setting("", "email address patrons can write to for help", _email_or_empty)
    chat_url: str = setting("", "http(s) URL of the library's chat with a librarian",
                            _http_url_or_empty)  # fmt: skip
    catalogue_url: str = setting("", "http(s) URL of the library's catalogue", _http_url_or_empty)
    account_url: str = setting(
        "", "http(s) URL of My Account (the catalogue's patron account)", _http_url_or_empty
    )

    def display_name(self, lang: str) -> str:
        """The configured name for pages in ``lang`` (empty when none is configured)."""
        return (self.name_es if lang == "es" else "") or self.name


@functools.lru_cache(maxsize=16)
def _console_origin(origin: str) -> tuple[str | None, str]:
    """``admin.origin``'s host name and scheme, split once: every response asks
    (``Settings.serves_https``)."""
    parts = urlsplit(origin)
    return parts.hostname, parts.scheme


@dataclass(frozen=True)
class SigninSettings:
    """How patrons sign in: the card form, and the federated providers listed as [[oidc]],
    [[cas]] and [[saml]]."""

    card: bool = setting(
        True, "offer the card number and PIN form on the login page (false: only the providers)"
    )
    flow_timeout: int = setting(
        600, "seconds a patron has to come back from a provider before the sign-in expires",
        _positive,
    )  # fmt: skip
    starts_per_address: int = setting(
        30, "sign-ins one client address (an IPv6 /64) may start within flow_timeout", _positive
    )


def _address_ranges(value: list[str]) -> str | None:
    for entry in value:
        try:
            address_ranges((entry,))
        except ValueError:
            return (
                "expects addresses, CIDRs (10.0.0.0/8) or ranges (10.0.0.1-10.0.0.255, the "
                f"first no higher than the last), not {entry!r}"
            )
    return None


GROUP = re.compile(r"[A-Za-z0-9_.-]{1,64}")
"""A group name as the rules' ``Group`` line writes one (``+`` there joins several)."""


def _groups(value: list[str]) -> str | None:
    bad = [g for g in value if not GROUP.fullmatch(g)]
    if bad or not value:
        return "expects group names (letters, digits, _ . -) such as Default" + (
            f", not {bad[0]!r}" if bad else ""
        )
    return None


@dataclass(frozen=True)
class OnsiteSettings:
    """Patrons in the library's own buildings, known by their address (EZproxy's AutoLoginIP
    and ExcludeIP). Behind a front, the address is the one ``server.trusted_proxies`` believe."""

    auto_login_ip: list[str] = setting(
        [],
        "addresses, CIDRs or first-last ranges whose patrons get a session without logging in "
        "(EZproxy's AutoLoginIP); a session that leaves them ends",
        _address_ranges,
    )
    auto_login_groups: list[str] = setting(
        ["Default"], "the groups of those sessions, for the rules' Group lines", _groups
    )
    exclude_ip: list[str] = setting(
        [],
        "addresses, CIDRs or first-last ranges whose starting-point links go straight to the "
        "vendor, unproxied, for URLs the rules cover (EZproxy's ExcludeIP)",
        _address_ranges,
    )


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
"""Hosts a provider may be reached on without TLS: tests only, nothing crosses a network."""
PROVIDER_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
JWS_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
)  # fmt: skip
"""Signature algorithms an ID token may use: public-key ones only. ``none`` would accept any
token, and HS256 (signed with the client secret) any party that knows that secret."""


def _provider_id(value: str) -> str | None:
    ok = PROVIDER_ID.fullmatch(value)
    return None if ok else "expects lower-case letters, digits and '-' (at most 32), e.g. campus"


def _issuer(value: str) -> str | None:
    parts = urlsplit(value)
    authority = URL_AUTHORITY.fullmatch(parts.netloc)
    loopback = parts.scheme == "http" and (parts.hostname or "") in LOOPBACK_HOSTS
    if (
        authority is None
        or not (parts.scheme == "https" or loopback)
        or parts.query
        or parts.fragment
    ):
        return "expects an https URL without query (http only on loopback, for tests)"
    return None


def _scopes(value: list[str]) -> str | None:
    if "openid" not in value:
        return "expects a list that holds openid"
    bad = [v for v in value if not v or any(c.isspace() or c in '"\\' for c in v)]
    return f"expects scope names without spaces, not {bad[0]!r}" if bad else None


def _algorithms(value: list[str]) -> str | None:
    bad = [v for v in value if v not in JWS_ALGORITHMS]
    if bad or not value:
        return f"expects public-key algorithms from {', '.join(JWS_ALGORITHMS)}" + (
            f", not {bad[0]!r}" if bad else ""
        )
    return None


def _claim(value: str) -> str | None:
    return None if re.fullmatch(r"[A-Za-z0-9_:.-]{1,64}", value) else "expects a claim name"


def _claim_or_empty(value: str) -> str | None:
    return _claim(value) if value else None


def _required_text(value: str) -> str | None:
    return _plain_text(value) or (None if value.strip() else "expects a value")


RULES_HELP = (
    "attribute rules, one per line (If <attribute> equals|contains|matches <text>; Group <name> "
    "| Deny | PatronId <attribute>): see the README's attribute rules"
)


@dataclass(frozen=True)
class ProviderSettings:
    """What every federated provider has: its id, the name on its button, and its attribute
    rules."""

    id: str = setting(
        "", "short name in the provider's URLs (/signin/<id>) and sessions; unique over all "
        "kinds", _provider_id, required=True,
    )  # fmt: skip
    display_name: str = setting(
        "", "what the login page says after 'Sign in with', e.g. Campus ID", _required_text,
        required=True,
    )  # fmt: skip
    display_name_es: str = setting("", "the name on Spanish pages; empty: display_name",
                                   _plain_text)  # fmt: skip
    rules: list[str] = setting([], RULES_HELP, each=rule_problem)

    def label(self, lang: str) -> str:
        """The provider's name for pages in ``lang``."""
        return (self.display_name_es if lang == "es" else "") or self.display_name


@dataclass(frozen=True)
class OidcSettings(ProviderSettings):
    """One OpenID Connect provider the login page offers ("Sign in with <display_name>")."""

    issuer: str = setting(
        "",
        "the provider's issuer URL; its discovery document is <issuer>/.well-known/"
        "openid-configuration",
        _issuer, required=True,
    )  # fmt: skip
    client_id: str = setting("", "the client id the provider gave the gateway", _required_text,
                             required=True)  # fmt: skip
    client_secret: str = setting(
        "", "client secret (client_secret_basic); set this or private_key_file"
    )
    private_key_file: str = setting(
        "", "PEM private key for private_key_jwt client authentication (instead of a secret)",
        _existing_file_or_empty,
    )  # fmt: skip
    private_key_alg: str = setting(
        "RS256", "signature algorithm of the private_key_jwt assertion",
        _one_of("RS256", "PS256", "ES256"),
    )  # fmt: skip
    scopes: list[str] = setting(["openid"], "scopes asked for (openid is required)", _scopes)
    algorithms: list[str] = setting(
        ["RS256", "ES256"], "signature algorithms accepted for ID tokens (never none or HS*)",
        _algorithms,
    )  # fmt: skip
    userinfo: bool = setting(False, "also read the userinfo endpoint (claims the ID token lacks)")
    patron_id_claim: str = setting(
        "sub", "claim that identifies the patron (pseudonymised in logs as cards are)", _claim
    )
    groups_claim: str = setting(
        "",
        "claim whose values (a list or one string) are the patron's groups for the rules' "
        "Group lines; empty: every patron is in Default",
        _claim_or_empty,
    )
    ca_file: str = setting(
        "", "extra CA bundle (PEM) to trust for the provider's TLS", _existing_file_or_empty
    )
    timeout: float = setting(10.0, "seconds to wait for the provider's answers", _positive)
    leeway: int = setting(
        60, "seconds of clock difference allowed when checking token times", _non_negative
    )


CAS_VALIDATE_PATHS = ("/p3/serviceValidate", "/serviceValidate")
"""Where a CAS server validates tickets: CAS 3.0's, or CAS 2.0's (attributes only on servers
that add them there, as many do)."""


def _saml_attribute(value: str) -> str | None:
    ok = re.fullmatch(r"[A-Za-z0-9_:./-]{1,128}", value)
    return None if ok else "expects an attribute name (eduPersonPrincipalName or urn:oid:...)"


def _saml_attribute_or_empty(value: str) -> str | None:
    return _saml_attribute(value) if value else None


def _entity_id_or_empty(value: str) -> str | None:
    bad = any(c.isspace() or ord(c) < 32 for c in value) or len(value) > 1024
    return "expects a URI such as https://idp.example.edu/idp/shibboleth" if bad else None


CAS_ATTRIBUTE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
"""An attribute's name as a CAS answer gives it (an XML local name, without its prefix)."""


def _attribute_or_empty(value: str) -> str | None:
    ok = not value or CAS_ATTRIBUTE.fullmatch(value)
    return None if ok else "expects an attribute name (an XML element name, no prefix)"


def _cas_patron_id(value: str) -> str | None:
    ok = value == "cas:user" or CAS_ATTRIBUTE.fullmatch(value)
    return None if ok else "expects cas:user (the CAS user name) or an attribute name"


@dataclass(frozen=True)
class CasSettings(ProviderSettings):
    """One CAS server the login page offers ("Sign in with <display_name>"), CAS 3.0."""

    server_url: str = setting(
        "",
        "the CAS server's base URL, e.g. https://cas.example.edu/cas: patrons are sent to "
        "<server_url>/login, tickets validated at <server_url><validate>",
        _issuer, required=True,
    )  # fmt: skip
    validate: str = setting(
        "/p3/serviceValidate", "ticket validation path: /p3/serviceValidate (CAS 3.0, with "
        "attributes) or /serviceValidate (CAS 2.0)", _one_of(*CAS_VALIDATE_PATHS),
    )  # fmt: skip
    patron_id_attribute: str = setting(
        "cas:user", "what identifies the patron (pseudonymised in logs as cards are): cas:user, "
        "the CAS user name, or an attribute's name", _cas_patron_id,
    )  # fmt: skip
    groups_attribute: str = setting(
        "",
        "attribute whose values are the patron's groups for the rules' Group lines; empty: "
        "every patron is in Default",
        _attribute_or_empty,
    )
    ca_file: str = setting(
        "", "extra CA bundle (PEM) to trust for the CAS server's TLS", _existing_file_or_empty
    )
    timeout: float = setting(10.0, "seconds to wait for the CAS server's answers", _positive)


LDAP_PORTS = {"ldap": 389, "ldaps": 636}


def _ldap_url(value: str) -> str | None:
    parts = urlsplit(value)
    ok = parts.scheme in LDAP_PORTS and URL_AUTHORITY.fullmatch(parts.netloc) is not None
    if not ok or parts.path not in ("", "/") or parts.query or parts.fragment:
        return "expects ldaps://host:port or ldap://host:port (nothing after the port)"
    return None


def _ldap_filter(value: str) -> str | None:
    depth = 0
    for char in value:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            break
    balanced = depth == 0 and value.startswith("(") and value.endswith(")")
    if not balanced or "{username}" not in value:
        return "expects a filter in parentheses holding {username}, e.g. (uid={username})"
    return None


def _ldap_attribute(value: str) -> str | None:
    ok = re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,63}", value)
    return None if ok else "expects an attribute name such as uid or sAMAccountName"


def _ldap_attribute_or_empty(value: str) -> str | None:
    return _ldap_attribute(value) if value else None


def _ldap_attributes(value: list[str]) -> str | None:
    bad = [v for v in value if _ldap_attribute(v)]
    return f"expects attribute names, not {bad[0]!r}" if bad else None


@dataclass(frozen=True)
class LdapSettings(ProviderSettings):
    """One LDAP directory (OpenLDAP, Active Directory) whose users sign in with a username and
    password on the login page: the gateway searches as the service account, then binds as the
    user's entry with the password."""

    url: str = setting(
        "", "the server, ldaps://host:636 or ldap://host:389 (then start_tls is needed, except "
        "on loopback)", _ldap_url, required=True,
    )  # fmt: skip
    start_tls: bool = setting(False, "upgrade an ldap:// connection with StartTLS before binding")
    ca_file: str = setting(
        "", "CA bundle (PEM) to trust for the server's certificate; empty: the system's",
        _existing_file_or_empty,
    )  # fmt: skip
    bind_dn: str = setting(
        "", "the service account's DN, which searches for the user's entry", _required_text,
        required=True,
    )  # fmt: skip
    bind_password: str = setting(
        "", "the service account's password; better from GATEWAY_LDAP__<ID>__BIND_PASSWORD"
    )
    base_dn: str = setting("", "where users are searched for (subtree)", _required_text,
                           required=True)  # fmt: skip
    user_filter: str = setting(
        "(&(objectClass=person)(uid={username}))",
        "search filter; {username} becomes the typed username, escaped (RFC 4515); Active "
        "Directory: (&(objectClass=user)(sAMAccountName={username}))",
        _ldap_filter,
    )  # fmt: skip
    attributes: list[str] = setting(
        [], "further attributes read from the user's entry (for the rules)", _ldap_attributes
    )
    patron_id_attribute: str = setting(
        "uid", "attribute that identifies the patron (pseudonymised in logs as cards are)",
        _ldap_attribute,
    )  # fmt: skip
    groups_attribute: str = setting(
        "", "attribute whose values are the patron's groups for the rules' Group lines; empty: "
        "every patron is in Default", _ldap_attribute_or_empty,
    )  # fmt: skip
    timeout: float = setting(10.0, "seconds to wait for the server's answers", _positive)

    @property
    def host(self) -> str:
        """The server's host name or address."""
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        """The server's port (636 for ldaps, 389 for ldap when the URL names none)."""
        parts = urlsplit(self.url)
        return parts.port or LDAP_PORTS[parts.scheme]

    @property
    def ldaps(self) -> bool:
        """Whether the connection is TLS from its first byte."""
        return urlsplit(self.url).scheme == "ldaps"


def _check_ldap(where: str, provider: LdapSettings) -> None:
    # The user's password goes to the server in the bind: never in clear over a network.
    if not (provider.ldaps or provider.start_tls) and provider.host not in LOOPBACK_HOSTS:
        raise ConfigError(f"{where}.start_tls", "expects true for an ldap:// URL (or use "
                          "ldaps://): passwords must not cross the network in clear")  # fmt: skip
    if not provider.bind_password:
        raise ConfigError(f"{where}.bind_password", "expects the service account's password "
                          f"(or GATEWAY_LDAP__{provider.id.upper().replace('-', '_')}"
                          "__BIND_PASSWORD)")  # fmt: skip


@dataclass(frozen=True)
class SamlSettings(ProviderSettings):
    """One SAML 2.0 identity provider (a Shibboleth IdP, ADFS...) the login page offers."""

    entity_id: str = setting(
        "", "the gateway's SP entity id; empty: <public_url>/signin/<id>/metadata",
        _entity_id_or_empty,
    )  # fmt: skip
    key_file: str = setting(
        "", "PEM private key of the SP: signs the AuthnRequests and decrypts encrypted "
        "assertions (optional; with cert_file)", _existing_file_or_empty,
    )  # fmt: skip
    cert_file: str = setting(
        "", "PEM certificate of key_file, published in the SP metadata (optional; with key_file)",
        _existing_file_or_empty,
    )  # fmt: skip
    idp_metadata_file: str = setting(
        "", "the IdP's metadata as a file (set this or idp_metadata_url)", _existing_file_or_empty
    )
    idp_metadata_url: str = setting(
        "", "the IdP's metadata URL, fetched at start and every metadata_refresh seconds",
        _http_url_or_empty,
    )  # fmt: skip
    idp_metadata_cert: str = setting(
        "", "PEM certificate that must have signed the IdP metadata; empty: not checked",
        _existing_file_or_empty,
    )  # fmt: skip
    idp_entity_id: str = setting(
        "", "which IdP of the metadata to use; empty: the only one it describes",
        _entity_id_or_empty,
    )  # fmt: skip
    metadata_refresh: int = setting(
        3600, "seconds between fetches of idp_metadata_url (or reads of the file)", _positive
    )
    clock_skew: int = setting(
        60, "seconds of clock difference allowed when checking assertion times", _non_negative
    )
    patron_id_attribute: str = setting(
        "eduPersonPrincipalName",
        "attribute that identifies the patron, by friendly name or urn:oid name "
        "(pseudonymised in logs as cards are)", _saml_attribute,
    )  # fmt: skip
    groups_attribute: str = setting(
        "",
        "attribute whose values are the patron's groups for the rules' Group lines (friendly "
        "or urn:oid name); empty: every patron is in Default",
        _saml_attribute_or_empty,
    )
    ca_file: str = setting(
        "", "extra CA bundle (PEM) to trust for idp_metadata_url's TLS", _existing_file_or_empty
    )
    timeout: float = setting(10.0, "seconds to wait for the IdP metadata", _positive)


LIST_SECTIONS: dict[str, type[Any]] = {
    "oidc": OidcSettings,
    "cas": CasSettings,
    "saml": SamlSettings,
    "ldap": LdapSettings,
}
"""Sections written as TOML arrays of tables (``[[oidc]]``, ``[[cas]]``, ``[[saml]]``,
``[[ldap]]``): one entry per provider, each with an ``id``; the environment reaches an entry's
key as ``GATEWAY_<SECTION>__<ID>__<KEY>`` (``GATEWAY_OIDC__CAMPUS__CLIENT_SECRET``)."""
PROVIDER_CHECKS: dict[str, Callable[[str, Any], None]] = {"ldap": _check_ldap}
"""What a list section's entry must satisfy beyond its keys' own checks and PAIRED_KEYS."""


@dataclass(frozen=True)
class Settings:
    """All settings, one attribute per TOML section."""

    server: ServerSettings = field(default_factory=ServerSettings)
    redis: RedisSettings = field(default_factory=RedisSettings)
    rules: RulesSettings = field(default_factory=RulesSettings)
    upstream: UpstreamSettings = field(default_factory=UpstreamSettings)
    secrets: SecretsSettings = field(default_factory=SecretsSettings)
    patrons: PatronsSettings = field(default_factory=PatronsSettings)
    sip2: Sip2Settings = field(default_factory=Sip2Settings)
    sessions: SessionsSettings = field(default_factory=SessionsSettings)
    lockout: LockoutSettings = field(default_factory=LockoutSettings)
    mail: MailSettings = field(default_factory=MailSettings)
    pin: PinSettings = field(default_factory=PinSettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    logging: LoggingSettings = field(default_factory=LoggingSettings)
    admin: AdminSettings = field(default_factory=AdminSettings)
    usage: UsageSettings = field(default_factory=UsageSettings)
    library: LibrarySettings = field(default_factory=LibrarySettings)
    companion: CompanionSettings = field(default_factory=CompanionSettings)
    signin: SigninSettings = field(default_factory=SigninSettings)
    onsite: OnsiteSettings = field(default_factory=OnsiteSettings)
    oidc: tuple[OidcSettings, ...] = ()
    """The OpenID Connect providers, in the order the login page shows them."""
    cas: tuple[CasSettings, ...] = ()
    """The CAS servers, after the OpenID Connect providers."""
    saml: tuple[SamlSettings, ...] = ()
    """The SAML 2.0 identity providers, shown after the OpenID Connect and CAS ones."""
    ldap: tuple[LdapSettings, ...] = ()
    """The LDAP directories, shown as forms after the providers' buttons."""

    @property
    def listen_host(self) -> str:
        """The host part of ``server.listen``."""
        return self.server.listen.rpartition(":")[0].strip("[]")

    @property
    def listen_port(self) -> int:
        """The port part of ``server.listen``."""
        return int(self.server.listen.rpartition(":")[2])

    @property
    def public_port(self) -> int:
        """The port patrons use."""
        return self.server.public_port or self.listen_port

    @property
    def login_host(self) -> str:
        """The gateway's own host name."""
        return login_host(self.server.proxy_domain)

    @property
    def port_suffix(self) -> str:
        """``:port`` for patron-facing URLs, empty for the scheme's default port."""
        default = 443 if self.server.public_scheme == "https" else 80
        return "" if self.public_port == default else f":{self.public_port}"

    @property
    def public_url(self) -> str:
        """The base URL of the gateway's own pages, as patrons reach it."""
        return f"{self.server.public_scheme}://{self.login_host}{self.port_suffix}"

    def serves_https(self, host: str) -> bool:
        """Whether patrons reach ``host`` (a Host header) over https: ``admin.origin`` says so
        for the console's own host, ``server.public_scheme`` for every other one (behind a TLS
        front the gateway itself hears plain http, so the connection cannot tell)."""
        hostname, scheme = _console_origin(self.admin.origin)
        if hostname and host.lower().partition(":")[0] == hostname:
            return scheme == "https"
        return self.server.public_scheme == "https"

    @property
    def hsts(self) -> str:
        """The ``Strict-Transport-Security`` value for hosts served over https; empty: none."""
        if not self.server.hsts_max_age:
            return ""
        subdomains = "; includeSubDomains" if self.server.hsts_include_subdomains else ""
        return f"max-age={self.server.hsts_max_age}{subdomains}"

    @property
    def state_path(self) -> Path:
        """The state directory as a path."""
        return Path(self.server.state_dir)

    @property
    def patrons_path(self) -> Path:
        """The local patron directory's SQLite file."""
        return Path(self.patrons.database or self.state_path / "patrons.sqlite3")

    @property
    def staff_path(self) -> Path:
        """The staff accounts' SQLite file."""
        return Path(self.admin.staff_database or self.state_path / "staff.sqlite3")

    @property
    def admin_url(self) -> str:
        """The console's base URL (``.../admin``)."""
        return f"{self.admin.origin or self.public_url}/admin"


SECTIONS: dict[str, type[Any]] = {
    f.name: typing.get_type_hints(Settings)[f.name]
    for f in dataclasses.fields(Settings)
    if f.name not in LIST_SECTIONS
}


def describe() -> list[tuple[str, Any, str]]:
    """Every key as (``section.key``, default, documentation), for docs and tests."""
    rows: list[tuple[str, Any, str]] = []
    for section, cls in {**SECTIONS, **LIST_SECTIONS}.items():
        for f in dataclasses.fields(cls):
            default = f.default_factory() if callable(f.default_factory) else f.default
            rows.append((f"{section}.{f.name}", default, f.metadata["doc"]))
    return rows


def _type_name(tp: Any) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    if tp in names:
        return names[tp]
    return "a list of strings" if typing.get_origin(tp) is list else "a table of strings"


def _coerce(key: str, tp: Any, value: Any) -> Any:
    """Check ``value`` against the annotated type, allowing int where float is expected."""
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if typing.get_origin(tp) is dict:
        if isinstance(value, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            return value
    elif typing.get_origin(tp) is list:
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    elif isinstance(value, tp) and not (tp is int and isinstance(value, bool)):
        return value
    raise ConfigError(key, f"expects {_type_name(tp)}, got {value!r}")


def _parse_env_value(tp: Any, raw: str) -> Any:
    """Environment values are strings; anything but a string field is read as a TOML value."""
    if tp is str:
        return raw
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _merge_env(data: dict[str, Any], env: Mapping[str, str]) -> None:
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if section in LIST_SECTIONS:
            _merge_env_entry(data, name, section, key, raw)
            continue
        cls = SECTIONS.get(section)
        hints = typing.get_type_hints(cls) if cls else {}
        if key not in hints:
            dotted = f"{section}.{key}"
            known = [k for k, _, _ in describe()]
            raise ConfigError(name, f"unknown setting {dotted!r}{_suggest(dotted, known)}")
        data.setdefault(section, {})[key] = _parse_env_value(hints[key], raw)


def _merge_env_entry(data: dict[str, Any], name: str, section: str, rest: str, raw: str) -> None:
    """``GATEWAY_OIDC__CAMPUS__CLIENT_SECRET``: a key of the entry whose id is ``campus`` (the
    entry itself comes from the file; secrets can then stay out of it)."""
    entry_id, _, key = rest.partition("__")
    entry_id = entry_id.replace("_", "-")
    hints = typing.get_type_hints(LIST_SECTIONS[section])
    if key not in hints:
        raise ConfigError(name, f"unknown setting {section}.{key!r}{_suggest(key, list(hints))}")
    entries = data.get(section, [])
    entry = next((e for e in entries if isinstance(e, dict) and e.get("id") == entry_id), None)
    if entry is None:
        raise ConfigError(name, f"no [[{section}]] entry has id {entry_id!r}")
    entry[key] = _parse_env_value(hints[key], raw)


def _build_section(dotted_section: str, cls: type[Any], values: Mapping[str, Any]) -> Any:
    """One section's (or list entry's) dataclass from its table: every key known, typed, checked."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{dotted_section}.{key}"
        if key not in fields:
            raise ConfigError(dotted, f"unknown setting{_suggest(key, list(fields))}")
        value = _coerce(dotted, hints[key], value)
        check: Check | None = fields[key].metadata["check"]
        problem = check(value) if check else None
        if problem:
            raise ConfigError(dotted, f"{problem}, got {value!r}")
        each: Check | None = fields[key].metadata["each"]
        problems = ((i, item, each(item)) for i, item in enumerate(value)) if each else ()
        for index, item, problem in problems:
            if problem:
                raise ConfigError(f"{dotted}[{index}]", f"{problem}, in {item!r}")
        kwargs[key] = value
    for name, f in fields.items():
        if f.metadata["required"] and name not in kwargs:
            raise ConfigError(f"{dotted_section}.{name}", "expects a value: it is required")
    return cls(**kwargs)


def _build_providers(section: str, entries: Any, taken: set[str]) -> tuple[Any, ...]:
    """A list section's entries (``[[oidc]]``...), each checked, with ids unique among every
    federated method's (``taken``, filled here): they share ``/signin/<id>``."""
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ConfigError(section, f"expects [[{section}]] tables, one per provider")
    built: list[Any] = []
    for index, entry in enumerate(entries):
        name = entry.get("id")
        where = f"{section}.{name}" if isinstance(name, str) else f"{section}[{index}]"
        provider = _build_section(where, LIST_SECTIONS[section], entry)
        if provider.id in taken:
            raise ConfigError(f"{where}.id", f"expects a unique id, {provider.id!r} is taken")
        taken.add(provider.id)
        for first, second, message in PAIRED_KEYS.get(section, ()):
            if PAIRINGS[message](bool(getattr(provider, first)), bool(getattr(provider, second))):
                raise ConfigError(f"{where}.{first}", f"expects {message} ({first}, {second})")
        check = PROVIDER_CHECKS.get(section)
        if check is not None:
            check(where, provider)
        built.append(provider)
    return tuple(built)


PAIRINGS: dict[str, Callable[[bool, bool], bool]] = {
    "one of them": lambda a, b: a == b,  # wrong when both or neither are set
    "both or neither": lambda a, b: a != b,
}
"""Which combinations of two keys are wrong, by what the error says the keys expect."""
PAIRED_KEYS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "oidc": (("client_secret", "private_key_file", "one of them"),),
    "saml": (
        ("idp_metadata_file", "idp_metadata_url", "one of them"),
        ("key_file", "cert_file", "both or neither"),
    ),
}


def build(data: Mapping[str, Any], env: Mapping[str, str] | None = None) -> Settings:
    """Validate a parsed TOML mapping (plus environment overrides) into ``Settings``."""
    merged: dict[str, Any] = {}
    for section, values in data.items():
        if section in LIST_SECTIONS:
            merged[section] = (
                [dict(v) if isinstance(v, dict) else v for v in values]
                if isinstance(values, list)
                else values
            )
            continue
        if section not in SECTIONS:
            known = [*SECTIONS, *LIST_SECTIONS]
            raise ConfigError(section, f"unknown section{_suggest(section, known)}")
        if not isinstance(values, dict):
            raise ConfigError(section, "expects a table of settings")
        merged[section] = dict(values)
    _merge_env(merged, env or {})
    server = merged.get("server", {})
    redis_section = merged.get("redis", {})
    if redis_section.get("cluster") and not redis_section.get("url"):
        raise ConfigError("redis.url", "expects a node's URL when redis.cluster is true")
    if bool(server.get("tls_cert")) != bool(server.get("tls_key")):
        missing = "server.tls_key" if server.get("tls_cert") else "server.tls_cert"
        raise ConfigError(missing, "expects a file too: tls_cert and tls_key go together")
    if server.get("tls_cert") and server.get("public_scheme", "http") != "https":
        raise ConfigError("server.public_scheme", 'expects "https" when server.tls_cert is set')
    built: dict[str, Any] = {
        section: _build_section(section, cls, merged.get(section, {}))
        for section, cls in SECTIONS.items()
    }
    taken: set[str] = set()
    for section in LIST_SECTIONS:
        built[section] = _build_providers(section, merged.get(section, []), taken)
    if built["saml"] and not shutil.which("xmlsec1"):
        raise ConfigError("saml", "needs xmlsec1 to check XML signatures: apt-get install xmlsec1")
    if not built["signin"].card and not taken:
        raise ConfigError(
            "signin.card",
            "expects true when no [[oidc]], [[cas]], [[saml]] or [[ldap]] provider is configured",
        )
    return Settings(**built)


def load(path: str | os.PathLike[str] | None, env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from ``path`` (or ``$GATEWAY_CONFIG``, or defaults) and the environment."""
    env = os.environ if env is None else env
    path = path or env.get(ENV_CONFIG_FILE) or None
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(str(path), "configuration file not found") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(path), f"not valid TOML: {exc}") from None
    return build(data, env)


def secret_key(settings: Settings) -> bytes:
    """The configured secret key, or the one kept in the state dir (made on first use)."""
    if settings.secrets.key:
        return settings.secrets.key.encode()
    path = settings.state_path / "secret.key"
    if not path.exists():
        settings.state_path.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another worker made it first
            return path.read_text().strip().encode()
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(48))
    return path.read_text().strip().encode()
