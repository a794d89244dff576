// Carrel companion, the DOM part: URLs a page script puts into elements (properties and
// setAttribute), markup it hands to HTML sinks, CSS it hands to style sinks, document.cookie
// writes, and Trusted Types. Prototype patches only: window and document stay what they are.
//
// What the page READS is left as the browser holds it: a.href, img.src, getAttribute() and
// style values give the proxied URL, as location, document.URL and baseURI (which no script
// can change) do. One world for everything a page reads keeps its same-origin checks true
// (`new URL(a.href).origin === location.origin`, routers deciding between pushState and a
// full load); URLs the vendor's scripts build from their own configuration are vendor URLs,
// and those are mapped on their way in. Reading back exactly the vendor URL one wrote is the
// case this gives up.
//
// Workers have no DOM: there this part only creates the Trusted Types policy (for net.js).
/** Patch the DOM of the realm whose global is ``G`` (a window: this one, or a same-origin
 * frame's), with ``policy`` its Trusted Types policy (or null). */
function patchDom(G, policy) {
  if (typeof G.Element !== "function" || typeof G.document !== "object") return;
  const TT = G.trustedTypes;
  const NativeXHR = G.XMLHttpRequest;
  const nativeFetch = G.fetch;
  const elementProto = G.Element.prototype;
  const nativeGetAttribute = elementProto.getAttribute;
  const nativeSetAttribute = elementProto.setAttribute;
  // Absolute: a relative path would resolve against the page's <base>, maybe another host.
  const COOKIE_URL = `${G.location.origin}/__carrel/cookie`;

  /** One URL as the browser must fetch it (a string in, a string out). A URL of a host no
   * rule covers is noted as escaped (C.noteEscaped), unless it is only where the patron may
   * go (a link, a form's action: leaving the proxy, not a page reaching past it). */
  const mapUrl = (url, tag, attribute) => {
    if (!Markup.MAYBE_URL.test(url)) return url; // relative URLs resolve on the proxied host
    if (NAVIGATIONS.has(`${tag} ${attribute}`) || NOT_FETCHED.has(attribute)) {
      let resolved;
      try {
        resolved = new URL(url, C.base());
      } catch {
        return url;
      }
      const mapped = C.map.toProxy(resolved);
      return mapped === resolved.href ? url : mapped;
    }
    const out = C.toProxy(url);
    return typeof out === "string" ? out : url;
  };

  /** ``mapped`` (a string) in the place of ``original``, typed as ``original`` was (or, with
   * no policy to type it, ``original`` itself: a URL may escape, the page does not break). */
  const retype = (original, mapped) => {
    if (typeof original !== "object" || !TT) return mapped;
    const html = TT.isHTML(original);
    if (!html && !TT.isScriptURL(original)) return mapped;
    if (!policy) return original;
    return html ? policy.createHTML(mapped) : policy.createScriptURL(mapped);
  };

  /** ``value`` after ``rewrite`` (string to string); the very value when nothing changed. */
  const through = (value, rewrite) => {
    if (value === null || value === undefined) return value;
    const before = typeof value === "string" ? value : String(value);
    const after = rewrite(before);
    return after === before ? value : retype(value, after);
  };
  const ofKind = (kind) => (value) => through(value, (s) => Markup.rewrite(kind, s, mapUrl));
  const html = ofKind("html");
  const css = ofKind("css");

  // A srcdoc frame is not fetched, so the gateway cannot put the companion into it: its markup
  // gets the same two script tags this page got (cached, and allowed by the page's CSP, which
  // the frame inherits), ahead of its own scripts.
  const bundleTag = G.document.currentScript;
  const scopeTag = bundleTag?.previousElementSibling;
  const frameTags = [scopeTag, bundleTag].every((t) => t?.src?.includes("/__carrel/companion/"))
    ? [scopeTag, bundleTag].map((t) => `<script src="${t.src}" nonce="${t.nonce}"></script>`).join("")
    : ""; // prettier-ignore
  const srcdoc = (value) => through(value, (s) => frameTags + Markup.rewriteHtml(s, mapUrl));

  // Element kinds by name, not instanceof: a node may come from another realm (a frame's).
  const isStyle = (node) =>
    node?.localName === "style" && (node.namespaceURI === HTML_NS || node.namespaceURI === SVG_NS);

  /** Patch ``proto[prop]``'s setter so that ``then(element)`` runs after each set. */
  const afterSet = (proto, prop, then) => {
    const descriptor = proto && Object.getOwnPropertyDescriptor(proto, prop);
    if (!descriptor?.set) return;
    C.wrap(descriptor, "set", (set) =>
      function (value) {
        set.call(this, value);
        then(this);
      },
    );
    Object.defineProperty(proto, prop, descriptor);
  };

  // --- Credentials of CORS requests to a sibling proxied host --------------------------------
  // A crossorigin="anonymous" element (and a module script, CORS without the attribute) sends
  // no cookies to another origin, and every proxied host is one: the gateway would see no
  // session and answer with the login page. Towards a different proxied host the companion
  // asks for "use-credentials" instead (the gateway answers proxied origins with their exact
  // Access-Control-Allow-Origin and Allow-Credentials; it does the same to such attributes in
  // the markup it serves). Set before the element's request starts (img fetches on src=).
  const CORS_ELEMENTS = new Set(["script", "link", "img", "audio", "video"]);
  const corsElement = (el) => CORS_ELEMENTS.has(el?.localName) && el.namespaceURI === HTML_NS;

  const credentials = (el, url) => {
    if (!corsElement(el)) return;
    const isLink = el.localName === "link";
    const target = url ?? nativeGetAttribute.call(el, isLink ? "href" : "src");
    if (!target) return;
    const mode = nativeGetAttribute.call(el, "crossorigin");
    const module = isLink
      ? /(^|\s)modulepreload(\s|$)/i.test(nativeGetAttribute.call(el, "rel") ?? "")
      : el.localName === "script" &&
        (nativeGetAttribute.call(el, "type") ?? "").trim().toLowerCase() === "module";
    if (mode === null ? !module : mode.trim().toLowerCase() === "use-credentials") return;
    let parsed;
    try {
      parsed = new URL(String(target), C.base());
    } catch {
      return;
    }
    if (parsed.host === G.location.host || C.map.originOf(parsed.host) === null) return;
    nativeSetAttribute.call(el, "crossorigin", "use-credentials");
  };

  /** The value of ``el``'s attribute ``name`` (lower case) after mapping, by the attribute's
   * kind (a URL, a srcset, CSS, a srcdoc document). */
  const attributeValue = (el, name, value) => {
    if (name === "srcdoc") return srcdoc(value);
    const kind = Markup.ATTRIBUTES[name];
    if (kind === undefined) return value;
    const tag = el?.localName;
    return through(value, (s) => Markup.rewrite(kind, s, (url) => mapUrl(url, tag, name)));
  };

  // --- URL-bearing element properties ------------------------------------------------------
  const PROPERTIES = [
    ["url", "HTMLAnchorElement HTMLAreaElement HTMLLinkElement HTMLBaseElement", "href"],
    ["url", "HTMLImageElement HTMLScriptElement HTMLIFrameElement HTMLFrameElement " +
      "HTMLEmbedElement HTMLSourceElement HTMLTrackElement HTMLMediaElement HTMLInputElement", "src"],
    ["url", "HTMLFormElement", "action"],
    ["url", "HTMLButtonElement HTMLInputElement", "formAction"],
    ["url", "HTMLObjectElement", "data codeBase"],
    ["url", "HTMLVideoElement", "poster"],
    ["url", "HTMLQuoteElement HTMLModElement", "cite"],
    ["url", "HTMLImageElement HTMLIFrameElement HTMLFrameElement", "longDesc"],
    ["url", "HTMLImageElement", "lowsrc"],
    ["url", "HTMLBodyElement", "background"],
    ["srcset", "HTMLImageElement HTMLSourceElement", "srcset"],
    ["srcset", "HTMLLinkElement", "imageSrcset"],
    ["list", "HTMLAnchorElement HTMLAreaElement", "ping"],
    ["srcdoc", "HTMLIFrameElement", "srcdoc"],
  ]; // prettier-ignore
  for (const [kind, owners, props] of PROPERTIES) {
    for (const owner of owners.split(" ")) {
      for (const prop of props.split(" ")) {
        const attribute = prop.toLowerCase();
        C.wrapAccessor(G[owner]?.prototype, prop, (value, el) => {
          const mapped = attributeValue(el, attribute, value);
          if (prop === "src" || prop === "href") credentials(el, mapped);
          return mapped;
        });
      }
    }
  }
  // SVG's href (and xlink:href) is an SVGAnimatedString, set through baseVal (or setAttribute).
  // className is one too; a class name is never an absolute URL, so it passes unchanged.
  C.wrapAccessor(G.SVGAnimatedString?.prototype, "baseVal", (value) => through(value, mapUrl));
  // CORS mode set after the URL: the same decision.
  for (const [owner, prop] of [["HTMLScriptElement", "crossOrigin"], ["HTMLScriptElement", "type"],
    ["HTMLLinkElement", "crossOrigin"], ["HTMLLinkElement", "rel"], ["HTMLImageElement", "crossOrigin"],
    ["HTMLMediaElement", "crossOrigin"]]) afterSet(G[owner]?.prototype, prop, (el) => credentials(el)); // prettier-ignore

  // a.hostname = "api.vendor.com" (the old way to build a URL): set on the vendor URL the link
  // stands for, then mapped as a whole.
  for (const owner of [G.HTMLAnchorElement, G.HTMLAreaElement]) {
    for (const part of ["protocol", "host", "hostname", "port"]) {
      const proto = owner?.prototype;
      const descriptor = proto && Object.getOwnPropertyDescriptor(proto, part);
      if (!descriptor?.set) continue;
      C.wrap(descriptor, "set", (set) =>
        function (value) {
          const current = this.href;
          const vendor = C.toOrigin(current);
          if (!current || vendor === current) return set.call(this, value);
          const url = new URL(vendor);
          url[part] = value;
          this.href = url.href; // the patched setter maps it
        },
      );
      Object.defineProperty(proto, part, descriptor);
    }
  }

  // --- Attributes -----------------------------------------------------------------------------

  const AFTER_ATTRIBUTE = new Set(["crossorigin", "type", "rel"]);
  C.wrap(elementProto, "setAttribute", (setAttribute) =>
    function (name, value) {
      const key = String(name).toLowerCase();
      const mapped = attributeValue(this, key, value);
      if (key === "src" || key === "href") credentials(this, mapped);
      const result = setAttribute.call(this, name, mapped);
      if (AFTER_ATTRIBUTE.has(key)) credentials(this);
      return result;
    },
  );
  C.wrap(elementProto, "setAttributeNS", (setAttributeNS) =>
    function (namespace, name, value) {
      const key = String(name).toLowerCase();
      const local = key.slice(key.indexOf(":") + 1);
      const mapped = attributeValue(this, Markup.ATTRIBUTES[key] ? key : local, value);
      return setAttributeNS.call(this, namespace, name, mapped);
    },
  );
  C.wrapAccessor(G.Attr?.prototype, "value", (value, attr) =>
    attributeValue(attr.ownerElement, String(attr.name).toLowerCase(), value),
  );

  // --- HTML sinks ------------------------------------------------------------------------------
  // innerHTML of an element whose content is not markup (raw text): CSS for <style>, as it is
  // for the rest (a <textarea>'s text is the patron's to see).
  C.wrapAccessor(elementProto, "innerHTML", (value, el) => {
    if (isStyle(el)) return css(value);
    return Markup.RAW_TEXT.has(el.localName) ? value : html(value);
  });
  C.wrapAccessor(G.ShadowRoot?.prototype, "innerHTML", html);
  C.wrapAccessor(elementProto, "outerHTML", html);
  const markupAt = (index) => (original) =>
    function (...args) {
      if (args.length > index) args[index] = html(args[index]);
      return original.apply(this, args);
    };
  C.wrap(elementProto, "insertAdjacentHTML", markupAt(1));
  C.wrap(elementProto, "setHTMLUnsafe", markupAt(0));
  C.wrap(G.ShadowRoot?.prototype, "setHTMLUnsafe", markupAt(0));
  C.wrap(G.Document, "parseHTMLUnsafe", markupAt(0));
  C.wrap(G.DOMParser?.prototype, "parseFromString", markupAt(0));
  C.wrap(G.Range?.prototype, "createContextualFragment", markupAt(0));
  // document.write("<img src='", url, "'>"): strings are joined first, so that a URL split
  // across arguments is still seen (a URL split across calls is not).
  const written = (original) =>
    function (...args) {
      if (args.length > 1 && args.every((a) => typeof a === "string")) args = [args.join("")];
      return original.apply(this, args.map(html));
    };
  C.wrap(G.Document.prototype, "write", written);
  C.wrap(G.Document.prototype, "writeln", written);

  // --- Styles ----------------------------------------------------------------------------------
  const markupCss = (index) => (original) =>
    function (...args) {
      if (args.length > index) args[index] = css(args[index]);
      return original.apply(this, args);
    };
  const declarations = G.CSSStyleDeclaration.prototype;
  C.wrapAccessor(declarations, "cssText", css);
  C.wrap(declarations, "setProperty", markupCss(1));
  // el.style.backgroundImage = "url(...)": CSS properties are not accessors of a prototype
  // but named properties of each declaration (Chromium's interceptors), so no prototype patch
  // sees them. A Proxy around every element's declaration would, but it makes each style write
  // four to five times slower in Chromium (measured: ~2 -> ~9 us), and animation code writes
  // styles every frame. So element styles are watched instead: a MutationObserver sees every
  // change of a style attribute and every element put into the document (or a shadow root),
  // and maps a url() in them before the next rendering, which is when the browser would load
  // the image. (A script that forces a style recalculation at once, reading offsetWidth right
  // after the write, starts that load first; the CSP net reports it.)
  const fixStyle = (el) => {
    const text = nativeGetAttribute.call(el, "style");
    if (!text?.includes("url(")) return;
    const mapped = Markup.rewriteCss(text, mapUrl);
    if (mapped !== text) nativeSetAttribute.call(el, "style", mapped);
  };
  const WITH_URL = '[style*="url("]';
  const watcher = new G.MutationObserver((records) => {
    for (const record of records) {
      if (record.type === "attributes") {
        fixStyle(record.target);
        continue;
      }
      for (const node of record.addedNodes) {
        if (node.nodeType !== Node.ELEMENT_NODE) continue;
        fixStyle(node);
        if (node.firstElementChild) for (const el of node.querySelectorAll(WITH_URL)) fixStyle(el);
      }
    }
  });
  const watch = (root) =>
    watcher.observe(root, { attributes: true, attributeFilter: ["style"], childList: true,
                            subtree: true }); // prettier-ignore
  watch(G.document);
  C.wrap(elementProto, "attachShadow", (original) =>
    function (...args) {
      const root = original.apply(this, args);
      watch(root);
      return root;
    },
  );
  // A rule's declaration (sheet.cssRules[0].style) is in no element: it is handed out behind
  // a Proxy that maps a value holding url() on its way in (rules are seldom written in hot
  // loops), one Proxy per declaration, so rule.style === rule.style still holds. The
  // prototype's methods take the Proxy for its declaration (their brand checks need the real
  // one, also for CSSStyleDeclaration.prototype.x.call(rule.style)).
  const declarationOf = new WeakMap(); // proxy -> declaration
  const proxyOf = new WeakMap(); // declaration -> proxy
  for (const name of Object.getOwnPropertyNames(declarations)) {
    if (name === "constructor") continue;
    const descriptor = Object.getOwnPropertyDescriptor(declarations, name);
    if (typeof descriptor.value !== "function") continue;
    C.wrap(declarations, name, (original) =>
      function (...args) {
        return original.apply(declarationOf.get(this) ?? this, args);
      },
    );
  }
  const traps = {
    get(target, key) {
      return target[key];
    },
    set(target, key, value) {
      target[key] = typeof value === "string" && value.includes("url(") ? css(value) : value;
      return true;
    },
  };
  const proxied = (declaration) => {
    if (!declaration || typeof declaration !== "object") return declaration;
    let proxy = proxyOf.get(declaration);
    if (!proxy) {
      proxy = new Proxy(declaration, traps);
      proxyOf.set(declaration, proxy);
      declarationOf.set(proxy, declaration);
    }
    return proxy;
  };
  for (const owner of [G.CSSStyleRule, G.CSSKeyframeRule, G.CSSPageRule, G.CSSFontFaceRule,
    G.CSSNestedDeclarations]) {
    C.wrapAccessor(owner?.prototype, "style", css, proxied);
  } // prettier-ignore
  // element.style = "..." forwards to cssText inside the browser, past the cssText patch.
  for (const owner of [G.HTMLElement, G.SVGElement, G.MathMLElement]) {
    C.wrapAccessor(owner?.prototype, "style", css);
  }
  for (const owner of [G.CSSStyleSheet, G.CSSGroupingRule]) {
    C.wrap(owner?.prototype, "insertRule", markupCss(0));
  }
  C.wrap(G.CSSStyleSheet?.prototype, "replace", markupCss(0));
  C.wrap(G.CSSStyleSheet?.prototype, "replaceSync", markupCss(0));
  C.wrap(G.CSSStyleSheet?.prototype, "addRule", markupCss(1));
  // <style> text set at run time: as text of the element, or as a text node put into it.
  const styleText = (node) =>
    isStyle(node) || (node?.nodeType === Node.TEXT_NODE && isStyle(node.parentNode));
  // (An attribute node's text is its value: attr.textContent = url, attr.nodeValue = url.)
  const nodeText = (value, node) => {
    if (node.nodeType === Node.ATTRIBUTE_NODE) {
      return attributeValue(node.ownerElement, String(node.name).toLowerCase(), value);
    }
    return styleText(node) ? css(value) : value;
  };
  C.wrapAccessor(G.Node.prototype, "textContent", nodeText);
  C.wrapAccessor(G.Node.prototype, "nodeValue", nodeText);
  C.wrapAccessor(G.CharacterData.prototype, "data", (value, node) =>
    styleText(node) ? css(value) : value,
  );
  C.wrapAccessor(G.HTMLElement.prototype, "innerText", (value, el) =>
    isStyle(el) ? css(value) : value,
  );
  const dataSetter = Object.getOwnPropertyDescriptor(G.CharacterData.prototype, "data").set;
  const mapTextNode = (child) => {
    if (child?.nodeType !== Node.TEXT_NODE) return;
    const mapped = css(child.data);
    if (mapped !== child.data) dataSetter.call(child, mapped);
  };
  for (const name of ["appendChild", "insertBefore", "replaceChild"]) {
    C.wrap(G.Node.prototype, name, (original) =>
      function (child, ...rest) {
        if (child?.nodeType === Node.TEXT_NODE && isStyle(this)) mapTextNode(child);
        return original.call(this, child, ...rest);
      },
    );
  }
  for (const name of ["append", "prepend"]) {
    C.wrap(elementProto, name, (original) =>
      function (...nodes) {
        if (isStyle(this)) {
          nodes = nodes.map((n) => (typeof n === "string" ? css(n) : (mapTextNode(n), n)));
        }
        return original.apply(this, nodes);
      },
    );
  }

  // --- document.domain -------------------------------------------------------------------------
  // document.domain = "vendor.com" throws on a proxied host (it is not under vendor.com), and
  // the exception would stop the vendor's script. Browsers now keep pages origin-keyed, where
  // the setter changes nothing: for the vendor's own domain, so does the companion.
  const domain = Object.getOwnPropertyDescriptor(G.Document.prototype, "domain");
  const vendorHost = C.map.originOf(G.location.host)?.host;
  if (domain?.set && vendorHost) {
    C.wrap(domain, "set", (set) =>
      function (value) {
        const name = String(value).toLowerCase();
        if (vendorHost === name || vendorHost.endsWith(`.${name}`)) return;
        return set.call(this, value);
      },
    );
    Object.defineProperty(G.Document.prototype, "domain", domain);
  }

  // --- document.cookie -------------------------------------------------------------------------
  // A proxied host's cookies in the browser are not the vendor's: in the default cookie modes
  // the gateway keeps the vendor's cookies in the session's jar and sends the vendor only
  // those, as a browser would by domain and path. So a cookie a script writes is sent to the
  // gateway (/__carrel/cookie on the page's own host: same-origin, with the session cookie and a
  // header no cross-origin page can send without a preflight the gateway never grants), which
  // puts it in the jar as if the vendor host had sent it: a Domain=.vendor.com cookie reaches
  // every vendor.com host through the gateway and no other database's. A host-only copy stays
  // in the browser, so that reading document.cookie sees it. The request is synchronous: the
  // next request the script makes (often at once) must carry the cookie, as in a browser.
  const cookie = Object.getOwnPropertyDescriptor(G.Document.prototype, "cookie");
  const insecure = G.location.protocol === "http:";
  const lastSent = new Map();
  const localCopy = (text) =>
    text
      .split(";")
      .filter((part, i) => {
        if (i === 0) return true;
        const [name, value = ""] = part.split("=").map((s) => s.trim().toLowerCase());
        // Over plain http (a test set-up) the browser refuses Secure, and SameSite=None without it.
        const unsafe = name === "secure" || (name === "samesite" && value === "none");
        return name !== "domain" && !(insecure && unsafe);
      })
      .join(";");
  const sendCookie = (text) => {
    const xhr = new NativeXHR();
    const body = JSON.stringify({ cookie: text, path: G.location.pathname });
    try {
      xhr.open("POST", COOKIE_URL, false);
      xhr.setRequestHeader("Content-Type", "application/json");
      xhr.setRequestHeader("X-Carrel-Cookie", "1");
      xhr.send(body);
    } catch {
      // No synchronous requests here (a page being unloaded, a Permissions-Policy): later.
      nativeFetch?.call(G, COOKIE_URL, { method: "POST", keepalive: true, body,
        headers: { "Content-Type": "application/json", "X-Carrel-Cookie": "1" } }); // prettier-ignore
    }
  };
  if (cookie?.set && C.map.originOf(G.location.host) !== null) {
    C.wrap(cookie, "set", (set) =>
      function (value) {
        const text = String(value);
        const name = text.split(";")[0].split("=")[0].trim();
        if (this === G.document && !/;\s*httponly\s*(;|$)/i.test(text) && lastSent.get(name) !== text) {
          if (lastSent.size > 500) lastSent.clear();
          lastSent.set(name, text);
          sendCookie(text);
        }
        // The gateway's own cookies are not the page's to shadow (nor are they the vendor's:
        // the gateway refuses them too).
        if (/^(__host-|__secure-)?carrel_/i.test(name)) return;
        set.call(this, localCopy(text));
      },
    ); // prettier-ignore
    Object.defineProperty(G.Document.prototype, "cookie", cookie);

    // The Cookie Store API: the same, its promise settling once the gateway has the cookie.
    const asText = ({ name = "", value = "", domain, path, expires, sameSite }) =>
      [`${name}=${value}`, domain && `Domain=${domain}`, path && `Path=${path}`,
       expires != null && `Expires=${new Date(expires).toUTCString()}`,
       sameSite && `SameSite=${sameSite}`].filter(Boolean).join("; "); // prettier-ignore
    const options = (args, forDelete) => {
      const [first, second] = args;
      if (first && typeof first === "object") return { ...first };
      return forDelete ? { name: String(first) } : { name: String(first), value: String(second) };
    };
    const posted = (text) =>
      nativeFetch.call(G, COOKIE_URL, { method: "POST", body: JSON.stringify({ cookie: text,
        path: G.location.pathname }), headers: { "Content-Type": "application/json",
        "X-Carrel-Cookie": "1" } }).catch(() => undefined); // prettier-ignore
    for (const [name, forDelete] of [["set", false], ["delete", true]]) {
      C.wrap(G.CookieStore?.prototype, name, (original) =>
        async function (...args) {
          const given = options(args, forDelete);
          const text = asText(forDelete ? { ...given, value: "", expires: 0 } : given);
          await posted(text);
          delete given.domain; // the browser copy is the proxied host's alone
          return original.call(this, given);
        },
      );
    }
  }
}

const HTML_NS = "http://www.w3.org/1999/xhtml";
const SVG_NS = "http://www.w3.org/2000/svg";

// Trusted Types: a value a page passes as TrustedHTML or TrustedScriptURL goes on typed as it
// came, through the companion's own policy, C.policy (net.js uses it too). Created now, before
// the page's <meta> CSP (which comes later in <head>) can restrict policy names; the gateway
// adds "carrel" to the trusted-types directive of CSP headers. The policy is an identity: the
// page's own policy has vetted the value, and mapping only moves vendor hosts onto the proxy.
// Where a URL only names a place the patron may go (or a description), not something the page
// loads: an uncovered host there is no escape.
const NAVIGATIONS = new Set(["a href", "area href", "base href", "form action",
  "button formaction", "input formaction", "a xlink:href"]); // prettier-ignore
const NOT_FETCHED = new Set(["cite", "longdesc", "profile", "usemap"]);

function carrelPolicy(types) {
  try {
    return types?.createPolicy("carrel", { createHTML: (s) => s, createScriptURL: (s) => s }) ?? null;
  } catch {
    return null; // a policy list that leaves no room for it: trusted values go on unmapped
  }
}
C.policy = carrelPolicy(globalThis.trustedTypes);
patchDom(globalThis, C.policy);

// Same-origin frames the gateway did not serve get the same (see C.adopt in core.js).
C.realmPatches.push((win) => patchDom(win, carrelPolicy(win.trustedTypes)));
