// A person approving an OAuth request in Chromium, for tests whose client is
// not a browser (the MCP SDK's OAuthClientProvider, the `jestha` CLI):
//
//   node tests/browser/approve.mjs URL LOGIN PASSWORD [--untick SCOPE]... [--deny]
//
// URL is where the client sends the person: an authorization URL
// (/oauth/authorize?…) or a device verification URL (/device?user_code=…).
// Signs in on the login page it lands on, then answers the consent screen
// (or the device page). For an authorization URL it waits until the browser
// has reached the client's redirect URI. Exit 0 when done; the reason on
// stderr and exit 1 otherwise.

import { launchBrowser } from './harness.mjs';

const [url, login, password, ...rest] = process.argv.slice(2);
const untick = [];
let decision = 'Allow';
for (let i = 0; i < rest.length; i++) {
  if (rest[i] === '--untick') untick.push(rest[++i]);
  else if (rest[i] === '--deny') decision = 'Deny';
}
if (!url || !login || !password) {
  console.error('usage: approve.mjs URL LOGIN PASSWORD [--untick SCOPE]... [--deny]');
  process.exit(2);
}

const browser = await launchBrowser();
try {
  const page = await browser.newPage();
  page.setDefaultTimeout(30_000);
  const origin = new URL(url).origin;
  await page.goto(url);
  await page.getByRole('heading', { level: 1, name: 'Log in to Jestha' }).waitFor();
  await page.getByLabel('Username or email').fill(login);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Log in' }).click();
  const device = new URL(url).pathname === '/device';
  if (device) {
    await page.getByRole('heading', { level: 1, name: 'Connect a device' }).waitFor();
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.getByRole('heading', { level: 2, name: /wants to access your Jestha account/ }).waitFor();
  } else {
    await page.getByRole('heading', { level: 1, name: /wants to access your Jestha account/ }).waitFor();
  }
  for (const scope of untick) await page.locator(`input[name="scopes"][value="${scope}"]`).uncheck();
  await page.getByRole('button', { name: decision }).click();
  if (device) {
    await page.getByText(decision === 'Allow' ? 'Done: return to your device.' : 'Denied: the device was not given access.').waitFor();
  } else {
    await page.waitForURL((u) => u.origin !== origin);
  }
} catch (err) {
  console.error(`approve.mjs: ${err.message}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
