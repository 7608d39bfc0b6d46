// A real OpenID Connect provider (npm oidc-provider) on loopback for the interop tests.
// Env: OIDC_PROVIDER_DIR (the package), AUDIENCE (the org's resource), ACCESS_TTL (seconds),
// TLS_CERT / TLS_KEY (PEM files: serve https), ENTRA=1 (behave like Microsoft Entra ID, below).
// Prints {"issuer": ...} on the first line.
//
// ENTRA=1: tokens name people the way Entra ID does: `tid` (tenant) and `oid` (object id) in
// ID and access tokens, `preferred_username` / `upn`, and no `email` in the access token. A login
// is `[tenant/]email[#n]`: the tenant defaults to contoso-tenant, and `#n` is another account
// (another object id) with the same email. A Graph-shaped directory of the contoso tenant
// answers at /v1.0/users with an app-only token from /graph/token (client graph-reader, secret
// graph-secret).
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { pathToFileURL } from 'node:url';

const { default: Provider } = await import(pathToFileURL(`${process.env.OIDC_PROVIDER_DIR}/lib/index.js`));
const audience = process.env.AUDIENCE;
const accessTtl = Number(process.env.ACCESS_TTL || 600);
const tls = process.env.TLS_CERT
  ? { cert: fs.readFileSync(process.env.TLS_CERT), key: fs.readFileSync(process.env.TLS_KEY) }
  : null;
const entra = process.env.ENTRA === '1';
const server = tls ? https.createServer(tls) : http.createServer();

const HOME_TENANT = 'contoso-tenant';
/** Who a login names: tenant, object id and email. */
function person(login) {
  const [tenant, rest] = login.includes('/') ? login.split('/', 2) : [HOME_TENANT, login];
  const email = rest.split('#')[0];
  return { tenant, oid: `oid-${tenant}-${rest}`, email };
}
const DIRECTORY = ['admin', 'ada', 'grace', 'alan', 'dorothy'].map((n) => {
  const p = person(`${n}@contoso.example`);
  return { id: p.oid, displayName: n[0].toUpperCase() + n.slice(1), mail: p.email };
});
const graphTokens = new Set();
/** The Graph-shaped directory; true when it answered. */
function directory(req, res) {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'POST' && url.pathname === '/graph/token') {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      const form = new URLSearchParams(body);
      if (form.get('client_id') !== 'graph-reader' || form.get('client_secret') !== 'graph-secret') {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_client"}');
        return;
      }
      const token = `graph-${Math.random().toString(36).slice(2)}`;
      graphTokens.add(token);
      res.writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: 3600 }));
    });
    return true;
  }
  if (req.method === 'GET' && url.pathname === '/v1.0/users') {
    const token = (req.headers.authorization || '').replace(/^Bearer /, '');
    if (!graphTokens.has(token)) {
      res.writeHead(401).end();
      return true;
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ value: DIRECTORY }));
    return true;
  }
  return false;
}
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `${tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'syncvault-app',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    redirect_uris: ['http://127.0.0.1/callback', 'http://127.0.0.1/admin/oauth/callback'],
    grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
    response_types: ['code'],
  }],
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => audience,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({ scope: 'api', audience, accessTokenFormat: 'jwt', accessTokenTTL: accessTtl }),
    },
  },
  scopes: ['openid', 'email', 'profile', 'offline_access'],
  claims: entra
    ? { openid: ['sub', 'tid', 'oid', 'preferred_username'], email: ['email', 'email_verified'], profile: ['name'] }
    : { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  conformIdTokenClaims: !entra,
  findAccount: (ctx, id) => ({
    accountId: id,
    claims: () => {
      if (!entra) return { sub: id, email: id, email_verified: true, name: id };
      const p = person(id);
      return { sub: id, tid: p.tenant, oid: p.oid, preferred_username: p.email, email: p.email, name: p.email };
    },
  }),
  extraTokenClaims: (ctx, token) => {
    if (token.kind !== 'AccessToken') return undefined;
    if (!entra) return { email: token.accountId };
    const p = person(token.accountId);
    return { tid: p.tenant, oid: p.oid, preferred_username: p.email, upn: p.email };
  },
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  pkce: { required: () => true },
  ttl: { AccessToken: accessTtl, IdToken: 600, RefreshToken: 3600, Interaction: 600, Session: 600, Grant: 600, DeviceCode: 600 },
});
provider.proxy = true;
const callback = provider.callback();
server.on('request', (req, res) => {
  if (!(entra && directory(req, res))) callback(req, res);
});
console.log(JSON.stringify({ issuer }));
