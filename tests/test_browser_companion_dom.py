"""The companion's DOM patches in Chromium: a vendor whose scripts build every URL at run time
(``U(sub, path)``) and hand it to element properties, attributes, HTML and style sinks and
document.cookie; one test per mechanism, each showing the request reached the vendor through
the gateway (Chromium resolves nothing else), the harness failing any test in which a request
left the proxy domain."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from gateway import config
from tests.companion_harness import (
    API, APP, CDN, FILES, OTHER, OTHER_DATABASE, RULES, Runtime, run_runtime,
)  # fmt: skip

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def runtime(
    tmp_path: Path, make_settings: Callable[..., config.Settings]
) -> AsyncIterator[Runtime]:
    async for r in run_runtime(tmp_path, make_settings, rules=RULES + OTHER_DATABASE):
        yield r


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
        await ran;
        return [window.scriptRan, a.href];"""))  # fmt: skip
    ran, href = await runtime.open("/properties")
    assert ran is True
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
        document.body.append(img, pic, svg);
        return img.getAttribute("src");"""))  # fmt: skip
    assert await runtime.open("/attributes") == runtime.proxied(CDN, "/a/set-attribute.png")
    await all_arrived(runtime, *((CDN, f"/a/{n}.png") for n in (
        "set-attribute", "attr-value", "xlink", "svg-href", "base-val")))  # fmt: skip


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
        const set = document.createElement("iframe");
        set.setAttribute("srcdoc", "<p>" + img("srcdoc-attribute"));
        document.body.append(set);
        return true;"""), body="<script>document.write('<img src=\"' + U('cdn', '/h/') + 'doc-'"
                             ", 'write.png\">');</script>")  # fmt: skip
    assert await runtime.open("/sinks") is True
    await all_arrived(runtime, *((CDN, f"/h/{n}.png") for n in (
        "inner-html", "outer-html", "insert-adjacent", "shadow", "dom-parser", "fragment", "srcdoc",
        "srcdoc-attribute", "doc-write")))  # fmt: skip


async def test_inline_styles_and_cssom(runtime: Runtime) -> None:
    runtime.vendor.page("/styles", run(f"""
        const url = (name) => "url(" + U("cdn", "/s/" + name + ".png") + ")";
        const box = () => {{ const e = document.createElement("div"); e.setAttribute("style", "{BOX}");
                             document.body.append(e); return e; }};
        box().style.backgroundImage = url("property");
        box().style["background-image"] = url("dashed-property");
        box().style.setProperty("background", url("set-property"));
        box().style.cssText = "{BOX};background:" + url("css-text");
        box().setAttribute("style", "{BOX};background:" + url("style-attribute"));
        box().style = "{BOX};background:" + url("style-assign");
        const classed = (name) => {{ const e = box(); e.className = name; return e; }};
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(".replace-sync {{ background: " + url("replace-sync") + " }}");
        sheet.insertRule(".insert-rule {{ background: " + url("insert-rule") + " }}");
        document.adoptedStyleSheets = [sheet];
        const style = document.createElement("style");
        style.textContent = ".text-content {{ background: " + url("text-content") + " }}";
        document.head.append(style);
        const other = document.createElement("style");
        other.appendChild(document.createTextNode(".text-node {{ background: " + url("text-node") + " }}"));
        document.head.append(other);
        for (const name of ["replace-sync", "insert-rule", "text-content", "text-node"]) classed(name);
        return true;"""))  # fmt: skip
    assert await runtime.open("/styles") is True
    await all_arrived(runtime, *((CDN, f"/s/{n}.png") for n in (
        "property", "dashed-property", "set-property", "css-text", "style-attribute", "style-assign",
        "replace-sync", "insert-rule", "text-content", "text-node")))  # fmt: skip
