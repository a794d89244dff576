"""The companion's DOM patches in Chromium: a vendor whose scripts build every URL at run time
(``U(sub, path)``) and hand it to element properties, attributes, HTML and style sinks and
document.cookie; one test per mechanism, each showing the request reached the vendor through
the gateway (Chromium resolves nothing else), the harness failing any test in which a request
left the proxy domain."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from gateway import config
from tests.companion_harness import (
    API,
    APP,
    BUILDER,
    CDN,
    FILES,
    OTHER,
    OTHER_DATABASE,
    PROXY_DOMAIN,
    RULES,
    Runtime,
    run_runtime,
)  # fmt: skip

# One Chromium for the module (conftest's shared_browser): tests and fixtures share one loop.
pytestmark = [pytest.mark.timeout(120), pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module")
async def runtime(
    tmp_path: Path, make_settings: Callable[..., config.Settings], shared_browser: Any
) -> AsyncIterator[Runtime]:
    async for r in run_runtime(tmp_path, make_settings, rules=RULES + OTHER_DATABASE,
                               browser=shared_browser):  # fmt: skip
        yield r
        assert not r.errors, r.errors  # neither the vendor's scripts nor the companion threw


def run(body: str) -> str:
    """A page script: ``body`` runs as an async function, its value (or error) in
    window.result."""
    return (f"(async () => {{ {body} }})().then((r) => {{ window.result = r; }}, "
            "(e) => { window.result = 'failed: ' + e; });")  # fmt: skip


async def all_arrived(runtime: Runtime, *wanted: tuple[str, str]) -> None:
    for host, path in wanted:
        await runtime.arrived(host, path)


BOX = "width:20px;height:20px;display:block"


async def test_url_properties_of_elements(runtime: Runtime) -> None:
    runtime.vendor.add(CDN, "/p/style.css", "b { color: red }")
    runtime.vendor.add(CDN, "/p/script.js", "window.scriptRan = true;")
    runtime.vendor.page("/properties", run(f"""
        const add = (tag, set) => {{ const e = document.createElement(tag); set(e);
                                      document.body.append(e); return e; }};
        add("img", (e) => {{ e.src = U("cdn", "/p/img.png"); }});
        add("img", (e) => {{ e.srcset = U("cdn", "/p/srcset.png") + " 1x"; }});
        add("video", (e) => {{ e.poster = U("cdn", "/p/poster.png"); e.style.cssText = "{BOX}"; }});
        add("object", (e) => {{ e.data = U("cdn", "/p/object.html"); }});
        add("iframe", (e) => {{ e.src = U("cdn", "/p/iframe.html"); }});
        add("link", (e) => {{ e.rel = "stylesheet"; e.href = U("cdn", "/p/style.css"); }});
        const ran = new Promise((ok) => add("script", (e) => {{ e.onload = ok;
                                                               e.src = U("cdn", "/p/script.js"); }}));
        const a = add("a", (e) => {{ e.href = U("files", "/p/link"); }});
        a.hostname = "api.runtime.test";
        const form = add("form", (e) => {{ e.action = U("files", "/p/form"); e.method = "post";
                                           e.target = "sink"; }});
        add("iframe", (e) => {{ e.name = "sink"; }});
        form.submit();
        // Where the patron may go is no escape; what the page would load is.
        add("a", (e) => {{ e.href = ["https://leaving", ".example/out"].join(""); }});
        document.body.insertAdjacentHTML("beforeend",
          '<a href="' + ["https://leaving", ".example/in-markup"].join("") + '">x</a>');
        document.createElement("link").href = ["https://elsewhere", ".example/s.css"].join("");
        await ran;
        return [window.scriptRan, a.href, [...__carrelCompanion.escaped]];"""))  # fmt: skip
    ran, href, escaped = await runtime.open("/properties")
    assert ran is True
    assert escaped == ["https://elsewhere.example"]
    assert href == runtime.proxied(API, "/p/link")
    await all_arrived(runtime, *((CDN, f"/p/{name}") for name in (
        "img.png", "srcset.png", "poster.png", "object.html", "iframe.html", "style.css")),
        (FILES, "/p/form"))  # fmt: skip
    assert runtime.vendor.requests(FILES, "/p/form")[0].method == "POST"


async def test_set_attribute_and_svg_href(runtime: Runtime) -> None:
    runtime.vendor.page("/attributes", run("""
        const img = document.createElement("img");
        img.setAttribute("src", U("cdn", "/a/set-attribute.png"));
        const pic = document.createElement("img");
        pic.setAttributeNode(document.createAttribute("src"));
        pic.getAttributeNode("src").value = U("cdn", "/a/attr-value.png");
        const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
        const NS = "http://www.w3.org/2000/svg";
        const images = [0, 1, 2].map(() => { const i = document.createElementNS(NS, "image");
          i.setAttribute("width", "10"); i.setAttribute("height", "10"); svg.append(i); return i; });
        images[0].setAttributeNS("http://www.w3.org/1999/xlink", "xlink:href", U("cdn", "/a/xlink.png"));
        images[1].setAttribute("href", U("cdn", "/a/svg-href.png"));
        images[2].href.baseVal = U("cdn", "/a/base-val.png");
        const node = document.createElement("img");
        node.setAttribute("src", "/placeholder.png");
        node.getAttributeNode("src").nodeValue = U("cdn", "/a/node-value.png");
        document.body.append(img, pic, svg, node);
        document.domain = "runtime.test";  // throws on a proxied host without the companion
        return img.getAttribute("src");"""))  # fmt: skip
    assert await runtime.open("/attributes") == runtime.proxied(CDN, "/a/set-attribute.png")
    await all_arrived(runtime, *((CDN, f"/a/{n}.png") for n in (
        "set-attribute", "attr-value", "xlink", "svg-href", "base-val", "node-value")))  # fmt: skip


async def test_html_sinks(runtime: Runtime) -> None:
    runtime.vendor.page("/sinks", run("""
        const img = (name) => '<img src="' + U("cdn", "/h/" + name + ".png") + '">';
        const host = () => document.body.appendChild(document.createElement("div"));
        host().innerHTML = img("inner-html");
        host().appendChild(document.createElement("span")).outerHTML = img("outer-html");
        host().insertAdjacentHTML("beforeend", img("insert-adjacent"));
        host().attachShadow({mode: "open"}).innerHTML = img("shadow");
        const parsed = new DOMParser().parseFromString(img("dom-parser"), "text/html");
        document.body.append(document.adoptNode(parsed.body.firstChild));
        document.body.append(document.createRange().createContextualFragment(img("fragment")));
        const frame = document.createElement("iframe");
        frame.srcdoc = img("srcdoc");
        document.body.append(frame);
        const scripted = document.createElement("iframe");
        scripted.srcdoc = "<script>new Image().src = parent.U('cdn', '/h/srcdoc-script.png')</scr" +
                          "ipt>";
        document.body.append(scripted);
        const set = document.createElement("iframe");
        set.setAttribute("srcdoc", "<p>" + img("srcdoc-attribute"));
        document.body.append(set);
        return true;"""), body="<script>document.write('<img src=\"' + U('cdn', '/h/') + 'doc-'"
                             ", 'write.png\">');</script>")  # fmt: skip
    assert await runtime.open("/sinks") is True
    await all_arrived(runtime, *((CDN, f"/h/{n}.png") for n in (
        "inner-html", "outer-html", "insert-adjacent", "shadow", "dom-parser", "fragment", "srcdoc",
        "srcdoc-attribute", "srcdoc-script", "doc-write")))  # fmt: skip


async def test_inline_styles_and_cssom(runtime: Runtime) -> None:
    runtime.vendor.page("/styles", run(f"""
        const url = (name) => "url(" + U("cdn", "/s/" + name + ".png") + ")";
        const box = () => {{ const e = document.createElement("div"); e.setAttribute("style", "{BOX}");
                             document.body.append(e); return e; }};
        box().style.backgroundImage = url("property");
        box().style["background-image"] = url("dashed-property");
        const detached = document.createElement("div");
        detached.style.cssText = "{BOX}";
        detached.style.backgroundImage = url("detached");
        const inner = detached.appendChild(document.createElement("div"));
        inner.style.cssText = "{BOX}";
        inner.style.background = url("nested");
        document.body.append(detached);
        const shadow = box().attachShadow({{mode: "closed"}});
        const inShadow = shadow.appendChild(document.createElement("div"));
        inShadow.style.cssText = "{BOX}";
        inShadow.style.listStyleImage = "none";
        inShadow.style.backgroundImage = url("shadow");
        box().style.setProperty("background", url("set-property"));
        box().style.cssText = "{BOX};background:" + url("css-text");
        box().setAttribute("style", "{BOX};background:" + url("style-attribute"));
        box().style = "{BOX};background:" + url("style-assign");
        const classed = (name) => {{ const e = box(); e.className = name; return e; }};
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(".replace-sync {{ background: " + url("replace-sync") + " }}");
        sheet.insertRule(".insert-rule {{ background: " + url("insert-rule") + " }}");
        const ruled = new CSSStyleSheet();
        ruled.replaceSync(".rule-style {{ color: red }}");
        ruled.cssRules[0].style.backgroundImage = url("rule-style");
        document.adoptedStyleSheets = [sheet, ruled];
        CSSStyleDeclaration.prototype.setProperty.call(box().style, "background", url("call"));
        const style = document.createElement("style");
        style.textContent = ".text-content {{ background: " + url("text-content") + " }}";
        document.head.append(style);
        const other = document.createElement("style");
        other.appendChild(document.createTextNode(".text-node {{ background: " + url("text-node") + " }}"));
        document.head.append(other);
        for (const name of ["replace-sync", "insert-rule", "text-content", "text-node",
                           "rule-style"]) classed(name);
        return true;"""))  # fmt: skip
    assert await runtime.open("/styles") is True
    await all_arrived(runtime, *((CDN, f"/s/{n}.png") for n in (
        "property", "dashed-property", "detached", "nested", "shadow", "set-property", "css-text", "style-attribute", "style-assign",
        "replace-sync", "insert-rule", "text-content", "text-node", "rule-style", "call")))  # fmt: skip


async def test_document_cookie_with_a_vendor_domain_reaches_its_hosts_only(
    runtime: Runtime,
) -> None:
    other = "['ht', 'tps://www.', 'othervendor', '.test/c/other.png'].join('')"
    runtime.vendor.page("/cookie", run(f"""
        document.cookie = "shared=v1; Domain=.runtime.test; Path=/";
        document.cookie = "local=v2; Path=/";
        await cookieStore.set({{name: "stored", value: "v3", domain: "runtime.test", path: "/"}});
        document.cookie = "gone=x; Domain=.runtime.test; Path=/";
        await cookieStore.delete({{name: "gone", domain: "runtime.test", path: "/"}});
        const read = document.cookie;
        const load = (url) => new Promise((done) => {{ const i = new Image();
          i.onload = i.onerror = done; i.src = url; }});
        await load(U("api", "/c/api.png"));
        await load(U("app", "/c/app.png"));
        await load({other});
        return read;"""))  # fmt: skip
    read = await runtime.open("/cookie")
    assert "shared=v1" in read and "local=v2" in read and "stored=v3" in read
    cookies = {
        host: runtime.vendor.requests(host, f"/c/{name}.png")[0].headers.get("Cookie", "")
        for host, name in ((API, "api"), (APP, "app"), (OTHER, "other"))
    }
    assert "shared=v1" in cookies[API] and "local=v2" not in cookies[API]
    assert "stored=v3" in cookies[API] and "stored" not in cookies[OTHER]
    assert "gone" not in cookies[API] and "gone" not in read
    assert "shared=v1" in cookies[APP] and "local=v2" in cookies[APP]
    assert "shared" not in cookies[OTHER] and "local" not in cookies[OTHER]
    # In the browser the cookie is the proxied host's alone, not the proxy domain's.
    jar = await runtime.context.cookies()
    shared = [c for c in jar if c["name"] == "shared"]
    assert [c["domain"] for c in shared] == [f"app-runtime-test.{PROXY_DOMAIN}"]


async def test_the_cookie_path_takes_writes_from_its_own_origin_only(runtime: Runtime) -> None:
    browser_cookies = "; ".join(
        f"{c['name']}={c['value']}" for c in await runtime.context.cookies()
    )
    own = runtime.proxied(APP, "").rstrip("/")
    attempts = (
        {"Origin": runtime.proxied(OTHER, "").rstrip("/"), "X-Carrel-Cookie": "1"},  # a sibling
        {"Origin": own},  # no header: a plain cross-origin form could look like this
        {"Origin": own, "X-Carrel-Cookie": "1", "Sec-Fetch-Site": "same-site"},
    )
    async with aiohttp.ClientSession() as http:
        post = partial(http.post, runtime.proxied(APP, "/__carrel/cookie"))
        for headers in attempts:
            body = {"cookie": "evil=1; Domain=.runtime.test", "path": "/"}
            async with post(json=body, headers={**headers, "Cookie": browser_cookies}) as r:
                assert r.status == 403, headers
        async with post(json={"cookie": "evil=2"}, headers={**attempts[2], "Sec-Fetch-Site":
                        "same-origin"}, allow_redirects=False) as r:  # fmt: skip
            assert r.status == 302  # no session: the login page, nothing stored
        own_headers = {"Origin": own, "X-Carrel-Cookie": "1", "Cookie": browser_cookies}
        for bad in ("not json", '{"cookie": "a=1\\r\\nX-Injected: 1"}', '{"cookie": 7}', "[]"):
            async with post(data=bad, headers=own_headers) as r:
                assert r.status == 400, bad
        async with post(json={"cookie": "good=1; Domain=runtime.test"}, headers={
                "Origin": own, "X-Carrel-Cookie": "1", "Cookie": browser_cookies}) as r:  # fmt: skip
            assert r.status == 204
    runtime.vendor.page("/after", run("""
        await new Promise((done) => { const i = new Image(); i.onload = i.onerror = done;
                                      i.src = U("api", "/c/after.png"); });
        return true;"""))  # fmt: skip
    assert await runtime.open("/after") is True
    sent = runtime.vendor.requests(API, "/c/after.png")[0].headers.get("Cookie", "")
    assert "good=1" in sent and "evil" not in sent


async def test_cors_elements_to_a_sibling_host_send_the_session(runtime: Runtime) -> None:
    for name in ("module", "classic", "same"):
        runtime.vendor.add(CDN if name != "same" else APP, f"/m/{name}.js",
                           f"window.ran = (window.ran || []).concat('{name}');")  # fmt: skip
    runtime.vendor.page("/cors", run("""
        const script = (host, name, set) => new Promise((ok, no) => {
          const s = document.createElement("script"); set(s); s.src = U(host, "/m/" + name + ".js");
          s.onload = () => ok(s.crossOrigin); s.onerror = () => no(new Error(name));
          document.body.append(s); });
        const modes = [
          await script("cdn", "module", (s) => { s.type = "module"; }),
          await script("cdn", "classic", (s) => { s.crossOrigin = "anonymous"; }),
          await script("app", "same", (s) => { s.type = "module"; }),
        ];
        const img = new Image();
        img.crossOrigin = "anonymous";
        img.src = U("cdn", "/m/image.png");
        modes.push(img.crossOrigin);
        return [modes, window.ran.sort()];"""))  # fmt: skip
    modes, ran = await runtime.open("/cors")
    assert modes == ["use-credentials", "use-credentials", None, "use-credentials"]
    assert ran == ["classic", "module", "same"]
    await runtime.arrived(CDN, "/m/image.png")


TT_POLICY = "require-trusted-types-for 'script'; trusted-types vendor"


@pytest.mark.parametrize("where", ["header", "meta"])
async def test_trusted_types_pages_keep_working(runtime: Runtime, where: str) -> None:
    runtime.vendor.add(CDN, "/t/script.js", "window.ttRan = true;")
    script = run("""
        const p = trustedTypes.createPolicy("vendor", {createHTML: (s) => s,
                                                       createScriptURL: (s) => s});
        let enforced = false;
        try { document.createElement("div").innerHTML = "<b>x</b>"; } catch { enforced = true; }
        const img = (name) => p.createHTML('<img src="' + U("cdn", "/t/" + name + ".png") + '">');
        const div = document.body.appendChild(document.createElement("div"));
        div.innerHTML = img("inner-html");
        div.insertAdjacentHTML("beforeend", img("insert-adjacent"));
        const frame = document.createElement("iframe");
        frame.srcdoc = img("srcdoc");
        document.body.append(frame);
        await new Promise((ok, no) => { const s = document.createElement("script");
          s.onload = ok; s.onerror = () => no(new Error("script"));
          s.src = p.createScriptURL(U("cdn", "/t/script.js")); document.body.append(s); });
        const s = document.createElement("script");
        s.setAttribute("src", p.createScriptURL(U("cdn", "/t/attribute.js")));
        document.body.append(s);
        return [enforced, window.ttRan];""")
    # A <meta> policy comes after the companion in <head>, and the gateway leaves it as it is.
    meta = f'<meta http-equiv="Content-Security-Policy" content="{TT_POLICY}">'
    runtime.vendor.add(APP, "/tt", f"<!doctype html><html><head>{meta if where == 'meta' else ''}"
                       f"<title>tt</title></head><body>{BUILDER}<script>{script}</script></body>"
                       "</html>", headers={"Content-Security-Policy": TT_POLICY}
                       if where == "header" else {})  # fmt: skip
    assert await runtime.open("/tt") == [True, True]
    await all_arrived(runtime, *((CDN, f"/t/{n}") for n in (
        "inner-html.png", "insert-adjacent.png", "srcdoc.png", "attribute.js")))  # fmt: skip


async def test_about_blank_frames_are_patched_when_a_script_reaches_them(runtime: Runtime) -> None:
    runtime.vendor.page("/blank", run("""
        const img = (name) => '<img src="' + U("cdn", "/f/" + name + ".png") + '">';
        const frame = document.body.appendChild(document.createElement("iframe"));
        const doc = frame.contentDocument;
        doc.body.innerHTML = img("inner-html");
        const made = doc.createElement("img");
        made.src = U("cdn", "/f/property.png");
        doc.body.append(made);
        const other = document.body.appendChild(document.createElement("iframe"));
        const win = other.contentWindow;
        win.document.open();
        win.document.write(img("write"));
        win.document.close();
        return frame.contentWindow.HTMLImageElement !== HTMLImageElement;"""))  # fmt: skip
    assert await runtime.open("/blank") is True  # the frame's own realm
    await all_arrived(runtime, *((CDN, f"/f/{n}.png") for n in ("inner-html", "property", "write")))
