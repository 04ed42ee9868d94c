// What the Chromium peer scripts share: Debian's Chromium launched headless through
// playwright-core, named steps that print `ok <step>` or `FAIL <step>: <why>` (with a
// failure.png), screenshots, a virtual WebAuthn authenticator over CDP, and RFC 6238
// codes (an authenticator app's arithmetic, done here with node:crypto).

import { createHmac } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const TIMEOUT_MS = 15_000;
export class CheckFailed extends Error {}
export class StepFailed extends Error {}
export const check = (cond, what) => {
  if (!cond) throw new CheckFailed(what);
};

/// Runs `body(session)` in a fresh browser; exits 0 after `all checks passed`, else 1.
export async function run(shotDir, body) {
  mkdirSync(shotDir, { recursive: true });
  let browser;
  let exitCode = 0;
  const s = {
    page: null,
    context: null,
    shot: (name) => s.page.screenshot({ path: join(shotDir, name), fullPage: true }),
    path: () => new URL(s.page.url()).pathname,
    async step(name, fn) {
      try {
        await fn();
        console.log(`ok ${name}`);
      } catch (err) {
        const why = err instanceof CheckFailed ? err.message : `${err?.name}: ${err?.message}`;
        console.error(`FAIL ${name}: ${why}`);
        if (s.page) {
          console.error(`  page: ${s.page.url()}`);
          await s.page.screenshot({ path: join(shotDir, 'failure.png'), fullPage: true }).catch(() => {});
        }
        throw new StepFailed();
      }
    },
  };
  try {
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--no-first-run'],
      timeout: 60_000,
    });
    s.context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US' });
    s.page = await s.context.newPage();
    s.page.setDefaultTimeout(TIMEOUT_MS);
    await body(s);
    console.log('all checks passed');
  } catch (err) {
    if (!(err instanceof StepFailed)) console.error(`FAIL setup: ${err?.stack || err}`);
    exitCode = 1;
  } finally {
    await browser?.close().catch(() => {});
  }
  process.exit(exitCode);
}

/// A platform authenticator (Touch ID, Windows Hello) with the person's presence and
/// verification simulated: CTAP2, internal transport, resident keys.
export async function virtualAuthenticator(s) {
  const cdp = await s.context.newCDPSession(s.page);
  await cdp.send('WebAuthn.enable', { enableUI: false });
  const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport: 'internal',
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return { cdp, authenticatorId };
}

export async function passwordSignIn(s, base, username, password) {
  await s.page.goto(`${base}/login`);
  await s.page.getByLabel('Username', { exact: true }).fill(username);
  await s.page.getByLabel('Password', { exact: true }).fill(password);
  await s.page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await s.page.waitForLoadState('load');
}

function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of text.replace(/[\s=]/g, '').toUpperCase()) {
    const v = alphabet.indexOf(c);
    if (v < 0) throw new Error(`not base32: ${c}`);
    bits += v.toString(2).padStart(5, '0');
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/// The TOTP code (RFC 6238: HMAC-SHA-1, 30 s steps, 6 digits; RFC 4226 §5.3
/// truncation) of a base32 key for a time step.
export function totp(secretBase32, step) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(step));
  const h = createHmac('sha1', base32Decode(secretBase32)).update(counter).digest();
  const o = h[h.length - 1] & 0x0f;
  const bin = ((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3];
  return String(bin % 1_000_000).padStart(6, '0');
}

export const currentStep = () => Math.floor(Date.now() / 30_000);

/// Waits for a step after `used`: a code works once (RFC 6238 §5.2).
export async function freshStep(used) {
  while (currentStep() <= used) await new Promise((r) => setTimeout(r, 500));
  return currentStep();
}
