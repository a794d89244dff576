// The companion's network patches (gateway/companion/js/net.js), run in a node vm realm whose
// browser APIs record what they are called with: what each patched API passes on. Chromium
// shows the same end to end (tests/test_browser_companion_net.py); this pins the details
// (argument counts, credentials, origins) fast. Run by tests/test_companion_vectors.py.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const vm = require("node:vm");
const { resolveObjectURL } = require("node:buffer");

const JS = path.join(__dirname, "../../gateway/companion/js");
const PARTS = ["map.js", "core.js", "net.js"]; // the bundle's order (bundle.py)
const SOURCE =
  "(function (module) {\n'use strict';\n" +
  PARTS.map((name) => fs.readFileSync(path.join(JS, name), "utf8")).join("\n") +
  "\n})();\n";

const SCOPE = {
  domain: "proxy.test", scheme: "https", port: "", login: "login.proxy.test",
  hosts: ["https://app.vendor.test", "https://api.vendor.test"], domains: [], never: [], edits: [],
};
const PAGE = "https://app-vendor-test.proxy.test/page/";
const APP = "https://app-vendor-test.proxy.test";
const API = "https://api-vendor-test.proxy.test";
const BUNDLE = "https://login.proxy.test/__carrel/companion/0123456789abcdef.js";

/** A realm with recording stand-ins for the browser's APIs, the companion run in it. */
function realm({ window = true, extra = {} } = {}) {
  const calls = [];
  const record = (name) => function (...args) { calls.push([name, this, args]); return args; };
  class Recorded {
    constructor(...args) { this.args = args; calls.push([this.constructor.name, this, args]); }
  }
  class WebSocket extends Recorded {}
  WebSocket.OPEN = 1;
  class EventSource extends Recorded {}
  class Worker extends Recorded {}
  class XMLHttpRequest {
    open(...args) { this.opened = args; }
  }
  class MessageEvent {
    constructor(origin) { this._origin = origin; }
    get origin() { return this._origin; }
  }
  // Subclasses, so that what the companion patches on them stays in this realm.
  const NativeRequest = class Request extends globalThis.Request {};
  const sandbox = {
    __carrelScope: SCOPE, URL: class URL extends globalThis.URL {}, Blob, Request: NativeRequest,
    // The companion holds revoked blob: URLs a minute; unref'd, that wait keeps no test alive.
    setTimeout: (fn, ms) => setTimeout(fn, ms).unref(), console,
    location: { href: PAGE, origin: APP },
    fetch: record("fetch"), importScripts: record("importScripts"),
    XMLHttpRequest, WebSocket, EventSource, Worker, MessageEvent,
  };
  Object.assign(sandbox, extra);
  if (window) {
    Object.assign(sandbox, {
      document: { baseURI: PAGE, currentScript: { src: BUNDLE, nonce: "" } },
      postMessage: record("postMessage"), open: record("open"),
      addEventListener: () => {},
      Navigator: class Navigator {}, History: class History {},
    });
    sandbox.Navigator.prototype.sendBeacon = record("sendBeacon");
    sandbox.History.prototype.pushState = record("pushState");
  }
  const context = vm.createContext(sandbox);
  vm.runInContext(SOURCE, context);
  return { g: context, calls, C: context.__carrelCompanion, NativeRequest };
}

// Arguments as plain data (objects made in the realm have its Object.prototype, not ours).
const lastArgs = (calls) => JSON.parse(JSON.stringify(calls.at(-1)[2]));

test("fetch maps a vendor URL and leaves relative and proxied ones as given", () => {
  const { g, calls } = realm();
  g.fetch("https://app.vendor.test/api?q=1");
  assert.deepEqual(lastArgs(calls), [`${APP}/api?q=1`]); // no init appears from nowhere
  for (const url of ["/relative", "rel?x", `${APP}/x`, "data:text/plain,x"]) {
    g.fetch(url);
    assert.deepEqual(lastArgs(calls), [url]);
  }
  g.fetch(new URL("https://app.vendor.test/u"), { method: "POST" });
  assert.deepEqual(lastArgs(calls), [`${APP}/u`, { method: "POST" }]);
});

test("a request to another proxied host carries the session, unless told to omit it", () => {
  const { g, calls } = realm();
  g.fetch("https://api.vendor.test/v1", { method: "POST" });
  assert.deepEqual(lastArgs(calls), [`${API}/v1`, { method: "POST", credentials: "include" }]);
  g.fetch("https://api.vendor.test/v1", { credentials: "omit" });
  assert.equal(lastArgs(calls)[1].credentials, "omit");
  g.fetch("https://app.vendor.test/same");
  assert.equal(lastArgs(calls).length, 1); // same origin: nothing changes
  const request = new g.Request("https://api.vendor.test/r", { headers: { "X-A": "1" } });
  assert.equal(request.url, `${API}/r`);
  assert.equal(request.credentials, "include");
  assert.equal(request.headers.get("X-A"), "1");
});

test("fetch of a Request made elsewhere (not through the patched constructor) is mapped", () => {
  const { g, calls, NativeRequest } = realm();
  g.fetch(new NativeRequest("https://app.vendor.test/native", { method: "PUT" }));
  const [input] = calls.at(-1)[2];
  assert.equal(input.url, `${APP}/native`);
  assert.equal(input.method, "PUT");
});

test("the Request constructor stays the native one to scripts", () => {
  const { g } = realm();
  const request = new g.Request("https://app.vendor.test/x");
  assert.ok(request instanceof g.Request && request instanceof Request);
  assert.equal(g.Request.name, "Request");
  assert.equal(g.Request.prototype.constructor, g.Request);
  // It prints the source of what it replaced (here the realm's stand-in, in a browser native code).
  const source = vm.runInContext("Function.prototype.toString.call(Request)", g);
  assert.equal(source, "class Request extends globalThis.Request {}");
  assert.throws(() => g.Request("https://x.test/"), TypeError);
  class Sub extends g.Request {}
  assert.equal(new Sub("https://app.vendor.test/s").url, `${APP}/s`);
});

test("an uncovered absolute URL goes as it is and is noted as escaped", () => {
  const { g, calls, C } = realm();
  g.fetch("https://cdn.elsewhere.test/lib.js");
  assert.deepEqual(lastArgs(calls), ["https://cdn.elsewhere.test/lib.js"]);
  assert.ok(C.escaped.has("https://cdn.elsewhere.test"));
  g.open("https://news.elsewhere.test/story"); // the patron leaving: nothing escaped
  new g.History().pushState({}, "", "https://away.elsewhere.test/");
  assert.deepEqual([...C.escaped], ["https://cdn.elsewhere.test"]);
});

test("XMLHttpRequest.open passes on as many arguments as it got", () => {
  const { g } = realm();
  const xhr = new g.XMLHttpRequest();
  xhr.open("GET", "https://app.vendor.test/a");
  assert.deepEqual(xhr.opened, ["GET", `${APP}/a`]); // an undefined third would mean sync
  assert.equal(xhr.withCredentials, undefined);
  xhr.open("GET", "https://api.vendor.test/b", true, "u", "p");
  assert.deepEqual(xhr.opened, ["GET", `${API}/b`, true, "u", "p"]);
  assert.equal(xhr.withCredentials, true);
});

test("sockets, event streams, beacons, history and window.open are mapped", () => {
  const { g, calls } = realm();
  const socket = new g.WebSocket("wss://app.vendor.test/s", ["p"]);
  assert.deepEqual(socket.args, ["wss://app-vendor-test.proxy.test/s", ["p"]]);
  assert.equal(g.WebSocket.OPEN, 1); // static members come through
  assert.deepEqual(new g.EventSource("https://app.vendor.test/e").args, [`${APP}/e`]);
  const stream = new g.EventSource("https://api.vendor.test/e");
  assert.deepEqual(JSON.parse(JSON.stringify(stream.args)), [`${API}/e`, { withCredentials: true }]);
  g.navigator = new g.Navigator();
  g.navigator.sendBeacon("https://app.vendor.test/b", "x");
  assert.deepEqual(lastArgs(calls), [`${APP}/b`, "x"]);
  new g.History().pushState({}, "", "https://app.vendor.test/p");
  assert.deepEqual(lastArgs(calls), [{}, "", `${APP}/p`]);
  g.open("https://app.vendor.test/w", "_blank");
  assert.deepEqual(lastArgs(calls), [`${APP}/w`, "_blank"]);
});

test("postMessage target origins go to the proxied origin, MessageEvent.origin comes back", () => {
  const { g, calls } = realm();
  g.postMessage("m", "https://app.vendor.test");
  assert.deepEqual(lastArgs(calls), ["m", APP]);
  g.postMessage("m", { targetOrigin: "https://api.vendor.test/", transfer: [] });
  assert.deepEqual(lastArgs(calls), ["m", { targetOrigin: API, transfer: [] }]);
  for (const kept of ["*", "/", "https://other.test"]) {
    g.postMessage("m", kept);
    assert.equal(lastArgs(calls)[1], kept);
  }
  g.postMessage("m");
  assert.equal(lastArgs(calls).length, 1);
  assert.equal(new g.MessageEvent(APP).origin, "https://app.vendor.test");
  assert.equal(new g.MessageEvent("https://login.proxy.test").origin, "https://login.proxy.test");
  assert.equal(new g.MessageEvent("").origin, "");
  assert.equal(new g.MessageEvent("null").origin, "null");
});

test("a blob: worker starts from a wrapper that imports the companion first", async () => {
  const { g } = realm();
  const blob = URL.createObjectURL(new Blob(["postMessage(1)"]));
  const classic = new g.Worker(blob).args[0];
  const text = await resolveObjectURL(classic).text();
  assert.match(text, /^globalThis.__carrelScope = \{/);
  assert.ok(text.endsWith(`importScripts(${JSON.stringify(BUNDLE)}, ${JSON.stringify(blob)});\n`));
  const module = new g.Worker(blob, { type: "module" }).args[0];
  const imports = (await resolveObjectURL(module).text()).match(/import "([^"]+)";/g);
  assert.equal(imports.length, 3);
  assert.ok(imports[1].includes(BUNDLE) && imports[2].includes(blob));
  g.URL.revokeObjectURL(blob); // held a while: the wrapper has yet to read it
  assert.ok(resolveObjectURL(blob));
});

test("a module worker of the vendor's host starts from a wrapper too", async () => {
  const { g } = realm();
  const wrapper = new g.Worker("https://app.vendor.test/w.mjs", { type: "module" }).args[0];
  const text = await resolveObjectURL(wrapper).text();
  assert.ok(text.endsWith(`import "${APP}/w.mjs";\n`));
  const settings = await resolveObjectURL(text.match(/import "([^"]+)";/)[1]).text();
  assert.ok(settings.includes(`globalThis.__carrelWorkerUrl = "${APP}/w.mjs";`));
  assert.deepEqual(new g.Worker("https://app.vendor.test/w.js").args, [`${APP}/w.js`]);
  // Another origin's script: left to the browser, which refuses it as it would have.
  const other = new g.Worker("https://api.vendor.test/w.mjs", { type: "module" }).args;
  assert.deepEqual(JSON.parse(JSON.stringify(other)), [`${API}/w.mjs`, { type: "module" }]);
  // The wrapper's import of the companion (served to any origin with "*") cannot go with
  // credentials.
  const [, options] = new g.Worker("/w.mjs", { type: "module", credentials: "include" }).args;
  assert.equal(options.credentials, "same-origin");
});

test("in a worker, importScripts maps every URL", () => {
  const { g, calls } = realm({ window: false });
  g.importScripts("https://app.vendor.test/a.js", "b.js");
  assert.deepEqual(lastArgs(calls), [`${APP}/a.js`, "b.js"]);
  assert.equal(g.postMessage, undefined); // nothing of a window's is made up
});

test("a TrustedScriptURL stays typed: through the companion's policy, else unmapped", () => {
  class Trusted {
    constructor(url) { this.url = url; }
    toString() { return this.url; }
  }
  const trustedTypes = { isScriptURL: (value) => value instanceof Trusted };
  const { g, C } = realm({ extra: { trustedTypes } });
  const given = new Trusted("https://app.vendor.test/w.js");
  assert.equal(new g.Worker(given).args[0], given); // no policy yet: as it came
  C.policy = { createScriptURL: (url) => new Trusted(`typed:${url}`) };
  const typed = new g.Worker(given).args[0];
  assert.ok(typed instanceof Trusted);
  assert.equal(typed.url, `typed:${APP}/w.js`);
  const kept = new Trusted(`${APP}/already.js`);
  assert.equal(new g.Worker(kept).args[0], kept); // nothing to map: the very value
});
