"""Header rewriting as tables, both ways: vendor -> patron and patron -> vendor (pure).

Each table maps a lower-case header name to a function of (value, context) that returns the new
value, or None to drop the header. Headers not in a table pass unchanged, apart from hop-by-hop
headers, which never cross the proxy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache

from gateway.hostmap import DEFAULT_PORTS, Origin
from gateway.rewrite.csp import rewrite_csp
from gateway.rewrite.target import HostIndex

Headers = list[tuple[str, str]]

HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
        "proxy-connection", "te", "trailer", "trailers", "transfer-encoding", "upgrade",
    }
)  # fmt: skip
"""Headers about one connection (RFC 9110 7.6.1), plus the tokens ``Connection`` names."""


@dataclass(frozen=True)
class HeaderContext:
    """What header rewriting needs to know about one exchange."""

    index: HostIndex
    page: Origin
    """The vendor origin the request went to."""
    drop_csp: bool = False
    """``HTTPHeader -response -block Content-Security-Policy`` is in force."""
    blocked: frozenset[str] = field(default_factory=frozenset)
    """Lower-case names of headers the rules block (``HTTPHeader -block``)."""


def proxied_url(url: str, ctx: HeaderContext) -> str | None:
    """An absolute or protocol-relative vendor URL in its proxied form, or None if not proxied."""
    text = url.strip()
    if text.startswith("//"):
        text = f"{ctx.page.scheme}:{text}"
        relative_scheme = True
    else:
        relative_scheme = False
    origin = Origin.from_url(text)
    if origin is None:
        return None
    mapped = ctx.index.lookup(origin.scheme, origin.host, origin.port)
    if mapped is None:
        return None
    rest = text.split("://", 1)[1]
    cut = re.search(r"[/?#]", rest)
    tail = rest[cut.start() :] if cut else ""
    target = ctx.index.target
    front = "" if relative_scheme else f"{target.scheme}:"
    return f"{front}//{mapped.host}{target.port_suffix}{tail}"


def _url(value: str, ctx: HeaderContext) -> str:
    return proxied_url(value, ctx) or value


_WS = r"[\t\n\f\r ]"
_REFRESH = re.compile(
    rf"{_WS}*(?P<time>[0-9.]+)"
    rf"(?:(?=[;,]|{_WS}){_WS}*(?:[;,]{_WS}*)?"
    rf"(?i:u(?:r(?:l{_WS}*(?:={_WS}*)?)?)?)?(?P<quote>['\"]?)(?P<url>.*))?",
    re.DOTALL,
)
"""A ``Refresh`` value read as the HTML standard's declarative refresh steps read it, odd turns
included: the steps match ``url=`` only as far as it goes, so ``0; ur https://x`` means the URL
`` https://x`` (and the URL parser drops the space)."""
_URL_EDGES = "".join(map(chr, range(33)))
"""What URL parsers strip from both ends (C0 controls and space); they drop tabs and newlines
anywhere."""
_ABSOLUTE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*:|[/\\]{2}")
"""A URL with a scheme, or a scheme-relative one (``\\`` is ``/`` in http(s) URLs)."""


def _refresh(value: str, ctx: HeaderContext) -> str | None:
    """Kept only to a proxied or a relative URL: anywhere else, the page the patron sees through
    the gateway would turn, by itself, into a page the gateway never checked (a lookalike login
    form, for one); a link or a redirect is the way a vendor sends patrons away."""
    match = _REFRESH.fullmatch(value)
    if match is None:
        return None  # browsers ignore it too
    url = match["url"] or ""
    if match["quote"]:
        url = url.partition(match["quote"])[0]
    url = re.sub(r"[\t\n\r]", "", url).strip(_URL_EDGES)
    if not url:
        return match["time"]  # the same page again
    if _ABSOLUTE.match(url):
        mapped = proxied_url(url, ctx)
        return None if mapped is None else f"{match['time']}; url={mapped}"
    if url[0] in "'\"":
        return None  # after "url=" this quote would be dropped, and could uncover a "//"
    return f"{match['time']}; url={url}"


def _link(value: str, ctx: HeaderContext) -> str:
    return re.sub(r"<([^>]*)>", lambda m: f"<{_url(m[1], ctx)}>", value)


def _allow_origin(value: str, ctx: HeaderContext) -> str | None:
    if value.strip() == "*":
        return value  # browsers never pair it with credentials: no patron's session is lent
    rewritten = proxied_url(value, ctx)
    return rewritten.rstrip("/") if rewritten else None


def _origin_agent_cluster(value: str, ctx: HeaderContext) -> str | None:
    return value if value.strip() == "?1" else None


def _csp(value: str, ctx: HeaderContext) -> str | None:
    return None if ctx.drop_csp else rewrite_csp(value, ctx.index, ctx.page.scheme)


def _drop(value: str, ctx: HeaderContext) -> None:
    return None


ResponseRule = Callable[[str, HeaderContext], "str | None"]

RESPONSE_RULES: Mapping[str, ResponseRule] = {
    # URLs the browser follows: to the proxied names.
    "location": _url,
    "content-location": _url,
    "link": _link,
    # A timed move to a page outside the rules is how a vendor page would become a page the
    # gateway never checked (see _refresh); to a proxied or relative URL it is kept.
    "refresh": _refresh,
    # Only the proxied origin of an allowed vendor origin, or "*" (never credentialed). A
    # foreign origin, "null" (any sandboxed page, a sibling database's too) or the gateway's own
    # hosts would be lent the patron's session: the gateway adds the jar's cookies itself.
    "access-control-allow-origin": _allow_origin,
    "content-security-policy": _csp,
    "content-security-policy-report-only": _csp,
    # "cookies" and "storage" clear the whole registrable domain, which is the proxy domain:
    # the gateway's session cookie and every other database's data (a vendor's own logout
    # would log the patron out of the gateway).
    "clear-site-data": _drop,
    # FedCM login status is for identity providers, whose files live at the site's root, the
    # gateway's; no database is one through the proxy.
    "set-login": _drop,
    # Opts the page into prerendering by, or fenced frames in, any same-site page: through the
    # proxy every database and the login host are same-site.
    "supports-loading-mode": _drop,
    # "?0" would put the page in one agent cluster with its whole site (document.domain across
    # databases and the login host); "?1", an origin of its own, only narrows, so it is kept.
    "origin-agent-cluster": _origin_agent_cluster,
    # Widens a service worker's scope beyond its script's folder, up to the whole proxied host.
    "service-worker-allowed": _drop,
    # Names the vendor's own hosts and ports: the browser would bypass the gateway's answer.
    "alt-svc": _drop,
    # Pins the vendor's keys; the patron sees the gateway's certificate.
    "public-key-pins": _drop,
    # Reports go to endpoints outside the gateway, with proxied URLs and the patron's errors in
    # them; NEL would also apply its policy to the proxied host's every request.
    "report-to": _drop,
    "reporting-endpoints": _drop,
    "nel": _drop,
    # Attribution registrations count for the site, which is the proxy domain: every database.
    "attribution-reporting-register-source": _drop,
    "attribution-reporting-register-trigger": _drop,
    # The vendor's policy for its own host, not for the proxied one.
    "strict-transport-security": _drop,
    # Cookies go to the session's jar; the proxy decides (see gateway.rewrite.cookies).
    "set-cookie": _drop,
}
"""How each vendor response header reaches the patron.

Reviewed and passed unchanged: ``Permissions-Policy``, ``Document-Policy``, ``Referrer-Policy``
and the ``Cross-Origin-*`` policies (they act on the vendor's own document or resource),
``Accept-CH`` and ``Critical-CH`` (client hints for the proxied origin only),
``Speculation-Rules`` (a page may fetch or prerender what it could link to; cross-origin
prerendering needs ``Supports-Loading-Mode``, dropped above) and
``Access-Control-Allow-Credentials`` (useless without an allowed origin).
"""


def strip_hop_by_hop(headers: Iterable[tuple[str, str]]) -> Headers:
    """Headers without the hop-by-hop ones and those that ``Connection`` names."""
    return [(name, value) for name, value, _ in _end_to_end(headers)]


def _end_to_end(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """``strip_hop_by_hop`` with each name's lower-case form beside it (lowered once: the
    rewriters look each name up again, on every request)."""
    pairs = [(name, value, name.lower()) for name, value in headers]
    named = {
        token.strip().lower()
        for _, value, key in pairs
        if key == "connection"
        for token in value.split(",")
    }
    return [
        (name, value, key)
        for name, value, key in pairs
        if key not in HOP_BY_HOP and key not in named and not key.startswith("proxy-")
    ]


def rewrite_response_headers(headers: Iterable[tuple[str, str]], ctx: HeaderContext) -> Headers:
    """The vendor's response headers as the patron gets them (Set-Cookie is left to the jar)."""
    out: Headers = []
    for name, value, key in _end_to_end(headers):
        if key in ctx.blocked:
            continue
        rule = RESPONSE_RULES.get(key)
        new = rule(value, ctx) if rule else value
        if new is not None:
            out.append((name, new))
    return out


def body_changed(headers: Headers, content_encoding: str | None) -> Headers:
    """Headers for a rewritten body: no length (it changed), the encoding the gateway used."""
    dropped = {"content-length", "content-encoding", "etag", "content-md5", "digest"}
    out = [(n, v) for n, v in headers if n.lower() not in dropped]
    if content_encoding:
        out.append(("Content-Encoding", content_encoding))
    return out


# -- patron -> vendor ----------------------------------------------------------------------


@dataclass(frozen=True)
class Unproxy:
    """Maps proxied URLs (and the text that holds them) back to the vendor's originals."""

    index: HostIndex

    def origin(self, host: str) -> Origin | None:
        """The allowed vendor origin behind a proxied host name, or None."""
        origin = self.index.hostmap.origin_of(host)
        if origin is None or self.index.ruleset.allows(origin) is None:
            return None
        return origin

    def url(self, url: str) -> str | None:
        """The vendor's URL for a proxied one; None when it is not a proxied URL."""
        match = re.match(r"(?i)https?://([^/?#]+)(.*)", url.strip())
        if match is None:
            return None
        origin = self.origin(match[1])
        return None if origin is None else origin.url() + match[2]

    def text(self, text: str) -> str:
        """``text`` (a query string, a form body) with proxied URLs put back, plain or encoded."""
        if self.index.target.proxy_domain not in text.lower():
            return text
        return proxied_url_pattern(self.index.target.proxy_domain).sub(self._one, text)

    def _one(self, match: re.Match[str]) -> str:
        origin = self.origin(match["host"])
        if origin is None:
            return match.group()
        sep = match["sep"]
        encoded = "%" in sep
        port = "" if origin.port == DEFAULT_PORTS[origin.scheme] else f":{origin.port}"
        if encoded and port:
            port = "%3A" + port[1:]
        return f"{origin.scheme}{sep}{origin.host}{port}"


@cache
def proxied_url_pattern(proxy_domain: str) -> re.Pattern[str]:
    """Matches the scheme and host of a proxied URL, plain or percent-encoded."""
    return re.compile(
        r"(?i)https?(?P<sep>://|%3A%2F%2F)(?P<host>[a-z0-9_-]+\."
        + re.escape(proxy_domain)
        + r")(?:(?::|%3A)[0-9]{1,5})?"
    )


def _referer(value: str, unproxy: Unproxy) -> str | None:
    return unproxy.url(value)


def _origin(value: str, unproxy: Unproxy) -> str | None:
    original = unproxy.url(value)
    return original.rstrip("/") if original else None


RequestRule = Callable[[str, Unproxy], "str | None"]

REQUEST_RULES: Mapping[str, RequestRule] = {
    "referer": _referer,
    "origin": _origin,
    "host": lambda value, unproxy: None,  # set from the origin by the proxy
    "cookie": lambda value, unproxy: None,  # the gateway's cookies; the jar makes the vendor's
    "forwarded": lambda value, unproxy: None,
    "x-forwarded-for": lambda value, unproxy: None,
    "x-forwarded-host": lambda value, unproxy: None,
    "x-forwarded-proto": lambda value, unproxy: None,
    "x-forwarded-port": lambda value, unproxy: None,
    "x-real-ip": lambda value, unproxy: None,
}
"""How each patron request header reaches the vendor."""


def rewrite_request_headers(
    headers: Iterable[tuple[str, str]], unproxy: Unproxy, blocked: frozenset[str] = frozenset()
) -> Headers:
    """The patron's request headers as the vendor gets them, without the lower-case names in
    ``blocked`` (the database's ``HTTPHeader -request -block`` lines)."""
    out: Headers = []
    for name, value, key in _end_to_end(headers):
        if key in blocked:
            continue
        rule = REQUEST_RULES.get(key)
        new = rule(value, unproxy) if rule else value
        if new is not None:
            out.append((name, new))
    return out
