"""Sign-in through a CAS server (CAS protocol 3.0): the login redirect and ticket validation
at ``/p3/serviceValidate`` (or CAS 2.0's ``/serviceValidate``), with the attributes released.

The *service* URL the server sees is the gateway's callback with the flow's ``state`` in its
query: ``begin`` sends the patron to ``<server>/login?service=<callback?state=...>``, the
server sends the patron back with ``&ticket=ST-...`` added, and the callback's ``state`` then
finds the flow (single use, bound to the browser) as for any redirect method. ``finish``
validates the ticket with that same service URL, rebuilt from the flow rather than taken from
the request, so a ticket issued for another service (another provider's callback, another
sign-in's state, another site) is refused by the server itself (``INVALID_SERVICE``), as is a
ticket already used (``INVALID_TICKET``: the server's tickets are single use).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from urllib.parse import urlencode, urlsplit

import aiohttp

from gateway.auth.attribute_rules import Attributes, Policy, parse_rules
from gateway.auth.cas_response import CasAnswerError, CasFailure, parse_validation
from gateway.auth.provider_http import ProviderHttp
from gateway.auth.signin import Flow, SigninRefused, SigninUnavailable, normalise
from gateway.config import CasSettings

log = logging.getLogger(__name__)

USER = "cas:user"
"""The pseudo-attribute holding the CAS user name (``patron_id_attribute``'s default)."""
TICKET = re.compile(r"[!-~]{1,256}")
"""A ticket as CAS 3.0 allows it (section 3.1: up to 256 printable characters)."""
MAX_ANSWER = 1 << 20
"""Bytes of the validation answer read at most (one is a few KB)."""
FAILURES_UNAVAILABLE = frozenset({"INTERNAL_ERROR"})
"""Failure codes that are the server's trouble, not the ticket's: the 503, not a refusal."""


def service_url(redirect_uri: str, flow: Flow) -> str:
    """The service URL of ``flow``: the callback carrying its state, the same at login and at
    validation (CAS compares them)."""
    return f"{redirect_uri}?{urlencode({'state': flow.state})}"


class CasMethod(ProviderHttp[CasSettings]):
    """One configured CAS server (a ``SigninMethod``)."""

    kind = "cas"

    def __init__(self, settings: CasSettings) -> None:
        self.settings = settings
        self.id = settings.id
        self.policy = Policy(settings.patron_id_attribute, settings.groups_attribute,
                             parse_rules(settings.rules))  # fmt: skip
        self.server = settings.server_url.rstrip("/")

    def label(self, lang: str) -> str:
        """The provider's display name in ``lang``."""
        return self.settings.label(lang)

    async def prepare(self) -> None:
        """Nothing to fetch: a CAS server publishes no metadata."""

    def form_origins(self) -> tuple[str, ...]:
        """The CAS server's origin: the login page's button leads to its ``/login``."""
        parts = urlsplit(self.server)
        return (f"{parts.scheme}://{parts.netloc}",)

    async def begin(self, flow: Flow, redirect_uri: str) -> str:
        """The CAS server's login page, for the service URL carrying ``flow``'s state."""
        return f"{self.server}/login?{urlencode({'service': service_url(redirect_uri, flow)})}"

    async def finish(self, flow: Flow, redirect_uri: str, query: Mapping[str, str]) -> Attributes:
        """The attributes of the ticket in ``query`` (with the user as ``cas:user``), validated
        at the server."""
        ticket = query.get("ticket", "")
        if not TICKET.fullmatch(ticket):
            raise SigninRefused("the callback holds no ticket")
        params = {"service": service_url(redirect_uri, flow), "ticket": ticket}
        url = f"{self.server}{self.settings.validate}"
        try:
            async with self.http.get(url, params=params, allow_redirects=False) as response:
                body = await response.content.read(MAX_ANSWER)
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SigninUnavailable(f"ticket validation at {url}: {exc!r}") from None
        if status != 200:
            raise SigninUnavailable(f"ticket validation at {url} answered {status}")
        try:
            answer = parse_validation(body)
        except CasAnswerError as exc:
            raise SigninUnavailable(f"ticket validation at {url}: {exc}") from None
        if isinstance(answer, CasFailure):
            problem = SigninUnavailable if answer.code in FAILURES_UNAVAILABLE else SigninRefused
            raise problem(f"the CAS server refused the ticket: {answer.code}")
        return normalise({**answer.attributes, USER: answer.user})
