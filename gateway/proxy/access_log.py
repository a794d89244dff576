"""The access log, one line per proxied request, in the format ezPAARSE reads as is.

``%h %l %u %t "%r" %s %b``: client address, ``-``, the patron's pseudonym (never a card number),
the time, the request line with the vendor's original absolute URL
(``GET https://www.jstor.org:443/stable/1234 HTTP/1.1``), the status and the body bytes.
Request text is escaped (``gateway.logsafe``) and a ``"`` in it is ``%22``, so every entry is
one line and ``%r`` one field.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from gateway.edge.log_files import open_log_file
from gateway.hostmap import Origin
from gateway.logsafe import printable

LOGGER = "gateway.access"


@dataclass(frozen=True, slots=True)
class Entry:
    """One proxied request as the access log records it."""

    address: str
    user: str
    """The patron's pseudonym, or "" (an anonymous URL)."""
    when: float
    method: str
    origin: Origin
    target: str
    version: str
    status: int
    size: int

    def line(self) -> str:
        """The access-log line."""
        stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(self.when))
        origin = self.origin
        url = f"{origin.scheme}://{origin.host}:{origin.port}{self.target}"
        request = printable(f"{self.method} {url} HTTP/{self.version}").replace('"', "%22")
        user = printable(self.user) or "-"
        return f'{printable(self.address)} - {user} [{stamp}] "{request}" {self.status} {self.size}'


def open_access_log(path: str, max_mb: int, backups: int) -> logging.Logger:
    """The access logger, writing to ``path`` (rotating), or to nowhere for '-'."""
    return open_log_file(LOGGER, path, max_mb, backups)
