"""SIP2 messages, pure: build requests, frame them, parse and check responses (no sockets).

A message is text: a two-digit command, fixed-width fields, then ``XXvalue|`` variable fields,
optionally ``AYn`` (sequence number) and ``AZxxxx`` (checksum), ended by ``\\r``. The checksum
is the two's complement of the 16-bit sum of every character up to and including ``AZ``.
"""

from __future__ import annotations

import datetime
import enum
from dataclasses import dataclass, field

DELIMITER = "|"
TERMINATOR = "\r"


class Sip2Error(Exception):
    """A message that cannot be understood (malformed, or a checksum that does not add up)."""


class StatusFlag(enum.Enum):
    """The 14 positions of the patron status field; 'Y' at a position means it applies."""

    CHARGE_PRIVILEGES_DENIED = 0
    RENEWAL_PRIVILEGES_DENIED = 1
    RECALL_PRIVILEGES_DENIED = 2
    HOLD_PRIVILEGES_DENIED = 3
    CARD_REPORTED_LOST = 4
    TOO_MANY_ITEMS_CHARGED = 5
    TOO_MANY_ITEMS_OVERDUE = 6
    TOO_MANY_RENEWALS = 7
    TOO_MANY_CLAIMS_OF_ITEMS_RETURNED = 8
    TOO_MANY_ITEMS_LOST = 9
    EXCESSIVE_OUTSTANDING_FINES = 10
    EXCESSIVE_OUTSTANDING_FEES = 11
    RECALL_OVERDUE = 12
    TOO_MANY_ITEMS_BILLED = 13


FLAG_NAMES = {flag.name.lower(): flag for flag in StatusFlag}


def checksum(data: bytes) -> str:
    """The SIP2 checksum of the bytes of a message up to and including ``AZ``."""
    return f"{(-sum(data)) & 0xFFFF:04X}"


def timestamp(now: datetime.datetime | None = None) -> str:
    """SIP2's 18-character date: ``YYYYMMDD    HHMMSS`` (local time, zone left blank)."""
    now = now or datetime.datetime.now()
    return now.strftime("%Y%m%d") + "    " + now.strftime("%H%M%S")


def _fields(pairs: list[tuple[str, str]]) -> str:
    return "".join(f"{code}{value.replace(DELIMITER, ' ')}{DELIMITER}" for code, value in pairs)


def frame(body: str, sequence: int | None, encoding: str) -> bytes:
    """The message as bytes, with error detection when ``sequence`` is given, terminated."""
    data = body.encode(encoding, errors="replace")
    if sequence is None:
        return data + TERMINATOR.encode()
    data += f"AY{sequence % 10}AZ".encode()
    return data + checksum(data).encode() + TERMINATOR.encode()


def login(user: str, password: str, location: str) -> str:
    """93: the gateway logs in to the ILS as a self-check unit."""
    return "9300" + _fields([("CN", user), ("CO", password), ("CP", location)])


def patron_information(institution: str, card: str, pin: str, terminal_password: str) -> str:
    """63: patron information, which the ILS answers with valid-patron and valid-PIN flags."""
    fixed = "63" + "001" + timestamp() + " " * 10
    return fixed + _fields(
        [("AO", institution), ("AA", card), ("AC", terminal_password), ("AD", pin)]
    )


def patron_status(institution: str, card: str, pin: str, terminal_password: str) -> str:
    """23: patron status, for ILSs that answer it but not 63."""
    fixed = "23" + "001" + timestamp()
    return fixed + _fields(
        [("AO", institution), ("AA", card), ("AC", terminal_password), ("AD", pin)]
    )


@dataclass(frozen=True)
class Response:
    """A parsed response: its command, fixed part and variable fields (repeatable ones listed)."""

    command: str
    fixed: str
    fields: dict[str, list[str]] = field(default_factory=dict)

    def get(self, code: str, default: str = "") -> str:
        """The first value of a field."""
        values = self.fields.get(code)
        return values[0] if values else default


FIXED_LENGTHS = {"94": 1, "64": 59, "24": 35, "96": 0, "98": 34}
"""Characters of fixed fields after the command, per response."""


def parse(raw: bytes, encoding: str, verify: bool = True) -> Response:
    """Parse one response; when it carries a checksum, the checksum must add up."""
    data = raw.rstrip(b"\r\n")
    at = data.rfind(b"AZ")
    if at >= 0 and len(data) == at + 6:
        if verify and checksum(data[: at + 2]) != data[at + 2 :].decode("ascii", "replace").upper():
            raise Sip2Error("checksum does not match")
        data = data[:at]
        if data.rfind(b"AY") >= 0 and data.rfind(b"AY") == len(data) - 3:
            data = data[: len(data) - 3]
    text = data.decode(encoding, errors="replace")
    if len(text) < 2 or not text[:2].isdigit():
        raise Sip2Error(f"not a SIP2 response: {text[:20]!r}")
    command = text[:2]
    size = FIXED_LENGTHS.get(command, 0)
    fixed, rest = text[2 : 2 + size], text[2 + size :]
    if len(fixed) < size:
        raise Sip2Error(f"response {command} is too short")
    fields: dict[str, list[str]] = {}
    for part in rest.split(DELIMITER):
        if len(part) >= 2:
            fields.setdefault(part[:2], []).append(part[2:])
    return Response(command, fixed, fields)


@dataclass(frozen=True)
class PatronAnswer:
    """What the ILS said about a card and PIN."""

    valid_patron: bool
    valid_pin: bool
    flags: frozenset[StatusFlag]
    name: str
    email: str
    screen_messages: tuple[str, ...]
    expires: datetime.date | None


def patron_answer(response: Response, expiry_field: str = "") -> PatronAnswer:
    """Read a 64 or 24 response."""
    if response.command not in ("64", "24"):
        raise Sip2Error(f"expected a patron response, got {response.command}")
    status = response.fixed[:14]
    flags = frozenset(flag for flag in StatusFlag if status[flag.value : flag.value + 1] == "Y")
    expires = None
    raw = response.get(expiry_field) if expiry_field else ""
    if raw[:8].isdigit():
        try:
            expires = datetime.date(int(raw[:4]), int(raw[4:6]), int(raw[6:8]))
        except ValueError:
            expires = None
    return PatronAnswer(
        valid_patron=response.get("BL") == "Y",
        valid_pin=response.get("CQ") == "Y",
        flags=flags,
        name=response.get("AE"),
        email=response.get("BE"),
        screen_messages=tuple(response.fields.get("AF", [])),
        expires=expires,
    )
