"""The companion's network and navigation patches in Chromium: a vendor whose scripts build every
URL at run time (``U(sub, path)``), one test per mechanism, each showing that the request reached
the vendor through the gateway (Chromium resolves nothing else), and the harness failing any
test in which a request left the proxy domain."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from gateway import config
from tests.companion_harness import API, APP, Runtime, run_runtime

# One Chromium for the module (conftest's shared_browser): tests and fixtures share one loop.
pytestmark = [pytest.mark.timeout(120), pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module")
async def runtime(
    tmp_path: Path, make_settings: Callable[..., config.Settings], shared_browser: Any
) -> AsyncIterator[Runtime]:
    async for r in run_runtime(tmp_path, make_settings, browser=shared_browser):
        yield r


# A page script's frame: run the async body, put its value (or the error) in window.result.
def run(body: str) -> str:
    return f"(async () => {{ {body} }})().then((r) => {{ window.result = r; }}, " \
           "(e) => { window.result = 'failed: ' + e; });"  # fmt: skip


async def test_fetch_maps_strings_url_objects_and_requests(runtime: Runtime) -> None:
    runtime.vendor.page("/fetch", run("""
        const paths = [];
        for (const input of [U("app", "/api/string"), new URL(U("app", "/api/url")),
                             new Request(U("app", "/api/request"), {method: "POST", body: "b"})]) {
          paths.push((await (await fetch(input)).json()).path);
        }
        return paths;"""))  # fmt: skip
    assert await runtime.open("/fetch") == ["/api/string", "/api/url", "/api/request"]
    assert [s.method for s in runtime.vendor.requests(APP, "/api/request")] == ["POST"]
    assert runtime.vendor.requests(APP, "/api/request")[0].body == b"b"


async def test_the_request_constructor_maps_its_url(runtime: Runtime) -> None:
    runtime.vendor.page(
        "/request",
        run("""
        const request = new Request(U("app", "/api/made"), {headers: {"X-Made": "1"}});
        const same = request instanceof Request && new Request(request).url === request.url;
        const answer = await (await fetch(request)).json();
        return [new URL(request.url).host === location.host, same, answer.path];"""),
    )
    assert await runtime.open("/request") == [True, True, "/api/made"]
    assert runtime.vendor.requests(APP, "/api/made")[0].headers["X-Made"] == "1"


async def test_fetch_to_another_proxied_host_carries_the_session(runtime: Runtime) -> None:
    # Needs the gateway's CORS answer for proxied origins (branch gw21).
    runtime.vendor.page(
        "/cross",
        run("""
        const answer = await (await fetch(U("api", "/v1/search?q=x"))).json();
        return answer.host + answer.path;"""),
    )
    assert await runtime.open("/cross") == "api.runtime.test/v1/search?q=x"
    assert await runtime.arrived(API, "/v1/search")


async def test_a_blank_frames_pristine_fetch_is_patched_too(runtime: Runtime) -> None:
    runtime.vendor.page(
        "/pristine",
        run("""
        const frame = document.createElement("iframe");
        document.body.append(frame);
        const pristine = frame.contentWindow.fetch;
        const answer = await (await pristine(U("app", "/api/pristine"))).json();
        const source = frame.contentWindow.Function.prototype.toString.call(pristine);
        return [answer.path, source.includes("[native code]")];"""),
    )
    assert await runtime.open("/pristine") == ["/api/pristine", True]


async def test_xmlhttprequest_open_maps_its_url(runtime: Runtime) -> None:
    runtime.vendor.page(
        "/xhr",
        run("""
        const xhr = new XMLHttpRequest();
        xhr.open("GET", U("app", "/api/xhr?n=1"));
        const done = new Promise((ok, fail) => { xhr.onload = ok; xhr.onerror = fail; });
        xhr.send();
        await done;
        return JSON.parse(xhr.responseText).path;"""),
    )
    assert await runtime.open("/xhr") == "/api/xhr?n=1"


async def test_send_beacon_maps_its_url(runtime: Runtime) -> None:
    runtime.vendor.page(
        "/beacon", run('return navigator.sendBeacon(U("app", "/api/beacon"), "hit");')
    )
    assert await runtime.open("/beacon") is True
    (beacon,) = await runtime.arrived(APP, "/api/beacon")
    assert beacon.method == "POST" and beacon.body == b"hit"


async def test_event_source_maps_its_url(runtime: Runtime) -> None:
    runtime.vendor.add(APP, "/events", "data: hello\n\n", "text/event-stream")
    runtime.vendor.page(
        "/sse",
        run("""
        const source = new EventSource(U("app", "/events"));
        const data = await new Promise((ok, fail) => {
          source.onmessage = (event) => ok(event.data); source.onerror = fail; });
        source.close();
        return [data, new URL(source.url).host === location.host];"""),
    )
    assert await runtime.open("/sse") == ["hello", True]
    assert await runtime.arrived(APP, "/events")


async def test_websocket_maps_wss_urls(runtime: Runtime) -> None:
    runtime.vendor.page(
        "/ws",
        run("""
        const socket = new WebSocket(U("app", "/socket").replace("ht" + "tps", "ws" + "s"));
        await new Promise((ok, fail) => { socket.onopen = ok; socket.onerror = fail; });
        socket.send("ping");
        const reply = await new Promise((ok) => { socket.onmessage = (e) => ok(e.data); });
        socket.close();
        return [reply, socket instanceof WebSocket, WebSocket.OPEN];"""),
    )
    assert await runtime.open("/ws") == ["echo:ping", True, 1]
    assert (await runtime.arrived(APP, "/socket"))[0].headers["Upgrade"].lower() == "websocket"


WORKER = """
const U = (sub, path) => ['ht', 'tps:', '//', sub, '.runtime', '.test', path].join('');
onmessage = async () => postMessage((await (await fetch(U("app", "/api/from-worker"))).json()).path);
"""


MODULE_WORKER = """
import { U } from "./builder.mjs";
onmessage = async () => postMessage([location.pathname,
  (await (await fetch("relative-api")).json()).path,
  (await (await fetch(U("app", "/api/from-worker"))).json()).path]);
"""


async def test_a_worker_gets_the_companion_and_its_url_is_mapped(runtime: Runtime) -> None:
    runtime.vendor.add(APP, "/w/classic.js", WORKER)
    runtime.vendor.add(APP, "/w/module.mjs", MODULE_WORKER)
    runtime.vendor.add(APP, "/w/builder.mjs", "export const U = (sub, path) => "
                       "['ht', 'tps:', '//', sub, '.runtime', '.test', path].join('');")  # fmt: skip
    runtime.vendor.page(
        "/worker",
        run("""
        const answers = [];
        for (const [path, options] of [["/w/classic.js", {}], ["/w/module.mjs", {type: "module"}]]) {
          const worker = new Worker(U("app", path), options);
          answers.push(await new Promise((ok, fail) => {
            worker.onmessage = (e) => ok(e.data); worker.onerror = (e) => fail(e.message);
            worker.postMessage("go"); }));
        }
        return answers;"""),
    )
    assert await runtime.open("/worker") == [
        "/api/from-worker",
        ["/w/module.mjs", "/w/relative-api", "/api/from-worker"],
    ]
    assert len(runtime.vendor.requests(APP, "/api/from-worker")) == 2
    assert await runtime.arrived(APP, "/w/relative-api")


async def test_a_shared_worker_gets_the_companion_and_its_url_is_mapped(runtime: Runtime) -> None:
    runtime.vendor.add(APP, "/w/shared.js", """
const U = (sub, path) => ['ht', 'tps:', '//', sub, '.runtime', '.test', path].join('');
onconnect = async (event) => {
  const port = event.ports[0];
  port.postMessage((await (await fetch(U("app", "/api/from-shared"))).json()).path);
};""")  # fmt: skip
    runtime.vendor.page(
        "/shared",
        run("""
        const ask = (worker) => new Promise((ok, fail) => {
          worker.port.onmessage = (e) => ok(e.data); worker.onerror = (e) => fail(e.message); });
        const classic = await ask(new SharedWorker(U("app", "/w/shared.js")));
        // A module shared worker goes without the companion, but the gateway's prelude does
        // not stop it either.
        const module = await ask(new SharedWorker(U("app", "/w/shared.mjs"), {type: "module"}));
        return [classic, module];"""),
    )
    runtime.vendor.add(APP, "/w/shared.mjs", """
onconnect = async (event) => {
  event.ports[0].postMessage((await (await fetch("/api/from-module-shared")).json()).path);
};""")  # fmt: skip
    assert await runtime.open("/shared") == ["/api/from-shared", "/api/from-module-shared"]


async def test_blob_and_data_workers_get_the_companion(runtime: Runtime) -> None:
    runtime.vendor.page(
        "/blob-worker",
        run(f"""
        const code = {json.dumps(WORKER)};
        const blob = URL.createObjectURL(new Blob([code], {{type: "text/javascript"}}));
        const sources = [[blob, {{}}], [blob, {{type: "module"}}],
                         ["data:text/javascript," + encodeURIComponent(code), {{}}]];
        const answers = [];
        for (const [url, options] of sources) {{
          const worker = new Worker(url, options);
          answers.push(await new Promise((ok, fail) => {{
            worker.onmessage = (e) => ok(e.data); worker.onerror = (e) => fail(e.message);
            worker.postMessage("go"); }}));
        }}
        URL.revokeObjectURL(blob);
        return answers;"""),
    )
    assert await runtime.open("/blob-worker") == ["/api/from-worker"] * 3
    assert len(runtime.vendor.requests(APP, "/api/from-worker")) == 3


async def test_import_scripts_in_a_worker_maps_its_urls(runtime: Runtime) -> None:
    runtime.vendor.add(APP, "/w/lib.js", "self.fromLib = 'lib loaded';")
    runtime.vendor.add(APP, "/w/importer.js", """
const U = (sub, path) => ['ht', 'tps:', '//', sub, '.runtime', '.test', path].join('');
importScripts(U("app", "/w/lib.js"));
postMessage(self.fromLib);""")  # fmt: skip
    runtime.vendor.page(
        "/import-scripts",
        run("""
        const worker = new Worker("/w/importer.js");
        return await new Promise((ok, fail) => {
          worker.onmessage = (e) => ok(e.data); worker.onerror = (e) => fail(e.message); });"""),
    )
    assert await runtime.open("/import-scripts") == "lib loaded"
    assert await runtime.arrived(APP, "/w/lib.js")


async def test_dynamic_import_of_a_built_url_goes_through_the_import_map(runtime: Runtime) -> None:
    runtime.vendor.add(APP, "/m/one.mjs", "export const name = 'one';")
    runtime.vendor.add(APP, "/m/two.mjs", "export const name = 'two';")
    runtime.vendor.page(
        "/import",
        run("""
        const classic = await import(U("app", "/m/one.mjs"));
        const fromModule = await new Promise((ok) => { window.done = ok;
          const script = document.createElement("script"); script.type = "module";
          script.textContent = 'import(U("app", "/m/two.mjs")).then((m) => done(m.name));';
          document.body.append(script); });
        return [classic.name, fromModule];"""),
    )
    assert await runtime.open("/import") == ["one", "two"]
    assert await runtime.arrived(APP, "/m/two.mjs")


async def test_window_open_maps_its_url(runtime: Runtime) -> None:
    runtime.vendor.add(APP, "/opened", "<!doctype html><title>opened</title><p>opened")
    runtime.vendor.page(
        "/open",
        run("""
        const popup = window.open(U("app", "/opened"), "_blank");
        return popup !== null;"""),
    )
    async with runtime.context.expect_page() as opened:
        assert await runtime.open("/open") is True
    popup = await opened.value
    await popup.wait_for_load_state()
    assert popup.url == runtime.proxied(APP, "/opened")
    assert await runtime.arrived(APP, "/opened")


@pytest.mark.parametrize("how", ["assign", "replace", "href", "link"])
async def test_location_changes_go_to_the_proxied_host(runtime: Runtime, how: str) -> None:
    runtime.vendor.add(APP, "/landed", "<!doctype html><title>landed</title><p>landed")
    go = {"assign": "location.assign(url)", "replace": "location.replace(url)",
          "href": "location.href = url",
          # dom.js maps a link's href as it is set; the navigate event catches it regardless.
          "link": "const a = document.createElement('a'); a.href = url; "
                  "document.body.append(a); a.click()"}[how]  # fmt: skip
    runtime.vendor.page(
        "/go", f"window.result = 1; const url = U('app', '/landed?via={how}'); {go};"
    )
    await runtime.page.goto(runtime.proxied(APP, "/go"))
    await runtime.page.wait_for_url(runtime.proxied(APP, f"/landed?via={how}"))
    assert await runtime.arrived(APP, f"/landed?via={how}")


async def test_a_download_link_downloads_from_the_proxied_host(runtime: Runtime) -> None:
    runtime.vendor.add(APP, "/files/report.txt", "the report")
    runtime.vendor.page(
        "/download",
        """window.result = 1;
        const a = document.createElement("a");
        a.href = U("app", "/files/report.txt"); a.download = "report.txt";
        document.body.append(a);
        setTimeout(() => a.click(), 0);""",
    )
    async with runtime.page.expect_download() as started:
        await runtime.open("/download")
    download = await started.value
    assert download.url == runtime.proxied(APP, "/files/report.txt")
    assert download.suggested_filename == "report.txt"
    assert Path(await download.path()).read_text() == "the report"


async def test_history_takes_absolute_urls_of_the_vendor_host(runtime: Runtime) -> None:
    runtime.vendor.page(
        "/history",
        run("""
        history.pushState({n: 1}, "", U("app", "/pushed?x=1"));
        const pushed = location.pathname + location.search;
        history.replaceState({n: 2}, "", U("app", "/replaced"));
        return [pushed, location.pathname, history.state.n];"""),
    )
    assert await runtime.open("/history") == ["/pushed?x=1", "/replaced", 2]
    await runtime.page.reload()
    await runtime.page.wait_for_url(runtime.proxied(APP, "/replaced"))
    assert await runtime.arrived(APP, "/replaced")  # the reload asked the vendor for it


@pytest.mark.parametrize("how", ["submit", "requestSubmit"])
async def test_form_submission_goes_to_the_proxied_action(runtime: Runtime, how: str) -> None:
    runtime.vendor.page(
        "/form",
        f"""
        window.result = 1;
        const form = document.createElement("form");
        form.method = "post";
        form.setAttribute("action", U("app", "/posted"));
        const field = document.createElement("input");
        field.name = "q"; field.value = "{how}";
        form.append(field);
        document.body.append(form);
        form.{how}();""",
    )
    await runtime.page.goto(runtime.proxied(APP, "/form"))
    await runtime.page.wait_for_url(runtime.proxied(APP, "/posted"))
    (posted,) = await runtime.arrived(APP, "/posted")
    assert posted.method == "POST" and posted.body == f"q={how}".encode()


async def test_post_message_origins_are_mapped_both_ways(runtime: Runtime) -> None:
    runtime.vendor.add(APP, "/frame", "<!doctype html><title>frame</title><script>"
        "window.U = (sub, path) => ['ht', 'tps:', '//', sub, '.runtime', '.test', path].join('');"
        "addEventListener('message', (e) => { if (e.origin === U('app', '')) "
        "parent.postMessage('pong:' + e.data, U('app', '')); });</script>")  # fmt: skip
    runtime.vendor.page(
        "/message",
        run("""
        const frame = document.createElement("iframe");
        frame.src = "/frame";
        await new Promise((ok) => { frame.onload = ok; document.body.append(frame); });
        const reply = new Promise((ok) => addEventListener("message", (e) => {
          if (String(e.data).startsWith("pong")) ok([e.data, e.origin]); }));
        frame.contentWindow.postMessage("ping", U("app", ""));
        const self = new Promise((ok) => addEventListener("message", (e) => {
          if (e.data === "self") ok(e.origin); }));
        window.postMessage("self", {targetOrigin: U("app", "/")});
        return [...await reply, await self];"""),
    )
    assert await runtime.open("/message") == [
        "pong:ping",
        "https://app.runtime.test",
        "https://app.runtime.test",
    ]
    assert await runtime.arrived(APP, "/frame")
