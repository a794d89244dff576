// A real OpenID Connect provider (node's oidc-provider, OpenID Certified) for Carrel's tests.
// Loopback only. Usage: node provider.mjs CONFIG.json, where the test writes:
//   { "issuer": "http://127.0.0.1:PORT", "port": PORT, "keys": [private JWKs],
//     "clients": [oidc-provider client metadata], "accounts": { "alice": { claims } },
//     "ttl": { "IdToken": seconds, ... } }
// Prints "ready" once it listens. Logging in is a tiny form of our own at
// /interaction/<uid> (a username, no password: the test or the browser names the account);
// consent is granted at once for what the client asked.
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import Provider from 'oidc-provider';

const config = JSON.parse(await readFile(process.argv[2], 'utf8'));
const accounts = config.accounts ?? {};

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: { keys: config.keys },
  cookies: { keys: ['carrel-test-provider-cookie-key'] },
  claims: {
    openid: ['sub'], email: ['email'], profile: ['name'], groups: ['groups'],
    affiliation: ['eduPersonAffiliation', 'eduPersonPrincipalName'],
  },
  scopes: ['openid', 'email', 'profile', 'groups', 'affiliation'],
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true },
  ttl: config.ttl ?? {},
  async findAccount(ctx, id) {
    if (!Object.hasOwn(accounts, id)) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...accounts[id] }; } };
  },
});
const oidc = provider.callback();

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function formBody(req) {
  let raw = '';
  for await (const chunk of req) raw += chunk;
  return new URLSearchParams(raw);
}

async function interaction(req, res, uid, submitted) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;
  if (prompt.name === 'login') {
    if (req.method === 'POST' && submitted) {
      const login = (await formBody(req)).get('login') ?? '';
      const result = Object.hasOwn(accounts, login)
        ? { login: { accountId: login } }
        : { error: 'access_denied', error_description: 'no such test account' };
      await provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html lang="en"><title>Test provider</title><main>
<h1>Test identity provider</h1>
<form method="post" action="/interaction/${escape(uid)}/login">
<label for="login">Username</label> <input id="login" name="login" autocomplete="username">
<button type="submit">Continue</button></form></main></html>`);
    return;
  }
  // consent: grant exactly what is missing, at once
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const missing = prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
}

const server = http.createServer((req, res) => {
  const match = /^\/interaction\/([A-Za-z0-9_-]+)(\/login)?$/.exec(new URL(req.url, 'http://x').pathname);
  if (!match) return oidc(req, res);
  interaction(req, res, match[1], Boolean(match[2])).catch((err) => {
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(`interaction failed: ${err.message}`);
  });
});
server.listen(config.port, '127.0.0.1', () => console.log('ready'));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
