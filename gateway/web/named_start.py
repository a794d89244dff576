"""``/login/LABEL``: the starting points that ``URL LABEL URL`` lines name; with ``URL -Form=post``
a page that submits the stanza's ``FormVariable`` values to the vendor through the proxy (the
vendor's own login form, filled in for the library)."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web
from yarl import URL

from gateway.appkeys import RULES, SESSIONS, SETTINGS
from gateway.rules.model import FormMethod
from gateway.rules.ruleset import proxied_url
from gateway.web import pages
from gateway.web.patron import current_session, destination, log_start
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
    here = f"{settings.public_url}{PREFIX}{quote(label, safe='')}"
    session = await current_session(request)
    if session is None or session.must_change_pin:
        page = "/pin/change" if session is not None else "/login"
        raise web.HTTPFound(URL(f"{page}?qurl={quote(here, safe='')}", encoded=True))
    db, start = found
    if not (db.groups & (session.groups or frozenset({"Default"}))):
        return pages.error_page(request, 403)
    await request.config_dict[SESSIONS].touch(session)
    if start.method is None:
        return destination(request, start.url, session.pid)
    hostmap = request.config_dict[RULES].ruleset.hostmap(settings.server.proxy_domain)
    action = proxied_url(start.url, hostmap, settings.server.public_scheme, settings.port_suffix)
    log_start(request, db.title, start.url, session.pid)
    return pages.render(
        request, "form_login.html", name=db.title, action=action,
        method="post" if start.method is FormMethod.POST else "get", variables=start.variables,
    )  # fmt: skip


def add_routes(app: web.Application) -> None:
    """Register ``/login/LABEL``."""
    app.router.add_get(PREFIX + "{label}", named_start)
