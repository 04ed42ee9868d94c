// A real upstream OpenID Provider for the hub's broker tests: panva's `oidc-provider`
// (npm, a certified OP implementation), run on 127.0.0.1 as the district's Google
// Workspace / Entra / Okta stand-in.
//
//   node oidc_idp.mjs PORT CLIENT_ID CLIENT_SECRET
//
// Prints `ready` once listening. Endpoints besides the OP's own (/.well-known/...,
// /auth, /token, /jwks, ...):
//   POST /control        JSON {"user", "mode", "redirect_uris"?}: who signs in next and
//                        how; redirect_uris (the hub's exact callback URLs, known only
//                        once the hub has its port) replace the client's list
//   GET  /interaction/ID the login "page": scripted, no form: it signs in the `user` set
//                        by /control at once and grants the requested scopes, so a test
//                        drives the whole flow over plain HTTP without a browser
//   GET  /last           JSON: the last authorization request's parameters
//
// Modes (what the next sign-in looks like):
//   normal          password only (amr ["pwd"])
//   mfa             amr ["pwd", "otp"]
//   access_denied   the IdP answers error=access_denied with an error_description that
//                   carries markup (the hub must not echo it)
//   wrong_nonce, wrong_aud, extra_aud, wrong_azp, expired, foreign_key
//                   oidc-provider itself never issues such ID tokens, so on these
//                   switches this script RE-SIGNS the ID token of the real token
//                   response after changing its claims: with the OP's own signing key
//                   (same kid) for wrong_nonce / wrong_aud / extra_aud / wrong_azp /
//                   expired, and with a freshly generated key under the OP's kid for
//                   foreign_key (a forged signature). Everything else about the
//                   exchange is oidc-provider's own.

import { createServer } from 'node:http';
import { generateKeyPairSync, createPrivateKey, sign, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const [portArg, clientId, clientSecret] = process.argv.slice(2);
if (!portArg || !clientId || !clientSecret) {
  console.error('usage: oidc_idp.mjs PORT CLIENT_ID CLIENT_SECRET');
  process.exit(2);
}
const port = Number(portArg);
const issuer = `http://127.0.0.1:${port}`;

// The people this IdP knows. ana is in the hub's demo directory (by e-mail); the
// others test the domain and tenant restrictions and linking refusals.
const RIVERSIDE_TID = '9188040d-6c67-4c5b-b112-36a304b66dad';
const USERS = {
  ana: {
    email: 'ana.diallo0@riverside.k12.example', email_verified: true,
    given_name: 'Ana', family_name: 'Diallo',
    hd: 'riverside.k12.example', tid: RIVERSIDE_TID,
  },
  // Another Workspace domain / another Entra tenant, same (directory) address.
  ana_other_hd: {
    email: 'ana.diallo0@riverside.k12.example', email_verified: true,
    given_name: 'Ana', family_name: 'Diallo',
    hd: 'elsewhere.example', tid: RIVERSIDE_TID,
  },
  ana_other_tid: {
    email: 'ana.diallo0@riverside.k12.example', email_verified: true,
    given_name: 'Ana', family_name: 'Diallo',
    hd: 'riverside.k12.example', tid: '00000000-0000-0000-0000-00000000beef',
  },
  newcomer: {
    email: 'new.person@riverside.k12.example', email_verified: true,
    given_name: 'New', family_name: 'Person',
    hd: 'riverside.k12.example', tid: RIVERSIDE_TID,
  },
  unverified: {
    email: 'ana.diallo0@riverside.k12.example', email_verified: false,
    given_name: 'Ana', family_name: 'Diallo',
    hd: 'riverside.k12.example', tid: RIVERSIDE_TID,
  },
};

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: 'idp-key-1', use: 'sig', alg: 'RS256' };

let next = { user: 'ana', mode: 'normal' };
let registered = ['http://127.0.0.1/placeholder'];
let last = null;

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: ['http://127.0.0.1/placeholder'],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [signingJwk] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  pkce: { required: () => true },
  // Scope claims go into the ID token itself (as Google and Entra do), not only
  // UserInfo: the hub reads the ID token.
  conformIdTokenClaims: false,
  claims: {
    // amr under `openid`: oidc-provider puts only scope-masked claims in the ID token.
    openid: ['sub', 'hd', 'tid', 'amr'],
    email: ['email', 'email_verified'],
    profile: ['given_name', 'family_name', 'name'],
  },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(_ctx, sub) {
    const who = Object.keys(USERS).find((u) => `sub-${u}` === sub);
    if (!who) return undefined;
    return {
      accountId: sub,
      async claims() {
        const u = USERS[who];
        return { sub, ...u, name: `${u.given_name} ${u.family_name}` };
      },
    };
  },
});

// The hub's callbacks are registered once its port is known (see /control).
provider.Client.prototype.redirectUriAllowed = (uri) => registered.includes(uri);

function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

// Re-signs a compact JWS after `change` edited its payload (see the header comment).
function resign(jwt, change, key) {
  const [h, p] = jwt.split('.');
  const header = JSON.parse(Buffer.from(h, 'base64url'));
  const payload = JSON.parse(Buffer.from(p, 'base64url'));
  change(payload);
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  return `${input}.${b64url(sign('sha256', Buffer.from(input), key))}`;
}

const TAMPER = {
  wrong_nonce: (c) => { c.nonce = 'a-nonce-the-hub-never-sent'; },
  wrong_aud: (c) => { c.aud = 'some-other-client'; delete c.azp; },
  extra_aud: (c) => { c.aud = [clientId, 'some-other-client']; c.azp = clientId; },
  wrong_azp: (c) => { c.azp = 'some-other-client'; },
  expired: (c) => { c.iat -= 7200; c.exp = c.iat + 600; },
  // Some providers send email_verified as a string; "yes" is a value nobody can read.
  email_verified_string: (c) => { c.email_verified = 'true'; },
  email_verified_false_string: (c) => { c.email_verified = 'false'; },
  email_verified_word: (c) => { c.email_verified = 'yes'; },
  foreign_key: () => {},
};

provider.use(async (ctx, nextMw) => {
  await nextMw();
  const change = TAMPER[next.mode];
  if (ctx.method === 'POST' && ctx.path === '/token' && change && ctx.body?.id_token) {
    const key = next.mode === 'foreign_key'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey
      : createPrivateKey({ key: signingJwk, format: 'jwk' });
    ctx.body = { ...ctx.body, id_token: resign(ctx.body.id_token, change, key) };
  }
});

async function interaction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { mode, user } = next;
  if (mode === 'access_denied') {
    await provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: '<script>alert("from the IdP")</script> you may not',
    }, { mergeWithLastSubmission: false });
    return;
  }
  const accountId = `sub-${user}`;
  const grant = new provider.Grant({ accountId, clientId: details.params.client_id });
  grant.addOIDCScope(details.params.scope);
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, {
    login: { accountId, amr: mode === 'mfa' ? ['pwd', 'otp'] : ['pwd'] },
    consent: { grantId },
  }, { mergeWithLastSubmission: false });
}

function readJson(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => { try { resolve(JSON.parse(body || '{}')); } catch (e) { reject(e); } });
  });
}

const callback = provider.callback();
createServer(async (req, res) => {
  try {
    const url = new URL(req.url, issuer);
    if (url.pathname === '/control' && req.method === 'POST') {
      const body = await readJson(req);
      next = { user: body.user ?? 'ana', mode: body.mode ?? 'normal' };
      if (Array.isArray(body.redirect_uris)) registered = body.redirect_uris;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
      return;
    }
    if (url.pathname === '/last') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(last));
      return;
    }
    if (url.pathname === '/auth') {
      last = Object.fromEntries(url.searchParams);
    }
    if (url.pathname.startsWith('/interaction/')) {
      await interaction(req, res);
      return;
    }
    callback(req, res);
  } catch (e) {
    console.error('oidc_idp:', e);
    if (!res.headersSent) res.writeHead(500).end(String(e?.message ?? e));
  }
}).listen(port, '127.0.0.1', () => console.log('ready'));
