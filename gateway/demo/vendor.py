"""A small vendor site on three host names, served over TLS on loopback.

It has what a real database has and a proxy must handle: links across hosts, a stylesheet and a
script from a CDN host, a sign-in host that sets a cookie for the whole domain and redirects
back, an old link that redirects, a JSON API with absolute URLs, a search form, and a PDF.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

DOMAIN = "demo-journals.test"
WWW, CDN, AUTH = f"www.{DOMAIN}", f"cdn.{DOMAIN}", f"auth.{DOMAIN}"
HOSTS = [WWW, CDN, AUTH]
COOKIE = "demo_session"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ARTICLES = [
    ("1", "Reading rooms and the public good", "A study of library carrels, 1890-1950."),
    ("2", "Proxy servers in academic libraries", "How remote access to licensed content works."),
]


def demo_pdf(title: str, pages: int = 3, drawing: Callable[[int], str] | None = None) -> bytes:
    """A small, valid PDF with ``pages`` pages of text (built by hand, no dependencies);
    ``drawing(n)`` adds PDF drawing operators to page ``n`` (from 0) after its text."""
    objects: list[bytes] = [b"<< /Type /Catalog /Pages 2 0 R >>", b""]
    kids = []
    for n in range(pages):
        extra = f" {drawing(n)}" if drawing else ""
        text = f"BT /F1 18 Tf 72 720 Td ({title} - page {n + 1}) Tj ET{extra}".encode()
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text))
        content_id = len(objects)
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
            b">> >> >> >>" % content_id
        )
        kids.append(b"%d 0 R" % len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), pages)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def _page(title: str, body: str) -> web.Response:
    return web.Response(
        content_type="text/html",
        text=(
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{html.escape(title)}</title>\n"
            f'<link rel="stylesheet" href="https://{CDN}/style.css">\n'
            f'</head><body>\n<header><img src="https://{CDN}/logo.svg" alt="Demo Journals" '
            f'width="160" height="40"></header>\n<main>\n{body}\n</main>\n'
            f'<script src="https://{CDN}/app.js"></script>\n</body></html>\n'
        ),
    )


async def home(request: web.Request) -> web.Response:
    signed_in = COOKIE in request.cookies
    status = "Signed in through your library" if signed_in else "Not signed in"
    items = "\n".join(
        f'<li><a href="https://{WWW}/articles/{n}">{html.escape(t)}</a></li>'
        for n, t, _ in ARTICLES
    )
    body = f"""<h1>Demo Journals</h1>
<p id="status">{status}</p>
<ul id="articles">
{items}
<li><a href="https://{CDN}/files/article-1.pdf">Article 1 (PDF)</a></li>
<li><a href="https://{AUTH}/login?return=https://{WWW}/">Sign in</a></li>
<li><a href="/old-link">An old link that redirects</a></li>
</ul>
<form method="post" action="https://{WWW}/search">
<label for="q">Search</label> <input id="q" name="q"> <button>Search</button>
</form>
<div id="api-results"></div>"""
    return _page("Demo Journals", body)


async def article(request: web.Request) -> web.Response:
    number = request.match_info["n"]
    for n, title, summary in ARTICLES:
        if n == number:
            body = (
                f"<h1>{html.escape(title)}</h1>\n<p>{html.escape(summary)}</p>\n"
                f'<p><a href="https://{CDN}/files/article-{n}.pdf">Download PDF</a> · '
                f'<a href="//{WWW}/">Back to the journal</a></p>'
            )
            return _page(title, body)
    raise web.HTTPNotFound()


async def old_link(request: web.Request) -> web.Response:
    raise web.HTTPMovedPermanently(f"https://{WWW}/articles/1")


async def search(request: web.Request) -> web.Response:
    form = await request.post()
    query = str(form.get("q", ""))
    return _page("Search", f"<h1>Results for “{html.escape(query)}”</h1><p>No results.</p>")


async def api_articles(request: web.Request) -> web.Response:
    data = [
        {"id": n, "title": t, "url": f"https://{WWW}/articles/{n}",
         "pdf": f"https://{CDN}/files/article-{n}.pdf"}
        for n, t, _ in ARTICLES
    ]  # fmt: skip
    return web.json_response({"articles": data})


async def api_note(request: web.Request) -> web.Response:
    return web.json_response({"saved": (await request.read()).decode("utf-8", "replace")})


async def stylesheet(request: web.Request) -> web.Response:
    css = (
        "body { font-family: Georgia, serif; margin: 0; background: #fdfaf3; color: #222; }\n"
        "header { background: #234; padding: 8px 16px; }\n"
        "main { padding: 16px; max-width: 40rem; }\n"
        "h1 { color: rgb(20, 60, 110); "
        f"background: url(https://{CDN}/rule.svg) bottom repeat-x; }}\n"
    )
    return web.Response(text=css, content_type="text/css")


async def svg(request: web.Request) -> web.Response:
    art = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="160" height="40">'
        '<text x="4" y="28" fill="#fff" font-size="22">Demo Journals</text></svg>'
    )
    return web.Response(text=art, content_type="image/svg+xml")


async def rule(request: web.Request) -> web.Response:
    line = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="8" height="4">'
        '<rect width="8" height="2" fill="#c93"/></svg>'
    )
    return web.Response(text=line, content_type="image/svg+xml")


async def script(request: web.Request) -> web.Response:
    js = (
        f'fetch("https://{WWW}/api/articles", {{credentials: "include"}})\n'
        "  .then(r => r.json())\n"
        "  .then(d => { document.getElementById('api-results').textContent =\n"
        "    d.articles.length + ' articles from the API'; })\n"
        "  .catch(() => {});\n"
    )
    return web.Response(text=js, content_type="text/javascript")


async def pdf(request: web.Request) -> web.Response:
    number = request.match_info["n"]
    response = web.Response(body=demo_pdf(f"Demo article {number}", pages=40))
    response.content_type = "application/pdf"
    response.headers["Accept-Ranges"] = "bytes"
    return response


async def login(request: web.Request) -> web.Response:
    target = request.query.get("return", f"https://{WWW}/")
    if urlsplit(target).hostname not in HOSTS:
        target = f"https://{WWW}/"
    response = web.HTTPFound(target)
    response.set_cookie(
        COOKIE, "library-access", domain=DOMAIN, path="/", secure=True, httponly=True
    )
    raise response


ROUTES: dict[tuple[str, str, str], Handler] = {
    (WWW, "GET", "/"): home,
    (WWW, "GET", "/articles/{n}"): article,
    (WWW, "GET", "/old-link"): old_link,
    (WWW, "POST", "/search"): search,
    (WWW, "GET", "/api/articles"): api_articles,
    (WWW, "PUT", "/api/notes"): api_note,
    (CDN, "GET", "/style.css"): stylesheet,
    (CDN, "GET", "/logo.svg"): svg,
    (CDN, "GET", "/rule.svg"): rule,
    (CDN, "GET", "/app.js"): script,
    (CDN, "GET", "/files/article-{n}.pdf"): pdf,
    (AUTH, "GET", "/login"): login,
}
"""Which handler serves which host, method and path."""


def build_vendor_app() -> web.Application:
    """The demo vendor: one aiohttp app serving all of its host names."""
    app = web.Application()
    for name in HOSTS:
        site = web.Application()
        for (host, method, path), handler in ROUTES.items():
            if host == name:
                site.router.add_route(method, path, handler)
        app.add_domain(name, site)
    return app
