// Settings -> Security: two-factor sign-in (set up with a QR code drawn here,
// from a vendored encoder: no third-party service sees the secret), the
// recovery codes shown once, the account's sessions, and its audit log.

import { api, listAll, request } from '../api.js';
import { encode } from '../vendor/uqr.js';
import { h, field, busy, clearErrors, showApiError, confirmDialog, copyButton, time, badge, loading } from '../ui.js';

const SVG = 'http://www.w3.org/2000/svg';

/** The QR code of `text` as an <svg> of squares (no inline style, so the CSP holds). */
export function qrSvg(text, label) {
  const { size, data } = encode(text, { ecc: 'M', border: 2 });
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', `0 0 ${size} ${size}`);
  svg.setAttribute('class', 'qr');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  svg.setAttribute('shape-rendering', 'crispEdges');
  const bg = document.createElementNS(SVG, 'rect');
  bg.setAttribute('width', String(size));
  bg.setAttribute('height', String(size));
  bg.setAttribute('class', 'qr-bg');
  svg.append(bg);
  let d = '';
  data.forEach((row, y) => row.forEach((dark, x) => { if (dark) d += `M${x} ${y}h1v1h-1z`; }));
  const path = document.createElementNS(SVG, 'path');
  path.setAttribute('d', d);
  path.setAttribute('class', 'qr-fg');
  svg.append(path);
  return svg;
}

export async function page({ go, flash, state }) {
  const [status, sessions] = await Promise.all([api.get('/api/account/2fa'), listAll('/api/auth/sessions')]);
  const twoFactor = h('div', { class: 'card', id: 'two-factor' });
  renderTwoFactor(twoFactor, status, { go, flash, state });
  const audit = h('div', { class: 'card', id: 'audit' });
  await renderAudit(audit);
  return h('section', null,
    h('div', { class: 'page-head' }, h('div', null,
      h('h1', null, 'Security'),
      h('p', null, 'Two-factor sign-in, where you are signed in, and what happened to your account’s credentials.'))),
    twoFactor,
    sessionsCard(sessions, { go, flash }),
    audit);
}

function renderTwoFactor(card, status, ctx) {
  if (status.enabled) {
    card.replaceChildren(h('h2', null, 'Two-factor authentication'),
      h('p', null, badge('on', 'ok'), ' Logging in asks for a code from your authenticator app.',
        typeof status.recoveryCodesLeft === 'number' ? ` ${status.recoveryCodesLeft} of 10 recovery codes left.` : ''),
      disableForm(card, ctx));
    return;
  }
  const start = h('button', { type: 'button', class: 'btn btn-primary' }, 'Set up two-factor');
  start.addEventListener('click', () => busy(start, async () => {
    try {
      const setup = await api.post('/api/account/2fa/setup');
      card.replaceChildren(...setupStep(card, setup, ctx));
      card.querySelector('input')?.focus();
    } catch (err) {
      card.append(h('p', { class: 'form-error', role: 'alert' }, err.message));
    }
  }, 'Preparing…'));
  card.replaceChildren(h('h2', null, 'Two-factor authentication'),
    h('p', null, badge('off', 'neutral'), ' Add a second step to logging in: a code from an authenticator app on your phone.'),
    h('div', { class: 'actions' }, start));
}

function setupStep(card, setup, ctx) {
  const fCode = field({ name: 'code', label: 'Code from your app', autocomplete: 'one-time-code', hint: 'After scanning, type the 6-digit code the app shows.', attrs: { inputmode: 'numeric', spellcheck: 'false' } });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Turn on');
  const form = h('form', { class: 'form', novalidate: true, 'aria-label': 'Confirm two-factor' }, fCode.wrap, h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clearErrors(form);
    busy(submit, async () => {
      try {
        const res = await api.post('/api/account/2fa/enable', { code: fCode.input.value.trim() });
        card.replaceChildren(...recoveryScreen(res.recoveryCodes, ctx));
        card.querySelector('h2')?.focus();
      } catch (err) {
        showApiError(form, err);
      }
    }, 'Checking…');
  });
  const status = h('p', { class: 'copy-status', role: 'status' });
  return [
    h('h2', null, 'Set up two-factor'),
    h('ol', { class: 'steps' },
      h('li', null, 'Open an authenticator app (1Password, Google Authenticator, Aegis…).'),
      h('li', null, 'Scan this code, or type the secret below.')),
    h('div', { class: 'qr-wrap' }, qrSvg(setup.otpauthUri, 'QR code for your authenticator app')),
    h('div', { class: 'secret-box' }, h('code', { class: 'secret', dataset: { secret: '' } }, setup.secret),
      copyButton(() => setup.secret, { label: 'Copy secret', status })),
    status,
    form,
  ];
}

function recoveryScreen(codes, { go, flash }) {
  const text = `Jestha recovery codes (each works once)\n\n${codes.join('\n')}\n`;
  const status = h('p', { class: 'copy-status', role: 'status' });
  const url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
  const download = h('a', { class: 'btn', href: url, download: 'jestha-recovery-codes.txt' }, 'Download .txt');
  const done = h('button', { type: 'button', class: 'btn btn-primary' }, 'I’ve stored them');
  done.addEventListener('click', () => {
    URL.revokeObjectURL(url);
    flash('Two-factor authentication is on.');
    go('/settings/security');
  });
  return [
    h('h2', { tabindex: '-1' }, 'Save your recovery codes'),
    h('div', { class: 'warning', role: 'note' },
      h('span', { class: 'warning-icon', 'aria-hidden': 'true' }, '⚠'),
      h('p', null, 'This is the only time these codes are shown. Each one lets you log in once without your phone.')),
    h('ul', { class: 'recovery-codes', dataset: { recoveryCodes: '' } }, codes.map((c) => h('li', null, h('code', null, c)))),
    h('div', { class: 'actions' }, copyButton(() => text, { label: 'Copy codes', status }), download, done),
    status,
  ];
}

function disableForm(card, ctx) {
  const fPassword = field({ name: 'currentPassword', label: 'Current password', type: 'password', autocomplete: 'current-password' });
  const fCode = field({ name: 'code', label: 'Code from your app or a recovery code', autocomplete: 'one-time-code', attrs: { spellcheck: 'false' } });
  const submit = h('button', { type: 'submit', class: 'btn btn-danger-quiet' }, 'Turn off two-factor');
  const form = h('form', { class: 'form', novalidate: true, 'aria-label': 'Turn off two-factor' },
    h('h3', null, 'Turn off'), fPassword.wrap, fCode.wrap, h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clearErrors(form);
    const value = fCode.input.value.trim();
    const body = { currentPassword: fPassword.input.value };
    if (/^\d{6}$/.test(value.replace(/\s/g, ''))) body.code = value;
    else body.recoveryCode = value;
    busy(submit, async () => {
      try {
        await request('DELETE', '/api/account/2fa', body);
        ctx.flash('Two-factor authentication is off.');
        ctx.go('/settings/security');
      } catch (err) {
        showApiError(form, err, { recoveryCode: 'code' });
      }
    }, 'Turning off…');
  });
  return form;
}

function sessionsCard(sessions, { go, flash }) {
  const rows = sessions.map((s) => {
    const cells = [
      h('td', null, s.userAgent || 'Unknown device', s.current ? [' ', badge('This device', 'ok')] : null),
      h('td', null, time(s.createdAt)),
      h('td', null, s.lastUsedAt ? time(s.lastUsedAt, { relative: true }) : '—'),
    ];
    let action = '';
    if (!s.current) {
      const revoke = h('button', { type: 'button', class: 'btn btn-small btn-danger-quiet' }, 'Revoke');
      revoke.addEventListener('click', async () => {
        const yes = await confirmDialog({
          title: 'Revoke this session?',
          body: h('p', null, 'The device (', s.userAgent || 'unknown', ') is logged out on its next request.'),
          confirmLabel: 'Revoke session',
          danger: true,
        });
        if (!yes) return;
        try {
          await api.del(`/api/auth/sessions/${encodeURIComponent(s.id)}`);
          flash('Session revoked.');
        } catch (err) {
          flash(`Could not revoke: ${err.message}`, 'error');
        }
        go('/settings/security');
      });
      action = revoke;
    }
    cells.push(h('td', null, action));
    return h('tr', { dataset: { sessionId: s.id } }, cells);
  });
  return h('div', { class: 'card', id: 'sessions' },
    h('h2', null, 'Where you are logged in'),
    h('div', { class: 'table-wrap' }, h('table', null,
      h('caption', { class: 'offscreen' }, 'Your sessions'),
      h('thead', null, h('tr', null, ['Device', 'Logged in', 'Last used', ''].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, rows))));
}

const ACTIONS = {
  'auth.login': 'Logged in',
  'auth.login_failed': 'Failed login',
  '2fa.enabled': 'Two-factor turned on',
  '2fa.disabled': 'Two-factor turned off',
  '2fa.recovery_code_used': 'Recovery code used',
  'account.password_changed': 'Password changed',
  'account.email_changed': 'Email changed',
  'key.created': 'Key created',
  'key.renamed': 'Key renamed',
  'key.revoked': 'Key revoked',
  'key.leaked': 'Key reported leaked',
  'grant.created': 'App connected',
  'grant.revoked': 'App disconnected',
  'webhook.created': 'Webhook added',
  'webhook.deleted': 'Webhook removed',
  'session.revoked': 'Session revoked',
  'account.suspended': 'Account suspended',
  'account.unsuspended': 'Suspension lifted',
};

async function renderAudit(card, cursor = null, rows = []) {
  if (!rows.length) card.replaceChildren(h('h2', null, 'Activity'), loading());
  const page = await api.get(`/api/account/audit?limit=20${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
  const all = rows.concat(page.items || []);
  const body = all.map((a) => h('tr', { dataset: { action: a.action } },
    h('td', null, time(a.at)),
    h('td', null, ACTIONS[a.action] || a.action, a.actor && a.actor.type !== 'user' ? [' ', badge(a.actor.type, 'warn')] : null),
    h('td', null, a.ip || '—'),
    h('td', { class: 'small' }, a.userAgent || '—')));
  const more = page.nextCursor ? h('button', { type: 'button', class: 'btn btn-quiet' }, 'Show older') : null;
  if (more) more.addEventListener('click', () => busy(more, () => renderAudit(card, page.nextCursor, all), 'Loading…'));
  card.replaceChildren(...[
    h('h2', null, 'Activity'),
    h('p', { class: 'muted small' }, 'Sign-ins and changes to your credentials, kept for 90 days.'),
    all.length
      ? h('div', { class: 'table-wrap' }, h('table', null,
        h('caption', { class: 'offscreen' }, 'Account activity'),
        h('thead', null, h('tr', null, ['When', 'What', 'Address', 'Device'].map((t) => h('th', { scope: 'col' }, t)))),
        h('tbody', null, body)))
      : h('p', { class: 'muted' }, 'Nothing yet.'),
    more,
  ].filter(Boolean));
}
