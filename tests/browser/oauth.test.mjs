// OAuth in the web app, in a real browser (Debian's chromium via
// playwright-core) against a fresh `wrangler dev`: an agent's authorization
// request met signed out (login first, then back to the consent screen),
// the consent (client, redirect host, each scope unticked or not, Allow and
// Deny), a client identified by its metadata document's host, the error page for an unknown client, the device page approving a
// CLI's user code, and Settings → Connected apps revoking a grant.
// Screenshots at desktop and phone size go to tests/artifacts/ui/.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import { PASSWORD, launchBrowser, openPage, shoot, startServer, uniqueName } from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer({ CIMD_ALLOW_LOOPBACK: 'true' });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

const address = () => `198.51.${Math.floor(Math.random() * 256)}.${1 + Math.floor(Math.random() * 254)}`;

async function call(path, init = {}) {
  const res = await fetch(server.url + path, init);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

const form = (fields) => ({
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded', 'cf-connecting-ip': address() },
  body: new URLSearchParams(fields).toString(),
});

async function account() {
  const username = uniqueName('oa');
  const r = await call('/api/auth/signup', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, email: `${username}@example.com`, password: PASSWORD }),
  });
  assert.equal(r.status, 201);
  return { username, session: r.body.session.token };
}

async function register(body) {
  const r = await call('/oauth/register', {
    method: 'POST', headers: { 'content-type': 'application/json', 'cf-connecting-ip': address() }, body: JSON.stringify(body),
  });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body.client_id;
}

/** A loopback redirect target (RFC 8252) that records the query it got. */
async function loopback() {
  const seen = [];
  const srv = createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/callback') seen.push(url.searchParams); // not the browser's /favicon.ico
    res.end('done');
  });
  await new Promise((ok) => srv.listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${srv.address().port}/callback`, seen, close: () => srv.close() };
}

function pkce() {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

async function session(t) {
  const s = await openPage(browser, server.url);
  t.after(() => s.context.close());
  return s;
}

async function logIn(page, username) {
  await page.getByRole('heading', { level: 1, name: 'Log in to Jestha' }).waitFor();
  await page.getByLabel('Username or email').fill(username);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
}

async function noNulls(page) {
  const text = await page.locator('main').innerText();
  assert.doesNotMatch(text, /\bnull\b|\bundefined\b/);
}

test('an agent signed out is sent to login, then the consent; unticked scopes are not granted', { timeout: 180_000 }, async (t) => {
  const { page, problems } = await session(t);
  const me = await account();
  const cb = await loopback();
  t.after(cb.close);
  const clientId = await register({ client_name: 'Research Agent', redirect_uris: [cb.url] });
  const { verifier, challenge } = pkce();
  const q = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: cb.url, state: 'xyz',
    code_challenge: challenge, code_challenge_method: 'S256', scope: 'write:jes write:comment read:comment',
    resource: `${server.url}/mcp` });
  await page.goto(`/oauth/authorize?${q}`);
  await logIn(page, me.username);
  await page.getByRole('heading', { level: 1, name: 'Research Agent wants to access your Jestha account' }).waitFor();
  const main = page.locator('main');
  assert.match(await main.innerText(), /sent back to 127\.0\.0\.1:\d+/);
  assert.match(await main.innerText(), /runs on your own computer/);
  for (const s of ['write:jes', 'write:comment', 'read:comment']) {
    assert.equal(await page.locator(`input[name="scopes"][value="${s}"]`).isChecked(), true, s);
  }
  assert.equal(await page.locator('input[name="scopes"]').count(), 3);
  await noNulls(page);
  await shoot(page, 'oauth-consent');
  await page.getByRole('checkbox', { name: /Post Jes/ }).uncheck();
  // Keyboard: the scopes and both buttons are reachable with Tab.
  await page.getByRole('checkbox', { name: /Comment/ }).first().focus();
  await page.keyboard.press('Tab');
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForURL((u) => u.toString().startsWith(cb.url));
  const got = cb.seen.at(-1);
  assert.equal(got.get('state'), 'xyz');
  assert.equal(got.get('iss'), server.url);
  const tokens = await call('/oauth/token', form({ grant_type: 'authorization_code', code: got.get('code'),
    redirect_uri: cb.url, client_id: clientId, code_verifier: verifier }));
  assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
  assert.equal(tokens.body.scope, 'write:comment read:comment');
  assert.deepEqual(problems, []);
});

test('a client whose client_id is its metadata document is named with the host it is published on', { timeout: 180_000 }, async (t) => {
  const { page, problems } = await session(t);
  const me = await account();
  const cb = await loopback();
  t.after(cb.close);
  const docs = createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ client_id: clientId, client_name: 'Doc Agent', redirect_uris: [cb.url],
      token_endpoint_auth_method: 'none' }));
  });
  await new Promise((ok) => docs.listen(0, '127.0.0.1', ok));
  t.after(() => docs.close());
  const host = `127.0.0.1:${docs.address().port}`;
  const clientId = `http://${host}/agent/client.json`;
  const { challenge } = pkce();
  const q = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: cb.url, state: 'c1',
    code_challenge: challenge, code_challenge_method: 'S256', scope: 'read:comment' });
  await page.goto(`/oauth/authorize?${q}`);
  await logIn(page, me.username);
  await page.getByRole('heading', { level: 1, name: 'Doc Agent wants to access your Jestha account' }).waitFor();
  const text = await page.locator('main').innerText();
  assert.ok(text.includes(`Identified by ${host}`), text);
  assert.doesNotMatch(text, /has not verified/);
  await noNulls(page);
  await shoot(page, 'oauth-consent-cimd');
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.waitForURL((u) => u.toString().startsWith(cb.url));
  assert.ok(cb.seen.at(-1).get('code'));
  assert.deepEqual(problems, []);
});

test('deny sends access_denied back, and an unknown client stays on our error page', { timeout: 180_000 }, async (t) => {
  const { page, problems } = await session(t);
  const me = await account();
  const cb = await loopback();
  t.after(cb.close);
  const clientId = await register({ client_name: 'Denied Agent', redirect_uris: [cb.url] });
  const { challenge } = pkce();
  const q = new URLSearchParams({ response_type: 'code', client_id: clientId, redirect_uri: cb.url, state: 's1',
    code_challenge: challenge, code_challenge_method: 'S256' });
  await page.goto('/#/login');
  await logIn(page, me.username);
  await page.getByRole('heading', { level: 1, name: 'Your timeline' }).waitFor();
  await page.goto(`/oauth/authorize?${q}`);
  await page.getByRole('heading', { level: 1, name: /Denied Agent wants/ }).waitFor();
  assert.equal(await page.locator('input[name="scopes"]').count(), 5, 'no scope asked: all five, never webhooks:manage');
  await page.getByRole('button', { name: 'Deny' }).click();
  await page.waitForURL((u) => u.toString().startsWith(cb.url));
  assert.equal(cb.seen.at(-1).get('error'), 'access_denied');
  assert.equal(cb.seen.at(-1).get('state'), 's1');
  q.set('client_id', 'cli_unknown');
  q.set('redirect_uri', 'https://evil.example/cb');
  await page.goto(`/oauth/authorize?${q}`);
  await page.getByRole('heading', { level: 1, name: 'This app’s request cannot be completed' }).waitFor();
  assert.match(page.url(), /#\/oauth\/error\?/);
  assert.match(await page.locator('main').innerText(), /unknown client_id/);
  await shoot(page, 'oauth-error');
  assert.deepEqual(problems, []);
});

test('the device page approves a CLI’s code, and Connected apps revokes it', { timeout: 180_000 }, async (t) => {
  const { page, problems } = await session(t);
  const me = await account();
  const clientId = await register({ client_name: 'Jestha CLI', grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'], response_types: [] });
  const d = await call('/oauth/device', form({ client_id: clientId, scope: 'write:jes read:comment' }));
  assert.equal(d.status, 200);
  await page.goto(d.body.verification_uri_complete.replace(server.url, ''));
  await logIn(page, me.username);
  await page.getByRole('heading', { level: 1, name: 'Connect a device' }).waitFor();
  assert.equal(await page.getByLabel('Code shown on your device').inputValue(), d.body.user_code);
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { level: 2, name: 'Jestha CLI wants to access your Jestha account' }).waitFor();
  await noNulls(page);
  await shoot(page, 'oauth-device');
  await page.getByRole('button', { name: 'Allow' }).click();
  await page.getByText('Done: return to your device.').waitFor();
  const tokens = await call('/oauth/token', form({ grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
    device_code: d.body.device_code, client_id: clientId }));
  assert.equal(tokens.status, 200, JSON.stringify(tokens.body));
  const bearer = { headers: { authorization: `Bearer ${tokens.body.access_token}` } };
  assert.equal((await call('/api/auth/me', bearer)).status, 200);

  await page.getByRole('link', { name: 'Connected apps' }).click();
  await page.getByRole('heading', { level: 1, name: 'Connected apps' }).waitFor();
  const card = page.locator('li', { has: page.getByRole('heading', { name: 'Jestha CLI' }) });
  assert.match(await card.innerText(), /write:jes/);
  assert.match(await card.innerText(), /read:comment/);
  await noNulls(page);
  await shoot(page, 'oauth-connected-apps');
  await card.getByRole('button', { name: 'Revoke' }).click();
  await page.getByRole('dialog').getByRole('button', { name: 'Revoke access' }).click();
  await page.getByText('No app is connected.').waitFor();
  const after = await call('/api/auth/me', bearer);
  assert.equal(after.status, 401);
  assert.equal(after.body.error.code, 'invalid_token');
  assert.deepEqual(problems, []);
});
