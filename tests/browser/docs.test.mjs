// The API reference at /docs in a real browser (Debian's chromium via
// playwright-core) against a fresh `wrangler dev`: Swagger UI, served from
// public/ as static assets, renders every operation and webhook of the
// document the API serves, under the same strict Content-Security-Policy as
// the web app, with no console error; and "Try it out" makes a real call.
// Screenshots: tests/artifacts/ui/docs-*.png.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { launchBrowser, openPage, shoot, startServer, uniqueName } from './harness.mjs';

let server;
let browser;
const RENDER_MS = 90_000;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** A page that also records every console error (the harness records CSP reports and script errors). */
async function docsPage(t) {
  const s = await openPage(browser, server.url);
  s.page.on('console', (m) => {
    if (m.type() === 'error') s.problems.push(`console error: ${m.text()}`);
  });
  s.page.on('requestfailed', (r) => s.problems.push(`request failed: ${r.url()}`));
  s.page.on('request', (r) => {
    if (!r.url().startsWith(server.url) && !r.url().startsWith('data:')) s.problems.push(`request off the origin: ${r.url()}`);
  });
  t.after(() => s.context.close());
  return s;
}

async function signUpWithKey() {
  const username = uniqueName('docs');
  const post = (path, body, token) => fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  }).then(async (r) => ({ status: r.status, body: await r.json() }));
  const signup = await post('/api/auth/signup', { username, email: `${username}@example.com`, password: 'correct horse battery' });
  assert.equal(signup.status, 201);
  const key = await post('/api/auth/api-keys', { label: 'docs', preset: 'scheduler' }, signup.body.session.token);
  assert.equal(key.status, 201);
  return { username, key: key.body.key };
}

test('/docs renders every operation and webhook of /openapi.json under the strict CSP, with no console error', { timeout: 240_000 }, async (t) => {
  const doc = await (await fetch(`${server.url}/openapi.json`)).json();
  const operations = Object.values(doc.paths).reduce((n, item) => n + Object.keys(item).length, 0);
  const webhooks = Object.keys(doc.webhooks).length;
  assert.ok(operations > 50 && webhooks >= 12, `${operations} operations, ${webhooks} webhooks`);

  const { page, problems } = await docsPage(t);
  const res = await page.goto('/docs');
  assert.equal(new URL(page.url()).pathname, '/docs/');
  const csp = res.headers()['content-security-policy'];
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);

  // Swagger UI resolves the whole document first: seconds on a laptop, more on a loaded test machine.
  await page.locator('#reference:not([aria-busy])').waitFor({ timeout: RENDER_MS });
  await page.getByRole('heading', { name: /Jestha Edge API/ }).waitFor();
  // Every operation and every webhook event is one block.
  await page.locator('.opblock').nth(operations + webhooks - 1).waitFor();
  assert.equal(await page.locator('.opblock').count(), operations + webhooks);
  for (const path of ['/api/posts/{id}/comments', '/api/auth/api-keys/{id}/webhooks']) {
    assert.ok(await page.locator('.opblock-summary-path', { hasText: path }).count() >= 2, path);
  }
  assert.equal(await page.locator('.opblock-summary-path', { hasText: 'comment.created' }).count(), 1);
  await shoot(page, 'docs-01-reference');

  // One operation opened: its example body, the Idempotency-Key parameter and the rate-limit headers.
  const create = page.locator('.opblock-post', { has: page.locator('.opblock-summary-path', { hasText: /^\/api\/posts$/ }) });
  await create.locator('.opblock-summary-control').click();
  await create.getByText('Idempotency-Key', { exact: true }).first().waitFor();
  await create.getByText('Hello from my service #launch').first().waitFor();
  await create.getByText('X-RateLimit-Remaining').first().waitFor();
  await create.getByText('idempotency_key_reused').first().waitFor();
  await shoot(page, 'docs-02-create-jes');
  assert.deepEqual(problems, [], 'no CSP violation, script error, console error or off-origin request');
});

test('"Try it out" on /docs calls the API with an API key and shows the answer', { timeout: 240_000 }, async (t) => {
  const { username, key } = await signUpWithKey();
  const { page, problems } = await docsPage(t);
  await page.goto('/docs/');
  await page.locator('#reference:not([aria-busy])').waitFor({ timeout: RENDER_MS });

  await page.getByRole('button', { name: 'Authorize' }).first().click();
  const dialog = page.locator('.modal-ux');
  const apiKey = dialog.locator('.auth-container', { hasText: 'apiKey (http, Bearer)' });
  await apiKey.locator('input').fill(key);
  await apiKey.locator('button.authorize').click();
  await apiKey.getByText('Authorized').waitFor();
  await dialog.locator('button.close-modal').click();

  const me = page.locator('.opblock-get', { has: page.locator('.opblock-summary-path', { hasText: /^\/api\/auth\/me$/ }) });
  await me.locator('.opblock-summary-control').click();
  await me.getByRole('button', { name: 'Try it out' }).click();
  await me.getByRole('button', { name: 'Execute' }).click();
  const live = me.locator('.live-responses-table');
  await live.locator('.response-col_status', { hasText: '200' }).waitFor();
  await live.getByText(`"username": "${username}"`).waitFor();
  await live.getByText(/x-ratelimit-remaining/i).first().waitFor();
  await shoot(page, 'docs-03-try-it-out');
  assert.deepEqual(problems, [], 'no CSP violation, script error, console error or off-origin request');
});
