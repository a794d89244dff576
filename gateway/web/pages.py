"""Server-rendered pages: Jinja2 templates in the patron's language, with strict headers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import jinja2
from aiohttp import hdrs, web

from gateway import i18n
from gateway.appkeys import SETTINGS
from gateway.config import Settings
from gateway.web.branding import library, logo_origin

LANG_KEY = web.RequestKey("carrel.lang", str)
"""Where the language chosen for a request is kept on the request."""

CSP = (
    "default-src 'self'; img-src 'self' data: {logo}; style-src 'self' {own}; "
    "script-src 'self' {own}; form-action 'self' {proxied}; frame-ancestors 'none'; base-uri 'none'"
)
"""The gateway's pages' policy. ``form-action`` also covers where a form's answer redirects
(the login form sends the patron on to a proxied host), so the proxied hosts are in it. Pages
the gateway shows on a proxied host (an error, the session hand-over) take their style and
scripts from the login host (``{own}``): that host's ``/static`` is the vendor's. ``{logo}``
is the origin of the library's logo (``library.logo_url``)."""

SECURITY_HEADERS: Mapping[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
"""Headers every gateway page carries."""


@cache
def environment() -> jinja2.Environment:
    """The template environment (autoescaping on)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("gateway.web", "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        undefined=jinja2.StrictUndefined,
    )


def language(request: web.Request) -> str:
    """The language for this request: ``?lang=``, then the cookie, then Accept-Language."""
    if LANG_KEY in request:
        return request[LANG_KEY]
    lang = i18n.choose(
        request.query.get("lang"),
        request.cookies.get(i18n.LANG_COOKIE),
        request.headers.get("Accept-Language", ""),
    )
    request[LANG_KEY] = lang
    return lang


def text(request: web.Request, key: str, **values: object) -> str:
    """Message ``key`` in the request's language; a message of ``WAITS`` says the time the
    configuration gives."""
    wait = WAITS.get(key)
    if wait is not None and "wait" not in values:
        values["wait"] = minutes(request, wait(request.config_dict[SETTINGS]))
    return i18n.translate(language(request), key, **values)


def switch_href(lang: str, query: str) -> str:
    """A link to this page in ``lang`` that keeps the query (``lang`` first: ``url=`` is raw)."""
    while query.startswith("lang="):
        query = query.partition("&")[2]
    return f"?lang={lang}" + (f"&{query}" if query else "")


def on_gateway_host(request: web.Request, settings: Settings) -> bool:
    """Whether the request came to the gateway's own host (the login host or the console's),
    not to a proxied name, where every relative link would go to the vendor."""
    try:
        host = urlsplit(f"//{request.headers.get(hdrs.HOST, '')}").hostname
    except ValueError:  # a Host such as "[": certainly not the gateway's
        return False
    own = (settings.login_host, urlsplit(settings.admin.origin).hostname)
    return host is not None and host in own


def _language_switch(request: web.Request, settings: Settings, other: str) -> str:
    """This page in ``other``; on a proxied host, the login host's help in ``other`` (this
    host's own address with ``?lang=`` would ask the vendor again)."""
    if on_gateway_host(request, settings):
        return switch_href(other, request.query_string)
    return f"{settings.public_url}/help?lang={other}"


def minutes(request: web.Request, seconds: int) -> str:
    """``seconds`` as whole minutes for a patron ("1 minute", "15 minutos"), never fewer than
    there are (90 s reads as 2 minutes)."""
    return i18n.translate(language(request), "minutes", count=-(-seconds // 60))


WAITS: dict[str, Callable[[Settings], int]] = {
    "card_locked": lambda s: s.lockout.card_lock,
    "signin_account_locked": lambda s: s.lockout.card_lock,
    "last_try_warning": lambda s: s.lockout.card_lock,
    "help_locked_text": lambda s: s.lockout.card_lock,
    "address_locked": lambda s: s.lockout.address_lock,
    "admin_locked": lambda s: s.admin.login_lock,
    "forgot_sent_text": lambda s: s.pin.reset_minutes * 60,
    "reset_invalid_text": lambda s: s.pin.reset_minutes * 60,
}
"""Messages that say how long something lasts (``{wait}``): the seconds, from the settings."""


def render(request: web.Request, template: str, status: int = 200, **context: Any) -> web.Response:
    """Render ``template`` in the request's language as an HTML response."""
    lang = language(request)
    # Origins a form on this page may be sent on to (a provider's sign-in page): CSP's
    # form-action also covers the redirects that answer a form.
    form_action = "".join(f" {origin}" for origin in context.pop("form_origins", ()))

    def t(key: str, **values: object) -> str:
        return text(request, key, **values)

    other = "es" if lang == "en" else "en"
    settings = request.config_dict[SETTINGS]
    html = (
        environment()
        .get_template(template)
        .render(
            t=t,
            lang=lang,
            other_lang=other,
            path=request.path,
            switch_href=_language_switch(request, settings, other),
            static_base=f"{settings.public_url}/static",
            login_base=settings.public_url,
            library=library(settings.library, lang),
            **context,
        )
    )
    response = web.Response(text=html, status=status, content_type="text/html")
    response.headers.update(SECURITY_HEADERS)
    proxied = (
        f"{settings.server.public_scheme}://*.{settings.server.proxy_domain}{settings.port_suffix}"
    )
    response.headers["Content-Security-Policy"] = CSP.format(
        proxied=proxied + form_action, own=settings.public_url, logo=logo_origin(settings.library)
    )
    if request.query.get("lang") in i18n.LANGUAGES:
        response.set_cookie(
            i18n.LANG_COOKIE, lang, max_age=365 * 86400, httponly=True, samesite="Lax", path="/",
            secure=settings.serves_https(request.headers.get(hdrs.HOST, "")),
        )  # fmt: skip
    return response


def error_page(request: web.Request, status: int, **context: Any) -> web.Response:
    """The gateway's own error page for ``status``, in the patron's language (with
    ``reference=``, the reference an unexpected error was logged under, for the patron to
    quote)."""
    key = status if status in (400, 403, 404, 405, 429, 502, 503, 504) else 500
    return render(
        request, "error.html", status=status, title_key=f"error_{key}_title",
        text_key=f"error_{key}_text", **context,
    )  # fmt: skip
