// The web UI's shell: who is logged in, a hash router over the pages, focus
// moved to each new page's heading, and flash messages across navigations.

import { api, whenSessionLost } from './api.js';
import { h } from './ui.js';
import * as auth from './pages/auth.js';
import * as keys from './pages/keys.js';
import * as security from './pages/security.js';
import * as keyDetail from './pages/key.js';
import * as snippets from './pages/snippets.js';
import * as timeline from './pages/timeline.js';
import * as oauth from './pages/oauth.js';

/** Shared between pages: the account, the scope catalog, a just-created key. */
export const state = { me: null, catalog: null, created: null, flash: null };

const ROUTES = [
  { path: /^\/login$/, page: auth.login, public: true },
  { path: /^\/signup$/, page: auth.signup, public: true },
  { path: /^\/$/, page: timeline.page, nav: 'timeline' },
  { path: /^\/settings\/api$/, page: keys.list, nav: 'api' },
  { path: /^\/settings\/api\/new$/, page: keys.create, nav: 'api' },
  { path: /^\/settings\/api\/created$/, page: keys.created, nav: 'api' },
  { path: /^\/settings\/api\/keys\/([A-Za-z0-9_-]+)$/, page: keyDetail.page, nav: 'api' },
  { path: /^\/settings\/api\/snippets$/, page: snippets.page, nav: 'snippets' },
  { path: /^\/settings\/apps$/, page: oauth.apps, nav: 'apps' },
  // OAuth: an agent's authorization request and a device's user code (sign-in first).
  { path: /^\/oauth\/authorize\?(.*)$/, page: oauth.authorize },
  { path: /^\/device(?:\?(.*))?$/, page: oauth.device },
  { path: /^\/oauth\/error(?:\?(.*))?$/, page: oauth.error, open: true },
  { path: /^\/settings\/security$/, page: security.page, nav: 'security' },
];

// Where to go after signing in: the page that asked for it (a consent
// screen, the device page), kept across the login form in this tab only.
const RETURN = 'jestha.returnTo';

/** The route to resume after login or sign-up (once), else the timeline. */
export function afterSignIn() {
  const to = sessionStorage.getItem(RETURN);
  sessionStorage.removeItem(RETURN);
  return to && to.startsWith('/') ? to : '/';
}

const main = () => document.getElementById('main');

export function go(path) {
  if (location.hash === `#${path}`) render();
  else location.hash = path;
}

export function flash(message, tone = 'ok') {
  state.flash = { message, tone };
}

function showFlash() {
  const region = document.getElementById('flash');
  region.replaceChildren();
  if (state.flash) {
    region.append(h('p', { class: state.flash.tone === 'error' ? 'flash flash-error' : 'flash' }, state.flash.message));
    state.flash = null;
  }
}

function chrome(route) {
  const signedIn = !!state.me;
  document.getElementById('mainnav').hidden = !signedIn;
  document.getElementById('account').hidden = !signedIn;
  document.getElementById('account-name').textContent = signedIn ? `@${state.me.username}` : '';
  for (const a of document.querySelectorAll('#mainnav a')) {
    if (route && a.dataset.nav === route.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  main().classList.toggle('narrow', !!(route && route.public));
}

async function loadMe() {
  try {
    state.me = await api.get('/api/auth/me', { quiet401: true });
  } catch {
    state.me = null;
  }
  return state.me;
}

let generation = 0;
let known = false;

export async function render() {
  const raw = location.hash.slice(1) || '/';
  if (!raw.startsWith('/')) return; // an in-page anchor, not a route
  const mine = ++generation;
  if (!known) {
    await loadMe();
    known = true;
  }
  const route = ROUTES.find((r) => r.path.test(raw));
  if (!route) return notFound();
  if (!route.public && !route.open && !state.me) {
    sessionStorage.setItem(RETURN, raw);
    return go('/login');
  }
  if (route.public && state.me) return go(afterSignIn());
  // The plaintext of a new key lives only until the once-screen is left.
  if (route.page !== keys.created) state.created = null;
  chrome(route);
  const params = raw.match(route.path).slice(1);
  const root = main();
  root.setAttribute('aria-busy', 'true');
  let view;
  try {
    view = await route.page({ params, state, go, flash, signedIn });
  } catch (err) {
    if (err && err.status === 401) return; // whenSessionLost took us to the login page
    view = h('div', { class: 'card' }, h('h1', { tabindex: '-1' }, 'Something went wrong'),
      h('p', null, err && err.message ? err.message : String(err)),
      h('p', null, h('a', { href: '#/' }, 'Back to your timeline')));
  }
  if (mine !== generation) return; // a newer navigation won
  root.removeAttribute('aria-busy');
  showFlash();
  root.replaceChildren(view);
  const heading = root.querySelector('h1');
  document.title = heading ? `${heading.textContent} · Jestha` : 'Jestha';
  if (heading) {
    heading.setAttribute('tabindex', '-1');
    heading.focus({ preventScroll: true });
  }
  window.scrollTo(0, 0);
}

function notFound() {
  chrome(null);
  main().replaceChildren(h('div', { class: 'card' },
    h('h1', { tabindex: '-1' }, 'Page not found'),
    h('p', null, h('a', { href: '#/' }, 'Go to your timeline'))));
  main().querySelector('h1').focus();
}

async function logout() {
  try {
    await api.post('/api/auth/logout', undefined, { quiet401: true });
  } catch {
    // An already-ended session is logged out all the same.
  }
  state.me = null;
  state.catalog = null;
  state.created = null;
  flash('You are logged out.');
  go('/login');
}

export function signedIn(user) {
  state.me = user;
  known = true;
}

whenSessionLost(() => {
  state.me = null;
  state.created = null;
  flash('Your session has ended. Log in again to continue.', 'error');
  go('/login');
});

function boot() {
  document.getElementById('logout').addEventListener('click', logout);
  document.getElementById('skip-link').addEventListener('click', (e) => {
    e.preventDefault();
    main().focus();
  });
  window.addEventListener('hashchange', render);
  // A link to the page already shown reloads it (e.g. "API access" refreshes the list).
  document.addEventListener('click', (e) => {
    const a = e.target.closest && e.target.closest('a[href^="#/"]');
    if (a && a.getAttribute('href') === location.hash && !e.ctrlKey && !e.metaKey && !e.shiftKey) {
      e.preventDefault();
      render();
    }
  });
  render();
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot);
else boot();
