// OAuth in the web app: the consent screen an agent's authorization request
// lands on (#/oauth/authorize?…), its error page (#/oauth/error?…), the
// device page where a CLI's user code is approved (#/device?code=…), and
// Settings → Connected apps. Sign-in comes first (app.js keeps the route in
// sessionStorage and returns to it). Every scope is shown with its
// description and may be unticked; nothing is granted without "Allow".

import { api, listAll } from '../api.js';
import { h, nextId, busy, confirmDialog, time, humanMessage } from '../ui.js';

function scopeBox(scope) {
  const id = nextId('grant-scope');
  const box = h('input', { type: 'checkbox', id, name: 'scopes', value: scope.scope, checked: true, 'aria-describedby': `${id}-desc` });
  const li = h('li', { class: 'scope is-checked' },
    h('label', { for: id }, box,
      h('span', null, h('span', { class: 'scope-name' }, scope.name), ' ', h('span', { class: 'scope-id' }, scope.scope))),
    h('p', { class: 'scope-desc', id: `${id}-desc` }, scope.description));
  box.addEventListener('change', () => li.classList.toggle('is-checked', box.checked));
  return { li, box };
}

/** The scope checkboxes and Allow / Deny; `decide(decision, scopes)` answers. */
function decisionBlock(scopes, decide, extra) {
  const items = scopes.map(scopeBox);
  const status = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const allow = h('button', { type: 'button', class: 'btn btn-primary' }, 'Allow');
  const deny = h('button', { type: 'button', class: 'btn' }, 'Deny');
  const run = (button, decision, label) => busy(button, async () => {
    status.hidden = true;
    try {
      await decide(decision, items.filter((i) => i.box.checked).map((i) => i.box.value));
    } catch (err) {
      status.textContent = humanMessage(err);
      status.hidden = false;
    }
  }, label);
  allow.addEventListener('click', () => run(allow, 'allow', 'Allowing…'));
  deny.addEventListener('click', () => run(deny, 'deny', 'Denying…'));
  return h('div', null,
    h('fieldset', { class: 'fieldset' },
      h('legend', { class: 'fieldset-legend' }, 'It asks to:'),
      items.length
        ? h('ul', { class: 'scope-list' }, items.map((i) => i.li))
        : h('p', { class: 'muted' }, 'Nothing beyond reading your profile.'),
      h('p', { class: 'hint' }, 'Untick anything you do not want to give. You can revoke access any time in Connected apps.')),
    extra, status, h('div', { class: 'actions' }, allow, deny));
}

/** #/oauth/authorize?<the authorization request> */
export async function authorize({ params, state }) {
  const query = params[0] || '';
  let info;
  try {
    info = await api.get(`/api/oauth/authorize?${query}`);
  } catch (err) {
    return errorCard('This app’s request cannot be completed', humanMessage(err));
  }
  const warnings = [info.client.kind === 'cimd'
    ? h('p', { class: 'muted small' }, 'Identified by ', h('strong', null, info.client.host),
      ', which publishes this app’s details. Continue only if you trust that site.')
    : h('p', { class: 'muted small' }, 'Jestha has not verified this app’s name. Continue only if you trust where it sends you back.'),
  ];
  if (info.redirect.loopback) {
    warnings.unshift(h('p', { class: 'warning' },
      `This app runs on your own computer (${info.redirect.host}). Allow it only if you just started it yourself.`));
  }
  const block = decisionBlock(info.scopes, async (decision, scopes) => {
    const res = await api.post('/api/oauth/authorize', { request: query, decision, scopes });
    location.assign(res.redirectTo);
  }, h('p', { class: 'muted small' }, `Signed in as @${state.me.username}.`));
  return h('section', { class: 'consent' },
    h('div', { class: 'page-head' }, h('div', null,
      h('h1', null, `${info.client.name} wants to access your Jestha account`),
      h('p', null, 'It will be sent back to ', h('strong', null, info.redirect.host), '.'))),
    h('div', { class: 'card' }, warnings, block));
}

function errorCard(title, message) {
  return h('div', { class: 'card' }, h('h1', null, title), h('p', null, message),
    h('p', null, h('a', { href: '#/' }, 'Go to your timeline')));
}

/** #/oauth/error?error=…&error_description=… (our own page: never the app's) */
export function error({ params }) {
  const q = new URLSearchParams(params[0] || '');
  return errorCard('This app’s request cannot be completed',
    `${q.get('error_description') || 'The request is not valid.'} (${q.get('error') || 'invalid_request'})`);
}

/** #/device?code=WDJB-MJHT: a device (the jestha CLI) asks for access. */
export function device({ params }) {
  const q = new URLSearchParams(params[0] || '');
  const id = nextId('user-code');
  const input = h('input', { id, name: 'userCode', value: q.get('code') || '', autocomplete: 'off', autocapitalize: 'characters', spellcheck: 'false' });
  const status = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const next = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Continue');
  const slot = h('div');
  const form = h('form', { class: 'form', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: id }, 'Code shown on your device'), input), status,
    h('div', { class: 'actions' }, next));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(next, async () => {
      status.hidden = true;
      try {
        const userCode = input.value.trim();
        const info = await api.get(`/api/oauth/device?userCode=${encodeURIComponent(userCode)}`);
        form.hidden = true;
        slot.replaceChildren(
          h('h2', null, `${info.client.name} wants to access your Jestha account`),
          h('p', { class: 'warning' }, 'Only continue if you started this on your own device, just now.'),
          decisionBlock(info.scopes, async (decision, scopes) => {
            const res = await api.post('/api/oauth/device', { userCode, decision, scopes });
            slot.replaceChildren(h('p', { role: 'status', class: 'flash' }, res.status === 'approved'
              ? 'Done: return to your device.'
              : 'Denied: the device was not given access.'));
          }));
        slot.querySelector('h2').focus?.();
      } catch (err) {
        status.textContent = err.status === 404 ? 'That code is unknown, expired or already used. Check it on your device.' : humanMessage(err);
        status.hidden = false;
      }
    }, 'Checking…');
  });
  return h('section', null,
    h('div', { class: 'page-head' }, h('div', null, h('h1', null, 'Connect a device'),
      h('p', null, 'Enter the code your device (for example `jestha login`) shows.'))),
    h('div', { class: 'card' }, form, slot));
}

/** #/settings/apps: Connected apps. */
export async function apps({ go, flash }) {
  const grants = await listAll('/api/auth/grants');
  const head = h('div', { class: 'page-head' }, h('div', null, h('h1', null, 'Connected apps'),
    h('p', null, 'Apps and agents you allowed to act for your account through OAuth, with what each may do.')));
  if (!grants.length) {
    return h('section', null, head, h('div', { class: 'card empty' }, h('p', null, 'No app is connected.')));
  }
  const items = grants.map((g) => {
    const labelId = nextId('grant');
    const revoke = h('button', { type: 'button', class: 'btn btn-small btn-danger-quiet', 'aria-describedby': labelId }, 'Revoke');
    revoke.addEventListener('click', async () => {
      const ok = await confirmDialog({ title: `Revoke “${g.clientName}”?`, danger: true, confirmLabel: 'Revoke access',
        body: h('p', null, 'It loses access at once: its next request is refused. It can ask again later.') });
      if (!ok) return;
      try {
        await api.del(`/api/auth/grants/${encodeURIComponent(g.id)}`);
        flash(`“${g.clientName}” no longer has access.`);
      } catch (err) {
        flash(`Could not revoke “${g.clientName}”: ${humanMessage(err)}`, 'error');
      }
      go('/settings/apps');
    });
    return h('li', { class: 'key-card', dataset: { grantId: g.id } },
      h('div', { class: 'key-top' }, h('h2', { class: 'key-label', id: labelId }, g.clientName)),
      h('dl', { class: 'key-meta' },
        h('div', null, h('dt', null, 'Can'), h('dd', null, g.scopes.length
          ? h('span', { class: 'chips' }, g.scopes.map((s) => h('span', { class: 'chip' }, s)))
          : 'read your profile only')),
        h('div', null, h('dt', null, 'Connected'), h('dd', null, time(g.createdAt))),
        h('div', null, h('dt', null, 'Last used'), h('dd', null, g.lastUsedAt ? time(g.lastUsedAt, { relative: true }) : 'Never'))),
      h('div', { class: 'key-actions' }, revoke));
  });
  return h('section', null, head, h('ul', { class: 'key-list', 'aria-label': 'Connected apps' }, items));
}
