"""The companion on the wire: the login host serves the scope and the bundle, and the proxy
asks here which tags a page or worker gets."""

from __future__ import annotations

import gzip
import secrets
import weakref

from aiohttp import hdrs, web
from aiohttp.helpers import ChainMapProxy

from gateway.appkeys import RULES, SETTINGS
from gateway.bounded import remember
from gateway.companion.bundle import Bundle, shipped
from gateway.companion.inject import PATH, Scripts
from gateway.companion.scope import Scope, scope_of
from gateway.config import Settings
from gateway.rewrite.compression import accepts_gzip
from gateway.rewrite.target import ProxyTarget
from gateway.rules.ruleset import RuleSet

CACHED = "public, max-age=31536000, immutable"
RECENT_SCOPES = 16
"""Older scope versions still served, for pages loaded just before the rules changed."""

_BUILT: weakref.WeakKeyDictionary[RuleSet, tuple[Settings, Scope, Scripts]] = (
    weakref.WeakKeyDictionary()
)
_RECENT: dict[str, tuple[bytes, bytes]] = {}
"""Scope version -> the scope script and its gzip form (compressed once)."""


def _built(app: web.Application | ChainMapProxy) -> tuple[Scope, Scripts]:
    ruleset = app[RULES].ruleset
    settings = app[SETTINGS]
    built = _BUILT.get(ruleset)
    if built is None or built[0] is not settings:
        scope = scope_of(ruleset, ProxyTarget.of(settings))
        base = f"{settings.public_url}{PATH}"
        scripts = Scripts(
            f"{base}scope-{scope.version}.js", f"{base}{shipped().digest}.js", settings.public_url
        )
        _scope_files(scope)
        built = _BUILT[ruleset] = (settings, scope, scripts)
    return built[1], built[2]


def _scope_files(scope: Scope) -> tuple[bytes, bytes]:
    """The scope script and its gzip form, compressed once per version."""
    known = _RECENT.get(scope.version)
    if known is None:
        script = scope.script
        known = (script, gzip.compress(script, 9, mtime=0))
        remember(_RECENT, scope.version, known, RECENT_SCOPES)
    return known


def scripts(app: web.Application | ChainMapProxy) -> Scripts | None:
    """The companion's script URLs for the live rules, or None when it is switched off."""
    if not app[SETTINGS].companion.enabled:
        return None
    return _built(app)[1]


def nonce() -> str:
    """A fresh CSP nonce for one response."""
    return secrets.token_urlsafe(12)


def _script(request: web.Request, body: bytes, gzipped: bytes | None, cache: str) -> web.Response:
    headers = {
        hdrs.CACHE_CONTROL: cache,
        hdrs.ACCESS_CONTROL_ALLOW_ORIGIN: "*",  # module workers import it with CORS
        "Cross-Origin-Resource-Policy": "cross-origin",  # vendor pages with COEP load it too
        "Timing-Allow-Origin": "*",  # its size and timing show in the vendor page's timings
        hdrs.VARY: "Accept-Encoding",
    }
    if gzipped is not None and accepts_gzip(request.headers.get(hdrs.ACCEPT_ENCODING, "")):
        headers[hdrs.CONTENT_ENCODING] = "gzip"
        body = gzipped
    return web.Response(body=body, content_type="text/javascript", charset="utf-8",
                        headers=headers)  # fmt: skip


async def companion_file(request: web.Request) -> web.Response:
    """GET /__carrel/companion/{name}: the bundle by its digest, or a scope by its version
    (an unknown version gets today's scope, uncached: another instance may have newer rules)."""
    name = request.match_info["name"]
    bundle: Bundle = shipped()
    if name == f"{bundle.digest}.js":
        return _script(request, bundle.body, bundle.gzipped, CACHED)
    if name.startswith("scope-") and name.endswith(".js"):
        scope, _ = _built(request.config_dict)
        version = name.removeprefix("scope-").removesuffix(".js")
        known = _RECENT.get(version)
        if known is not None:
            return _script(request, *known, CACHED)
        return _script(request, *_scope_files(scope), "no-store")
    raise web.HTTPNotFound()


def add_routes(app: web.Application) -> None:
    """The companion's files on the login host."""
    app.router.add_get(PATH + "{name}", companion_file)
