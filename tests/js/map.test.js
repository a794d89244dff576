// The companion's mapping (gateway/companion/js/map.js) against vectors the Python side worked
// out (tests/companion_vectors.py); run by tests/test_companion_vectors.py with node --test.
"use strict";
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const { makeMapper } = require(path.join(__dirname, "../../gateway/companion/js/map.js"));

const cases = JSON.parse(fs.readFileSync(process.env.CARREL_VECTORS, "utf8"));

for (const { scope, urls, names } of cases) {
  const mapper = makeMapper(scope);
  const where = `${scope.scheme}://*.${scope.domain}${scope.port}`;

  test(`URLs map as hostmap.py maps them, behind ${where}`, () => {
    for (const [url, expected] of urls) {
      const want = expected === null ? url : new URL(expected).href;
      assert.equal(mapper.toProxy(url), want, url);
    }
  });

  test(`proxied URLs map back to the vendor's, behind ${where}`, () => {
    for (const [url, expected] of urls) {
      if (expected === null) continue;
      const back = new URL(mapper.toOrigin(expected));
      const original = new URL(url);
      assert.equal(back.hostname, original.hostname.toLowerCase().replace(/\.$/, ""), url);
      assert.equal(back.protocol, original.protocol, url);
    }
  });

  test(`proxied host names decode as hostmap.py decodes them, behind ${where}`, () => {
    for (const [name, expected] of names) {
      const origin = mapper.originOf(name);
      const got = origin && `${origin.scheme}://${origin.host}${origin.port === { http: 80, https: 443 }[origin.scheme] ? "" : `:${origin.port}`}`;
      assert.equal(got, expected, name);
    }
  });
}

test("anything but an absolute http(s) or ws(s) URL is left as it is", () => {
  const mapper = makeMapper(cases[0].scope);
  for (const url of ["/relative", "data:text/plain,x", "blob:https://x/y", "mailto:a@b", "", "javascript:void(0)"]) {
    assert.equal(mapper.toProxy(url), url);
  }
});
