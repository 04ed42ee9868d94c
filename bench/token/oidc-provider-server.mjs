// Reference server for bench/token/run.sh: node's `oidc-provider` configured
// to do the same work per request as the hub's client_credentials grant:
// authenticate a confidential client with client_secret_basic and return an
// ES256-signed JWT access token (RFC 9068 `at+jwt`).
//
// It is started by run.sh with the module resolved from a temporary install
// folder (NODE_PATH does not apply to ESM, so run.sh passes the folder in
// OIDC_PROVIDER_DIR and we import by absolute path).
//
// Environment:
//   PORT                 port to listen on (127.0.0.1 only)           [3901]
//   BENCH_CLIENT_ID      client_id                                     [bench]
//   BENCH_CLIENT_SECRET  client_secret (43 chars, base64url(32 bytes)) [random]
//   OIDC_PROVIDER_DIR    folder holding node_modules/oidc-provider     [cwd]

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const port = Number(process.env.PORT || 3901);
const host = '127.0.0.1';
const issuer = `http://${host}:${port}`;
const clientId = process.env.BENCH_CLIENT_ID || 'bench';
const clientSecret = process.env.BENCH_CLIENT_SECRET || randomBytes(32).toString('base64url');
const resource = 'urn:hms-ach:api';

const installDir = path.resolve(process.env.OIDC_PROVIDER_DIR || process.cwd());
const require = createRequire(path.join(installDir, 'package.json'));
const { default: Provider } = await import(pathToFileURL(require.resolve('oidc-provider')).href);
const providerVersion = require('oidc-provider/package.json').version;

// ES256 signing key, generated fresh on every start.
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig', kid: 'bench-es256' };

const configuration = {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      scope: 'users.read',
    },
  ],
  jwks: { keys: [jwk] },
  // The only key is ES256, so the (unused) ID token default must match it or
  // oidc-provider rejects the client metadata (its default is RS256).
  clientDefaults: {
    grant_types: ['client_credentials'],
    id_token_signed_response_alg: 'ES256',
    response_types: [],
    token_endpoint_auth_method: 'client_secret_basic',
  },
  scopes: ['users.read'],
  // Static keys so oidc-provider does not warn about ephemeral cookie keys;
  // no cookie is ever set on the token endpoint.
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: {
    // No interactive login here: only the token endpoint is exercised.
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // Resource indicators are how oidc-provider is told to issue JWT (rather
    // than opaque, adapter-stored) access tokens.
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, indicator) => {
        if (indicator !== resource) {
          throw new Provider.errors.InvalidTarget();
        }
        return {
          scope: 'users.read',
          audience: resource,
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
  ttl: { ClientCredentials: 300 },
};

const provider = new Provider(issuer, configuration);
provider.proxy = false;

// Surface server-side failures (they would otherwise only show as 500s).
provider.on('server_error', (_ctx, err) => {
  console.error('server_error', err);
});

const server = provider.listen(port, host, () => {
  console.log(`oidc-provider ${providerVersion} (node ${process.version}) listening on ${issuer}, pid ${process.pid}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
