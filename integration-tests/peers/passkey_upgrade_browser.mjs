// A role made passkey-only (`mfa.privileged_roles = "passkey"`) whose holder has only an
// authenticator app, in Debian's Chromium with a virtual authenticator (CDP):
//   phase `totp`: a person with no privileged role signs in with the password and sets
//     up an authenticator app in the portal (the code computed here, RFC 6238); prints
//     `secret=KEY step=N`. The test then grants them a privileged role.
//   phase `upgrade KEY N`: the password alone does not finish, the page asks for the
//     app's code first and signs nothing in with it, then the person adds a passkey,
//     which signs them in; the portal lists it; the authenticator holds one credential.
//
// Usage: node passkey_upgrade_browser.mjs BASE USERNAME PASSWORD SCREENSHOT_DIR totp
//        node passkey_upgrade_browser.mjs BASE USERNAME PASSWORD SCREENSHOT_DIR upgrade KEY STEP
// BASE must be http://localhost:PORT (WebAuthn refuses IP addresses).

import {
  check, currentStep, freshStep, passwordSignIn, run, totp, virtualAuthenticator,
} from './browser_steps.mjs';

const argv = process.argv.slice(2);
const [base, username, password, shotDir, phase, key, usedStep] = argv;
if (!(phase === 'totp' && argv.length === 5) && !(phase === 'upgrade' && argv.length === 7)) {
  console.error('usage: passkey_upgrade_browser.mjs BASE USERNAME PASSWORD SCREENSHOT_DIR totp|upgrade [KEY STEP]');
  process.exit(2);
}

await run(shotDir, async (s) => {
  if (phase === 'totp') {
    await s.step('authenticator-app-set-up-in-the-portal', async () => {
      await passwordSignIn(s, base, username, password);
      check(s.path() === '/portal', `signed in with the password alone: ${s.page.url()}`);
      await s.page.getByRole('link', { name: 'Sign-in security' }).click();
      await s.page.getByRole('button', { name: 'Set up an authenticator app' }).click();
      const secret = (await s.page.getByTestId('totp-secret').innerText()).trim();
      const step = currentStep();
      await s.page.getByLabel('6-digit code from your authenticator app').fill(totp(secret, step));
      await s.page.getByRole('button', { name: 'Turn on' }).click();
      // The app is on, and the page says so: this session set up the person's only
      // factor, so it is not asked for a code from the app it just added (issue 14).
      await s.page.waitForURL(`${base}/portal/security?done=totp`);
      await s.page.getByText('Authenticator app turned on.').waitFor();
      console.log(`secret=${secret} step=${step}`);
    });
    return;
  }
  const { cdp, authenticatorId } = await virtualAuthenticator(s);
  await s.step('code-first-then-a-passkey', async () => {
    await passwordSignIn(s, base, username, password);
    check(s.path() === '/login/mfa', `after the password: ${s.page.url()}`);
    await s.page.getByText('First confirm it').waitFor();
    await s.shot('upgrade-code.png');
    const step = await freshStep(Number(usedStep));
    await s.page.getByLabel('6-digit code from your authenticator app').fill(totp(key, step));
    await s.page.getByRole('button', { name: 'Verify', exact: true }).click();
    await s.page.getByText('Now add a passkey').waitFor();
    check(s.path() === '/login/mfa/code', `still signing in: ${s.page.url()}`);
    check((await s.context.cookies()).every((c) => c.name !== 'hms_session'), 'the code signed nothing in');
    await s.shot('upgrade-passkey.png');
  });
  await s.step('passkey-added-signs-in', async () => {
    await s.page.getByLabel('Passkey name').fill('Laptop (virtual)');
    const add = s.page.getByRole('button', { name: 'Add a passkey' });
    await add.waitFor({ state: 'visible' });
    await Promise.all([s.page.waitForURL(`${base}/portal`), add.click()]);
    check((await s.context.cookies()).some((c) => c.name === 'hms_session'), 'signed in');
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    check(credentials.length === 1, `one credential: ${credentials.length}`);
    await s.page.getByRole('link', { name: 'Sign-in security' }).click();
    await s.page.getByRole('cell', { name: 'Laptop (virtual)', exact: true }).waitFor();
    check(await s.page.getByText('Your role needs a passkey to sign in.').isVisible(), 'the page says why');
  });
});
