"""``/login/LABEL``: the starting points that ``URL LABEL URL`` lines name; with ``URL -Form=post``
a page that submits the stanza's ``FormVariable`` values to the vendor through the proxy (the
vendor's own login form, filled in for the library)."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from aiohttp import web
from yarl import URL

from gateway.appkeys import RULES, SESSIONS, SETTINGS
from gateway.auth import onsite
from gateway.edge.client import client_address
from gateway.hostmap import Origin
from gateway.rules.model import Database, FormMethod, NamedStart
from gateway.rules.ruleset import proxied_url
from gateway.web import pages
from gateway.web.cookie_names import cookie_names
from gateway.web.patron import current_session, destination, log_start, unproxied
from gateway.web.pin_first import change_first
from gateway.web.targets import FORM_START
from gateway.web.targets import NAMED_START as PREFIX


async def named_start(request: web.Request) -> web.Response:
    """GET /login/LABEL: log in first, then go to the labelled URL or submit its form."""
    label = request.match_info["label"]
    settings = request.config_dict[SETTINGS]
    found = request.config_dict[RULES].ruleset.named_start(label)
    if found is None:
        return pages.render(
            request, "not_configured.html", status=404, host=label[:100],
            reason=f"no URL line is labelled {label[:100]!r}", hint="",
        )  # fmt: skip
    db, start = found
    if start.method is None and onsite.excluded(client_address(request, settings), settings):
        return unproxied(request, start.url)  # ExcludeIP; a form start's variables stay here
    here = f"{settings.public_url}{PREFIX}{quote(label, safe='')}"
    session = await current_session(request)
    if session is None:
        raise web.HTTPFound(URL(f"/login?qurl={quote(here, safe='')}", encoded=True))
    if session.must_change_pin:
        raise change_first(request, here)
    if not (db.groups & session.access_groups):
        return pages.error_page(request, 403)
    await request.config_dict[SESSIONS].touch(session)
    if start.method is None:
        return destination(request, start.url, session.pid)
    action = _proxied(request, start.url)
    if cookie_names(settings).tls:
        # Each proxied host has its own session cookie over TLS: the form is posted from the
        # vendor's host, which first gets the session handed over like any other page.
        host = urlsplit(action)
        location = f"{host.scheme}://{host.netloc}{FORM_START}{quote(start.label, safe='')}"
        raise web.HTTPFound(URL(location, encoded=True))
    return _form_page(request, db, start, action, session.pid)


async def on_vendor_host(
    request: web.Request, origin: Origin, label: str, pid: str
) -> web.Response:
    """The form start's page on the vendor's proxied host (over TLS), for a patron whose session
    this host has: only for the start whose form posts to this host."""
    found = request.app[RULES].ruleset.named_start(label)
    if found is None or found[1].method is None or Origin.from_url(found[1].url) != origin:
        return pages.error_page(request, 404)
    db, start = found
    return _form_page(request, db, start, _proxied(request, start.url), pid)


def _proxied(request: web.Request, url: str) -> str:
    settings = request.config_dict[SETTINGS]
    hostmap = request.config_dict[RULES].ruleset.hostmap(settings.server.proxy_domain)
    proxied = proxied_url(url, hostmap, settings.server.public_scheme, settings.port_suffix)
    assert proxied is not None  # a URL line's URL is http(s)
    return proxied


def _form_page(
    request: web.Request, db: Database, start: NamedStart, action: str, pid: str
) -> web.Response:
    log_start(request, db.title, start.url, pid)
    return pages.render(
        request, "form_login.html", name=db.title, action=action,
        method="post" if start.method is FormMethod.POST else "get", variables=start.variables,
    )  # fmt: skip


def add_routes(app: web.Application) -> None:
    """Register ``/login/LABEL``."""
    app.router.add_get(PREFIX + "{label}", named_start)
