// The companion's HTML and CSS URL rewriter (gateway/companion/js/markup.js), with the real
// mapping (map.js); run by tests/test_companion_vectors.py with node --test.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");
const { makeMapper } = require(path.join(__dirname, "../../gateway/companion/js/map.js"));
const Markup = require(path.join(__dirname, "../../gateway/companion/js/markup.js"));

const mapper = makeMapper({
  domain: "proxy.test", scheme: "https", port: "", login: "login.proxy.test",
  hosts: ["https://cdn.vendor.test", "https://www.vendor.test"], domains: [], never: [], edits: [],
});
const PAGE = "https://www-vendor-test.proxy.test/page";
// As dom.js maps: resolved against the (proxied) page, absolute vendor URLs only.
const map = (url) => {
  try {
    const resolved = new URL(url, PAGE);
    const out = mapper.toProxy(resolved);
    return out === resolved.href ? url : out;
  } catch {
    return url;
  }
};
const CDN = "https://cdn-vendor-test.proxy.test";

test("URL attributes in markup map, whatever their quotes", () => {
  const cases = [
    ['<img src="https://cdn.vendor.test/a.png">', `<img src="${CDN}/a.png">`],
    ["<img src='https://cdn.vendor.test/a.png' alt=x>", `<img src="${CDN}/a.png" alt=x>`],
    ["<img src=https://cdn.vendor.test/a.png alt=x>", `<img src="${CDN}/a.png" alt=x>`],
    ['<A HREF = "//cdn.vendor.test/x?a=1&amp;b=2">', `<A HREF = "${CDN}/x?a=1&amp;b=2">`],
    ['<form action="https://www.vendor.test/search" method=post>',
     '<form action="https://www-vendor-test.proxy.test/search" method=post>'],
    ['<object data="https://cdn.vendor.test/o.svg"></object>',
     `<object data="${CDN}/o.svg"></object>`],
    ['<svg><image xlink:href="https://cdn.vendor.test/i.png"/></svg>',
     `<svg><image xlink:href="${CDN}/i.png"/></svg>`],
    ['<video poster="https://cdn.vendor.test/p.jpg" src="https://cdn.vendor.test/v.mp4">',
     `<video poster="${CDN}/p.jpg" src="${CDN}/v.mp4">`],
    ['<a ping="https://cdn.vendor.test/p1 https://elsewhere.test/p2">',
     `<a ping="${CDN}/p1 https://elsewhere.test/p2">`],
  ];
  for (const [html, want] of cases) assert.equal(Markup.rewriteHtml(html, map), want, html);
});

test("what is not a covered absolute URL in a URL position stays byte for byte", () => {
  for (const html of [
    '<img src="/relative.png"><a href="https://elsewhere.test/x">x</a>',
    '<p title="https://cdn.vendor.test/x">https://cdn.vendor.test/in-text</p>',
    '<!-- <img src="https://cdn.vendor.test/commented"> -->',
    '<script>var s = "<img src=\\"https://cdn.vendor.test/in-script\\">";</script>',
    '<textarea><img src="https://cdn.vendor.test/t"></textarea>',
    '<img data-src="https://cdn.vendor.test/lazy">',
    "plain text, no markup at all",
    '<img src="https://cdn.vendor.test/cut',
    "<div",
  ]) {
    assert.equal(Markup.rewriteHtml(html, map), html, html);
  }
});

test("srcset lists map every candidate and keep their descriptors", () => {
  const html =
    '<img srcset="https://cdn.vendor.test/a.png 1x,https://cdn.vendor.test/b,c.png 2x, /local.png 3x">';
  assert.equal(
    Markup.rewriteHtml(html, map),
    `<img srcset="${CDN}/a.png 1x,${CDN}/b,c.png 2x, /local.png 3x">`,
  );
  assert.equal(
    Markup.rewriteSrcset("https://cdn.vendor.test/a.png 1x,https://cdn.vendor.test/b.png 2x", map),
    `${CDN}/a.png 1x,${CDN}/b.png 2x`,
  );
  // As browsers read it: a comma inside a URL (no space after it) belongs to the URL.
  assert.equal(
    Markup.rewriteSrcset("https://cdn.vendor.test/a.png,https://cdn.vendor.test/b.png 2x", map),
    `${CDN}/a.png,https://cdn.vendor.test/b.png 2x`,
  );
  assert.equal(
    Markup.rewriteSrcset("https://cdn.vendor.test/w.png 100w (min-width: 2px)", map),
    `${CDN}/w.png 100w (min-width: 2px)`,
  );
});

test("CSS url() and @import positions map, in sheets, style attributes and <style>", () => {
  assert.equal(
    Markup.rewriteCss(
      "a{background:url(https://cdn.vendor.test/a.png)} b{x:URL( 'https://cdn.vendor.test/b' )}" +
        ' @import "https://cdn.vendor.test/c.css"; d{e:url(/rel.png) url("https://elsewhere.test/")}',
      map,
    ),
    `a{background:url(${CDN}/a.png)} b{x:URL( '${CDN}/b' )} @import "${CDN}/c.css";` +
      ' d{e:url(/rel.png) url("https://elsewhere.test/")}',
  );
  assert.equal(
    Markup.rewriteHtml(
      '<div style="background: url(&quot;https://cdn.vendor.test/s.png&quot;)">' +
        "<style>p { background: url(https://cdn.vendor.test/p.png) }</STYLE>",
      map,
    ),
    `<div style="background: url(&quot;${CDN}/s.png&quot;)">` +
      `<style>p { background: url(${CDN}/p.png) }</STYLE>`,
  );
});

test("srcdoc documents are markup inside an attribute: mapped, then escaped again", () => {
  const html = '<iframe srcdoc="<img src=&quot;https://cdn.vendor.test/in.png&quot;>"></iframe>';
  assert.equal(
    Markup.rewriteHtml(html, map),
    `<iframe srcdoc="<img src=&quot;${CDN}/in.png&quot;>"></iframe>`,
  );
});

test("setAttribute values: mapped by the attribute's kind, null when nothing maps", () => {
  assert.equal(Markup.attribute("src", "https://cdn.vendor.test/x.js", map), `${CDN}/x.js`);
  assert.equal(Markup.attribute("style", "background:url(//cdn.vendor.test/y)", map),
    `background:url(${CDN}/y)`);
  assert.equal(Markup.attribute("src", "/relative.js", map), null);
  assert.equal(Markup.attribute("title", "https://cdn.vendor.test/x", map), null);
  assert.equal(Markup.attribute("href", "https://elsewhere.test/", map), null);
});

test("a large page with nothing to map costs one scan", () => {
  const big = "<div class=x><p>text</p></div>".repeat(20000) + '<img src="//cdn.vendor.test/z">';
  const started = performance.now();
  const out = Markup.rewriteHtml(big, map);
  assert.ok(out.endsWith(`<img src="${CDN}/z">`));
  assert.ok(performance.now() - started < 3000); // linear: a quadratic scan takes minutes
});

test("mapUrl learns the tag and attribute a URL stands in (none for CSS)", () => {
  const seen = [];
  const spy = (url, tag, attribute) => {
    seen.push([tag, attribute]);
    return map(url);
  };
  Markup.rewriteHtml(
    '<A HREF="https://cdn.vendor.test/a"><img srcset="https://cdn.vendor.test/b 2x">' +
      "<style>p{background:url(https://cdn.vendor.test/c)}</style>",
    spy,
  );
  assert.deepEqual(seen, [["a", "href"], ["img", "srcset"], [undefined, undefined]]);
});

test("a script's absolute URLs have their covered origins mapped, and nothing else changes", () => {
  const mapOrigin = (origin) => {
    const out = mapper.toProxy(`${origin}/`);
    return out === `${origin}/` ? origin : out.slice(0, -1);
  };
  const source = [
    'await import("https://cdn.vendor.test/pdfjs/pdf.worker.mjs");',
    "fetch('https://www.vendor.test:443/api?q=1'); // https://elsewhere.test/x",
    "const feed = 'news://cdn.vendor.test/'; const ws = `wss://cdn.vendor.test/live`;",
  ].join("\n");
  assert.equal(Markup.rewriteScript(source, mapOrigin), [
    'await import("https://cdn-vendor-test.proxy.test/pdfjs/pdf.worker.mjs");',
    "fetch('https://www-vendor-test.proxy.test/api?q=1'); // https://elsewhere.test/x",
    "const feed = 'news://cdn.vendor.test/'; const ws = `wss://cdn-vendor-test.proxy.test/live`;",
  ].join("\n"));
  assert.equal(Markup.rewriteScript("no urls here", mapOrigin), "no urls here");
});
