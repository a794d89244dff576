"""What the proxy does with a request, decided without I/O.

The handler reads a request once into an ``Arrival``; ``locate`` says which origin and database
it is for, or which page answers it instead; with the session read from Redis, the handler
builds one ``Exchange`` and ``decide`` says whether the vendor is asked and, if not, which page
the patron gets. Both are pure: tests call them as a table, without sockets (mitmproxy's habit:
decide in steps, let one driver do the I/O).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import unquote

from gateway.hostmap import Origin
from gateway.rewrite.cookies import CookieJar
from gateway.rewrite.cors import SAME_ORIGIN, CorsRequest
from gateway.rewrite.headers import Unproxy
from gateway.rewrite.target import HostIndex
from gateway.rules.anonymous import anonymous_allowed
from gateway.rules.model import Database
from gateway.rules.ruleset import Allowed, Refused
from gateway.sessions import Session
from gateway.web.targets import FORM_START

SAFE_METHODS = frozenset({"GET", "HEAD", "POST"})
"""Methods every database accepts; others only where its rules name them."""
HANDOVER_PREFIX = "/__carrel/"


@dataclass(frozen=True, slots=True)
class Arrival:
    """What the proxy needs to know of a request before anything is looked up."""

    method: str
    raw_path: str
    host: str
    service_worker_script: bool
    """``Service-Worker: script``: the browser is fetching a worker to register."""
    websocket: bool
    tls: bool
    """The gateway's cookies are host-only ``__Host-`` ones, handed over per host."""
    handover_paths: frozenset[str] = frozenset()
    preflight: str = ""
    """A CORS preflight's ``Access-Control-Request-Method`` (see ``gateway.rewrite.cors``)."""


@dataclass(frozen=True, slots=True)
class ErrorPage:
    """The gateway's error page with this status."""

    status: int


@dataclass(frozen=True, slots=True)
class UnknownHost:
    """The 404 page for a host the rules do not proxy, with the librarians' reason."""

    host: str
    refused: Refused | None = None
    """Why the rules refuse it; None for a name outside the proxy domain."""


@dataclass(frozen=True, slots=True)
class Handover:
    """One of the session hand-over paths of a proxied host (over TLS)."""

    origin: Origin


class _LocatedFields(NamedTuple):
    origin: Origin
    database: Database
    target: str
    """Path and query as the vendor sees them."""
    form_label: str
    """Over TLS: the label of a ``URL -Form`` start whose page this host serves."""
    url: str
    """The vendor's absolute URL."""
    path: str
    """The target's path, without the query (what cookies are scoped by)."""


class Located(_LocatedFields):
    """A request for a host the rules proxy: its origin, database and the vendor's URL.

    An immutable tuple rather than a frozen dataclass, with the URL and path worked out once
    here: the proxy builds one per request and reads them in several steps (a frozen
    dataclass costs about three times as much to build, and a property a call per read)."""

    __slots__ = ()

    def __new__(
        cls, origin: Origin, database: Database, target: str, form_label: str = ""
    ) -> Located:
        """The location of ``target`` at ``origin``, which ``database`` proxies."""
        url = origin.url() + target
        fields = (origin, database, target, form_label, url, target.partition("?")[0])
        return tuple.__new__(cls, fields)


@dataclass(frozen=True, slots=True)
class WorkerRefused:
    """A service worker script the database's rules do not allow (403, logged)."""

    url: str


Location = ErrorPage | UnknownHost | Handover | WorkerRefused | Located


def locate(arrival: Arrival, index: HostIndex) -> Location:
    """Which origin and database ``arrival`` is for, or the page that answers it instead."""
    raw = arrival.raw_path
    if arrival.method == "CONNECT":
        return ErrorPage(405)
    if not raw.startswith("/") or raw.startswith("//"):
        return ErrorPage(400)  # absolute-form request lines, //host paths
    origin = index.hostmap.origin_of(arrival.host)
    if origin is None:
        return UnknownHost(arrival.host)
    found = index.ruleset.lookup(origin)
    if not isinstance(found, Allowed):
        return UnknownHost(origin.url(), found)
    db = found.database
    if (
        arrival.tls
        and raw.startswith(HANDOVER_PREFIX)
        and raw.partition("?")[0] in arrival.handover_paths
    ):
        return Handover(origin)
    if arrival.tls and raw.startswith(FORM_START) and arrival.method in ("GET", "HEAD"):
        return Located(origin, db, raw, form_label=unquote(raw[len(FORM_START) :].split("?")[0]))
    if arrival.service_worker_script and not db.service_workers:
        # A worker would outlive the session and could answer for the host (a fake login
        # page) after logout; only a database whose rules opt in may register one.
        return WorkerRefused(origin.url() + raw)
    method = arrival.preflight or arrival.method  # a preflight asks for the method it names
    if method not in SAFE_METHODS and method not in db.methods:
        return ErrorPage(405)
    return Located(origin, db, Unproxy(index).text(raw))


@dataclass(frozen=True, slots=True)
class Exchange:
    """One proxied request, built once: everything the driver and its collaborators use."""

    arrival: Arrival
    located: Located
    index: HostIndex
    session: Session | None
    jar: CookieJar | None
    """The session's vendor cookies, for databases whose cookies the gateway keeps."""
    had_cookie: bool
    """The browser sent a session cookie (which may be of a session that has ended)."""
    address: str
    """The client's address, as ``server.trusted_proxies`` allow it to be read."""
    now: float
    cors: CorsRequest = SAME_ORIGIN
    """Who sent the request, by its ``Origin``, and what that allows."""

    @property
    def origin(self) -> Origin:
        """The vendor's origin."""
        return self.located.origin

    @property
    def database(self) -> Database:
        """The database whose rules proxy the origin."""
        return self.located.database

    @property
    def target(self) -> str:
        """Path and query as the vendor sees them."""
        return self.located.target

    @property
    def url(self) -> str:
        """The vendor's absolute URL."""
        return self.located.url

    @property
    def path(self) -> str:
        """The target's path, without the query (what cookies are scoped by)."""
        return self.located.path


@dataclass(frozen=True, slots=True)
class ToLogin:
    """No session here: the login page (http) or a hand-over from the login host (TLS)."""

    url: str
    forget: bool
    """The browser holds an ended session's cookie: clear what this host kept."""


@dataclass(frozen=True, slots=True)
class ForgetAndReload:
    """An ended session's cookie on an anonymous URL: clear this host's storage, ask again."""


@dataclass(frozen=True, slots=True)
class Suspended:
    """A usage limit paused the session."""

    reason: str


@dataclass(frozen=True, slots=True)
class ChangePin:
    """A desk reset: the patron chooses a PIN first, then goes on to ``url``."""

    url: str


@dataclass(frozen=True, slots=True)
class SubmitForm:
    """The page that posts a ``URL -Form`` start's variables, served on the vendor's host."""

    exchange: Exchange
    label: str


@dataclass(frozen=True, slots=True)
class Forward:
    """Ask the vendor: an HTTP request, or a WebSocket relayed both ways."""

    exchange: Exchange
    websocket: bool


Decision = ToLogin | ForgetAndReload | Suspended | ChangePin | ErrorPage | SubmitForm | Forward


def decide(exchange: Exchange) -> Decision:
    """Whether the vendor is asked for ``exchange``, or which page the patron gets."""
    arrival, located, session = exchange.arrival, exchange.located, exchange.session
    if exchange.cors.refused:
        return ErrorPage(403)
    if exchange.cors.preflight:  # no cookies by design: the vendor's answer decides
        return Forward(exchange, websocket=False)
    if session is None:
        if not anonymous_allowed(located.database, located.url, arrival.method):
            return ToLogin(located.url, forget=exchange.had_cookie)
        if exchange.had_cookie and arrival.method in ("GET", "HEAD"):
            return ForgetAndReload()
    elif session.suspended_until > exchange.now:
        return Suspended(session.suspended_reason)
    elif session.must_change_pin:
        return ChangePin(located.url)
    elif not (located.database.groups & session.access_groups):
        return ErrorPage(403)
    if located.form_label and session is not None:
        return SubmitForm(exchange, located.form_label)
    return Forward(exchange, websocket=arrival.websocket)
