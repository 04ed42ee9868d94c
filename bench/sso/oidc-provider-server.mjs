// Reference server for bench/sso/run.sh: node's `oidc-provider` configured to
// do the same work as the hub for an OpenID Connect relying party:
//
//   - confidential clients (client_secret_basic), authorization_code with PKCE
//     S256 required, refresh_token with rotation on every use
//     (`rotateRefreshToken: true`; reuse revokes the grant, as on the hub);
//   - code flows issue a refresh token not bound to the browser session (the
//     hub's `offline_access`; see issueRefreshToken below); consent is
//     granted automatically (`loadExistingGrant`), like the hub's
//     `--first-party` clients, so there is no consent page;
//   - ID tokens signed ES256, carrying the profile/email claims like the
//     hub's (`conformIdTokenClaims: false`);
//   - access tokens: ES256 JWTs (RFC 9068 `at+jwt`) through resource
//     indicators, default resource `urn:hms-ach:api`, for client BENCH_CLIENT_ID.
//     oidc-provider refuses to introspect JWTs ("Structured JWT Tokens cannot
//     be introspected"), so a second, otherwise identical client
//     BENCH_OPAQUE_CLIENT_ID gets opaque access tokens (no resource): the
//     introspection benchmark uses that one;
//   - sign-in: a minimal interaction of our own (oidc-provider ships only a
//     development one): GET /interaction/:uid shows a form, POST
//     /interaction/:uid/login checks username/password against an argon2id
//     hash with the hub's parameters (m=19456 KiB, t=2, p=1; npm `argon2`)
//     and finishes the interaction. One POST, like the hub's /login.
//
// Storage is a Map in this process (see MapAdapter: sessions, interactions,
// grants, codes, refresh tokens and opaque access tokens); the hub writes the
// same things to SQLite.
//
// Environment (set by run.sh):
//   PORT                    port on 127.0.0.1                          [3902]
//   BENCH_CLIENT_ID         JWT-access-token client                    [bench]
//   BENCH_OPAQUE_CLIENT_ID  opaque-access-token client                 [bench-opaque]
//   BENCH_CLIENT_SECRET     secret of both clients                     [random]
//   BENCH_REDIRECT_URI      registered redirect URI             [http://127.0.0.1:9/cb]
//   BENCH_USERNAME / BENCH_PASSWORD  the accounts (space-separated), one password
//                                    [ana.diallo0 / riverside-demo-2026]
//   BENCH_ARGON2_M / _T / _P  argon2id cost                     [19456 / 2 / 1]
//   OIDC_PROVIDER_DIR       folder holding node_modules/{oidc-provider,argon2}  [cwd]

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const port = Number(process.env.PORT || 3902);
const host = '127.0.0.1';
const issuer = `http://${host}:${port}`;
const clientId = process.env.BENCH_CLIENT_ID || 'bench';
const opaqueClientId = process.env.BENCH_OPAQUE_CLIENT_ID || 'bench-opaque';
const clientSecret = process.env.BENCH_CLIENT_SECRET || randomBytes(32).toString('base64url');
const redirectUri = process.env.BENCH_REDIRECT_URI || 'http://127.0.0.1:9/cb';
const usernames = (process.env.BENCH_USERNAME || 'ana.diallo0').split(/[\s,]+/).filter(Boolean);
const username = usernames[0];
const password = process.env.BENCH_PASSWORD || 'riverside-demo-2026';
const argon2Options = {
  memoryCost: Number(process.env.BENCH_ARGON2_M || 19456),
  timeCost: Number(process.env.BENCH_ARGON2_T || 2),
  parallelism: Number(process.env.BENCH_ARGON2_P || 1),
};
const resource = 'urn:hms-ach:api';
const oidcScopes = 'openid offline_access profile email';

const installDir = path.resolve(process.env.OIDC_PROVIDER_DIR || process.cwd());
const require = createRequire(path.join(installDir, 'package.json'));
const { default: Provider } = await import(pathToFileURL(require.resolve('oidc-provider')).href);
const providerVersion = require('oidc-provider/package.json').version;
const argon2 = require('argon2');
argon2Options.type = argon2.argon2id;

// The account store: the same accounts as the hub's, each password hashed once at
// start with the same argon2id cost as the hub's. Every sign-in verifies against it.
const accounts = new Map();
for (const [i, name] of usernames.entries()) {
  accounts.set(name, {
    id: `p-${String(i + 1).padStart(4, '0')}`,
    hash: await argon2.hash(password, argon2Options),
    claims: {
      name: 'Ana Diallo',
      given_name: 'Ana',
      family_name: 'Diallo',
      preferred_username: name,
      email: `${name}@riverside.k12.example`,
      email_verified: true,
    },
  });
}
const accountsById = new Map([...accounts.values()].map((a) => [a.id, a]));

// Storage: an unbounded in-memory Map. oidc-provider's built-in memory
// adapter is a development LRU capped at 1000 records, which evicts live
// refresh tokens and grants within seconds under this load (a refresh then
// fails with invalid_grant, an introspection says active:false). A Map is the
// cheapest store oidc-provider can have: the comparison favours it. Records
// are kept until they expire, as a database would keep them (consumed
// refresh tokens must stay, for reuse detection); so its memory grows with
// the number of tokens issued.
const records = new Map(); // `${model}:${id}` → { payload, expiresAt }
const grantMembers = new Map(); // grantId → Set of record keys
const sessionUids = new Map(); // session uid → session id
class MapAdapter {
  constructor(model) {
    this.model = model;
  }

  key(id) {
    return `${this.model}:${id}`;
  }

  async upsert(id, payload, expiresIn) {
    const key = this.key(id);
    records.set(key, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Infinity });
    if (this.model === 'Session') sessionUids.set(payload.uid, id);
    if (payload.grantId) {
      let members = grantMembers.get(payload.grantId);
      if (!members) grantMembers.set(payload.grantId, (members = new Set()));
      members.add(key);
    }
  }

  async find(id) {
    const key = this.key(id);
    const record = records.get(key);
    if (!record) return undefined;
    if (record.expiresAt <= Date.now()) {
      records.delete(key);
      return undefined;
    }
    return record.payload;
  }

  async findByUid(uid) {
    const id = sessionUids.get(uid);
    return id === undefined ? undefined : this.find(id);
  }

  async findByUserCode() {
    return undefined; // device flow: not configured
  }

  async consume(id) {
    const record = records.get(this.key(id));
    if (record) record.payload.consumed = Math.floor(Date.now() / 1000);
  }

  async destroy(id) {
    records.delete(this.key(id));
  }

  async revokeByGrantId(grantId) {
    for (const key of grantMembers.get(grantId) ?? []) records.delete(key);
    grantMembers.delete(grantId);
  }
}

// ES256 signing key, generated fresh on every start.
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const jwk = { ...privateKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig', kid: 'bench-es256' };

const client = (id) => ({
  client_id: id,
  client_secret: clientSecret,
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  redirect_uris: [redirectUri],
  token_endpoint_auth_method: 'client_secret_basic',
  id_token_signed_response_alg: 'ES256',
  scope: oidcScopes,
});

const configuration = {
  adapter: MapAdapter,
  clients: [client(clientId), client(opaqueClientId)],
  jwks: { keys: [jwk] },
  clientDefaults: {
    grant_types: ['authorization_code', 'refresh_token'],
    id_token_signed_response_alg: 'ES256',
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  },
  scopes: oidcScopes.split(' '),
  claims: {
    openid: ['sub'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username'],
    email: ['email', 'email_verified'],
  },
  // Like the hub: the ID token carries the claims of the granted scopes.
  conformIdTokenClaims: false,
  findAccount: (_ctx, id) => {
    const account = accountsById.get(id);
    return account && {
      accountId: id,
      claims: () => ({ sub: id, ...account.claims }),
    };
  },
  // First-party clients: grant every requested OIDC scope (and the API
  // resource) without a consent page, as the hub's --first-party does.
  loadExistingGrant: async (ctx) => {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      return ctx.oidc.provider.Grant.find(grantId);
    }
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(oidcScopes);
    grant.addOIDCClaims(['sub', 'name', 'given_name', 'family_name', 'preferred_username', 'email', 'email_verified']);
    grant.addResourceScope(resource, oidcScopes);
    await grant.save();
    return grant;
  },
  // oidc-provider drops `offline_access` from an authorization request
  // without prompt=consent (OIDC Core §11), and by default issues refresh
  // tokens only for it. The hub's first-party clients get one for
  // offline_access without a consent page, so: always issue one to these
  // clients, and do not tie it to the browser session (the hub's offline
  // grants outlive the session too).
  issueRefreshToken: (_ctx, c) => c.grantTypeAllowed('refresh_token'),
  expiresWithSession: () => false,
  // A new refresh token on every refresh (the default rotates only after
  // 70% of the lifetime, or for public clients).
  rotateRefreshToken: true,
  pkce: { required: () => true },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  // Static keys: signed cookies (oidc-provider signs its cookies with these).
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: {
    devInteractions: { enabled: false },
    introspection: { enabled: true },
    revocation: { enabled: true },
    // Resource indicators are how oidc-provider issues JWT access tokens.
    // The opaque client gets no default resource, so its access tokens are
    // opaque (stored in the adapter) and can be introspected.
    resourceIndicators: {
      enabled: true,
      defaultResource: (_ctx, c) => (c.clientId === opaqueClientId ? undefined : resource),
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, indicator) => {
        if (indicator !== resource) {
          throw new Provider.errors.InvalidTarget();
        }
        return {
          scope: oidcScopes,
          audience: resource,
          accessTokenTTL: 900,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
  // The hub's defaults: access 900 s, code 60 s, ID token 3600 s, offline
  // refresh 30 days.
  ttl: {
    AccessToken: 900,
    AuthorizationCode: 60,
    IdToken: 3600,
    RefreshToken: 30 * 86400,
    Interaction: 900,
    Session: 12 * 3600,
    Grant: 30 * 86400,
  },
};

const provider = new Provider(issuer, configuration);
provider.proxy = false;
provider.on('server_error', (_ctx, err) => {
  console.error('server_error', err);
});

const escapeHtml = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function readForm(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
      if (body.length > 64 * 1024) reject(new Error('form too large'));
    });
    req.on('end', () => resolve(new URLSearchParams(body)));
    req.on('error', reject);
  });
}

function send(res, status, html) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(html);
}

const loginPage = (uid, alert = '') => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head>
<body><main><h1>Sign in</h1>${alert ? `<p role="alert">${escapeHtml(alert)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<input type="hidden" name="uid" value="${escapeHtml(uid)}">
<label>Username <input name="username" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button>
</form></main></body></html>`;

// Our interaction routes. The interaction is bound to the browser by
// oidc-provider's signed `_interaction` cookie (its CSRF protection);
// interactionDetails() throws when the cookie does not match.
async function interaction(req, res) {
  const url = new URL(req.url, issuer);
  const m = url.pathname.match(/^\/interaction\/([^/]+)(\/login)?$/);
  if (!m) return send(res, 404, 'not found');
  let details;
  try {
    details = await provider.interactionDetails(req, res);
  } catch {
    return send(res, 400, 'This sign-in request has expired; go back to the app and start again.');
  }
  if (details.uid !== m[1]) return send(res, 400, 'interaction mismatch');
  if (req.method === 'GET' && !m[2]) {
    return send(res, 200, loginPage(details.uid));
  }
  if (req.method === 'POST' && m[2]) {
    const form = await readForm(req);
    const account = accounts.get((form.get('username') || '').trim().toLowerCase());
    // Verify against a hash even for unknown names, as the hub does.
    const ok = await argon2.verify(account ? account.hash : accounts.get(username).hash,
      form.get('password') || '') && !!account;
    if (!ok) return send(res, 401, loginPage(details.uid, 'Invalid username or password'));
    return provider.interactionFinished(req, res, {
      login: { accountId: account.id, amr: ['pwd'] },
    }, { mergeWithLastSubmission: false });
  }
  return send(res, 405, 'method not allowed');
}

const providerCallback = provider.callback();
const server = http.createServer((req, res) => {
  if (req.url.startsWith('/interaction/')) {
    interaction(req, res).catch((err) => {
      console.error('interaction error', err);
      if (!res.headersSent) send(res, 500, 'server error');
    });
  } else {
    providerCallback(req, res);
  }
});
server.keepAliveTimeout = 65_000;

server.listen(port, host, () => {
  console.log(`oidc-provider ${providerVersion} (node ${process.version}) listening on ${issuer}, pid ${process.pid}`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections?.();
    setTimeout(() => process.exit(0), 2000).unref();
  });
}
