// A real browser signing in to a SAML-only app through the hub (the hub as SAML IdP).
//
// Peers: Playwright (playwright-core) driving Debian's Chromium, and the python3-saml
// SPs of saml_sp.py. The browser follows the app's redirect with its AuthnRequest, signs
// in on the hub's page, and the hub's self-submitting form (its one script, under a CSP
// nonce) posts the signed Response to the app, which answers with what python3-saml
// accepted. Then the same through a portal tile (IdP-initiated).
//
// Usage: node saml_browser.mjs SP_BASE HUB_BASE USERNAME PASSWORD SCREENSHOT_DIR
// Prints `ok <step>` per step and `all checks passed`; on failure `FAIL <step>: <why>`,
// failure.png, exit 1.

import { check, run } from './browser_steps.mjs';

const argv = process.argv.slice(2);
if (argv.length !== 5) {
  console.error('usage: saml_browser.mjs SP_BASE HUB_BASE USERNAME PASSWORD SCREENSHOT_DIR');
  process.exit(2);
}
const [spBase, hubBase, username, password, shotDir] = argv;

await run(shotDir, async (s) => {
  const { page, step, shot } = s;
  const cspViolations = [];
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) cspViolations.push(m.text());
  });

  // The app's answer page is python3-saml's JSON.
  async function appAnswer() {
    await page.waitForURL((u) => u.href.startsWith(`${spBase}/sp1/acs`), { timeout: 15_000 });
    return JSON.parse(await page.locator('body').innerText());
  }

  await step('app-sends-people-to-the-hub', async () => {
    await page.goto(`${spBase}/sp1/login`);
    check(page.url().startsWith(`${hubBase}/login?request=`), `expected the hub's sign-in page, got ${page.url()}`);
    check((await page.locator('html').getAttribute('lang')) === 'en', 'no lang on <html>');
    const text = await page.locator('main').innerText();
    check(text.includes('Gradebook'), `the sign-in page should name the app: ${text}`);
    await shot('saml-signin.png');
  });

  await step('sign-in-posts-a-signed-response-to-the-app', async () => {
    await page.getByLabel('Username', { exact: true }).fill(username);
    await page.getByLabel('Password', { exact: true }).fill(password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    const got = await appAnswer();
    check(got.authenticated === true, `python3-saml refused: ${JSON.stringify(got)}`);
    check(got.nameid_format === 'urn:oasis:names:tc:SAML:2.0:nameid-format:persistent', got.nameid_format);
    check(got.relay_state === '/home', `RelayState ${got.relay_state}`);
    check(cspViolations.length === 0, `CSP violations: ${cspViolations.join('; ')}`);
  });

  await step('portal-tile-signs-in-idp-initiated', async () => {
    await page.goto(`${hubBase}/portal/apps`);
    const tile = page.getByRole('button', { name: 'Open: Gradebook' });
    check((await tile.count()) === 1, 'no accessible Gradebook tile on the portal');
    await shot('portal-tiles.png');
    await tile.click();
    const got = await appAnswer();
    check(got.authenticated === true, `python3-saml refused the unsolicited Response: ${JSON.stringify(got)}`);
    check(got.relay_state === '/from-portal', `RelayState ${got.relay_state}`);
  });
});
