// A real browser signing a person in at the hub, as a third-party public client would.
//
// Peer: Playwright (playwright-core, no bundled browser) driving Debian's Chromium. The
// client is a public client using PKCE; its redirect_uri is served by this script
// (http://127.0.0.1:<port>/callback), and it redeems the code with a plain fetch.
//
// Usage:
//   node browser_signin.mjs BASE CLIENT_ID REDIRECT_URI USERNAME PASSWORD SCREENSHOT_DIR
//
// Prints `ok <step>` per step and `all checks passed` at the end; on the first failure
// prints `FAIL <step>: <why>` to stderr, saves failure.png and exits 1.

import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const argv = process.argv.slice(2);
if (argv.length !== 6) {
  console.error('usage: browser_signin.mjs BASE CLIENT_ID REDIRECT_URI USERNAME PASSWORD SCREENSHOT_DIR');
  process.exit(2);
}
const [base, clientId, redirectUri, username, password, shotDir] = argv;
const CHROMIUM = '/usr/bin/chromium';
const TIMEOUT_MS = 15_000;
mkdirSync(shotDir, { recursive: true });

// ---------------------------------------------------------------------------------------
// Reporting

class CheckFailed extends Error {}

function check(cond, what) {
  if (!cond) throw new CheckFailed(what);
}

let page; // the one tab, for failure screenshots

async function step(name, fn) {
  try {
    const result = await fn();
    console.log(`ok ${name}`);
    return result;
  } catch (err) {
    const why = err instanceof CheckFailed ? err.message : `${err?.name}: ${err?.message}`;
    console.error(`FAIL ${name}: ${why}`);
    if (page) {
      console.error(`  page: ${page.url()}`);
      await page.screenshot({ path: join(shotDir, 'failure.png'), fullPage: true }).catch(() => {});
    }
    throw new StepFailed();
  }
}

class StepFailed extends Error {}

const shot = (name) => page.screenshot({ path: join(shotDir, name), fullPage: true });

// ---------------------------------------------------------------------------------------
// The client's redirect_uri: a tiny HTTP server that records the authorization response.

const callback = new URL(redirectUri);
let resolveCallback;
const callbackHit = new Promise((resolve) => {
  resolveCallback = resolve;
});
const server = createServer((req, res) => {
  const url = new URL(req.url, redirectUri);
  if (url.pathname !== callback.pathname) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    return;
  }
  resolveCallback(url.searchParams);
  res
    .writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    .end('<!doctype html><html lang="en"><title>Signed in</title><h1>signed in</h1></html>');
});

// ---------------------------------------------------------------------------------------
// Helpers

const b64url = (buf) => Buffer.from(buf).toString('base64url');
const random = () => b64url(randomBytes(32));

function decodeJwtPayload(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

// The field labelled `text`: prefer an exact label, else the first label containing it.
async function field(text) {
  const exact = page.getByLabel(text, { exact: true });
  if ((await exact.count()) === 1) return exact;
  const loose = page.getByLabel(text);
  check((await loose.count()) >= 1, `no form field labelled "${text}" on ${page.url()}`);
  return loose.first();
}

const isFocused = (locator) => locator.evaluate((el) => el === document.activeElement);

// Presses Tab until `locator` has focus (at most `max` presses); true when it got there.
async function tabTo(locator, max) {
  for (let i = 0; i <= max; i++) {
    if (await isFocused(locator)) return true;
    await page.keyboard.press('Tab');
  }
  return isFocused(locator);
}

async function onSignInPage() {
  return (await page.getByLabel('Password').count()) > 0 && (await page.getByLabel('Username').count()) > 0;
}

// ---------------------------------------------------------------------------------------
// The flow

let browser;
let exitCode = 0;
try {
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(callback.port), callback.hostname, resolve);
  });

  const discovery = await (
    await fetch(`${base}/.well-known/openid-configuration`, { signal: AbortSignal.timeout(TIMEOUT_MS) })
  ).json();

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    timeout: 60_000,
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US' });
  page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);
  page.on('dialog', (dialog) => dialog.accept()); // e.g. a confirm() before signing out

  const verifier = random();
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  const state = random();
  const nonce = random();
  const authorize = new URL(discovery.authorization_endpoint);
  authorize.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    scope: 'openid profile email',
    state,
    nonce,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }).toString();

  // 1. The sign-in page: language declared, a heading, labelled fields, keyboard-usable.
  let signInResponse;
  await step('sign-in-page', async () => {
    signInResponse = await page.goto(authorize.href);
    check(signInResponse, 'no response for the authorize URL');
    check(signInResponse.status() === 200, `sign-in page answered ${signInResponse.status()}`);
    check(new URL(page.url()).pathname === '/login', `authorize should land on /login, got ${page.url()}`);
    const lang = await page.locator('html').getAttribute('lang');
    check(lang && lang.trim(), '<html> has no lang attribute (screen readers need it)');
    await page.locator('h1').first().waitFor({ state: 'visible' });
    const user = await field('Username');
    const pass = await field('Password');
    await user.waitFor({ state: 'visible' });
    await pass.waitFor({ state: 'visible' });
    // Keyboard users: focus starts in the username field or Tab reaches it, and Tab goes
    // on from it to the password field.
    check(await tabTo(user, 15), 'Tab never reaches the username field');
    check(await tabTo(pass, 5), 'Tab from the username field does not reach the password field');
    await shot('signin.png');
  });

  // 2. A wrong password: an error announced with role="alert", no redirect to the client.
  await step('wrong-password', async () => {
    await (await field('Username')).fill(username);
    await (await field('Password')).fill(`${password}-wrong`);
    // Wait for the POST's answer itself, so an alert region already on the old page
    // cannot satisfy the check.
    const [answer] = await Promise.all([
      page.waitForResponse(
        (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/login',
      ),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    check(
      answer.status() === 200 || answer.status() === 401,
      `wrong password should answer 200/401 with the sign-in page, got ${answer.status()}`,
    );
    await page.waitForLoadState('load');
    await page.getByRole('alert').first().waitFor({ state: 'visible' });
    check(new URL(page.url()).pathname === '/login', `wrong password left the sign-in page: ${page.url()}`);
    check(await onSignInPage(), 'the sign-in form is not shown again after a wrong password');
    await shot('signin-error.png');
  });

  // 3. The right password, typed and submitted with Enter; the client is third-party, so
  // the consent page asks before sharing anything.
  await step('consent-page', async () => {
    const user = await field('Username');
    await user.fill(username);
    const pass = await field('Password');
    await pass.fill('');
    await pass.pressSequentially(password);
    const [answer] = await Promise.all([
      page.waitForResponse(
        (r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/login',
      ),
      pass.press('Enter'),
    ]);
    check(
      [302, 303].includes(answer.status()),
      `the correct password was not accepted: POST /login answered ${answer.status()}`,
    );
    await page.waitForURL((u) => u.pathname === '/consent');
    await page.getByRole('heading').first().waitFor({ state: 'visible' });
    // The requested scopes are listed: as list items, or at least named in the text.
    const text = (await page.locator('body').innerText()).toLowerCase();
    const items = await page.locator('li').count();
    check(
      items >= 1 || (text.includes('profile') && text.includes('email')),
      'the consent page does not list what is being shared',
    );
    await page.getByRole('button', { name: 'Allow' }).waitFor({ state: 'visible' });
    await page.getByRole('button', { name: 'Deny' }).waitFor({ state: 'visible' });
    await shot('consent.png');
    await page.getByRole('button', { name: 'Allow' }).click();
  });

  // 4. Back at the client with code, state and iss (RFC 9207); the code is redeemed with
  // the PKCE verifier by a plain fetch, as a public client (no secret) does.
  let idClaims;
  await step('code-exchange', async () => {
    const params = await Promise.race([
      callbackHit,
      new Promise((_, reject) =>
        setTimeout(() => reject(new CheckFailed('the redirect_uri was never called')), TIMEOUT_MS),
      ),
    ]);
    await page.waitForURL((u) => u.pathname === callback.pathname);
    check(!params.get('error'), `authorization error: ${params.toString()}`);
    check(params.get('code'), 'no code at the redirect_uri');
    check(params.get('state') === state, `state ${params.get('state')} != ${state}`);
    check(params.get('iss') === base, `iss ${params.get('iss')} != ${base}`);
    const res = await fetch(discovery.token_endpoint, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: params.get('code'),
        redirect_uri: redirectUri,
        client_id: clientId,
        code_verifier: verifier,
      }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    const body = await res.text();
    check(res.status === 200, `token endpoint answered ${res.status}: ${body.slice(0, 300)}`);
    const tokens = JSON.parse(body);
    check(typeof tokens.access_token === 'string', 'token response has no access_token');
    check(typeof tokens.id_token === 'string', 'token response has no id_token');
    idClaims = decodeJwtPayload(tokens.id_token);
    check(idClaims.nonce === nonce, `ID token nonce ${idClaims.nonce} != ${nonce}`);
    const aud = [idClaims.aud].flat();
    check(aud.includes(clientId), `ID token aud ${idClaims.aud} lacks ${clientId}`);
  });

  // 5. The person's own portal: profile, sessions, "Sign out everywhere".
  await step('portal', async () => {
    await page.goto(`${base}/portal`);
    const name = idClaims.name ?? username;
    await page.getByText(name).first().waitFor({ state: 'visible' });
    await shot('portal.png');

    await page.goto(`${base}/portal/sessions`);
    // A session row: a table body row, else a list item in the main content.
    let rows = await page.locator('tbody tr').count();
    if (rows === 0) rows = await page.locator('main li').count();
    if (rows === 0) rows = await page.locator('li').count();
    check(rows >= 1, 'the sessions page lists no session');
    await shot('sessions.png');

    await page.getByRole('button', { name: 'Sign out everywhere' }).click();
    // Ends on the sign-in page, or on a signed-out page that links to it.
    await page.waitForFunction(
      () =>
        document.querySelector('input[type=password]') !== null ||
        [...document.querySelectorAll('a')].some((a) => /sign\s*in/i.test(a.textContent)),
    );

    // The portal now asks for a sign-in.
    await page.goto(`${base}/portal`);
    await (await field('Password')).waitFor({ state: 'visible' });
    check(await onSignInPage(), `/portal after signing out does not show the sign-in page (${page.url()})`);
  });

  // 6. The sign-in page cannot be framed (clickjacking): XFO DENY and CSP frame-ancestors.
  await step('security-headers', async () => {
    const headers = signInResponse.headers();
    check(
      (headers['x-frame-options'] ?? '').trim().toUpperCase() === 'DENY',
      `x-frame-options should be DENY, got ${headers['x-frame-options']}`,
    );
    const csp = headers['content-security-policy'] ?? '';
    check(/frame-ancestors\s+'none'/i.test(csp), `CSP lacks frame-ancestors 'none': ${csp}`);
  });

  console.log('all checks passed');
} catch (err) {
  if (!(err instanceof StepFailed)) console.error(`FAIL setup: ${err?.stack ?? err}`);
  exitCode = 1;
} finally {
  await browser?.close().catch(() => {});
  server.close();
  server.closeAllConnections?.();
}
process.exit(exitCode);
