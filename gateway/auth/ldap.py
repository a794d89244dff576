"""Sign-in against an LDAP directory (OpenLDAP, Active Directory): search as the service
account, then bind as the user's entry with the typed password.

The library is ldap3: pure Python (nothing to build; no libldap headers on the gateway's
machine), with RFC 4515 filter escaping (``escape_filter_chars``) and timeouts on every socket
operation. It is synchronous, so a check runs in a worker thread (``asyncio.to_thread``), at
most ``CONCURRENT_CHECKS`` per directory so that a slow server cannot take every thread. bonsai
(asynchronous) was the other candidate; it wraps libldap and needs its development headers to
install, for sign-ins that are a handful of round trips each.

The check, in order:

1. an empty password is refused here, never sent: a bind with a DN and no password is an
   "unauthenticated bind" (RFC 4513 5.1.2), which many servers answer with success;
2. the connection is TLS before any password is sent: ``ldaps://``, or StartTLS on
   ``ldap://`` (plain ``ldap://`` is accepted by the configuration on loopback only), the
   certificate checked against ``ca_file`` (or the system's CAs) and the server's host name
   by the standard library (ldap3's own host name check leans on ``ssl.match_hostname``,
   which Python 3.12 removed);
3. the service account binds and searches ``base_dn`` with ``user_filter``, the username
   escaped; exactly one entry must match (none, or several: refused). Referrals are not
   followed: the service account's password goes to the configured server only;
4. a second connection binds as that entry's DN with the password; its answer decides.

A wrong username or password is ``WrongCredentials`` (counted toward the lockout by the
caller); an entry without the patron id's attribute is ``SigninRefused`` (the configuration's
fault, not the patron's); a server that is down, slow, or refuses the service account is
``SigninUnavailable`` (the friendly 503, never access). No message carries the username, the
password, or attribute values.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import ssl
from collections.abc import Iterator, Mapping
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.protocol.sasl.sasl import validate_simple_password
from ldap3.utils.conv import escape_filter_chars

from gateway.auth.attribute_rules import Attributes, Policy, parse_rules
from gateway.auth.signin import SigninUnavailable, WrongCredentials, normalise
from gateway.config import LdapSettings

CONCURRENT_CHECKS = 8
"""Sign-ins checked against one directory at a time (each holds a worker thread)."""
MAX_PASSWORD = 1024
"""Characters of a password sent at most (the form's username is capped by the page)."""

REFUSING_BINDS = frozenset({48, 49, 50, 53})
"""Bind results that are the user's (inappropriateAuthentication, invalidCredentials,
insufficientAccessRights, unwillingToPerform: a disabled account or an expired password in
Active Directory). Any other result is the server's trouble."""
SEARCH_OK = frozenset({0, 4})
"""Search results that still list entries: success, and sizeLimitExceeded (several match)."""


class _VerifyingTls(ldap3.Tls):  # type: ignore[misc]  # ldap3 has no type hints
    """ldap3's TLS with the standard library's checks: the chain by ``context``, and the host
    name (or address) the configuration names, sent as SNI too."""

    def __init__(self, context: ssl.SSLContext, host: str) -> None:
        super().__init__(validate=ssl.CERT_REQUIRED)
        self.context = context
        self.server_name = host

    def wrap_socket(self, connection: Any, do_handshake: bool = False) -> None:
        """Replace the connection's socket by the TLS one (ldap3's hook for LDAPS and
        StartTLS)."""
        connection.socket = self.context.wrap_socket(
            connection.socket, server_hostname=self.server_name,
            do_handshake_on_connect=do_handshake,
        )  # fmt: skip


def plain_attributes(entry: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, list[str]]:
    """The entry's ``names`` with their text values; values that are not text (a photo, a
    binary SID) left out."""
    found: dict[str, list[str]] = {}
    for name in names:
        raw = entry.get(name)
        values = [v for v in (raw if isinstance(raw, list) else [raw]) if isinstance(v, str)]
        if values:
            found[name] = values
    return found


class LdapMethod:
    """One configured LDAP directory (a ``PasswordMethod``)."""

    kind = "ldap"

    def __init__(self, settings: LdapSettings) -> None:
        self.settings = settings
        self.id = settings.id
        self.policy = Policy(settings.patron_id_attribute, settings.groups_attribute,
                             parse_rules(settings.rules))  # fmt: skip
        wanted = (settings.patron_id_attribute, settings.groups_attribute, *settings.attributes)
        self.attributes = tuple(dict.fromkeys(a for a in wanted if a))
        self._context = ssl.create_default_context(cafile=settings.ca_file or None)
        self._slots = asyncio.Semaphore(CONCURRENT_CHECKS)
        self._seconds = max(1, math.ceil(settings.timeout))
        """Whole seconds, for what ldap3 and LDAP take only so (the receive timeout, the
        search's time limit)."""

    def label(self, lang: str) -> str:
        """The directory's display name in ``lang``."""
        return self.settings.label(lang)

    async def prepare(self) -> None:
        """Bind as the service account once, at start: a wrong ``bind_password`` or
        ``ca_file`` shows in the log then, not at the first patron's sign-in."""
        async with self._slots:
            await asyncio.to_thread(self._check_service)

    def form_origins(self) -> tuple[str, ...]:
        """None: the form posts to the gateway."""
        return ()

    async def close(self) -> None:
        """Nothing held between sign-ins (a connection per check)."""

    async def check(self, username: str, password: str) -> Attributes:
        """The attributes of the directory's user ``username`` if ``password`` is theirs."""
        if not password:
            raise WrongCredentials("empty password (an unauthenticated bind), not sent")
        if not username:
            raise WrongCredentials("empty username")
        if len(password) > MAX_PASSWORD:
            raise WrongCredentials("password too long")
        try:
            validate_simple_password(password)  # RFC 4013: what no server could take
        except LDAPException:
            raise WrongCredentials("password has characters a simple bind cannot send") from None
        async with self._slots:
            entry = await asyncio.to_thread(self._search_and_bind, username, password)
        return normalise(plain_attributes(entry, self.attributes))

    # -- in a worker thread ---------------------------------------------------------------

    def _server(self) -> ldap3.Server:
        s = self.settings
        return ldap3.Server(
            s.host, port=s.port, use_ssl=s.ldaps, tls=_VerifyingTls(self._context, s.host),
            get_info=ldap3.NONE, connect_timeout=s.timeout,
        )  # fmt: skip

    def _connection(self, server: ldap3.Server, dn: str, password: str) -> ldap3.Connection:
        return ldap3.Connection(
            server, user=dn, password=password, authentication=ldap3.SIMPLE, read_only=True,
            auto_bind=ldap3.AUTO_BIND_NONE, auto_referrals=False, raise_exceptions=False,
            receive_timeout=self._seconds,
        )  # fmt: skip

    def _bind(self, connection: ldap3.Connection) -> int:
        """Open ``connection`` (TLS first: StartTLS when configured) and bind; the bind's
        result code (0: bound)."""
        connection.open(read_server_info=False)
        if self.settings.start_tls and not self.settings.ldaps:
            connection.start_tls(read_server_info=False)
        connection.bind(read_server_info=False)
        return int(connection.result["result"])

    @contextlib.contextmanager
    def _service(self) -> Iterator[tuple[ldap3.Server, ldap3.Connection]]:
        """The server and a connection bound as the service account, unbound at the end;
        ldap3's errors (and the service account's refusal) as ``SigninUnavailable``."""
        s = self.settings
        server = self._server()
        service = self._connection(server, s.bind_dn, s.bind_password)
        try:
            code = self._bind(service)
            if code:
                raise SigninUnavailable(f"the service account's bind answered {code}")
            yield server, service
        except (LDAPException, OSError) as exc:
            raise SigninUnavailable(f"{type(exc).__name__}: {exc}") from None
        finally:
            _unbind(service)

    def _check_service(self) -> None:
        with self._service():
            pass

    def _search_and_bind(self, username: str, password: str) -> Mapping[str, Any]:
        """The user's entry's attributes once the password has bound as it."""
        s = self.settings
        with self._service() as (server, service):
            query = s.user_filter.replace("{username}", escape_filter_chars(username))
            service.search(s.base_dn, query, ldap3.SUBTREE, attributes=list(self.attributes),
                           size_limit=2, time_limit=self._seconds)  # fmt: skip
            if int(service.result["result"]) not in SEARCH_OK:
                raise SigninUnavailable(f"the search answered {service.result['result']}")
            entries = [e for e in service.response or [] if e.get("type") == "searchResEntry"]
            if len(entries) != 1:
                raise WrongCredentials(f"{len(entries)} entries match the username, not one")
            user = self._connection(server, str(entries[0]["dn"]), password)
            try:
                code = self._bind(user)
            finally:
                _unbind(user)
        if code in REFUSING_BINDS:
            raise WrongCredentials(f"the user's bind answered {code}")
        if code:
            raise SigninUnavailable(f"the user's bind answered {code}")
        return dict(entries[0]["attributes"])


def _unbind(connection: ldap3.Connection) -> None:
    """Close ``connection``, whatever state it is in (a failed open, a broken socket)."""
    with contextlib.suppress(LDAPException, OSError):
        connection.unbind()
