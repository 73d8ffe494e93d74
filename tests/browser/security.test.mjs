// Settings -> Security in a real browser: two-factor set up from the QR code's
// secret (codes computed here with node:crypto, RFC 6238), the recovery codes
// shown once, the two-step login, the sessions list with this device marked and
// another revoked, the activity table, and renaming a key. Every screen is
// photographed at desktop and phone size, and read for a stray "null" or
// "undefined" (harness `shoot`).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';

import { PASSWORD, heading, launchBrowser, openPage, pageFetch, shoot, signUp, startServer, strayText, uniqueName } from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});


function base32(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of text.replace(/=+$/, '')) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

/** RFC 6238 TOTP (SHA-1, 6 digits, 30 s) of `secret` at unix time `t`. */
function totp(secret, t = Date.now() / 1000) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(Math.floor(t / 30)));
  const mac = createHmac('sha1', base32(secret)).update(msg).digest();
  const o = mac[19] & 15;
  return String((mac.readUInt32BE(o) & 0x7fffffff) % 1_000_000).padStart(6, '0');
}

async function session(t) {
  const s = await openPage(browser, server.url);
  t.after(() => s.context.close());
  s.clean = () => assert.deepEqual(s.problems, [], 'no CSP violations or script errors');
  return s;
}

async function security(page) {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Security' }).click();
  await heading(page, 'Security');
}

test('two-factor: set up from the QR screen, save the recovery codes, log in with a code', { timeout: 180_000 }, async (t) => {
  const { page, clean } = await session(t);
  const username = await signUp(page, uniqueName('sec'));
  await security(page);
  await page.getByText('Add a second step to logging in').waitFor();
  await shoot(page, '40-security-two-factor-off');

  await page.getByRole('button', { name: 'Set up two-factor' }).click();
  const qr = page.getByRole('img', { name: 'QR code for your authenticator app' });
  await qr.waitFor();
  assert.equal(await qr.evaluate((el) => el.tagName.toLowerCase()), 'svg', 'drawn here, not fetched');
  assert.ok((await qr.locator('path').getAttribute('d')).length > 500, 'the QR code has modules');
  const secret = (await page.locator('[data-secret]').textContent()).trim();
  assert.match(secret, /^[A-Z2-7]{32}$/);
  await shoot(page, '41-security-two-factor-setup');

  await page.getByLabel('Code from your app').fill('000000' === totp(secret) ? '111111' : '000000');
  await page.getByRole('button', { name: 'Turn on' }).click();
  await page.locator('#two-factor .field-error').waitFor();
  // The step this code is of becomes the last one accepted: the login below
  // reuses it (refused) and then sends the step after it (accepted while the
  // server's clock is within one step of it either way).
  const enabledAt = Date.now() / 1000;
  await page.getByLabel('Code from your app').fill(totp(secret, enabledAt));
  await page.getByRole('button', { name: 'Turn on' }).click();
  await page.getByRole('heading', { name: 'Save your recovery codes' }).waitFor();
  const codes = await page.locator('[data-recovery-codes] code').allTextContents();
  assert.equal(codes.length, 10);
  for (const c of codes) assert.match(c, /^[a-z2-9]{4}(-[a-z2-9]{4}){3}$/);
  assert.match(await page.getByRole('link', { name: 'Download .txt' }).getAttribute('href'), /^blob:/);
  await shoot(page, '42-security-recovery-codes');
  await page.getByRole('button', { name: 'I’ve stored them' }).click();
  await page.getByText('Two-factor authentication is on.').waitFor();
  await page.getByText('Logging in asks for a code').waitFor();
  await page.getByText('10 of 10 recovery codes left.').waitFor();
  await shoot(page, '43-security-two-factor-on');

  await page.getByRole('button', { name: 'Log out' }).click();
  await heading(page, 'Log in to Jestha');
  await page.getByLabel('Username or email').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByLabel('Authentication code').waitFor();
  await shoot(page, '44-login-code-step');
  // The enable used this step's code: it is never accepted again.
  await page.getByLabel('Authentication code').fill(totp(secret, enabledAt));
  await page.getByRole('button', { name: 'Verify' }).click();
  await page.locator('.form-error, .field-error').first().waitFor();
  await page.getByLabel('Authentication code').fill(totp(secret, enabledAt + 30));
  await page.getByRole('button', { name: 'Verify' }).click();
  await heading(page, 'Your timeline');

  // A recovery code works from the same screen.
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByLabel('Username or email').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('button', { name: 'Use a recovery code instead' }).click();
  await page.getByLabel('Recovery code').fill(codes[0]);
  await page.getByRole('button', { name: 'Verify' }).click();
  await heading(page, 'Your timeline');

  await security(page);
  const activity = page.locator('#audit');
  await activity.getByText('Two-factor turned on').waitFor();
  await activity.getByText('Recovery code used').waitFor();
  await activity.getByText('Failed login').first().waitFor();
  await page.getByText('9 of 10 recovery codes left.').waitFor();
  await shoot(page, '45-security-activity');
  clean();
});

test('sessions: this device is marked, another one is revoked and logged out at once', { timeout: 120_000 }, async (t) => {
  const { page, clean } = await session(t);
  const username = await signUp(page, uniqueName('sec'));
  // A second sign-in, as another device would (no cookie: the token in the body).
  const other = await pageFetch(page, '/api/auth/login', {
    method: 'POST',
    credentials: 'omit',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ login: username, password: PASSWORD }),
  });
  assert.equal(other.status, 200);
  const token = other.body.session.token;
  await security(page);
  const rows = page.locator('#sessions tbody tr');
  await page.getByText('This device').waitFor();
  assert.equal(await rows.count(), 2);
  await shoot(page, '46-security-sessions');
  await page.locator('#sessions').getByRole('button', { name: 'Revoke' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Revoke session' }).click();
  await page.getByText('Session revoked.').waitFor();
  assert.equal(await page.locator('#sessions tbody tr').count(), 1);
  const me = await pageFetch(page, '/api/auth/me', { credentials: 'omit', headers: { Authorization: `Bearer ${token}` } });
  assert.equal(me.status, 401);
  assert.deepEqual(await strayText(page), []);
  clean();
});

test('a key is renamed on its page, and a key with no endpoints shows no stray text', { timeout: 120_000 }, async (t) => {
  const { page, clean } = await session(t);
  await signUp(page, uniqueName('sec'));
  const made = await pageFetch(page, '/api/auth/api-keys', {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      'X-CSRF-Token': await page.evaluate(() => document.cookie.split('; ').find((c) => c.startsWith('__Host-jes_csrf='))?.split('=')[1] || ''),
    },
    body: JSON.stringify({ label: 'Nightly digest', scopes: ['read:comment'] }),
  });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  await page.goto(`/#/settings/api/keys/${made.body.id}`);
  await heading(page, 'Nightly digest');
  await page.getByText('No endpoints yet.').waitFor();
  assert.deepEqual(await strayText(page), [], 'no "null" above "No endpoints yet"');
  await page.getByLabel('Name', { exact: true }).fill('Weekly digest');
  await page.getByLabel('Description (optional)').fill('Posts the weekly comment digest');
  await page.getByRole('button', { name: 'Save name' }).click();
  await heading(page, 'Weekly digest');
  assert.equal(await page.getByLabel('Description (optional)').inputValue(), 'Posts the weekly comment digest');
  await shoot(page, '47-key-renamed');
  await page.getByLabel('Name', { exact: true }).fill('');
  await page.getByRole('button', { name: 'Save name' }).click();
  await page.locator('.field-error').waitFor();
  clean();
});
