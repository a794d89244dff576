// Carrel companion, part 1 of the bundle: the URL mapping, pure.
//
// The same answers as gateway/hostmap.py (the host-name scheme) and RuleSet.lookup (which
// origins the rules cover), from the scope the gateway serves. node's test runner checks the two
// agree on vectors the Python side generates (tests/js/map.test.js).

const DEFAULT_PORTS = { http: 80, https: 443 };
const SOCKET_SCHEMES = { ws: "http", wss: "https" };
const HOST_LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;
const PROXY_LABEL = /^(?!-)[a-z0-9_-]+(?<!-)$/;
const MARKER = /(?<!-)---(?!-)/;
const MARKER_SUFFIX = /^(?:(http)(?:-([1-9][0-9]{0,4}))?|([1-9][0-9]{0,4}))$/;

function validHost(host) {
  const labels = host.split(".");
  return labels.length >= 2 && labels.every((label) => HOST_LABEL.test(label));
}

function encodeHost(host) {
  return host.replaceAll("-", "--").replaceAll(".", "-");
}

function decodeHost(text) {
  let failed = false;
  const out = text.replace(/-+/g, (run) => {
    if (run.length === 1) return ".";
    if (run.length % 2 === 0) return "-".repeat(run.length / 2);
    failed = true;
    return run;
  });
  return failed ? null : out;
}

function editSpan([find, , ], host) {
  const text = find.replace(/^\^/, "").replace(/\$$/, "").toLowerCase();
  if (!text) return null;
  let start;
  if (find.startsWith("^")) start = host.startsWith(text) ? 0 : -1;
  else if (find.endsWith("$")) start = host.endsWith(text) ? host.length - text.length : -1;
  else start = host.indexOf(text);
  if (start < 0 || (find.endsWith("$") && start + text.length !== host.length)) return null;
  return [start, start + text.length];
}

function encodeLabel(scheme, host, port, edits) {
  let label = encodeHost(host);
  for (const edit of edits) {
    const span = editSpan(edit, host);
    if (span) {
      label = encodeHost(host.slice(0, span[0])) + edit[1] + encodeHost(host.slice(span[1]));
      break;
    }
  }
  const defaultPort = DEFAULT_PORTS[scheme] === port;
  if (scheme === "https") return defaultPort ? label : `${label}---${port}`;
  return defaultPort ? `${label}---http` : `${label}---http-${port}`;
}

function decodeLabel(label, edits) {
  if (!PROXY_LABEL.test(label)) return null;
  let text = label;
  let scheme = "https";
  let port = null;
  const marker = MARKER.exec(label);
  if (marker) {
    text = label.slice(0, marker.index);
    const suffix = MARKER_SUFFIX.exec(label.slice(marker.index + 3));
    if (!suffix) return null;
    if (suffix[1]) {
      scheme = "http";
      port = suffix[2] ? Number(suffix[2]) : null;
    } else {
      port = Number(suffix[3]);
    }
  }
  const candidates = []; // the edited readings first, as in hostmap.py
  for (const [find, replace] of edits) {
    if (!replace) continue;
    const literal = find.replace(/^\^/, "").replace(/\$$/, "").toLowerCase();
    for (let at = text.indexOf(replace); at >= 0; at = text.indexOf(replace, at + 1)) {
      const before = decodeHost(text.slice(0, at));
      const after = decodeHost(text.slice(at + replace.length));
      if (before !== null && after !== null) candidates.push(before + literal + after);
    }
  }
  const plain = decodeHost(text);
  if (plain !== null) candidates.push(plain);
  for (const host of candidates) {
    if (!validHost(host) || (port !== null && port > 65535)) continue;
    const fullPort = port ?? DEFAULT_PORTS[scheme];
    if (encodeLabel(scheme, host, fullPort, edits) === label) return { scheme, host, port: fullPort };
  }
  return null;
}

function originKey(scheme, host, port) {
  return `${scheme}://${host}:${port}`;
}

/** One regular expression for every ``*`` pattern (one test per host, not one per pattern:
 * the published stanzas have dozens). */
function globsPattern(globs) {
  const escape = (part) => part.replace(/[.+?^${}()|[\]\\]/g, "\\$&");
  const each = globs.map((glob) => glob.split("*").map(escape).join(".*"));
  return each.length ? new RegExp(`^(?:${each.join("|")})$`) : null;
}

/** The mapper for one scope (the JSON the gateway serves as scope-<version>.js). */
function makeMapper(scope) {
  const edits = scope.edits || [];
  const hosts = new Set();
  for (const text of scope.hosts || []) {
    const url = new URL(text);
    const scheme = url.protocol.slice(0, -1);
    hosts.add(originKey(scheme, url.hostname, Number(url.port) || DEFAULT_PORTS[scheme]));
  }
  const domains = new Set(scope.domains || []);
  const never = scope.never || [];
  const neverExact = new Set(never.filter((pattern) => !pattern.includes("*")));
  const neverWild = globsPattern(never.filter((pattern) => pattern.includes("*")));
  const suffix = `.${scope.domain}`;
  const proxyPort = scope.port || "";

  function neverProxied(host) {
    return neverExact.has(host) || (neverWild !== null && neverWild.test(host));
  }

  function byDomain(host) {
    for (let name = host; ; ) {
      if (domains.has(name)) return true;
      const dot = name.indexOf(".");
      if (dot < 0) return false;
      name = name.slice(dot + 1);
      if (!name.includes(".")) return false;
    }
  }

  /** Whether the rules proxy scheme://host:port (NeverProxy wins over every rule). */
  function covered(scheme, host, port) {
    if (!(scheme in DEFAULT_PORTS) || !validHost(host) || neverProxied(host)) return false;
    if (hosts.has(originKey(scheme, host, port))) return true;
    return DEFAULT_PORTS[scheme] === port && byDomain(host);
  }

  function parse(url) {
    let parsed;
    try {
      parsed = url instanceof URL ? url : new URL(String(url));
    } catch {
      return null;
    }
    const scheme = parsed.protocol.slice(0, -1);
    const web = SOCKET_SCHEMES[scheme] || scheme;
    if (!(web in DEFAULT_PORTS) || !parsed.hostname) return null;
    const host = parsed.hostname.toLowerCase().replace(/\.$/, "");
    return { parsed, scheme, web, host, port: Number(parsed.port) || DEFAULT_PORTS[web] };
  }

  /** ``scheme://proxied-host[:port]`` for a covered origin, else null. */
  function proxiedOrigin(scheme, host, port) {
    if (!covered(scheme, host, port)) return null;
    return `${scope.scheme}://${encodeLabel(scheme, host, port, edits)}${suffix}${proxyPort}`;
  }

  /** The vendor origin behind a proxied host name (``host[:port]``), or null. */
  function originOf(hostPort) {
    const name = hostPort.toLowerCase();
    const colon = name.lastIndexOf(":");
    const [host, port] = colon >= 0 ? [name.slice(0, colon), name.slice(colon)] : [name, ""];
    if (port !== proxyPort || !host.endsWith(suffix)) return null;
    const label = host.slice(0, -suffix.length);
    return label.includes(".") ? null : decodeLabel(label, edits);
  }

  /** ``url`` (absolute http(s) or ws(s)) in its proxied form; anything else unchanged. */
  function toProxy(url) {
    const found = parse(url);
    if (!found) return String(url);
    const { parsed, scheme, web, host, port } = found;
    const origin = proxiedOrigin(web, host, port);
    if (origin === null) return String(url);
    const out = new URL(origin + parsed.pathname + parsed.search + parsed.hash);
    if (scheme !== web) out.protocol = scope.scheme === "https" ? "wss:" : "ws:";
    out.username = parsed.username;
    out.password = parsed.password;
    return out.href;
  }

  /** The vendor URL a proxied ``url`` stands for; anything else unchanged. */
  function toOrigin(url) {
    const found = parse(url);
    if (!found) return String(url);
    const origin = originOf(found.parsed.host);
    if (origin === null) return String(url);
    const { parsed } = found;
    const scheme = found.scheme === found.web ? origin.scheme : origin.scheme.replace("http", "ws");
    const port = origin.port === DEFAULT_PORTS[origin.scheme] ? "" : `:${origin.port}`;
    return `${scheme}://${origin.host}${port}${parsed.pathname}${parsed.search}${parsed.hash}`;
  }

  /** Whether ``host`` is one of the gateway's own names (the login host or a proxied host). */
  function ours(host) {
    return host === scope.domain || host.endsWith(suffix);
  }

  return { covered, proxiedOrigin, originOf, toProxy, toOrigin, ours, parse };
}

if (typeof module === "object" && module) module.exports = { makeMapper };
