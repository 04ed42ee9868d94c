// Passkeys in a real browser: Debian's Chromium (driven by playwright-core) with a
// virtual FIDO2 authenticator from the DevTools protocol (WebAuthn.addVirtualAuthenticator:
// CTAP2, internal transport, resident keys, user verification).
//
// A hub administrator (a privileged role) signs in: the password alone does not finish;
// they add a passkey on the second-step page, which signs them in; the portal lists it;
// then they sign in with the passkey alone (discoverable credential), and with password
// + passkey as the second factor. Screenshots of each page go to SCREENSHOT_DIR.
//
// Usage: node passkey_browser.mjs BASE USERNAME PASSWORD SCREENSHOT_DIR
// BASE must be http://localhost:PORT: WebAuthn refuses IP addresses as relying party ids.
// Prints `ok <step>` per step, `all checks passed` at the end, `FAIL <step>: <why>` and
// exit 1 on the first failure (with failure.png).

import {
  check, passwordSignIn as signIn, run, virtualAuthenticator,
} from './browser_steps.mjs';

const argv = process.argv.slice(2);
if (argv.length !== 4) {
  console.error('usage: passkey_browser.mjs BASE USERNAME PASSWORD SCREENSHOT_DIR');
  process.exit(2);
}
const [base, username, password, shotDir] = argv;

await run(shotDir, async (s) => {
  const { page, context } = s;
  const { step, shot, path } = s;
  const passwordSignIn = () => signIn(s, base, username, password);
  const { cdp, authenticatorId } = await virtualAuthenticator(s);

  await step('password-alone-is-not-enough', async () => {
    await passwordSignIn();
    check(path() === '/login/mfa', `after the password: ${page.url()}`);
    await page.getByRole('heading', { name: "Confirm it's you" }).waitFor();
    check((await context.cookies()).every((c) => c.name !== 'hms_session'), 'no session cookie yet');
    await shot('mfa-enrol.png');
    const portal = await page.request.get(`${base}/portal`, { maxRedirects: 0 });
    check(portal.status() === 303, `the portal without a session: ${portal.status()}`);
  });

  await step('add-passkey-at-sign-in', async () => {
    await page.getByLabel('Passkey name').fill('Laptop (virtual)');
    const add = page.getByRole('button', { name: 'Add a passkey' });
    await add.waitFor({ state: 'visible' });
    await Promise.all([page.waitForURL(`${base}/portal`), add.click()]);
    check((await context.cookies()).some((c) => c.name === 'hms_session'), 'signed in');
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    check(credentials.length === 1 && credentials[0].isResidentCredential, `one discoverable credential: ${JSON.stringify(credentials.map((c) => c.isResidentCredential))}`);
  });

  await step('portal-lists-the-passkey', async () => {
    await page.getByRole('link', { name: 'Sign-in security' }).click();
    await page.getByRole('cell', { name: 'Laptop (virtual)', exact: true }).waitFor();
    check(await page.getByText('Your role needs one of them to sign in.').isVisible(), 'the page says why');
    await shot('security.png');
  });

  await step('passwordless-sign-in', async () => {
    await context.clearCookies();
    await page.goto(`${base}/login`);
    const btn = page.getByRole('button', { name: 'Sign in with a passkey' });
    await btn.waitFor({ state: 'visible' });
    await shot('signin-passkey.png');
    await Promise.all([page.waitForURL(`${base}/portal`), btn.click()]);
    check((await context.cookies()).some((c) => c.name === 'hms_session'), 'signed in with the passkey alone');
  });

  await step('passkey-as-second-factor', async () => {
    await context.clearCookies();
    await passwordSignIn();
    check(path() === '/login/mfa', `second step asked: ${page.url()}`);
    const use = page.getByRole('button', { name: 'Use my passkey' });
    await use.waitFor({ state: 'visible' });
    await shot('mfa-passkey.png');
    await Promise.all([page.waitForURL(`${base}/portal`), use.click()]);
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    check(credentials[0].signCount >= 2, `the authenticator signed twice: ${credentials[0].signCount}`);
  });

  await step('no-inline-script', async () => {
    const r = await page.request.get(`${base}/login`);
    const csp = r.headers()['content-security-policy'] || '';
    check(csp.includes("script-src 'self'") && !csp.includes('unsafe-inline'), csp);
  });
});
