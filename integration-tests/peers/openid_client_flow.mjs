// A real OpenID Connect relying party that nobody here wrote, against the hub.
//
// Peer: panva's openid-client v6 (on top of oauth4webapi), a certified OIDC RP library,
// as a confidential client (client_secret_basic). The "browser" part (login form,
// consent form, cookies) is a tiny hand-written form driver over fetch, so the hub's
// server-rendered pages are exercised the way a browser without JavaScript would.
//
// Usage:
//   node openid_client_flow.mjs ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI \
//        POST_LOGOUT_REDIRECT_URI USERNAME PASSWORD
// Env:
//   HUB_ROTATE          JSON array argv of a command that rotates the hub's signing keys
//   HUB_ROTATE_WAIT_MS  how long after rotating the hub starts signing with the new key
//
// Prints `ok <step>` per step and `all checks passed` at the end; on the first failure
// prints `FAIL <step>: <why>` to stderr and exits 1.
//
// What the library checks for us (read from node_modules, openid-client 6.9 /
// oauth4webapi 3.8):
// - discovery: the metadata `issuer` must equal the issuer URL we asked for (compared as
//   `new URL(x).href`, so "http://h:p" and "http://h:p/" are the same here), but every
//   later `iss` comparison (ID token `iss` claim, RFC 9207 `iss` authorization response
//   parameter) is an exact string compare against the metadata's `issuer` string.
// - authorization response: because the metadata says
//   authorization_response_iss_parameter_supported=true, a missing `iss` is an error;
//   `state` must equal expectedState; `error=...` becomes AuthorizationResponseError
//   (after iss/state were checked).
// - token response: `access_token` and `token_type` (bearer/dpop, any case) required,
//   `expires_in` a number if present; ID token must carry aud, exp, iat, iss, sub (+ nonce
//   when an expectedNonce is given); `aud` must be client_id (array with >1 entries needs
//   `azp`); `alg` must be in id_token_signing_alg_values_supported (RS256 if absent) or
//   equal to the client's id_token_signed_response_alg. The library does NOT check
//   at_hash (we do it here) and does NOT verify the ID token signature unless
//   enableNonRepudiationChecks() is on (it is, below) -- it trusts TLS by default.
// - errors from the token/introspection/revocation endpoints: only a 4xx with
//   `content-type: application/json` and a string `error` member becomes a
//   ResponseBodyError with `.error` (e.g. invalid_grant); a 4xx carrying a
//   WWW-Authenticate header becomes a WWWAuthenticateChallengeError instead.
//   Revocation must answer exactly 200; introspection 200 with a boolean `active`.
// - client_secret_basic: client_id and secret are application/x-www-form-urlencoded
//   BEFORE base64 (RFC 6749 2.3.1), and the library also escapes - _ . ! ~ * ' ( ) as
//   %XX, so the hub must percent-decode both halves of the Basic credentials.
//
// How oauth4webapi caches the JWKS (getPublicSigKeyFromIssuerJwksUri / jwksRequest):
// - The JWKS is fetched lazily, on the first signature check, and cached in a
//   module-level WeakMap keyed by the frozen authorization-server metadata object. Every
//   openid-client Configuration has its own copy of that object, so a fresh discovery()
//   starts with an empty cache. openid-client mirrors the cache into a per-Configuration
//   object ({ jwks, uat }, uat = epoch seconds) readable/writable through
//   getJwksCache()/setJwksCache(); a mirrored cache is only used while younger than 300 s.
// - On every check: a cache 300 s old or older is dropped and refetched. Otherwise the
//   keys are filtered by kty (from alg), kid (when the JWS header has one), alg/use/
//   key_ops (when the JWK has them). If no key matches and the cache is 60 s old or
//   older, it is dropped and refetched once more; if it is younger than 60 s the check
//   fails at once with OAUTH_KEY_SELECTION_FAILED -- there is no refetch on an unknown
//   kid within the first minute. More than one matching key is also an error (so ID
//   tokens need a kid once the JWKS holds two RSA keys). Concurrent fetches are deduped.
// - Consequence for key rotation: a hub must publish a new key in its JWKS before it
//   signs with it (at least as long as RPs may cache, 60 s for a kid miss here), or an
//   RP that fetched the JWKS shortly before will reject the new tokens. Step 7 tests
//   exactly that: it primes a fresh Configuration's cache with the JWKS fetched right
//   after the rotation (new key published, not yet signing) and then requires that the
//   ID token signed with the new key validates from that cache, without a refetch.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as client from 'openid-client';

const argv = process.argv.slice(2);
if (argv.length !== 7) {
  console.error(
    'usage: openid_client_flow.mjs ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI ' +
      'POST_LOGOUT_REDIRECT_URI USERNAME PASSWORD',
  );
  process.exit(2);
}
const [issuer, clientId, clientSecret, redirectUri, postLogoutRedirectUri, username, password] =
  argv;
const SCOPE = 'openid profile email offline_access roles';
const HTTP_TIMEOUT_MS = 15_000;

// ---------------------------------------------------------------------------------------
// Reporting

class CheckFailed extends Error {}

function check(cond, what) {
  if (!cond) throw new CheckFailed(what);
}

// Renders any error (ours, openid-client's, oauth4webapi's, fetch's) as one readable line.
function describe(err) {
  if (err instanceof CheckFailed) return err.message;
  const parts = [`${err?.name ?? 'Error'}: ${err?.message ?? String(err)}`];
  if (err?.code) parts.push(`code=${err.code}`);
  if (err?.status) parts.push(`status=${err.status}`);
  if (err?.error) parts.push(`error=${err.error}`);
  if (err?.error_description) parts.push(`error_description=${err.error_description}`);
  let cause = err?.cause;
  for (let depth = 0; cause && depth < 3; depth++) {
    if (cause instanceof Error) {
      parts.push(`cause: ${cause.name}: ${cause.message}${cause.code ? ` (${cause.code})` : ''}`);
      cause = cause.cause;
    } else {
      let text;
      try {
        text = cause instanceof URLSearchParams ? cause.toString() : JSON.stringify(cause);
      } catch {
        text = String(cause);
      }
      parts.push(`cause: ${text?.slice(0, 600)}`);
      break;
    }
  }
  return parts.join('; ');
}

async function step(name, fn) {
  try {
    const result = await fn();
    console.log(`ok ${name}`);
    return result;
  } catch (err) {
    console.error(`FAIL ${name}: ${describe(err)}`);
    process.exit(1);
  }
}

// ---------------------------------------------------------------------------------------
// JWT / PKCE helpers (decoding only; verification is the library's job)

function b64urlJson(segment) {
  return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
}

function jwtHeader(jwt) {
  return b64urlJson(jwt.split('.')[0]);
}

// OIDC Core 3.1.3.6: at_hash = base64url(left half of SHA-256(access_token)) for RS256.
function atHash(accessToken) {
  const digest = createHash('sha256').update(accessToken, 'ascii').digest();
  return digest.subarray(0, digest.length / 2).toString('base64url');
}

function audIs(aud, expected) {
  return aud === expected || (Array.isArray(aud) && aud.length === 1 && aud[0] === expected);
}

// Note: calculatePKCECodeChallenge is async (WebCrypto digest).
async function newPkce() {
  const verifier = client.randomPKCECodeVerifier();
  return { verifier, challenge: await client.calculatePKCECodeChallenge(verifier) };
}

// ---------------------------------------------------------------------------------------
// A tiny "browser": cookie jar + manual redirects + generic HTML form handling

// Cookie jar: name=value of every Set-Cookie, all sent back (one host, so no domain or
// path matching is needed); Max-Age<=0 or an Expires in the past deletes the cookie.
class CookieJar {
  #cookies = new Map();

  store(response) {
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let expired = false;
      for (const attr of attrs) {
        const [k, v = ''] = attr.split('=').map((s) => s.trim());
        if (k.toLowerCase() === 'max-age' && Number(v) <= 0) expired = true;
        if (k.toLowerCase() === 'expires' && Date.parse(v) <= Date.now()) expired = true;
      }
      if (expired) this.#cookies.delete(name);
      else this.#cookies.set(name, value);
    }
  }

  header() {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  get size() {
    return this.#cookies.size;
  }
}

const jar = new CookieJar();

// One request as a browser would send it: cookies attached, redirects NOT followed.
async function browse(url, { method = 'GET', form } = {}) {
  const headers = { accept: 'text/html,application/xhtml+xml' };
  const cookie = jar.header();
  if (cookie) headers.cookie = cookie;
  let body;
  if (form) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    // A browser sends Origin on every form POST; hubs may use it as a CSRF defence.
    headers.origin = new URL(url).origin;
    body = new URLSearchParams(form).toString();
  }
  const response = await fetch(url, {
    method,
    headers,
    body,
    redirect: 'manual',
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
  });
  jar.store(response);
  const location = response.headers.get('location');
  return {
    url: new URL(url),
    status: response.status,
    headers: response.headers,
    location: location === null ? null : new URL(location, url),
    text: await response.text(),
  };
}

function unescapeHtml(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|amp|quot|apos|lt|gt);/gi, (_, ent) => {
    const e = ent.toLowerCase();
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return { amp: '&', quot: '"', apos: "'", lt: '<', gt: '>' }[e];
  });
}

// Attributes of one start tag, in any order, quoted either way or unquoted, unescaped.
function attributes(tagBody) {
  const attrs = {};
  const re = /([^\s=/>"']+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?/g;
  for (const m of tagBody.matchAll(re)) {
    attrs[m[1].toLowerCase()] = unescapeHtml(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return attrs;
}

// Finds the form whose action resolves to `path` on the page and returns its target URL
// and its hidden inputs (name -> value); null when the page has no such form.
function findForm(page, path) {
  for (const m of page.text.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form\s*>/gi)) {
    const attrs = attributes(m[1]);
    const action = new URL(attrs.action ?? '', page.url);
    if (action.pathname !== path) continue;
    check(
      (attrs.method ?? 'get').toLowerCase() === 'post',
      `form ${path} should be method="post", got ${attrs.method}`,
    );
    const hidden = {};
    for (const input of m[2].matchAll(/<input\b([^>]*)>/gi)) {
      const a = attributes(input[1]);
      if ((a.type ?? '').toLowerCase() === 'hidden' && a.name) hidden[a.name] = a.value ?? '';
    }
    return { action, hidden };
  }
  return null;
}

const hasAlert = (text) => /role\s*=\s*["']?alert\b/i.test(text);

function snippet(page) {
  return page.text.replace(/\s+/g, ' ').slice(0, 400);
}

function samePath(url, expected) {
  const e = new URL(expected);
  return url.origin === e.origin && url.pathname === e.pathname;
}

// Drives one front-channel round trip from `startUrl` until the hub redirects to
// `target` (redirect_uri or post_logout_redirect_uri), answering the sign-in and consent
// pages on the way. Options:
//   login: 'forbid' (a session must exist) | 'allow'
//   wrongPasswordFirst: submit a wrong password once and require an alert, no redirect
//   consent: 'forbid' | 'allow' (answer Allow when the page shows)
// Returns { url, sawLogin, sawConsent }.
async function frontChannel(startUrl, target, opts = {}) {
  const { login = 'forbid', wrongPasswordFirst = false, consent = 'forbid' } = opts;
  let sawLogin = 0;
  let sawConsent = 0;
  let wrongPending = wrongPasswordFirst;
  let page = await browse(startUrl);
  for (let hop = 0; hop < 30; hop++) {
    if ([301, 302, 303, 307, 308].includes(page.status)) {
      check(page.location, `redirect ${page.status} from ${page.url} without Location`);
      if (samePath(page.location, target)) return { url: page.location, sawLogin, sawConsent };
      page = await browse(page.location);
      continue;
    }
    const loginForm = findForm(page, '/login');
    if (loginForm) {
      check(
        login === 'allow',
        `expected no sign-in page (the session cookie should be reused), got ${page.url}`,
      );
      sawLogin++;
      if (wrongPending) {
        wrongPending = false;
        const bad = await browse(loginForm.action, {
          method: 'POST',
          form: { ...loginForm.hidden, username, password: `${password}-wrong` },
        });
        // A wrong password must not sign in: no redirect at all (certainly not to the
        // client), the page answers 200/401 and shows an error with role="alert".
        check(
          !(bad.location && samePath(bad.location, target)),
          `wrong password redirected to the client: ${bad.location}`,
        );
        check(
          bad.status === 200 || bad.status === 401,
          `wrong password should answer 200 or 401 with the sign-in page, got ${bad.status}` +
            (bad.location ? ` -> ${bad.location}` : ''),
        );
        check(hasAlert(bad.text), `wrong password page has no role="alert" element: ${snippet(bad)}`);
        check(findForm(bad, '/login'), 'wrong password page should show the sign-in form again');
        page = bad;
        continue;
      }
      page = await browse(loginForm.action, {
        method: 'POST',
        form: { ...loginForm.hidden, username, password },
      });
      check(
        page.status === 303 || page.status === 302,
        `correct password should redirect (303), got ${page.status}: ${snippet(page)}`,
      );
      continue;
    }
    const consentForm = findForm(page, '/consent');
    if (consentForm) {
      check(consent === 'allow', `unexpected consent page at ${page.url}`);
      sawConsent++;
      check(
        /name\s*=\s*["']?decision["']?[^>]*value\s*=\s*["']?allow|value\s*=\s*["']?allow["']?[^>]*name\s*=\s*["']?decision/i.test(
          page.text,
        ),
        'consent page has no decision=allow button',
      );
      page = await browse(consentForm.action, {
        method: 'POST',
        form: { ...consentForm.hidden, decision: 'allow' },
      });
      continue;
    }
    throw new CheckFailed(
      `unexpected response ${page.status} at ${page.url} (neither a redirect, the sign-in ` +
        `form nor the consent form): ${snippet(page)}`,
    );
  }
  throw new CheckFailed(`more than 30 hops from ${startUrl} without reaching ${target}`);
}

// ---------------------------------------------------------------------------------------
// Library configuration

// Discovery + the options every Configuration here uses: plain http to 127.0.0.1,
// signature verification of ID tokens against the JWKS (non-repudiation checks), and
// RS256 pinned as the client's expected ID token alg.
async function discover() {
  return client.discovery(
    new URL(issuer),
    clientId,
    { id_token_signed_response_alg: 'RS256' },
    client.ClientSecretBasic(clientSecret),
    {
      execute: [client.allowInsecureRequests, client.enableNonRepudiationChecks],
      timeout: HTTP_TIMEOUT_MS / 1000,
    },
  );
}

// Checks the claims of an ID token the library has already validated (signature, iss,
// aud, exp, iat, sub, nonce) and returns { claims, header }. An ID token from a code
// exchange must carry sid, auth_time and at_hash; one from a refresh (OIDC Core 12.2)
// may leave them out, but when present they must still be right (auth_time and sid
// those of the original sign-in).
function checkIdToken(tokens, { refreshed = false, expectSub, expectAuthTime, expectSid } = {}) {
  check(typeof tokens.id_token === 'string', 'token response has no id_token');
  const claims = tokens.claims();
  const header = jwtHeader(tokens.id_token);
  check(header.alg === 'RS256', `ID token alg should be RS256, got ${header.alg}`);
  check(typeof header.kid === 'string' && header.kid, 'ID token header has no kid');
  check(claims.iss === issuer, `ID token iss ${claims.iss} != ${issuer}`);
  check(audIs(claims.aud, clientId), `ID token aud ${JSON.stringify(claims.aud)} != ${clientId}`);
  check(typeof claims.sub === 'string' && claims.sub, 'ID token has no sub');
  if (!refreshed || claims.sid !== undefined) {
    check(typeof claims.sid === 'string' && claims.sid, 'ID token has no sid (logout needs it)');
  }
  if (!refreshed || claims.auth_time !== undefined) {
    check(typeof claims.auth_time === 'number', 'ID token has no numeric auth_time');
  }
  // at_hash ties the ID token to the access token issued with it; the library does
  // not check it, so we do.
  if (!refreshed || claims.at_hash !== undefined) {
    check(typeof claims.at_hash === 'string', 'ID token has no at_hash');
    check(
      claims.at_hash === atHash(tokens.access_token),
      `ID token at_hash ${claims.at_hash} != left half of SHA-256(access_token) ` +
        `${atHash(tokens.access_token)}`,
    );
  }
  if (expectSub !== undefined) check(claims.sub === expectSub, `sub ${claims.sub} != ${expectSub}`);
  if (expectAuthTime !== undefined && claims.auth_time !== undefined) {
    check(
      claims.auth_time === expectAuthTime,
      `auth_time ${claims.auth_time} should stay the original authentication time ${expectAuthTime}`,
    );
  }
  if (expectSid !== undefined && claims.sid !== undefined) {
    check(claims.sid === expectSid, `sid ${claims.sid} should stay the session's ${expectSid}`);
  }
  return { claims, header };
}

function scopeHas(scope, wanted) {
  return typeof scope === 'string' && scope.split(' ').includes(wanted);
}

// The authorization code flow, from the authorize URL to the validated token response.
async function codeFlow(config, frontChannelOpts) {
  const pkce = await newPkce();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: SCOPE,
    code_challenge: pkce.challenge,
    code_challenge_method: 'S256',
    state,
    nonce,
    prompt: 'consent',
  });
  const cb = await frontChannel(url, redirectUri, frontChannelOpts);
  check(cb.url.searchParams.get('code'), `no code at the redirect_uri: ${cb.url}`);
  // The library checks iss (RFC 9207), state, then redeems the code with the verifier
  // and validates the ID token (nonce included).
  const tokens = await client.authorizationCodeGrant(config, cb.url, {
    pkceCodeVerifier: pkce.verifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  });
  check(tokens.token_type === 'bearer', `token_type should be Bearer, got ${tokens.token_type}`);
  check(typeof tokens.expires_in === 'number', 'token response has no numeric expires_in');
  check(typeof tokens.refresh_token === 'string', 'no refresh_token although offline_access was granted');
  return { tokens, ...cb };
}

// prompt=none without a usable session must come back to the client with
// error=login_required, the state echoed and the RFC 9207 iss.
async function expectLoginRequired(config) {
  const pkce = await newPkce();
  const state = client.randomState();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid',
    code_challenge: pkce.challenge,
    code_challenge_method: 'S256',
    state,
    nonce: client.randomNonce(),
    prompt: 'none',
  });
  const cb = await frontChannel(url, redirectUri, { login: 'forbid', consent: 'forbid' });
  const q = cb.url.searchParams;
  check(q.get('error') === 'login_required', `expected error=login_required, got ${cb.url}`);
  check(q.get('state') === state, `state not echoed on the error response: ${cb.url}`);
  check(q.get('iss') === issuer, `iss on the error response ${q.get('iss')} != ${issuer}`);
  check(!q.has('code'), 'error response carries a code');
  // Same response through the library: it validates iss and state first, then turns
  // error= into an AuthorizationResponseError (no token request is made).
  try {
    await client.authorizationCodeGrant(config, cb.url, {
      pkceCodeVerifier: pkce.verifier,
      expectedState: state,
    });
  } catch (err) {
    if (err instanceof client.AuthorizationResponseError && err.error === 'login_required') return;
    throw err;
  }
  throw new CheckFailed('the library accepted a login_required response');
}

async function expectInvalidGrant(promise, what) {
  try {
    await promise;
  } catch (err) {
    if (err instanceof client.ResponseBodyError && err.error === 'invalid_grant') return;
    throw new CheckFailed(`${what}: expected a 400 invalid_grant, got ${describe(err)}`);
  }
  throw new CheckFailed(`${what}: the hub accepted it`);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// ---------------------------------------------------------------------------------------
// The flow

// 1. Discovery: the endpoints and capabilities this RP relies on.
let config = await step('discovery', async () => {
  const cfg = await discover();
  const md = cfg.serverMetadata();
  check(md.issuer === issuer, `issuer ${md.issuer} != ${issuer} (must match exactly, no trailing slash)`);
  const endpoints = {
    authorization_endpoint: '/oauth2/authorize',
    token_endpoint: '/oauth2/token',
    userinfo_endpoint: '/oauth2/userinfo',
    jwks_uri: '/oauth2/jwks',
    introspection_endpoint: '/oauth2/introspect',
    revocation_endpoint: '/oauth2/revoke',
    end_session_endpoint: '/oauth2/logout',
  };
  for (const [field, path] of Object.entries(endpoints)) {
    check(md[field] === `${issuer}${path}`, `${field} should be ${issuer}${path}, got ${md[field]}`);
  }
  check(
    md.authorization_response_iss_parameter_supported === true,
    'authorization_response_iss_parameter_supported should be true',
  );
  check(md.supportsPKCE('S256'), 'code_challenge_methods_supported should include S256');
  check(
    md.id_token_signing_alg_values_supported?.includes('RS256'),
    'id_token_signing_alg_values_supported should include RS256',
  );
  check(md.response_types_supported?.includes('code'), 'response_types_supported should include code');
  check(md.scopes_supported?.includes('openid') ?? true, 'scopes_supported lacks openid');
  return cfg;
});

// 2. prompt=none before anyone signed in: login_required, straight back to the client.
await step('prompt-none-before-sign-in', () => expectLoginRequired(config));

// 3. Code flow with PKCE, a wrong password first, then the right one, then consent.
const first = await step('authorization-code-flow', async () => {
  const flow = await codeFlow(config, { login: 'allow', wrongPasswordFirst: true, consent: 'allow' });
  check(flow.sawLogin >= 2, 'the sign-in page should have been shown (and again after the wrong password)');
  check(jar.size > 0, 'the hub set no cookies during sign-in');
  const { claims, header } = checkIdToken(flow.tokens);
  check(scopeHas(flow.tokens.scope ?? SCOPE, 'openid'), `granted scope lacks openid: ${flow.tokens.scope}`);
  return { tokens: flow.tokens, claims, kid: header.kid };
});

// 4. UserInfo with the access token; the library insists sub matches the ID token's.
await step('userinfo', async () => {
  const info = await client.fetchUserInfo(config, first.tokens.access_token, first.claims.sub);
  check(info.sub === first.claims.sub, `userinfo sub ${info.sub} != ${first.claims.sub}`);
  check(typeof info.email === 'string' && info.email, 'userinfo has no email (scope email)');
  check(typeof info.name === 'string' && info.name, 'userinfo has no name (scope profile)');
});

// 5. Introspection (RFC 7662) of the access token by the client that holds it.
await step('introspection', async () => {
  const r = await client.tokenIntrospection(config, first.tokens.access_token);
  check(r.active === true, `access token should be active: ${JSON.stringify(r)}`);
  check(r.sub === first.claims.sub, `introspection sub ${r.sub} != ${first.claims.sub}`);
  check(r.client_id === clientId, `introspection client_id ${r.client_id} != ${clientId}`);
  check(scopeHas(r.scope, 'openid'), `introspection scope lacks openid: ${r.scope}`);
});

// 6. Refresh: a rotated refresh token and a new, valid ID token for the same person.
const second = await step('refresh', async () => {
  const tokens = await client.refreshTokenGrant(config, first.tokens.refresh_token);
  check(typeof tokens.refresh_token === 'string', 'refresh response has no refresh_token');
  check(tokens.refresh_token !== first.tokens.refresh_token, 'refresh token was not rotated');
  checkIdToken(tokens, {
    refreshed: true,
    expectSub: first.claims.sub,
    expectAuthTime: first.claims.auth_time,
    expectSid: first.claims.sid,
  });
  return { tokens };
});

// 7. Signing-key rotation in the middle of a grant.
const third = await step('key-rotation', async () => {
  const rotate = process.env.HUB_ROTATE;
  check(rotate, 'HUB_ROTATE (JSON argv of the key-rotation command) is not set');
  let cmd;
  try {
    cmd = JSON.parse(rotate);
  } catch {
    cmd = null;
  }
  check(Array.isArray(cmd) && cmd.length > 0, `HUB_ROTATE should be a JSON array argv, got ${rotate}`);
  const before = new Set(
    ((await (await fetch(config.serverMetadata().jwks_uri, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) })).json()).keys ?? []).map((k) => k.kid),
  );
  execFileSync(cmd[0], cmd.slice(1), { stdio: ['ignore', 2, 2], timeout: 60_000 });

  // A new Configuration (its own, empty JWKS cache), primed with the JWKS as published
  // now: the hub serves a key the CLI created within a second (it polls the key set),
  // so poll briefly; the new key must be there, next to the old one, before it signs.
  const rotatedAt = Date.now();
  config = await discover();
  const jwksUri = config.serverMetadata().jwks_uri;
  let jwks;
  let kids = [];
  for (let i = 0; i < 30; i++) {
    const res = await fetch(jwksUri, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    check(res.status === 200, `GET ${jwksUri} answered ${res.status}`);
    jwks = await res.json();
    kids = (jwks.keys ?? []).map((k) => k.kid);
    // Both new keys (the ID token is RS256): a rotation is published all at once.
    if (kids.filter((k) => !before.has(k)).length >= 2) break;
    await sleep(100);
  }
  check(kids.includes(first.kid), `the old key ${first.kid} is no longer published: ${kids}`);
  check(
    kids.filter((k) => !before.has(k)).length >= 2,
    `no new key published within 3 s of the rotation (kids: ${kids})`,
  );
  client.setJwksCache(config, { jwks, uat: Math.floor(Date.now() / 1000) });
  // Count JWKS fetches from here on: the library must not need one.
  let jwksFetches = 0;
  const jwksPath = new URL(jwksUri).pathname;
  config[client.customFetch] = (url, init) => {
    if (new URL(url).pathname === jwksPath) jwksFetches++;
    return fetch(url, init);
  };

  const waitMs = Number(process.env.HUB_ROTATE_WAIT_MS ?? '0');
  check(Number.isFinite(waitMs) && waitMs >= 0, `bad HUB_ROTATE_WAIT_MS ${process.env.HUB_ROTATE_WAIT_MS}`);
  await sleep(Math.max(0, rotatedAt + waitMs + 250 - Date.now()));

  const tokens = await client.refreshTokenGrant(config, second.tokens.refresh_token);
  const { header } = checkIdToken(tokens, {
    refreshed: true,
    expectSub: first.claims.sub,
    expectAuthTime: first.claims.auth_time,
    expectSid: first.claims.sid,
  });
  check(header.kid !== first.kid, `ID token still signed with the old key ${first.kid} after rotation`);
  check(kids.includes(header.kid), `ID token kid ${header.kid} was not in the JWKS published at rotation`);
  check(
    jwksFetches === 0,
    'the library had to refetch the JWKS: the signing key was not in the JWKS published at rotation',
  );
  check(typeof tokens.refresh_token === 'string', 'refresh response has no refresh_token');

  // Tokens issued before the rotation stay good while the old key is still published.
  const old = await client.tokenIntrospection(config, first.tokens.access_token);
  check(old.active === true, `pre-rotation access token should still be active: ${JSON.stringify(old)}`);
  return { tokens };
});

// 8. Refresh-token reuse detection (OAuth 2.0 Security BCP 4.14.2): replaying an already
// rotated refresh token fails and revokes the whole family, including the newest one.
await step('refresh-token-reuse', async () => {
  await expectInvalidGrant(
    client.refreshTokenGrant(config, second.tokens.refresh_token),
    'reusing an already rotated refresh token',
  );
  await expectInvalidGrant(
    client.refreshTokenGrant(config, third.tokens.refresh_token),
    'the newest refresh token after reuse was detected (family should be revoked)',
  );
});

// 9. Second sign-in on the same browser session (no password asked), then revocation
// (RFC 7009) of its refresh token, which also ends the grant's access tokens.
let fourth;
await step('second-sign-in-and-revocation', async () => {
  const flow = await codeFlow(config, { login: 'forbid', consent: 'allow' });
  const { claims } = checkIdToken(flow.tokens, {
    expectSub: first.claims.sub,
    expectAuthTime: first.claims.auth_time,
    expectSid: first.claims.sid,
  });
  fourth = { tokens: flow.tokens, claims };

  const before = await client.tokenIntrospection(config, flow.tokens.access_token);
  check(before.active === true, 'the new access token should be active before revocation');
  await client.tokenRevocation(config, flow.tokens.refresh_token, {
    token_type_hint: 'refresh_token',
  });
  await expectInvalidGrant(
    client.refreshTokenGrant(config, flow.tokens.refresh_token),
    'refreshing with a revoked refresh token',
  );
  const after = await client.tokenIntrospection(config, flow.tokens.access_token);
  check(after.active === false, `the grant's access token should be inactive after revocation: ${JSON.stringify(after)}`);
});

// 10. RP-initiated logout, then prompt=none finds no session any more.
await step('rp-initiated-logout', async () => {
  const state = client.randomState();
  const url = client.buildEndSessionUrl(config, {
    id_token_hint: fourth.tokens.id_token,
    post_logout_redirect_uri: postLogoutRedirectUri,
    state,
  });
  const back = await frontChannel(url, postLogoutRedirectUri, { login: 'forbid', consent: 'forbid' });
  check(back.url.searchParams.get('state') === state, `logout state not echoed: ${back.url}`);
  await expectLoginRequired(config);
});

console.log('all checks passed');
