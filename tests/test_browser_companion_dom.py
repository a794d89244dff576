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
