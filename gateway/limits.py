"""Usage limits as values (pure): EZproxy's ``UsageLimit`` syntax, with a few additions.

``UsageLimit [-enforce] [-interval=N] [-expires=N] [-MB=N] [-transfers=N] name`` is EZproxy's:
over ``-interval`` minutes (default 60) a patron may move ``-MB`` megabytes and make
``-transfers`` requests; past that, the overrun is logged, and with ``-enforce`` the patron is
suspended for ``-expires`` minutes (without it: until staff lift it). ``UsageLimit -end name``
stops a limit for the databases after it. Carrel adds:

- ``-downloads=N``: files of the configured download types (PDF by default);
- ``-networks=N``: distinct client networks (/24 for IPv4, /64 for IPv6) a card is used from;
- ``-per=session|card``: what is counted (default ``card``, as EZproxy counts per user);
- ``-block``: block the card and end its other sessions (implies ``-enforce``);
- ``-notify``: email staff and call the webhook with the evidence.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MB = 1024 * 1024


class Metric(enum.Enum):
    """What a limit counts."""

    MB = "MB"
    TRANSFERS = "transfers"
    DOWNLOADS = "downloads"
    NETWORKS = "networks"


class Per(enum.Enum):
    """Whose usage is counted."""

    SESSION = "session"
    CARD = "card"


class Action(enum.Enum):
    """What happens when a limit is passed."""

    LOG = "log"
    SUSPEND = "suspend"
    BLOCK = "block"


@dataclass(frozen=True)
class Limit:
    """One usage limit."""

    name: str
    per: Per = Per.CARD
    action: Action = Action.LOG
    interval: int = 3600
    """Seconds over which usage counts."""
    expires: int = 0
    """Seconds a suspension lasts; 0: until staff lift it."""
    thresholds: tuple[tuple[Metric, int], ...] = ()
    notify: bool = False

    def over(self, totals: dict[Metric, int]) -> list[tuple[Metric, int, int]]:
        """(metric, count, allowed) for every threshold the totals pass."""
        found = []
        for metric, allowed in self.thresholds:
            count = totals.get(metric, 0)
            limit = allowed * MB if metric is Metric.MB else allowed
            if count > limit:
                found.append((metric, count, limit))
        return found


@dataclass(frozen=True)
class EndLimit:
    """``UsageLimit -end name``."""

    name: str


_METRIC_OPTIONS = {m.value.lower(): m for m in Metric}
_FLAGS = frozenset({"enforce", "block", "notify", "local"})
"""Options without a value (``-local``, EZproxy's count-on-this-server, means nothing here:
Redis counts for every instance)."""


def parse_usage_limit(args: str) -> Limit | EndLimit:
    """Read the arguments of a ``UsageLimit`` line; ``ValueError`` says what is wrong."""
    tokens = args.split()
    if not tokens or tokens[-1].startswith("-"):
        raise ValueError("UsageLimit needs a name after its options")
    name = tokens[-1]
    if not NAME.fullmatch(name):
        raise ValueError(f"UsageLimit name {name!r} should be letters, digits, '.', '_' or '-'")
    options = tokens[:-1]
    if [o.lower() for o in options] == ["-end"]:
        return EndLimit(name)
    flags: set[str] = set()
    interval, expires, per = 60, 0, Per.CARD
    thresholds: list[tuple[Metric, int]] = []
    for option in options:
        key, _, value = option[1:].partition("=")
        key = key.lower()
        if not option.startswith("-") or not key:
            raise ValueError(f"UsageLimit option {option!r} should look like -name or -name=N")
        if key in _FLAGS:
            if value:
                raise ValueError(f"UsageLimit -{key} takes no value")
            flags.add(key)
        elif key == "per":
            try:
                per = Per(value.lower())
            except ValueError:
                raise ValueError("UsageLimit -per= takes session or card") from None
        elif key in ("interval", "expires") or key in _METRIC_OPTIONS:
            if not value.isdigit() or int(value) == 0:
                raise ValueError(f"UsageLimit -{key}= needs a whole number above 0, got {value!r}")
            if key == "interval":
                interval = int(value)
            elif key == "expires":
                expires = int(value)
            else:
                thresholds.append((_METRIC_OPTIONS[key], int(value)))
        else:
            raise ValueError(f"UsageLimit option -{key} is not known")
    if not thresholds:
        raise ValueError("UsageLimit needs at least one of -MB, -transfers, -downloads, -networks")
    if per is Per.SESSION and any(m is Metric.NETWORKS for m, _ in thresholds):
        raise ValueError("UsageLimit -networks counts a card's networks; leave out -per=session")
    action = (
        Action.BLOCK if "block" in flags else Action.SUSPEND if "enforce" in flags else Action.LOG
    )
    return Limit(name, per, action, interval * 60, expires * 60, tuple(thresholds),
                 "notify" in flags)  # fmt: skip


def network_of(address: str) -> str:
    """The client network an address belongs to: its /24 (IPv4) or /64 (IPv6)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    prefix = 24 if ip.version == 4 else 64
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def is_download(content_type: str, download_types: frozenset[str]) -> bool:
    """Whether a response's content type is one of the counted download types."""
    return content_type.split(";", 1)[0].strip().lower() in download_types
