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
      C.noteEscaped(found.host);
      return url;
    }
    return mapped;
  },

  /** The vendor URL a proxied ``url`` stands for (URLs of other hosts unchanged). */
  toOrigin(url) {
    return C.map.toOrigin(url);
  },

  /** Remember a host that a page reached outside the rules (host only: no path, no query). */
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

Object.defineProperty(globalThis, "__carrelCompanion", { value: C });
