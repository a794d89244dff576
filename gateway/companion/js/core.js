// Carrel companion, part 2: what the other parts share (the object C).
//
// The bundle is one function (see gateway/companion/bundle.py), so a return here ends it: a
// second copy in the same realm (a page that is also a worker's importer, a re-injected frame)
// does nothing, and without a scope there is nothing to map.
const scope = globalThis.__carrelScope;
if (!scope || globalThis.__carrelCompanion) return;

const nativeToString = Function.prototype.toString;
const disguised = new WeakMap();

const C = {
  scope,
  map: makeMapper(scope),
  escaped: new Set(),

  /** The address the document (or worker) was loaded from, as the browser sees it. */
  here() {
    return String(globalThis.location?.href ?? "");
  },

  /** The base relative URLs resolve against (the document's <base>, else its address). */
  base() {
    return globalThis.document?.baseURI ?? C.here();
  },

  /** The vendor URL this document stands for. */
  pageUrl() {
    return C.map.toOrigin(C.here());
  },

  /** ``url`` as the browser must request it: a covered vendor URL becomes its proxied form,
   * everything else is returned as given (relative URLs already resolve on the proxied host). */
  toProxy(url, base) {
    if (url === null || url === undefined) return url;
    const text = String(url);
    let resolved;
    try {
      resolved = new URL(text, base ?? C.base());
    } catch {
      return url;
    }
    const found = C.map.parse(resolved);
    if (!found || C.map.ours(found.host)) return url;
    const mapped = C.map.toProxy(resolved);
    if (mapped === resolved.href) {
      C.noteEscaped(`${found.web}://${found.parsed.host}`);
      return url;
    }
    return mapped;
  },

  /** The vendor URL a proxied ``url`` stands for (URLs of other hosts unchanged). */
  toOrigin(url) {
    return C.map.toOrigin(url);
  },

  /** Remember an origin a page reached outside the rules (``https://host[:port]``, a WebSocket
   * as its http(s) origin: the HJ line it needs; no path, no query). */
  noteEscaped(host) {
    if (C.escaped.size < 1000) C.escaped.add(host);
  },

  /** Replace ``owner[name]`` by ``make(original)``, keeping its name, length and source text. */
  wrap(owner, name, make) {
    const original = owner?.[name];
    if (typeof original !== "function") return;
    const wrapped = make(original);
    disguised.set(wrapped, original);
    Object.defineProperty(wrapped, "name", { value: original.name });
    Object.defineProperty(wrapped, "length", { value: original.length });
    const descriptor = Object.getOwnPropertyDescriptor(owner, name) ?? {
      writable: true,
      enumerable: false,
      configurable: true,
    };
    Object.defineProperty(owner, name, { ...descriptor, value: wrapped });
  },

  /** Patch the getter ``prop`` of ``proto`` to return ``mapOut(value)`` (read-only accessors
   * too; C.wrap keeps the replacement's name and source text native-looking). */
  wrapGetter(proto, prop, mapOut) {
    const descriptor = proto && Object.getOwnPropertyDescriptor(proto, prop);
    if (!descriptor?.get) return;
    const holder = { get: descriptor.get };
    C.wrap(holder, "get", (get) =>
      function () {
        return mapOut(get.call(this));
      },
    );
    Object.defineProperty(proto, prop, { ...descriptor, get: holder.get });
  },

  /** What each part does to a realm: run on this one as the part loads, and on every
   * same-origin frame's realm that ``C.adopt`` takes in. */
  realmPatches: [],

  /** Patch the accessor ``prop`` of ``proto``: ``mapIn`` on set, ``mapOut`` (if any) on get. */
  wrapAccessor(proto, prop, mapIn, mapOut) {
    const descriptor = proto && Object.getOwnPropertyDescriptor(proto, prop);
    if (!descriptor?.set) return;
    const { get, set } = descriptor;
    const patched = {
      set(value) {
        set.call(this, mapIn(value, this));
      },
    };
    if (mapOut) {
      patched.get = function () {
        return mapOut(get.call(this), this);
      };
    }
    disguised.set(patched.set, set);
    if (patched.get) disguised.set(patched.get, get);
    Object.defineProperty(proto, prop, { ...descriptor, ...patched });
  },
};

// Patched functions print the source of the ones they replace (some scripts check that a
// built-in "is native" before using it).
C.wrap(Function.prototype, "toString", (original) =>
  function toString() {
    return original.call(disguised.get(this) ?? this);
  },
);

// A same-origin frame the gateway did not serve (about:blank, a frame still loading, one
// written with document.write) has a realm of its own with the browser's own APIs: a script
// could take a pristine fetch from it. Such a realm gets every part's patches when a script
// first reaches its window through the frame element or window.open, before it can use it.
// Realms are told apart by their Object constructor: a frame's window object stays the same
// when the frame navigates to a new document.
const adopted = new WeakSet([Object]);
const ourToString = Function.prototype.toString;

C.adopt = function adopt(win) {
  try {
    if (!win || win.__carrelCompanion || adopted.has(win.Object)) return win;
    void win.location.href; // a cross-origin window throws here: the gateway served it its own
  } catch {
    return win;
  }
  adopted.add(win.Object);
  for (const patch of C.realmPatches) patch(win);
  C.wrap(win.Function?.prototype, "toString", () =>
    function toString() {
      return Reflect.apply(ourToString, this, []);
    },
  );
  return win;
};

if (typeof document === "object") {
  for (const Frame of [globalThis.HTMLIFrameElement, globalThis.HTMLFrameElement]) {
    C.wrapGetter(Frame?.prototype, "contentWindow", C.adopt);
    C.wrapGetter(Frame?.prototype, "contentDocument", (doc) => {
      C.adopt(doc?.defaultView);
      return doc;
    });
  }
  C.wrap(globalThis, "open", (native) =>
    function open(...args) {
      return C.adopt(Reflect.apply(native, this, args));
    },
  );
}

Object.defineProperty(globalThis, "__carrelCompanion", { value: C });
