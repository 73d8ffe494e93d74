// One key: its details, revoke, and its webhook endpoints (add, remove, send a
// test, recent deliveries with their status).

import { api, ApiError } from '../api.js';
import { h, field, busy, clearErrors, showApiError, confirmDialog, copyButton, time, badge, nextId, loading } from '../ui.js';
import { keyMeta, revokeKey, statusBadge } from './keys.js';

const EVENTS = ['post.created', 'post.updated', 'post.deleted', 'post.bounced', 'comment.created', 'jesclip.created'];

/** Which key scopes let an endpoint receive an event type: any one is enough. */
const READERS = {
  'post.created': ['write:jes', 'read:engagement'],
  'post.updated': ['write:jes', 'read:engagement'],
  'post.deleted': ['write:jes', 'read:engagement'],
  'post.bounced': ['write:jes', 'read:engagement'],
  'jesclip.created': ['write:jesclip', 'read:engagement'],
  'comment.created': ['read:comment'],
};
const visibleTo = (event, scopes) => (READERS[event] || []).some((s) => scopes.includes(s));

const base = (keyId) => `/api/auth/api-keys/${encodeURIComponent(keyId)}/webhooks`;

export async function page({ params, go, flash }) {
  const [id] = params;
  let key = null;
  try {
    key = await api.get(`/api/auth/api-keys/${encodeURIComponent(id)}`);
  } catch (err) {
    if (err.status !== 404) throw err;
  }
  const crumbs = h('p', { class: 'crumbs' }, h('a', { href: '#/settings/api' }, 'API access'));
  if (!key) {
    return h('section', null, crumbs, h('div', { class: 'card' },
      h('h1', null, 'Key not found'),
      h('p', null, 'This key does not exist or is not yours.')));
  }
  const here = `/settings/api/keys/${encodeURIComponent(key.id)}`;

  const keyCard = h('div', { class: 'card' }, h('h2', null, 'Key'), keyMeta(key), renameForm(key, { go, flash, here }));
  if (key.status === 'active') {
    const revoke = h('button', { type: 'button', class: 'btn btn-danger-quiet' }, 'Revoke key');
    revoke.addEventListener('click', async () => {
      try {
        if (await revokeKey(key)) {
          flash(`Key “${key.label}” was revoked.`);
          go(here);
        }
      } catch (err) {
        flash(`Could not revoke: ${err.message}`, 'error');
        go(here);
      }
    });
    keyCard.append(h('div', { class: 'actions' }, revoke));
  }

  const hooks = h('div', { class: 'card', id: 'webhooks' });
  await renderWebhooks(hooks, key);
  const usage = await usageCard(key);

  return h('section', null,
    h('div', { class: 'page-head' }, h('div', null, crumbs,
      h('h1', null, key.label),
      h('p', { class: 'key-top' }, statusBadge(key), h('code', { class: 'key-masked' }, key.maskedKey)))),
    keyCard, usage, hooks);
}

/** Label and description are the only things about a key that can change. */
function renameForm(key, { go, flash, here }) {
  const fLabel = field({ name: 'label', label: 'Name', value: key.label, attrs: { maxlength: '64', autocomplete: 'off' } });
  const fDesc = field({ name: 'description', label: 'Description (optional)', type: 'textarea', value: key.description || '', hint: 'What uses this key, for whoever reads this list next. Scopes, expiry and allowlist cannot change: create a new key for that.', attrs: { maxlength: '500', rows: '2' } });
  const submit = h('button', { type: 'submit', class: 'btn' }, 'Save name');
  const form = h('form', { class: 'form', novalidate: true, 'aria-label': 'Rename this key' }, fLabel.wrap, fDesc.wrap, h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clearErrors(form);
    busy(submit, async () => {
      try {
        const saved = await api.patch(`/api/auth/api-keys/${encodeURIComponent(key.id)}`, { label: fLabel.input.value.trim(), description: fDesc.input.value.trim() });
        flash(`Saved: the key is now called “${saved.label}”.`);
        go(here);
      } catch (err) {
        showApiError(form, err);
      }
    }, 'Saving…');
  });
  return form;
}

const REFUSALS = [
  ['rateLimited', 'rate limited'],
  ['quotaExceeded', 'over quota'],
  ['insufficientScope', 'missing scope'],
  ['ipNotAllowed', 'IP not allowed'],
  ['sessionOnly', 'session-only route'],
];

/** Requests per UTC day over 30 days (GET /api/auth/api-keys/:id/usage); null when absent. */
async function usageCard(key) {
  let res;
  try {
    res = await api.get(`/api/auth/api-keys/${encodeURIComponent(key.id)}/usage`);
  } catch (err) {
    if (err.status === 404) return null;
    throw err;
  }
  const days = Array.isArray(res.days) ? res.days : [];
  if (!days.length) return null;
  const sum = (f) => days.reduce((n, d) => n + Number(d[f] || 0), 0);
  const allowed = sum('allowed');
  const refused = REFUSALS.map(([f, label]) => [label, sum(f)]).filter(([, n]) => n > 0);
  if (!days.some((d) => Number(d.total || 0) > 0)) {
    return h('div', { class: 'card', id: 'usage' },
      h('h2', null, 'Usage, last 30 days'),
      h('p', { class: 'muted' }, 'No requests with this key in the last 30 days.'));
  }
  const max = Math.max(1, ...days.map((d) => Number(d.total || 0)));
  const W = 300;
  const H = 60;
  const bw = W / days.length;
  const svgNS = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(svgNS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
  svg.setAttribute('class', 'usage-chart');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', `Requests per day over the last ${days.length} days, ${allowed} allowed in all`);
  days.forEach((d, i) => {
    const ok = Number(d.allowed || 0);
    const total = Number(d.total || 0);
    for (const [value, cls] of [[total, 'bar-refused'], [ok, 'bar-allowed']]) {
      if (!value) continue;
      const r = document.createElementNS(svgNS, 'rect');
      const hgt = Math.max(1, (value / max) * (H - 2));
      r.setAttribute('x', String(i * bw + 1));
      r.setAttribute('y', String(H - hgt));
      r.setAttribute('width', String(Math.max(1, bw - 2)));
      r.setAttribute('height', String(hgt));
      r.setAttribute('class', cls);
      const t = document.createElementNS(svgNS, 'title');
      t.textContent = `${d.date}: ${ok} allowed, ${total - ok} refused`;
      r.append(t);
      svg.append(r);
    }
  });
  return h('div', { class: 'card', id: 'usage' },
    h('h2', null, 'Usage, last 30 days'),
    h('p', null, h('strong', null, String(allowed)), ` request${allowed === 1 ? '' : 's'} allowed`,
      refused.length ? ['; refused: ', refused.map(([l, n]) => `${n} ${l}`).join(', ')] : '', '.'),
    svg,
    h('p', { class: 'hint' }, 'Per UTC day. Refused requests are not counted against the limits.'));
}

async function renderWebhooks(card, key, notice) {
  card.replaceChildren(h('h2', null, 'Webhook endpoints'), loading());
  let items;
  try {
    const res = await api.get(base(key.id));
    items = Array.isArray(res) ? res : res.items || [];
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      card.replaceChildren(h('h2', null, 'Webhook endpoints'),
        h('p', { class: 'muted', dataset: { state: 'webhooks-unavailable' } }, 'Webhooks are not available on this server yet.'));
      return;
    }
    throw err;
  }
  const refresh = (n) => renderWebhooks(card, key, n);
  const list = items.length
    ? h('div', null, items.map((w) => webhookItem(w, key, refresh)))
    : h('p', { class: 'muted' }, 'No endpoints yet. Add one to receive signed events about this account’s content.');
  // replaceChildren (unlike h) turns null into the text "null": only nodes go in.
  card.replaceChildren(...[
    h('h2', null, 'Webhook endpoints'),
    h('p', { class: 'muted small' }, 'Events about this account’s content are POSTed to each endpoint, signed with its secret (Standard Webhooks).'),
    notice,
    list,
    key.status === 'active' ? addForm(key, refresh) : h('p', { class: 'muted small' }, 'This key is not active: endpoints cannot be added.'),
  ].filter(Boolean));
}

function webhookItem(w, key, refresh) {
  const status = h('p', { class: 'copy-status', role: 'status' });
  const deliveries = h('div', { class: 'deliveries', hidden: true });
  const urlId = nextId('wh');
  const test = h('button', { type: 'button', class: 'btn btn-small', 'aria-describedby': urlId }, 'Send test');
  const show = h('button', { type: 'button', class: 'btn btn-small', 'aria-expanded': 'false', 'aria-describedby': urlId }, 'Recent deliveries');
  const remove = h('button', { type: 'button', class: 'btn btn-small btn-danger-quiet', 'aria-describedby': urlId }, 'Remove');
  const rotate = h('button', { type: 'button', class: 'btn btn-small', 'aria-describedby': urlId }, 'Rotate secret');

  // A refresh keeps the current table on screen until the new one is in.
  const loadDeliveries = async () => {
    if (!deliveries.firstChild) deliveries.replaceChildren(loading());
    deliveries.setAttribute('aria-busy', 'true');
    try {
      const res = await api.get(`${base(key.id)}/${encodeURIComponent(w.id)}/deliveries`);
      deliveries.replaceChildren(deliveryTable(Array.isArray(res) ? res : res.items || [], loadDeliveries));
    } catch (err) {
      deliveries.replaceChildren(h('p', { class: 'form-error' }, err.message));
    } finally {
      deliveries.removeAttribute('aria-busy');
    }
  };
  show.addEventListener('click', async () => {
    const open = deliveries.hidden;
    deliveries.hidden = !open;
    show.setAttribute('aria-expanded', String(open));
    if (open) await loadDeliveries();
  });
  test.addEventListener('click', () => busy(test, async () => {
    try {
      await api.post(`${base(key.id)}/${encodeURIComponent(w.id)}/test`);
      status.textContent = 'Test event queued. It shows under recent deliveries once sent.';
      deliveries.hidden = false;
      show.setAttribute('aria-expanded', 'true');
      await loadDeliveries();
    } catch (err) {
      status.textContent = '';
      status.append(h('span', { class: 'field-error' }, err.message));
    }
  }, 'Sending…'));
  rotate.addEventListener('click', async () => {
    const yes = await confirmDialog({
      title: 'Rotate the signing secret?',
      body: h('p', null, 'A new secret signs every delivery to ', h('code', null, w.url),
        '. The current one keeps signing beside it for a grace period, so the receiver can switch without missing an event.'),
      confirmLabel: 'Rotate secret',
    });
    if (!yes) return;
    try {
      const rotated = await api.post(`${base(key.id)}/${encodeURIComponent(w.id)}/rotate-secret`);
      refresh(secretNotice(rotated));
    } catch (err) {
      status.textContent = err.message;
    }
  });
  remove.addEventListener('click', async () => {
    const yes = await confirmDialog({
      title: 'Remove this endpoint?',
      body: h('p', null, h('code', null, w.url), ' will stop receiving events. Deliveries already queued are dropped.'),
      confirmLabel: 'Remove endpoint',
      danger: true,
    });
    if (!yes) return;
    try {
      await api.del(`${base(key.id)}/${encodeURIComponent(w.id)}`);
      refresh(h('p', { class: 'flash', role: 'status' }, 'Endpoint removed.'));
    } catch (err) {
      status.textContent = err.message;
    }
  });
  const disabled = w.enabled === false;
  const actions = h('div', { class: 'key-actions' }, test, show, rotate, remove);
  if (disabled) {
    const enable = h('button', { type: 'button', class: 'btn btn-small', 'aria-describedby': urlId }, 'Re-enable');
    enable.addEventListener('click', () => busy(enable, async () => {
      try {
        await api.patch(`${base(key.id)}/${encodeURIComponent(w.id)}`, { enabled: true });
        refresh(h('p', { class: 'flash', role: 'status' }, 'Endpoint re-enabled.'));
      } catch (err) {
        status.textContent = err.message;
      }
    }));
    actions.prepend(enable);
  }
  return h('div', { class: 'webhook', dataset: { webhookId: w.id } },
    h('p', { class: 'key-top' },
      h('span', { class: 'webhook-url', id: urlId }, w.url),
      disabled ? badge('disabled', 'bad') : w.failingSince ? badge('failing', 'warn') : badge('enabled', 'ok')),
    disabled && w.disabledReason ? h('p', { class: 'small muted' }, `Disabled: ${w.disabledReason}`) : null,
    h('div', { class: 'chips' }, (w.events || []).map((e) => h('span', { class: 'chip' }, e))),
    w.createdAt ? h('p', { class: 'small muted' }, 'Added ', time(w.createdAt)) : null,
    actions,
    status,
    deliveries);
}

const DELIVERY_TONE = {
  delivered: 'ok', succeeded: 'ok', success: 'ok', ok: 'ok',
  failed: 'bad', dead: 'bad', dead_lettered: 'bad', 'dead-lettered': 'bad', gave_up: 'bad',
  pending: 'warn', queued: 'warn', retrying: 'warn', scheduled: 'warn',
};

function deliveryTable(items, reload) {
  const again = h('button', { type: 'button', class: 'btn btn-small btn-quiet' }, 'Refresh');
  again.addEventListener('click', reload);
  if (!items.length) return h('div', null, h('p', { class: 'muted small' }, 'No deliveries yet.'), again);
  const rows = items.map((d) => {
    const status = String(d.status || 'unknown');
    const code = d.responseCode ?? d.responseStatus ?? d.statusCode ?? d.httpStatus;
    return h('tr', { dataset: { deliveryStatus: status } },
      h('td', null, h('code', null, d.eventType || d.type || d.event || d.eventId || '—')),
      h('td', null, badge(status, DELIVERY_TONE[status.toLowerCase()] || 'neutral')),
      h('td', null, code ? String(code) : '—', d.error ? h('span', { class: 'small muted delivery-error' }, d.error) : null),
      h('td', null, String(d.attempts ?? d.attempt ?? '—')),
      h('td', null, time(d.deliveredAt || d.attemptedAt || d.updatedAt || d.createdAt) || '—'));
  });
  return h('div', null,
    h('div', { class: 'table-wrap' }, h('table', null,
      h('caption', { class: 'offscreen' }, 'Recent deliveries'),
      h('thead', null, h('tr', null, ['Event', 'Status', 'Response', 'Attempt', 'When'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', null, rows))),
    again);
}

function addForm(key, refresh) {
  const fUrl = field({ name: 'url', label: 'Endpoint URL', type: 'url', hint: 'An https URL that accepts POST requests.', attrs: { placeholder: 'https://example.com/jestha/webhooks', autocomplete: 'off', spellcheck: 'false' } });
  const hintId = nextId('events-hint');
  const visible = EVENTS.filter((e) => visibleTo(e, key.scopes));
  // A key whose scopes see no content event can still take test events.
  const offered = visible.length ? EVENTS : ['webhook.test'];
  const boxes = offered.map((e, i) => {
    const id = nextId('ev');
    const allowed = e === 'webhook.test' || visibleTo(e, key.scopes);
    const box = h('input', { type: 'checkbox', id, value: e, checked: allowed && (e === visible[0] || e === 'webhook.test'), disabled: !allowed });
    const why = allowed ? null : h('span', { class: 'small muted' }, ` (needs ${READERS[e].join(' or ')})`);
    return { box, label: h('label', { for: id }, box, e, why) };
  });
  const events = h('fieldset', { id: nextId('events'), dataset: { field: 'events' }, 'aria-describedby': hintId },
    h('legend', null, 'Events'),
    h('p', { class: 'hint', id: hintId }, visible.length
      ? 'Which events this endpoint receives. An endpoint never learns more than its key could read.'
      : 'This key’s scopes cover no content events: the endpoint can receive test events only.'),
    h('div', { class: 'check-row' }, boxes.map((b) => b.label)));
  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Add endpoint');
  const form = h('form', { class: 'form', novalidate: true, 'aria-label': 'Add a webhook endpoint' },
    h('h3', null, 'Add an endpoint'), fUrl.wrap, events, h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clearErrors(form);
    const body = { url: fUrl.input.value.trim(), events: boxes.filter((b) => b.box.checked).map((b) => b.box.value) };
    busy(submit, async () => {
      try {
        const created = await api.post(base(key.id), body);
        refresh(secretNotice(created));
      } catch (err) {
        showApiError(form, err);
      }
    }, 'Adding…');
  });
  return h('div', { class: 'webhook' }, form);
}

/** The secret of a new endpoint, or of a rotation (which also says until when the old one signs). */
function secretNotice(w) {
  const status = h('p', { class: 'copy-status', role: 'status' });
  const rotated = Boolean(w.previousSecretExpiresAt);
  return h('div', { class: 'warning', role: 'note', dataset: { state: rotated ? 'webhook-secret-rotated' : 'webhook-secret' } },
    h('span', { class: 'warning-icon', 'aria-hidden': 'true' }, '⚠'),
    h('div', null,
      h('strong', null, rotated
        ? 'Secret rotated. Copy the new signing secret now: it is shown only this once.'
        : 'Endpoint added. Copy its signing secret now: it is shown only this once.'),
      h('div', { class: 'secret-box' }, h('code', { class: 'secret' }, w.secret || ''), copyButton(() => w.secret || '', { label: 'Copy secret', status })),
      rotated ? h('p', { class: 'small' }, 'The previous secret also signs deliveries until ', time(w.previousSecretExpiresAt), '.') : null,
      status));
}
