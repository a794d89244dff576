"""``explain``: which rule allows a URL, its proxied form and its starting-point link (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.hostmap import DEFAULT_PORTS, Origin
from gateway.rules.ruleset import Allowed, Refused, RuleSet, Start, login_link, proxied_url

SCRIPTS = "links in pages and URLs inside scripts are proxied"
LINKS_ONLY = "links in pages are proxied; URLs inside scripts are not"
"""What a host's treatment means, in a librarian's words (HJ/DJ lines, and H/D lines)."""


@dataclass(frozen=True)
class Explanation:
    """The answer for one URL, for people (``lines``) and programs (``as_dict``)."""

    url: str
    allowed: bool
    database: str = ""
    database_source: str = ""
    rule_source: str = ""
    how: str = ""
    javascript: bool = False
    treatment_source: str = ""
    treatment_directive: str = ""
    proxied_url: str = ""
    start_link: str = ""
    start_refused: str = ""
    reason: str = ""
    hint: str = ""

    def lines(self) -> list[str]:
        """The explanation as aligned lines of text."""
        if not self.allowed:
            rows = [("URL", self.url), ("Not allowed", self.reason)]
            if self.hint:
                rows.append(("Hint", self.hint))
        else:
            strength = SCRIPTS if self.javascript else LINKS_ONLY
            treatment = f"{strength}, from {self.treatment_source} ({self.treatment_directive})"
            rows = [
                ("URL", self.url),
                ("Database", f"{self.database} ({self.database_source})"),
                ("Allowed by", f"{self.rule_source} ({self.how})"),
                ("Rewriting", treatment),
                ("Proxied URL", self.proxied_url),
                ("Start link", self.start_link or f"none: {self.start_refused}"),
            ]
        width = max(len(k) for k, _ in rows) + 1
        return [f"{k + ':':<{width}} {v}" for k, v in rows]

    def as_dict(self) -> dict[str, object]:
        """The explanation as plain values (for JSON)."""
        return dict(self.__dict__)


def _not_an_origin(url: str) -> str:
    """Why ``url`` has no origin the rules could name: a bad host, or no http(s) URL at all."""
    try:
        parts = urlsplit(url.strip())
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        return f"{url!r} is not an absolute http(s) URL"
    if parts.scheme.lower() in DEFAULT_PORTS and parts.hostname:
        return f"{parts.hostname!r} is not a valid host name (a host needs a dot, as in a.org)"
    return f"{url!r} is not an absolute http(s) URL"


def explain(
    ruleset: RuleSet, url: str, proxy_domain: str, public_url: str, scheme: str, port_suffix: str
) -> Explanation:
    """Explain how the gateway treats ``url`` under these rules."""
    origin = Origin.from_url(url)
    if origin is None:
        return Explanation(url, False, reason=_not_an_origin(url))
    found = ruleset.lookup(origin)
    if isinstance(found, Refused):
        where = f" ({found.source})" if found.source else ""
        return Explanation(url, False, reason=found.reason + where, hint=found.hint)
    assert isinstance(found, Allowed)
    start = ruleset.starting_point(url)
    proxied = proxied_url(url, ruleset.hostmap(proxy_domain), scheme, port_suffix) or ""
    return Explanation(
        url,
        True,
        database=found.database.title,
        database_source=str(found.database.source),
        rule_source=str(found.admitted_by or found.source),
        how=found.how.value,
        javascript=found.javascript,
        treatment_source=str(found.source),
        treatment_directive=found.directive,
        proxied_url=proxied,
        start_link=login_link(public_url, url) if isinstance(start, Start) else "",
        start_refused=start.reason if isinstance(start, Refused) else "",
    )
