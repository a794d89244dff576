// Carrel companion, part 3: the network and navigation APIs.
//
// Every API that takes a URL gets it through C.toProxy, so a URL a vendor script builds at run
// time ("https://" + apiHost + "/v1") goes to the proxied host. The patches go on prototypes,
// constructors and the global object's own methods; window and document are never wrapped in a
// Proxy (identity checks, `this` checks and cross-realm access all break under one). The same
// text runs in pages and in workers: what a scope lacks is skipped.
//
// A request to a DIFFERENT proxied host carries the patron's session cookie only with
// credentials "include" (the gateway needs it; the vendor behind never sees it), so the patches
// switch "same-origin" to "include" there; the gateway answers such proxied origins with an
// exact Access-Control-Allow-Origin and Allow-Credentials. Same-origin requests stay as they are.
//
// Location is unforgeable (its members are own, non-configurable properties), and dynamic
// import() is syntax: neither can be patched. The Navigation API's navigate event catches the
// first (location.assign/replace/href=, link clicks), an import map the second; see README.

const inWindow = typeof document !== "undefined";
const NativeURL = URL;
const createObjectURL = NativeURL.createObjectURL?.bind(NativeURL);

/** Where a URL goes once mapped, as the browser will request it (null if it cannot say). */
function target(url) {
  try {
    return new NativeURL(String(url), C.base());
  } catch {
    return null;
  }
}

/** Whether ``url`` is a proxied host of another origin than this document's (the session
 * cookie then travels only with credentials "include"). */
function otherProxiedHost(url) {
  const to = target(url);
  return !!to && to.origin !== globalThis.location?.origin && C.map.originOf(to.host) !== null;
}

/** A vendor origin (a postMessage target) as its proxied origin; "*", "/" and uncovered
 * origins unchanged. */
function proxiedOrigin(origin) {
  if (typeof origin !== "string" || origin === "*" || origin === "/") return origin;
  const mapped = C.map.toProxy(origin);
  return mapped === origin ? origin : new NativeURL(mapped).origin;
}

/** A proxied origin (MessageEvent.origin) as the vendor origin it stands for. */
function vendorOrigin(origin) {
  if (typeof origin !== "string" || !origin.includes("://")) return origin;
  const vendor = C.toOrigin(`${origin}/`);
  return vendor === `${origin}/` ? origin : new NativeURL(vendor).origin;
}

/** Replace the constructor ``owner[name]`` by one that maps its arguments with ``mapArgs``;
 * instances, ``instanceof``, subclasses and static members stay the native ones. */
function wrapConstructor(owner, name, mapArgs) {
  const Native = owner?.[name];
  if (typeof Native !== "function") return;
  C.wrap(owner, name, () => {
    const Wrapped = function (...args) {
      // Called without new: let the native constructor throw its own TypeError.
      if (new.target === undefined) return Reflect.apply(Native, this, args);
      return Reflect.construct(Native, mapArgs(args), new.target);
    };
    Object.setPrototypeOf(Wrapped, Native);
    Object.defineProperty(Wrapped, "prototype", { value: Native.prototype, writable: false });
    Object.defineProperty(Native.prototype, "constructor", {
      value: Wrapped,
      writable: true,
      enumerable: false,
      configurable: true,
    });
    return Wrapped;
  });
}

const wrapGetter = C.wrapGetter;

/** ``mapped`` in the place of a script URL ``original``, typed as it was: a page that enforces
 * Trusted Types passes a TrustedScriptURL, and a plain string there would throw. The type comes
 * from the companion's policy ("carrel", which dom.js creates and puts at ``C.policy``); without
 * one the original goes on unmapped (it may escape; the page does not break). */
function typedLike(original, mapped) {
  const types = globalThis.trustedTypes;
  if (mapped === original || typeof original !== "object" || !types?.isScriptURL?.(original)) {
    return mapped;
  }
  return C.policy?.createScriptURL ? C.policy.createScriptURL(mapped) : original;
}

/** A URL the document navigates to (or names in its history), mapped when covered. Unlike
 * C.toProxy it notes no escaped host: following a link off the rules is the patron leaving the
 * database, not the database loading something from outside them. */
function navigationTarget(url) {
  const to = target(url);
  if (!to || C.map.ours(to.hostname)) return url;
  const mapped = C.map.toProxy(to.href);
  return mapped === to.href ? url : mapped;
}

/** ``args`` with the URL at ``index`` mapped (only when it is there: for some APIs an
 * argument left out differs from one passed as undefined). */
function mapAt(args, index, map = C.toProxy) {
  if (args.length > index) args[index] = map(args[index]);
  return args;
}

// -- fetch and Request ---------------------------------------------------------------------

/** The getter of ``prop`` on ``proto`` or the nearest prototype above it that has one. */
function getterOf(proto, prop) {
  for (let at = proto; at; at = Object.getPrototypeOf(at)) {
    const descriptor = Object.getOwnPropertyDescriptor(at, prop);
    if (descriptor) return descriptor.get;
  }
  return undefined;
}

const requestUrl = globalThis.Request && getterOf(globalThis.Request.prototype, "url");

/** Whether ``value`` is a Request (of any realm: a frame's Request is one too). */
function isRequest(value) {
  if (!requestUrl || typeof value !== "object" || value === null) return false;
  try {
    requestUrl.call(value);
    return true;
  } catch {
    return false;
  }
}

/** A credentials mode that lets the session cookie reach another proxied host. */
function credentialsFor(url, given) {
  return given !== "omit" && otherProxiedHost(url) ? "include" : given;
}

/** fetch's and Request's (input, init), mapped (a new Request made with ``NativeRequest``). */
function requestArgs([input, init, ...rest], NativeRequest) {
  if (isRequest(input)) {
    const url = requestUrl.call(input);
    const mapped = C.toProxy(url);
    const credentials = credentialsFor(mapped, init?.credentials ?? input.credentials);
    if (mapped === url && credentials === (init?.credentials ?? input.credentials)) {
      return [input, init, ...rest];
    }
    return [new NativeRequest(mapped, input), { ...init, credentials }, ...rest];
  }
  const mapped = C.toProxy(input);
  const given = init?.credentials ?? "same-origin";
  const credentials = credentialsFor(mapped, given);
  const args = [mapped, credentials === given ? init : { ...init, credentials }, ...rest];
  return init === undefined && credentials === given ? args.slice(0, 1) : args;
}

// -- workers ------------------------------------------------------------------------------

const BUNDLE_IN_STACK = /https?:\/\/[^\s()"']+\/__carrel\/companion\/[0-9a-f]+\.js/;

/** The bundle's own URL: the current script while a page runs it, else (a worker imported
 * it) the script named in the stack. */
const bundleUrl =
  (inWindow && document.currentScript?.src) ||
  (String(new Error().stack).match(BUNDLE_IN_STACK) ?? [])[0];

const held = new Set();
const HOLD_MS = 60_000;

const blobOf = (code) => createObjectURL(new Blob([code], { type: "text/javascript" }));

/** A script that starts a worker with the companion first, then runs the script at ``url``:
 * the scope is set, the bundle imported, then ``url`` (as a classic importScripts, or as a
 * module import). The gateway cannot do it for blob: and data: scripts (no server serves them)
 * nor for a module worker's own script (Chromium fetches it exactly like a classic one, so the
 * gateway's prelude cannot tell which it is; an import of it is told apart, see inject.py).
 * ``original`` is the address the worker's location reports (a wrapped module worker's
 * relative URLs resolve against it). */
function wrappedWorker(url, module, original) {
  const settings =
    `globalThis.__carrelScope = ${JSON.stringify(C.scope)};\n` +
    (original ? `globalThis.__carrelWorkerUrl = ${JSON.stringify(original)};\n` : "");
  const quoted = JSON.stringify;
  if (url.startsWith("blob:")) held.add(url);
  const source = /^(?:blob|data):/i.test(url) ? localText(url) : null;
  if (source !== null) {
    // A blob:/data: script's text was built in the page: its URLs are mapped before it runs,
    // as the gateway maps a served script's (an import() in it is syntax: no patch sees it).
    const mapped = Markup.rewriteScript(source, mappedOrigin);
    if (mapped !== source) url = blobOf(mapped);
  }
  if (!module) return blobOf(`${settings}importScripts(${quoted(bundleUrl)}, ${quoted(url)});\n`);
  const imports = [blobOf(settings), bundleUrl, url];
  return blobOf(imports.map((each) => `import ${quoted(each)};\n`).join(""));
}

/** The text of a blob: or data: script, read at once (the worker must start in the same
 * turn); null when it cannot be read (a Permissions-Policy without sync-xhr, say). */
function localText(url) {
  try {
    const request = new XMLHttpRequest();
    request.open("GET", url, false);
    request.send();
    return request.status === 200 || request.status === 0 ? request.responseText : null;
  } catch {
    return null;
  }
}

/** The origin of an absolute URL, mapped when the rules cover it. */
function mappedOrigin(origin) {
  const mapped = C.map.toProxy(`${origin}/`);
  return mapped === `${origin}/` ? origin : mapped.slice(0, -1);
}

/** Worker/SharedWorker arguments, the script URL mapped (and wrapped, see above). */
function workerArgs(args, shared) {
  if (!args.length || !bundleUrl || !createObjectURL) return mapAt(args, 0);
  const original = args[0];
  const text = String(original).trim();
  const module = args[1]?.type === "module";
  const to = target(C.toProxy(original));
  let wrapped = true;
  if (/^(?:blob|data):/i.test(text)) {
    args[0] = wrappedWorker(text, module);
  } else if (module && !shared && to?.origin === globalThis.location?.origin) {
    // (A worker script of another origin is refused by the browser: left to it, it still is.)
    // A shared worker is found again by its URL, so a wrapper (a new blob: URL every time)
    // would start a new one each time: module shared workers go without the companion.
    args[0] = wrappedWorker(to.href, true, to.href);
  } else {
    mapAt(args, 0);
    wrapped = false;
  }
  if (wrapped && module && args[1].credentials === "include") {
    // The wrapper imports the companion from the login host, which answers every origin with
    // "*", and that fails with credentials; the gateway needs none from a proxied page.
    args[1] = { ...args[1], credentials: "same-origin" };
  }
  args[0] = typedLike(original, args[0]);
  return args;
}

// Inside a wrapped module worker: its location says the script's address, not the wrapper's
// blob: URL, and relative URLs resolve against that address.
const workerUrl =
  !inWindow && globalThis.__carrelWorkerUrl && new NativeURL(globalThis.__carrelWorkerUrl);
if (workerUrl && globalThis.WorkerLocation) {
  const proto = globalThis.WorkerLocation.prototype;
  const parts = ["href", "origin", "protocol", "host", "hostname", "port", "pathname", "search"];
  for (const prop of [...parts, "hash"]) wrapGetter(proto, prop, () => workerUrl[prop]);
  C.wrap(proto, "toString", () => function toString() {
    return workerUrl.href;
  });
  const toProxy = C.toProxy;
  C.toProxy = (url, base) => {
    const mapped = toProxy(url, base);
    if (mapped !== url || url === null || url === undefined) return mapped;
    return target(url)?.href ?? url;
  };
}

// -- dynamic import() -----------------------------------------------------------------------

/** import() is syntax; an import map (the browser's own specifier mapping, which applies to
 * import() in classic and module scripts and to static imports) sends covered origins to their
 * proxied ones. Only the page's own site (its host's last two labels) goes in: with the 1,353
 * published stanzas a map of every covered origin is 4,600 entries and 360 KB, too slow to
 * build and parse on every page. A map knows prefixes, not patterns, so of a D/DJ domain only
 * its own host is listed. It goes in before any vendor script; the vendor's own maps merge into
 * it. Workers have no import maps (see README). */
function importMap() {
  const site = new NativeURL(C.pageUrl()).hostname.split(".").slice(-2).join(".");
  const ofSite = (host) => host === site || host.endsWith(`.${site}`);
  const hostOf = (origin) => origin.slice(origin.indexOf("//") + 2).replace(/:\d+$/, "");
  const origins = (C.scope.hosts ?? []).filter((origin) => ofSite(hostOf(origin)));
  for (const domain of C.scope.domains ?? []) {
    if (ofSite(domain)) origins.push(`https://${domain}`, `http://${domain}`);
  }
  const imports = {};
  for (const origin of origins) {
    const mapped = C.map.toProxy(`${origin}/`);
    if (mapped !== `${origin}/`) imports[`${new NativeURL(origin).origin}/`] = mapped;
  }
  return { imports };
}

if (inWindow && globalThis.HTMLScriptElement?.supports?.("importmap")) {
  const script = document.createElement("script");
  script.type = "importmap";
  script.nonce = document.currentScript?.nonce ?? "";
  try {
    script.textContent = JSON.stringify(importMap());
    (document.head ?? document.documentElement).append(script);
  } catch {
    // Trusted Types refused the text: module URLs built at run time then escape (the CSP net
    // reports them).
  }
}

// -- the patches, for this realm and for same-origin frames ---------------------------------

/** Patch the network and navigation APIs of the realm whose global is ``G``. */
function patchRealm(G) {
  const Native = { Request: G.Request };

  wrapConstructor(G, "Request", (args) => requestArgs(args, Native.Request));
  C.wrap(G, "fetch", (native) =>
    function fetch(...args) {
      return Reflect.apply(native, this, args.length ? requestArgs(args, Native.Request) : args);
    },
  );

  // -- XMLHttpRequest, sendBeacon, EventSource, WebSocket -------------------------------------

  C.wrap(G.XMLHttpRequest?.prototype, "open", (native) =>
    function open(...args) {
      const result = Reflect.apply(native, this, mapAt(args, 1));
      if (args.length > 1 && otherProxiedHost(args[1])) {
        try {
          this.withCredentials = true;
        } catch {
          // A synchronous request in a window cannot have it; it goes without.
        }
      }
      return result;
    },
  );

  C.wrap(G.Navigator?.prototype, "sendBeacon", (native) =>
    function sendBeacon(...args) {
      return Reflect.apply(native, this, mapAt(args, 0));
    },
  );

  wrapConstructor(G, "EventSource", (args) => {
    mapAt(args, 0);
    if (args.length && !args[1]?.withCredentials && otherProxiedHost(args[0])) {
      args[1] = { ...args[1], withCredentials: true };
    }
    return args;
  });

  // WebSocket takes ws(s), http(s) and relative URLs; the mapping gives ws(s) for ws(s).
  wrapConstructor(G, "WebSocket", (args) => mapAt(args, 0));

  // -- workers --------------------------------------------------------------------------

  wrapConstructor(G, "Worker", (args) => workerArgs(args, false));
  wrapConstructor(G, "SharedWorker", (args) => workerArgs(args, true));

  // A page often revokes a worker's blob: URL right after `new Worker(url)` (the browser has
  // resolved it by then); our wrapper reads it a moment later, so its revocation waits.
  C.wrap(G.URL, "revokeObjectURL", (native) =>
    function revokeObjectURL(...args) {
      const url = String(args[0]);
      if (!held.has(url)) return Reflect.apply(native, this, args);
      held.delete(url);
      setTimeout(() => Reflect.apply(native, this, [url]), HOLD_MS);
      return undefined;
    },
  );

  C.wrap(G, "importScripts", (native) =>
    function importScripts(...urls) {
      return Reflect.apply(native, this, urls.map((url) => typedLike(url, C.toProxy(url))));
    },
  );

  // -- navigation -----------------------------------------------------------------------------

  if (typeof G.document !== "undefined") {
    C.wrap(G, "open", (native) =>
      function open(...args) {
        return Reflect.apply(native, this, mapAt(args, 0, navigationTarget));
      },
    );

    // history.pushState/replaceState with an absolute URL of the vendor's host throw (it is not
    // this document's origin); mapped, they name the proxied host.
    for (const name of ["pushState", "replaceState"]) {
      C.wrap(G.History?.prototype, name, (original) =>
        function (...args) {
          return Reflect.apply(original, this, mapAt(args, 2, navigationTarget));
        },
      );
    }

    /** Point a form (and the button submitting it) at the proxied action. */
    const mapForm = (form, submitter) => {
      for (const element of [submitter, form]) {
        if (!element?.hasAttribute?.(element === form ? "action" : "formaction")) continue;
        const property = element === form ? "action" : "formAction";
        const mapped = navigationTarget(element[property]);
        if (mapped !== element[property]) element[property] = mapped;
      }
    };
    const FormProto = G.HTMLFormElement?.prototype;
    C.wrap(FormProto, "submit", (native) =>
      function submit(...args) {
        mapForm(this);
        return Reflect.apply(native, this, args);
      },
    );
    C.wrap(FormProto, "requestSubmit", (native) =>
      function requestSubmit(...args) {
        mapForm(this, args[0]);
        return Reflect.apply(native, this, args);
      },
    );
    // A submission the patron starts: the browser reads the action after the submit event.
    G.addEventListener("submit", (event) => mapForm(event.target, event.submitter), true);

    // Location's members cannot be patched; the navigate event sees every navigation this
    // document starts (location.assign/replace/href=, links, window.open into itself) before it
    // happens. One to a covered vendor URL is cancelled and started again at the proxied URL.
    G.navigation?.addEventListener("navigate", (event) => {
      const url = event.destination.url;
      const mapped = navigationTarget(url);
      if (mapped === url || !event.cancelable || event.formData) return;
      event.preventDefault();
      // A download link: the browser ignores `download` on a link to another origin (the vendor
      // URL is one), so the link is asked; downloaded from the proxied URL under its name.
      const source = event.sourceElement;
      const download = source?.hasAttribute?.("download") ? source.download : event.downloadRequest;
      if (typeof download === "string") {
        const link = G.document.createElement("a");
        link.href = mapped;
        link.download = download;
        link.click();
      } else if (event.navigationType === "replace") G.location.replace(mapped);
      else G.location.assign(mapped);
    });

    // -- postMessage -------------------------------------------------------------------------

    // A vendor page names its partner's vendor origin as the target; the browser compares it
    // with the proxied one. This patches the windows the companion runs in (this one, same-origin
    // frames and popups); a call through a cross-origin WindowProxy reaches the browser's own
    // postMessage (see README).
    C.wrap(G, "postMessage", (native) =>
      function postMessage(...args) {
        const options = args[1];
        if (typeof options === "string") args[1] = proxiedOrigin(options);
        else if (typeof options?.targetOrigin === "string") {
          args[1] = { ...options, targetOrigin: proxiedOrigin(options.targetOrigin) };
        }
        return Reflect.apply(native, this, args);
      },
    );
  }

  // A message from a proxied window says the vendor origin it stands for, which is what the
  // vendor's `event.origin === "https://..."` checks compare with.
  wrapGetter(G.MessageEvent?.prototype, "origin", vendorOrigin);
}

patchRealm(globalThis);
C.realmPatches.push(patchRealm);
