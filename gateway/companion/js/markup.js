// Carrel companion: the URL positions of HTML and CSS text, pure (no DOM, no globals).
//
// The DOM part (dom.js) runs markup a vendor script hands to an HTML sink (innerHTML,
// document.write, srcdoc, DOMParser, ...) and CSS it hands to a style sink through these, with
// ``mapUrl`` mapping one URL (returning it unchanged when it does not map). A small scanner of
// the HTML tokenizer's tag and attribute syntax, not a parser: it never builds or
// re-serialises a tree, so markup a sink gets in pieces (document.write("<scr" + "ipt ..."))
// and everything it does not touch stay byte for byte as they were. node's test runner covers
// it (tests/js/markup.test.js).

const Markup = (() => {
  // Attribute name -> what its value holds. The URL ones are the server-side rewriter's
  // (gateway/rewrite/body.py URL_ATTRIBUTES); ping is a space-separated list of URLs.
  const ATTRIBUTES = Object.assign(Object.create(null), {
    srcset: "srcset",
    imagesrcset: "srcset",
    ping: "list",
    style: "css",
    srcdoc: "html",
  });
  for (const name of [
    "href", "src", "action", "formaction", "poster", "data", "background", "cite", "longdesc",
    "manifest", "icon", "codebase", "usemap", "profile", "xlink:href", "lowsrc", "dynsrc",
    "content-src",
  ]) ATTRIBUTES[name] = "url";

  // Elements whose content the tokenizer does not read as markup (raw text and RCDATA).
  const RAW_TEXT = new Set([
    "script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript",
  ]);
  // Every absolute or scheme-relative URL has two slashes (or backslashes, which URL parsing
  // reads as slashes) in a row: text without them holds nothing to map.
  const CLOSING = {};
  const MAYBE_URL = /[/\\]{2}/;
  const SPACE = /[\t\n\f\r ]/;
  const TAG_NAME = /[^\t\n\f\r />]*/y;
  // One attribute (or the tag's end), with what comes before it: group 1 the end, 2 the name,
  // 3-5 the value in double, single or no quotes.
  const ATTRIBUTE =
    /[\t\n\f\r /]*(?:(>)|(=?[^\t\n\f\r />=]*)(?:[\t\n\f\r ]*=[\t\n\f\r ]*(?:"([^"]*)"|'([^']*)'|([^\t\n\f\r >]*)))?)/y;
  const ENTITY = /&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|(amp|quot|apos|lt|gt|nbsp));/g;
  const NAMED = { amp: "&", quot: '"', apos: "'", lt: "<", gt: ">", nbsp: "\u00a0" };
  const CSS_URL =
    /(\burl\(\s*)(?:"([^"]*)"|'([^']*)'|([^"'()\s]+))|(@import\s+)(?:"([^"]*)"|'([^']*)')/gi;

  function decode(text) {
    if (!text.includes("&")) return text;
    return text.replace(ENTITY, (whole, dec, hex, name) => {
      if (name) return NAMED[name];
      const code = dec ? Number(dec) : parseInt(hex, 16);
      return code > 0 && code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    });
  }

  function encode(text) {
    return text.replaceAll("&", "&amp;").replaceAll('"', "&quot;");
  }

  /** ``text`` (CSS: a style sheet, a declaration block or one value) with the URLs of its
   * url() and @import positions mapped. */
  function rewriteCss(text, mapUrl) {
    if (!MAYBE_URL.test(text)) return text;
    return text.replace(CSS_URL, (whole, open, dq, sq, bare, imp, idq, isq) => {
      if (open !== undefined) {
        if (dq !== undefined) return `${open}"${mapUrl(dq)}"`;
        if (sq !== undefined) return `${open}'${mapUrl(sq)}'`;
        return open + mapUrl(bare);
      }
      return idq !== undefined ? `${imp}"${mapUrl(idq)}"` : `${imp}'${mapUrl(isq)}'`;
    });
  }

  /** A srcset value (image candidates: a URL, then descriptors, comma-separated) with its
   * URLs mapped; separators and descriptors kept as they are. */
  function rewriteSrcset(text, mapUrl) {
    if (!MAYBE_URL.test(text)) return text;
    let out = "";
    let i = 0;
    const n = text.length;
    while (i < n) {
      let j = i;
      while (j < n && (SPACE.test(text[j]) || text[j] === ",")) j++;
      out += text.slice(i, j);
      if (j >= n) break;
      i = j;
      while (j < n && !SPACE.test(text[j])) j++;
      let url = text.slice(i, j);
      const commas = /,+$/.exec(url);
      const tail = commas ? commas[0] : "";
      if (commas) url = url.slice(0, commas.index);
      out += mapUrl(url) + tail;
      i = j;
      if (tail) continue; // the candidate ended with its URL
      for (let depth = 0; j < n; j++) {
        const c = text[j];
        if (c === "(") depth++;
        else if (c === ")") depth--;
        else if (c === "," && depth <= 0) break;
      }
      out += text.slice(i, j);
      i = j;
    }
    return out;
  }

  function rewriteList(text, mapUrl) {
    return text.replace(/[^\t\n\f\r ]+/g, (url) => mapUrl(url));
  }

  /** One attribute value as it is written in markup (entities and all), given ``kind``. */
  function rewriteValue(kind, value, mapUrl) {
    switch (kind) {
      case "url": {
        const mapped = mapUrl(value.trim());
        return mapped === value.trim() ? value : mapped;
      }
      case "srcset":
        return rewriteSrcset(value, mapUrl);
      case "list":
        return rewriteList(value, mapUrl);
      case "css":
        return rewriteCss(value, mapUrl);
      case "html":
        return rewriteHtml(value, mapUrl);
      default:
        return value;
    }
  }

  /** The value of an attribute named ``name`` (lower case) after mapping, or null when it
   * does not hold URLs or nothing in it maps. For setAttribute, whose values are not markup. */
  function attribute(name, value, mapUrl) {
    const kind = ATTRIBUTES[name];
    if (kind === undefined || !MAYBE_URL.test(value)) return null;
    const mapped = rewriteValue(kind, value, mapUrl);
    return mapped === value ? null : mapped;
  }

  /** HTML text (a fragment, a document or a piece of either) with the URLs in its attributes
   * (by the table above), srcset lists, style attributes, <style> text and srcdoc documents
   * mapped. A tag cut off at the end of the text is left as it is. ``mapUrl(url, tag,
   * attribute)`` learns where an attribute's URL stands (lower-case names; none for CSS). */
  function rewriteHtml(html, mapUrl) {
    if (!MAYBE_URL.test(html)) return html;
    const parts = [];
    let done = 0; // html[0:done] is in parts
    let i = 0;
    const n = html.length;
    while (i < n) {
      const lt = html.indexOf("<", i);
      if (lt < 0 || lt + 1 >= n) break;
      const next = html[lt + 1];
      if (html.startsWith("<!--", lt)) {
        const end = html.indexOf("-->", lt + 4);
        if (end < 0) break;
        i = end + 3;
        continue;
      }
      if (next === "!" || next === "?" || next === "/") {
        const end = html.indexOf(">", lt + 2);
        if (end < 0) break;
        i = end + 1;
        continue;
      }
      if (!/[A-Za-z]/.test(next)) {
        i = lt + 1;
        continue;
      }
      TAG_NAME.lastIndex = lt + 1;
      let j = lt + 1 + TAG_NAME.exec(html)[0].length;
      const tag = html.slice(lt + 1, j).toLowerCase();
      // Attributes, as the tokenizer reads them (a value whose quote never closes: cut off).
      let closed = false;
      for (;;) {
        ATTRIBUTE.lastIndex = j;
        const found = ATTRIBUTE.exec(html);
        if (!found || found[0].length === 0) break;
        j += found[0].length;
        if (found[1]) {
          closed = true;
          break;
        }
        const [, , name, dq, sq, bare] = found;
        const raw = dq ?? sq ?? bare;
        if (raw === undefined) continue;
        if (bare !== undefined && (bare[0] === '"' || bare[0] === "'")) break;
        const lower = name.toLowerCase();
        const kind = ATTRIBUTES[lower];
        if (kind === undefined || !MAYBE_URL.test(raw)) continue;
        const value = decode(raw);
        const mapped = rewriteValue(kind, value, (url) => mapUrl(url, tag, lower));
        if (mapped === value) continue;
        const quoted = bare === undefined ? 1 : 0;
        const start = j - raw.length - quoted * 2;
        parts.push(html.slice(done, start), `"${encode(mapped)}"`);
        done = j;
      }
      if (!closed) break;
      i = j;
      if (RAW_TEXT.has(tag)) {
        const closing = (CLOSING[tag] ??= new RegExp(`</${tag}`, "gi"));
        closing.lastIndex = j;
        const close = closing.exec(html);
        const end = close ? close.index : n;
        if (tag === "style") {
          const css = html.slice(j, end);
          const mapped = rewriteCss(css, mapUrl);
          if (mapped !== css) {
            parts.push(html.slice(done, j), mapped);
            done = end;
          }
        }
        i = end;
      }
    }
    if (!parts.length) return html;
    parts.push(html.slice(done));
    return parts.join("");
  }

  // An absolute URL's origin anywhere in script text, as the server-side rewriter finds an HJ
  // host's literal URLs in a script (``\b``: not the tail of ``news://``).
  const SCRIPT_ORIGIN = /\b(?:https?|wss?):\/\/[A-Za-z0-9_.-]+(?::[0-9]{1,5})?(?![A-Za-z0-9_.:-])/g;

  /** Script text with the origin of every absolute URL in it mapped by ``mapOrigin`` (for
   * scripts no server serves: a blob: or data: worker's source). */
  function rewriteScript(text, mapOrigin) {
    if (!MAYBE_URL.test(text)) return text;
    return text.replace(SCRIPT_ORIGIN, (origin) => mapOrigin(origin));
  }

  return {
    ATTRIBUTES, RAW_TEXT, MAYBE_URL, attribute, rewrite: rewriteValue, rewriteCss, rewriteHtml,
    rewriteSrcset, rewriteScript,
  };
})();

if (typeof module === "object" && module) module.exports = Markup;
