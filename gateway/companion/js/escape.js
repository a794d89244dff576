// Carrel companion, last part: tell the gateway which hosts this page reached outside the rules.
//
// Hosts only (C.noteEscaped keeps no path, no query), sent to /__carrel/escaped on the page's
// own proxied host: same-origin, so the request carries that host's session cookie, and the
// gateway counts each host for the database whose rules serve the page. Librarians see the
// counts in the console's "Escaped hosts" list and add a host with one button.
//
// Sent a moment after the first new host (a page reaches its hosts in bursts), and when the
// page is hidden or left. Works in pages and workers (no sendBeacon in workers: a keepalive
// fetch instead).

const ESCAPE_PATH = "/__carrel/escaped";
const ESCAPE_BATCH = 20; // the gateway reads at most 20 hosts from one beacon
const ESCAPE_MAX = 200; // hosts one document reports, at most
const ESCAPE_DELAY_MS = 2000;

const escapeState = { sent: new Set(), timer: 0 };

function escapeEndpoint() {
  const here = globalThis.location;
  if (!here || (here.protocol !== "https:" && here.protocol !== "http:")) return null;
  return here.origin + ESCAPE_PATH;
}

function sendEscaped(endpoint, body) {
  const beacon = globalThis.navigator?.sendBeacon;
  if (typeof beacon === "function" && beacon.call(globalThis.navigator, endpoint, body)) return;
  if (typeof globalThis.fetch === "function") {
    globalThis
      .fetch(endpoint, { method: "POST", body, keepalive: true, credentials: "same-origin" })
      .catch(() => {});
  }
}

function flushEscaped() {
  clearTimeout(escapeState.timer);
  escapeState.timer = 0;
  const endpoint = escapeEndpoint();
  if (!endpoint) return; // about:blank, srcdoc, data: documents have no host of their own
  const pending = [...C.escaped].filter((host) => !escapeState.sent.has(host));
  while (pending.length && escapeState.sent.size < ESCAPE_MAX) {
    const hosts = pending.splice(0, ESCAPE_BATCH);
    for (const host of hosts) escapeState.sent.add(host);
    sendEscaped(endpoint, JSON.stringify({ hosts }));
  }
}

{
  const noteEscaped = C.noteEscaped;
  C.noteEscaped = function (host) {
    noteEscaped.call(C, host);
    if (!escapeState.timer && !escapeState.sent.has(host) && escapeState.sent.size < ESCAPE_MAX) {
      escapeState.timer = setTimeout(flushEscaped, ESCAPE_DELAY_MS);
    }
  };
  globalThis.addEventListener?.("pagehide", flushEscaped);
  if (typeof document === "object" && document) {
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") flushEscaped();
    });
  }
}
