// Every main page of the hub in a real browser, with the configuration a district runs
// (a SAML and an OIDC district IdP, a SAML app, a second factor for privileged roles):
// issue 14, defect 1. Each page is checked with axe-core (WCAG 2.1 A and AA rules) and
// saved as a screenshot.
//
// Peers: Playwright (playwright-core) driving Debian's Chromium; axe-core (Deque's
// accessibility engine), injected into each page (CSP bypassed for the injection only).
//
// Usage:
//   node pages_browser.mjs BASE CLIENT_ID REDIRECT_URI USER PASSWORD ADMIN ADMIN_PASSWORD SHOT_DIR
//
// Prints `ok <step>` per step and `all checks passed` at the end; on the first failure
// prints `FAIL <step>: <why>` to stderr, saves failure.png and exits 1.

import { mkdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const argv = process.argv.slice(2);
if (argv.length !== 8) {
  console.error('usage: pages_browser.mjs BASE CLIENT_ID REDIRECT_URI USER PASSWORD ADMIN ADMIN_PASSWORD SHOT_DIR');
  process.exit(2);
}
const [base, clientId, redirectUri, username, password, admin, adminPassword, shotDir] = argv;
const CHROMIUM = '/usr/bin/chromium';
const TIMEOUT_MS = 15_000;
mkdirSync(shotDir, { recursive: true });
const AXE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

class CheckFailed extends Error {}
class StepFailed extends Error {}
function check(cond, what) {
  if (!cond) throw new CheckFailed(what);
}

let page;
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

// axe-core on the page as it is now: no WCAG 2.1 A/AA violation, the hub's layout
// (skip link, main landmark, stylesheet applied), a screenshot.
async function audit(name) {
  await page.addScriptTag({ content: AXE });
  const result = await page.evaluate(() =>
    // eslint-disable-next-line no-undef
    axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } }),
  );
  const violations = result.violations.map(
    (v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).slice(0, 3).join(', ')}`,
  );
  check(violations.length === 0, `${name}: axe-core found ${violations.join('; ')}`);
  check((await page.locator('main#main').count()) === 1, `${name}: no main landmark`);
  check((await page.locator('a.skip').count()) === 1, `${name}: no skip link`);
  const brandColour = await page.locator('header.top').evaluate((el) => getComputedStyle(el).backgroundColor);
  check(brandColour && brandColour !== 'rgba(0, 0, 0, 0)', `${name}: the stylesheet is not applied`);
  const text = await page.locator('body').innerText();
  check(!/\{\{|\{%|could not be shown/.test(text), `${name}: template text shown: ${text.slice(0, 200)}`);
  await page.screenshot({ path: join(shotDir, `${name}.png`), fullPage: true });
}

async function visit(path, status, name) {
  const resp = await page.goto(new URL(path, base).href);
  check(resp, `no response for ${path}`);
  check(resp.status() === status, `${path} answered ${resp.status()}, wanted ${status}`);
  await audit(name);
  return resp;
}

// The client's redirect_uri.
const callback = new URL(redirectUri);
let resolveCallback;
const callbackHit = new Promise((resolve) => {
  resolveCallback = resolve;
});
const server = createServer((req, res) => {
  const url = new URL(req.url, redirectUri);
  resolveCallback(url.searchParams);
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><title>ok</title>');
});

let browser;
let exitCode = 0;
try {
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(callback.port), callback.hostname, resolve);
  });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
    timeout: 60_000,
  });
  // bypassCSP: only so axe-core can be injected; the hub's CSP is checked elsewhere.
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
  page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT_MS);

  const authorize = new URL('/oauth2/authorize', base);
  authorize.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    scope: 'openid profile email',
    state: 'st',
    nonce: 'nn',
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
    code_challenge_method: 'S256',
  }).toString();

  await step('sign-in-page-with-district-idps', async () => {
    const resp = await page.goto(authorize.href);
    check(resp.status() === 200, `the sign-in page for an app answered ${resp.status()}`);
    check(new URL(page.url()).pathname === '/login', `landed on ${page.url()}`);
    const intro = await page.locator('main p').first().innerText();
    check(
      intro.includes('Sign in with your district account to continue to District LMS.'),
      `the sign-in sentence reads: ${intro}`,
    );
    const idp = page.getByRole('link', { name: 'Sign in with District SSO' });
    check((await idp.count()) === 1, 'no button for the district SAML IdP');
    const href = await idp.getAttribute('href');
    check(href.startsWith('/login/idp/district?request='), `the IdP button lost the request: ${href}`);
    check((await page.getByText('Staff (Entra)').count()) === 1, 'the OIDC IdP is not listed');
    await audit('signin-district');
  });

  await step('consent-and-back-to-the-app', async () => {
    await page.getByLabel('Username', { exact: true }).fill(username);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL((u) => u.pathname === '/consent');
    await audit('consent');
    await page.getByRole('button', { name: 'Allow' }).click();
    const params = await Promise.race([
      callbackHit,
      new Promise((_, reject) => setTimeout(() => reject(new CheckFailed('the app was never called back')), TIMEOUT_MS)),
    ]);
    check(params.get('code') && params.get('state') === 'st', `callback: ${params}`);
  });

  await step('portal-pages', async () => {
    await visit('/portal', 200, 'portal');
    await visit('/portal/sessions', 200, 'sessions');
    await visit('/portal/apps', 200, 'apps');
    check((await page.getByText('Portal app').count()) >= 1, 'the SAML app tile is missing');
    await visit('/portal/security', 200, 'security');
    await visit('/portal/password', 200, 'password');
    await visit('/oauth2/logout', 200, 'signout-question');
  });

  await step('error-pages', async () => {
    await visit('/portal/no-such-page', 404, 'error-404');
    await visit('/consent?request=gone', 400, 'error-expired-request');
    const link = page.getByRole('link', { name: 'Open my apps' });
    check((await link.count()) === 1, 'the expired-request page has no link to the apps');
    await visit('/saml/idp/sso?SAMLRequest=broken', 400, 'error-saml');
  });

  await step('another-address', async () => {
    // The hub is at 127.0.0.1; opened as localhost, it says where it is.
    const other = new URL('/login', base);
    other.hostname = 'localhost';
    const resp = await page.goto(other.href);
    check(resp.status() === 421, `another address answered ${resp.status()}`);
    const text = await page.locator('main').innerText();
    check(text.includes(new URL(base).origin), `the page does not name the hub's address: ${text}`);
    const link = page.getByRole('link', { name: 'Open the hub at its address' });
    check((await link.getAttribute('href')) === `${new URL(base).origin}/login`, 'no link to the right address');
    await audit('another-address');
  });

  await step('second-step-for-a-privileged-person', async () => {
    const ctx2 = await browser.newContext({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
    page = await ctx2.newPage();
    page.setDefaultTimeout(TIMEOUT_MS);
    await page.goto(new URL('/login', base).href);
    await page.getByLabel('Username', { exact: true }).fill(admin);
    await page.getByLabel('Password', { exact: true }).fill(adminPassword);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: "Confirm it's you" }).waitFor({ state: 'visible' });
    await audit('second-step-setup');
    await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
    await page.getByRole('heading', { name: 'Set up an authenticator app' }).waitFor({ state: 'visible' });
    await audit('authenticator-setup');
  });
  console.log('all checks passed');
} catch (err) {
  if (!(err instanceof StepFailed)) console.error(`FAIL setup: ${err?.stack ?? err}`);
  exitCode = 1;
} finally {
  await browser?.close().catch(() => {});
  server.close();
}
process.exit(exitCode);
