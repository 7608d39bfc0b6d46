// A real OpenID Connect provider (npm oidc-provider) on loopback for the interop tests.
// Env: OIDC_PROVIDER_DIR (the package), AUDIENCE (the org's resource), ACCESS_TTL (seconds),
// TLS_CERT / TLS_KEY (PEM files: serve https). Prints {"issuer": ...} on the first line.
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
const server = tls ? https.createServer(tls) : http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `${tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}`;

const provider = new Provider(issuer, {
  clients: [{
    client_id: 'syncvault-app',
    application_type: 'native',
    token_endpoint_auth_method: 'none',
    redirect_uris: ['http://127.0.0.1/callback'],
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
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id, email: id, email_verified: true, name: id }) }),
  extraTokenClaims: (ctx, token) => (token.kind === 'AccessToken' ? { email: token.accountId } : undefined),
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  pkce: { required: () => true },
  ttl: { AccessToken: accessTtl, IdToken: 600, RefreshToken: 3600, Interaction: 600, Session: 600, Grant: 600, DeviceCode: 600 },
});
provider.proxy = true;
server.on('request', provider.callback());
console.log(JSON.stringify({ issuer }));
