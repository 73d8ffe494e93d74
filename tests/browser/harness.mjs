// Browser-test harness: a fresh `wrangler dev` (own state directory, free
// port, schema applied, whole process group stopped at the end, as
// tests/conftest.py does) and Debian's chromium driven by playwright-core.
// Never a downloaded browser: the executable is /usr/bin/chromium, which
// scripts/setup.sh installs from Debian's packages.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const ARTIFACTS = join(ROOT, 'tests', 'artifacts', 'ui');
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const DESKTOP = { width: 1280, height: 800 };
export const PHONE = { width: 390, height: 844 };

const ENV = {
  ...process.env,
  PATH: `${join(ROOT, 'node_modules', '.bin')}:${join(homedir(), '.cargo', 'bin')}:${process.env.PATH || ''}`,
  WRANGLER_SEND_METRICS: 'false',
  WRANGLER_LOG_PATH: join(ROOT, '.wrangler', 'logs'),
};

function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

const live = new Set();
function killGroup(child, signal) {
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}
process.on('exit', () => {
  for (const s of live) killGroup(s.child, 'SIGKILL');
});

/** Starts `wrangler dev` with its own state; `stop()` ends its process group. */
export async function startServer(vars = {}, timeoutMs = 120_000, portRetries = 2) {
  // Every test browser comes from one address: the per-address bounds
  // (sign-ups, unknown credentials) are lifted unless a test sets them.
  vars = { SIGNUP_MAX_PER_ADDRESS: '1000000', CREDENTIAL_MISS_MAX: '1000000', ...vars };
  const state = mkdtempSync(join(tmpdir(), 'jestha-ui-state-'));
  const schema = spawnSync('wrangler', ['d1', 'migrations', 'apply', 'DB', '--local', '--persist-to', state],
    { cwd: ROOT, env: ENV, stdio: ['ignore', 'ignore', 'pipe'] });
  if (schema.status !== 0) throw new Error(`applying migrations/ failed: ${schema.stderr}`);
  const port = await freePort();
  // Its own devtools port too: other wrangler dev instances on the machine
  // otherwise race for the default one.
  const inspector = await freePort();
  // The three Workers in one process: --var reaches the API, the engine's
  // (Gate Durable Object, queue consumer) and the account Worker's (sign-in,
  // key management) configs are written with the same variables.
  const pairs = Object.entries(vars).map(([k, v]) => `${k}=${v}`);
  const configs = [];
  for (const [dest, source] of [['wrangler.engine.json', 'wrangler.engine.toml'], ['wrangler.account.json', 'wrangler.account.toml']]) {
    const path = join(state, dest);
    const written = spawnSync('python3', ['scripts/worker_config.py', path, source, ...pairs], { cwd: ROOT, env: ENV, stdio: ['ignore', 'ignore', 'pipe'] });
    if (written.status !== 0) throw new Error(`writing ${dest} failed: ${written.stderr}`);
    configs.push('-c', path);
  }
  const args = ['dev', '-c', 'wrangler.toml', ...configs, '--ip', '127.0.0.1', '--port', String(port),
    '--inspector-port', String(inspector), '--persist-to', state];
  for (const [k, v] of Object.entries(vars)) args.push('--var', `${k}:${v}`);
  const logDir = mkdtempSync(join(tmpdir(), 'jestha-ui-log-'));
  const logPath = join(logDir, 'wrangler.log');
  const log = openSync(logPath, 'w');
  // detached: wrangler and its workerd children form one process group.
  const child = spawn('wrangler', args, { cwd: ROOT, env: ENV, stdio: ['ignore', log, log], detached: true });
  const url = `http://127.0.0.1:${port}`;
  const server = {
    url,
    child,
    logs: () => readFileSync(logPath, 'utf8'),
    async stop() {
      live.delete(server);
      if (child.exitCode === null) {
        const exited = new Promise((ok) => child.once('exit', ok));
        killGroup(child, 'SIGTERM');
        await Promise.race([exited, new Promise((ok) => setTimeout(ok, 10_000))]);
      }
      killGroup(child, 'SIGKILL'); // workerd children may outlive a TERM to the leader
      rmSync(state, { recursive: true, force: true });
      rmSync(logDir, { recursive: true, force: true });
    },
  };
  live.add(server);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      // A port free when chosen can be taken before workerd binds it: afresh, twice at most.
      const taken = portRetries > 0 && server.logs().includes('Address already in use');
      const logs = server.logs();
      await server.stop();
      if (taken) return startServer(vars, timeoutMs, portRetries - 1);
      throw new Error(`wrangler dev exited:\n${logs.slice(-3000)}`);
    }
    try {
      const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
      if (r.status === 200) return server;
    } catch {
      // not up yet
    }
    await new Promise((ok) => setTimeout(ok, 300));
  }
  await server.stop();
  throw new Error(`wrangler dev did not answer in ${timeoutMs} ms:\n${server.logs().slice(-3000)}`);
}

/**
 * Debian's chromium, headless. Playwright's launch() gives every browser a
 * fresh, throw-away user-data directory of its own.
 */
export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A fresh browser context (no cookies) at desktop size, with clipboard access
 * and a record of what must never happen: CSP violations and script errors.
 */
export async function openPage(browser, baseURL) {
  const context = await browser.newContext({ baseURL, viewport: DESKTOP });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: baseURL });
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to (load|execute|apply)/i.test(m.text())) problems.push(`CSP: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`script error: ${e.message}`));
  page.setDefaultTimeout(15_000);
  return { context, page, problems };
}

/**
 * Saves a full-page screenshot of the current screen at desktop and phone
 * size, and fails when the phone layout scrolls sideways.
 */
const settle = (page) => page.evaluate(() => new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok))));

/**
 * Text a screen must never show: "null" or "undefined" as a word, the mark of
 * a missing value rendered (outside code samples, <pre> or inline <code>, where
 * JSON's null is content: the API reference writes `"nextCursor": "…" | null`).
 * Returns each offending text with the path of its element.
 */
export function strayText(page) {
  return page.evaluate(() => {
    const found = [];
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      if (!/\b(null|undefined)\b/.test(n.data) || n.parentElement.closest('pre, code, script, style')) continue;
      const path = [];
      for (let e = n.parentElement; e && e !== document.body; e = e.parentElement) {
        path.unshift(e.id ? `${e.tagName.toLowerCase()}#${e.id}` : e.tagName.toLowerCase());
      }
      found.push(`${path.join(' > ')}: ${JSON.stringify(n.data.trim().slice(0, 80))}`);
    }
    for (const el of document.querySelectorAll('[aria-label], [title], [placeholder], [alt]')) {
      for (const a of ['aria-label', 'title', 'placeholder', 'alt']) {
        const v = el.getAttribute(a);
        if (v && /\b(null|undefined)\b/.test(v)) found.push(`${el.tagName.toLowerCase()}[${a}]: ${JSON.stringify(v)}`);
      }
    }
    return found;
  });
}

export async function shoot(page, name) {
  mkdirSync(ARTIFACTS, { recursive: true });
  await settle(page);
  // Every screen that is photographed is also read for missing values shown as text.
  const stray = await strayText(page);
  if (stray.length) throw new Error(`${name}: the screen shows "null" or "undefined":\n${stray.join('\n')}`);
  await page.screenshot({ path: join(ARTIFACTS, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize(PHONE);
  await settle(page);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  await page.screenshot({ path: join(ARTIFACTS, `${name}-phone.png`), fullPage: true });
  await page.setViewportSize(DESKTOP);
  await settle(page);
  if (overflow > 0) throw new Error(`${name}: the phone-sized layout scrolls sideways by ${overflow}px`);
}

/** `fetch` from inside the page: same origin, the page's cookies unless told otherwise. */
export function pageFetch(page, path, init = {}) {
  return page.evaluate(async ([p, i]) => {
    const r = await fetch(p, { ...i, signal: AbortSignal.timeout(15000) });
    const text = await r.text();
    let body = null;
    try { body = JSON.parse(text); } catch { body = text; }
    return { status: r.status, body };
  }, [path, init]);
}

export function uniqueName(prefix = 'ui') {
  return `${prefix}${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`.slice(0, 30);
}

/** Polls `fn` until it returns a truthy value. */
export async function eventually(fn, { timeout = 15_000, interval = 300, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await new Promise((ok) => setTimeout(ok, interval));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** The password every browser test signs up with. */
export const PASSWORD = 'correct horse battery staple';

/** Waits for the screen whose level-1 heading is `text`. */
export async function heading(page, text) {
  await page.getByRole('heading', { level: 1, name: text }).waitFor();
}

/** Signs up through the form and waits for the timeline; returns the username. */
export async function signUp(page, username = uniqueName()) {
  await page.goto('/#/signup');
  await heading(page, 'Create your account');
  await page.getByLabel('Username', { exact: true }).fill(username);
  await page.getByLabel('Email').fill(`${username}@example.com`);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await heading(page, 'Your timeline');
  return username;
}
