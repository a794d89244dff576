"""SIP2 over asyncio: connections that log in, a pool of them, and a circuit breaker.

A connection logs in (93) when it opens and is thrown away on any error; the pool opens a new
one (a re-login) for the next request. When the ILS fails ``breaker_failures`` times in a row,
the breaker opens: for ``breaker_cooldown`` seconds every check fails at once with
DirectoryUnavailable (the patron gets "the library's system is not answering"), then one
request is let through to see whether the ILS is back. Nobody is ever let in unchecked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time

from gateway.auth import sip2_codec as codec
from gateway.auth.directory import DirectoryUnavailable
from gateway.config import Sip2Settings

log = logging.getLogger(__name__)

RESEND = "97"
"""Request ACS resend: asked once when a response's checksum does not add up."""


class Sip2Connection:
    """One logged-in connection to the ILS."""

    def __init__(self, settings: Sip2Settings) -> None:
        self.settings = settings
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.sequence = 0

    def _tls(self) -> ssl.SSLContext | None:
        s = self.settings
        if not s.tls:
            return None
        context = ssl.create_default_context(cafile=s.tls_ca_file or None)
        if not s.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    async def open(self) -> None:
        """Connect and log in."""
        s = self.settings
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(s.host, s.port, ssl=self._tls()), s.connect_timeout
        )
        if s.login_user:
            answer = await self.request(codec.login(s.login_user, s.login_password,
                                                    s.location_code))  # fmt: skip
            if answer.command != "94" or answer.fixed != "1":
                raise DirectoryUnavailable("the ILS refused the gateway's SIP2 login")

    async def _exchange(self, data: bytes) -> bytes:
        assert self.reader is not None and self.writer is not None
        self.writer.write(data)
        await self.writer.drain()
        line = await asyncio.wait_for(self.reader.readuntil(b"\r"), self.settings.read_timeout)
        return line

    async def request(self, body: str) -> codec.Response:
        """Send one message and read its answer (asking once for a resend on a bad checksum)."""
        s = self.settings
        sequence = self.sequence if s.error_detection else None
        self.sequence = (self.sequence + 1) % 10
        raw = await self._exchange(codec.frame(body, sequence, s.encoding))
        try:
            return codec.parse(raw, s.encoding)
        except codec.Sip2Error:
            log.warning("sip2: bad checksum from the ILS; asking for a resend")
            raw = await self._exchange(codec.frame(RESEND, None, s.encoding))
            return codec.parse(raw, s.encoding)

    async def close(self) -> None:
        """Close the socket."""
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, TimeoutError):
                await asyncio.wait_for(self.writer.wait_closed(), 1.0)  # a TLS close can stall


class Sip2Pool:
    """Up to ``pool_size`` connections, shared by concurrent logins, behind a breaker."""

    def __init__(self, settings: Sip2Settings) -> None:
        self.settings = settings
        self._idle: list[Sip2Connection] = []
        self._slots = asyncio.Semaphore(settings.pool_size)
        self._failures = 0
        self._open_until = 0.0

    def _check_breaker(self) -> None:
        if self._failures >= self.settings.breaker_failures and time.monotonic() < self._open_until:
            raise DirectoryUnavailable("the ILS is resting after failures (circuit open)")

    def _failed(self) -> None:
        self._failures += 1
        if self._failures >= self.settings.breaker_failures:
            self._open_until = time.monotonic() + self.settings.breaker_cooldown
            log.error("sip2: %d failures in a row; not asking the ILS for %.0fs",
                      self._failures, self.settings.breaker_cooldown)  # fmt: skip

    async def request(self, body: str) -> codec.Response:
        """Send a message on a pooled connection; one retry on a fresh one (re-login)."""
        self._check_breaker()
        async with self._slots:
            for attempt in (1, 2):
                connection = self._idle.pop() if self._idle else None
                try:
                    if connection is None:
                        connection = Sip2Connection(self.settings)
                        await connection.open()
                    answer = await connection.request(body)
                except (OSError, TimeoutError, asyncio.IncompleteReadError, codec.Sip2Error,
                        asyncio.LimitOverrunError, DirectoryUnavailable) as exc:  # fmt: skip
                    if connection is not None:
                        await connection.close()
                    log.warning("sip2: attempt %d failed: %s", attempt, type(exc).__name__)
                    continue
                self._idle.append(connection)
                self._failures = 0
                return answer
        self._failed()
        raise DirectoryUnavailable("the ILS did not answer")

    async def close(self) -> None:
        """Close every idle connection."""
        while self._idle:
            await self._idle.pop().close()
