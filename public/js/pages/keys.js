// Settings → API access: the key list, the "Generate new key" form and the
// once-screen that shows a new key's plaintext exactly one time.

import { api, listAll } from '../api.js';
import { h, field, busy, clearErrors, showApiError, confirmDialog, copyButton, time, badge, nextId } from '../ui.js';

export async function catalog(state) {
  if (!state.catalog) state.catalog = await api.get('/api/auth/scopes');
  return state.catalog;
}

const STATUS_TONE = { active: 'ok', revoked: 'bad', expired: 'warn' };

export function statusBadge(key) {
  return badge(key.status, STATUS_TONE[key.status] || 'neutral');
}

export function scopeChips(scopes) {
  return h('span', { class: 'chips' }, scopes.map((s) => h('span', { class: 'chip' }, s)));
}

export function keyMeta(key, { usage = true } = {}) {
  const item = (term, value) => h('div', null, h('dt', null, term), h('dd', null, value));
  return h('dl', { class: 'key-meta' },
    item('Scopes', scopeChips(key.scopes)),
    item('Expires', key.expiresAt ? time(key.expiresAt, { dateOnly: true }) : 'Never'),
    item('IP allowlist', key.ipAllowlist && key.ipAllowlist.length ? scopeChips(key.ipAllowlist) : 'Any address'),
    item('Created', time(key.createdAt, { dateOnly: true })),
    usage ? item('Last used', key.lastUsedAt ? time(key.lastUsedAt, { relative: true }) : h('span', { class: 'muted' }, 'Never used')) : null,
    key.revokedAt ? item('Revoked', time(key.revokedAt)) : null,
  );
}

/** Asks, then revokes; resolves true when the key is gone. */
export async function revokeKey(key) {
  const yes = await confirmDialog({
    title: `Revoke “${key.label}”?`,
    body: [
      h('p', null, 'Every request made with ', h('code', null, key.maskedKey), ' will get 401 from now on.'),
      h('p', null, 'Revoking is immediate and permanent: the key cannot be turned back on.'),
    ],
    confirmLabel: 'Revoke key',
    danger: true,
  });
  if (!yes) return false;
  await api.del(`/api/auth/api-keys/${encodeURIComponent(key.id)}`);
  return true;
}

const NOTICE = {
  'key.leaked': ['bad', (k, d) => `“${k}” was found exposed${d.url ? ` at ${d.url}` : ''}${d.wasLive ? ' and revoked at once' : ''}. Generate a new key and roll it out.`],
  'key.canary_used': ['bad', (k, d) => `Canary key “${k}” was used${d.ip ? ` from ${d.ip}` : ''}. Someone has it who should not.`],
  'key.quota_threshold': ['warn', (k, d) => `“${k}” has used ${d.percent ?? '?'}% of today’s quota${d.used !== undefined ? ` (${d.used} of ${d.quota})` : ''}.`],
  'key.expiring': ['warn', (k, d) => `“${k}” expires ${d.expiresAt ? new Date(d.expiresAt).toLocaleDateString() : 'soon'}.`],
  'key.revoked': ['neutral', (k) => `“${k}” was revoked.`],
};

/** The account's recent key notices (GET /api/notifications), newest first; nothing when absent. */
async function notices(keys) {
  let res;
  try {
    res = await api.get('/api/notifications?limit=5');
  } catch (err) {
    if (err.status === 404) return null;
    throw err;
  }
  const items = (res.items || []).filter((n) => NOTICE[n.type]);
  if (!items.length) return null;
  const labelOf = (id) => (keys.find((k) => k.id === id) || {}).label || 'A key';
  const unread = items.filter((n) => !n.readAt);
  const section = h('section', { class: 'card notices', 'aria-labelledby': 'notices-title' });
  const status = h('p', { class: 'copy-status', role: 'status' });
  let markAll = null;
  if (unread.length) {
    markAll = h('button', { type: 'button', class: 'btn btn-small btn-quiet' }, 'Mark all read');
    markAll.addEventListener('click', () => busy(markAll, async () => {
      try {
        await api.post('/api/notifications/read', { all: true });
        section.querySelectorAll('.notice-unread').forEach((li) => {
          li.classList.remove('notice-unread');
          li.querySelector('.unread-dot')?.remove();
        });
        markAll.remove();
        status.textContent = 'All notices marked read.';
      } catch (err) {
        status.textContent = err.message;
      }
    }, 'Marking…'));
  }
  section.append(
    h('div', { class: 'notices-head' }, h('h2', { id: 'notices-title' }, 'Recent notices'), markAll),
    h('ul', { class: 'notice-list' }, items.map((n) => {
      const [tone, text] = NOTICE[n.type];
      return h('li', { class: `notice notice-${tone}${n.readAt ? '' : ' notice-unread'}`, dataset: { type: n.type } },
        n.readAt ? null : h('span', { class: 'unread-dot' }, h('span', { class: 'offscreen' }, 'Unread: ')),
        h('span', null, text(labelOf(n.keyId), n.data || {})), ' ', time(n.createdAt, { relative: true }));
    })),
    status);
  return section;
}

export async function list({ state, go, flash }) {
  const keys = await listAll('/api/auth/api-keys');
  const recent = await notices(keys);
  const head = h('div', { class: 'page-head' },
    h('div', null,
      h('h1', null, 'API access'),
      h('p', null, `Keys let your services act as @${state.me.username}, with only the scopes you give them.`)),
    h('a', { class: 'btn btn-primary', href: '#/settings/api/new' }, 'Generate new key'));

  if (!keys.length) {
    return h('section', null, head, h('div', { class: 'card empty' },
      h('p', null, 'You have no API keys yet.'),
      h('p', null, h('a', { href: '#/settings/api/new' }, 'Generate your first key'), ' to post from a scheduler, a cross-poster or your own scripts.')));
  }

  const items = keys.map((key) => {
    const labelId = nextId('key');
    const actions = h('div', { class: 'key-actions' },
      h('a', { class: 'btn btn-small', href: `#/settings/api/keys/${encodeURIComponent(key.id)}`, 'aria-describedby': labelId }, 'Webhooks & details'));
    if (key.status === 'active') {
      const revoke = h('button', { type: 'button', class: 'btn btn-small btn-danger-quiet', 'aria-describedby': labelId }, 'Revoke');
      revoke.addEventListener('click', async () => {
        try {
          if (await revokeKey(key)) {
            flash(`Key “${key.label}” was revoked.`);
            go('/settings/api');
          }
        } catch (err) {
          flash(`Could not revoke “${key.label}”: ${err.message}`, 'error');
          go('/settings/api');
        }
      });
      actions.append(revoke);
    }
    return h('li', { class: key.status === 'active' ? 'key-card' : 'key-card is-inactive', dataset: { keyId: key.id } },
      h('div', { class: 'key-top' },
        h('h2', { class: 'key-label', id: labelId }, key.label),
        statusBadge(key),
        key.canary ? badge('canary', 'warn') : null,
        h('code', { class: 'key-masked' }, key.maskedKey)),
      keyMeta(key),
      actions);
  });
  const active = keys.filter((k) => k.status === 'active').length;
  return h('section', null, head, recent,
    h('p', { class: 'muted small' }, `${active} active of ${keys.length} key${keys.length === 1 ? '' : 's'}. To change a key's scopes, generate a new key and revoke the old one.`),
    h('ul', { class: 'key-list', 'aria-label': 'Your API keys' }, items));
}

const EXPIRY = [
  ['never', 'Never'],
  ['30d', '30 days'],
  ['90d', '90 days'],
  ['1y', '1 year'],
  ['custom', 'Custom date…'],
];

function scopeItem(scope) {
  const id = nextId('scope');
  const descId = `${id}-desc`;
  const box = h('input', { type: 'checkbox', id, name: 'scopes', value: scope.scope, 'aria-describedby': descId });
  const desc = h('div', { class: 'scope-desc', id: descId, hidden: true },
    h('p', null, scope.description),
    scope.routes && scope.routes.length ? h('ul', null, scope.routes.map((r) => h('li', null, h('code', null, r)))) : null);
  const li = h('li', { class: 'scope' },
    h('label', { for: id }, box, h('span', null, h('span', { class: 'scope-name' }, scope.name), ' ', h('span', { class: 'scope-id' }, scope.scope))),
    desc);
  const sync = () => {
    desc.hidden = !box.checked;
    li.classList.toggle('is-checked', box.checked);
  };
  box.addEventListener('change', sync);
  return { li, box, sync };
}

function endOfLocalDay(yyyyMmDd) {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(yyyyMmDd || '');
  if (!m) return yyyyMmDd || '';
  return new Date(Number(m[1]), Number(m[2]) - 1, Number(m[3]), 23, 59, 59).toISOString();
}

function localDate(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

export async function create({ state, go }) {
  const cat = await catalog(state);

  const fLabel = field({ name: 'label', label: 'Label', hint: 'A short name so you recognise the key later, e.g. “Buffer scheduler”.', attrs: { maxlength: '64', autocomplete: 'off' } });

  const scopes = cat.scopes.map(scopeItem);
  const presetStatus = h('p', { class: 'hint', role: 'status' });
  const presets = h('div', { class: 'presets' }, cat.presets.map((p) => {
    const b = h('button', { type: 'button', class: 'btn btn-small', title: p.description, dataset: { preset: p.name } }, presetTitle(p.name));
    b.addEventListener('click', () => {
      for (const s of scopes) {
        s.box.checked = p.scopes.includes(s.box.value);
        s.sync();
      }
      presetStatus.textContent = `${presetTitle(p.name)}: ${p.scopes.join(', ')}. ${p.description}`;
    });
    return b;
  }));
  const scopesHintId = nextId('scopes-hint');
  const scopeSet = h('fieldset', { id: nextId('scopes'), dataset: { field: 'scopes' }, 'aria-describedby': scopesHintId },
    h('legend', null, 'Scopes'),
    h('p', { class: 'hint', id: scopesHintId }, 'Pick the smallest set your integration needs. Scopes are fixed once the key exists.'),
    h('div', { class: 'field' }, h('p', { class: 'hint' }, 'Start from a preset, then adjust:'), presets, presetStatus),
    h('ul', { class: 'scope-list' }, scopes.map((s) => s.li)));

  const select = h('select', null, EXPIRY.map(([v, t]) => h('option', { value: v }, t)));
  const fExpiry = field({ name: 'expiresIn', label: 'Expiry', control: select, hint: 'When the key stops working. You can revoke it any time before.' });
  select.value = '90d';
  const tomorrow = new Date(Date.now() + 86400000);
  const fDate = field({ name: 'expiresAt', label: 'Expiry date', type: 'date', hint: 'The key stops working at the end of this day, your local time.', attrs: { min: localDate(new Date()) }, value: localDate(new Date(tomorrow.getTime() + 29 * 86400000)) });
  fDate.wrap.hidden = true;
  select.addEventListener('change', () => { fDate.wrap.hidden = select.value !== 'custom'; });

  const fAllow = field({ name: 'ipAllowlist', label: 'IP allowlist (optional)', type: 'textarea', hint: 'One address or CIDR range per line, e.g. 203.0.113.0/24 or 2001:db8::/32. Leave empty to accept any address.', attrs: { rows: '3', spellcheck: 'false', autocapitalize: 'none' } });

  const canaryId = nextId('canary');
  const canary = h('input', { type: 'checkbox', id: canaryId, 'aria-describedby': `${canaryId}-hint` });
  const advanced = h('details', { class: 'advanced' },
    h('summary', null, 'Advanced'),
    h('div', { class: 'scope' },
      h('label', { for: canaryId }, canary, h('span', null, h('span', { class: 'scope-name' }, 'Canary key'))),
      h('p', { class: 'hint scope-desc', id: `${canaryId}-hint` }, 'A decoy: it never authorizes anything, and any use of it notifies you. Plant it where a leak would show up.')));

  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Generate key');
  const form = h('form', { class: 'form', novalidate: true },
    fLabel.wrap, scopeSet, fExpiry.wrap, fDate.wrap, fAllow.wrap, advanced,
    h('div', { class: 'actions' }, submit, h('a', { class: 'btn btn-quiet', href: '#/settings/api' }, 'Cancel')));

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    clearErrors(form);
    const lines = fAllow.input.value.split('\n');
    const entries = [];
    const lineOf = [];
    lines.forEach((line, i) => {
      if (line.trim()) {
        entries.push(line.trim());
        lineOf.push(i + 1);
      }
    });
    const body = {
      label: fLabel.input.value,
      scopes: scopes.filter((s) => s.box.checked).map((s) => s.box.value),
      ipAllowlist: entries,
    };
    if (canary.checked) body.canary = true;
    if (select.value === 'custom') body.expiresAt = endOfLocalDay(fDate.input.value);
    else body.expiresIn = select.value;
    busy(submit, async () => {
      try {
        state.created = await api.post('/api/auth/api-keys', body);
        go('/settings/api/created');
      } catch (err) {
        showApiError(form, err, {
          preset: 'scopes',
          expiresAt: select.value === 'custom' ? 'expiresAt' : 'expiresIn',
          ipAllowlist: {
            field: 'ipAllowlist',
            text: (i, text) => (i === null ? cap(text) : `Line ${lineOf[i] ?? i + 1}: ${text}`),
          },
        });
      }
    }, 'Generating…');
  });

  return h('section', null,
    h('div', { class: 'page-head' }, h('div', null,
      h('p', { class: 'crumbs' }, h('a', { href: '#/settings/api' }, 'API access')),
      h('h1', null, 'Generate a new API key'),
      h('p', null, 'The key is shown once, on the next screen.'))),
    h('div', { class: 'card' }, form));
}

const cap = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

function presetTitle(name) {
  return cap(name);
}

export function created({ state, go, flash }) {
  const key = state.created;
  if (!key) {
    return h('section', { class: 'card' },
      h('h1', null, 'Nothing to show'),
      h('p', null, 'A new key is shown only once, right after you generate it. If you did not store it, revoke it and generate another.'),
      h('p', null, h('a', { href: '#/settings/api' }, 'Back to API access')));
  }
  const status = h('p', { class: 'copy-status', role: 'status', 'aria-live': 'polite' });
  const secretId = nextId('secret');
  const done = h('button', { type: 'button', class: 'btn btn-primary' }, 'I’ve stored it');
  done.addEventListener('click', () => {
    state.created = null;
    flash(`Key “${key.label}” is ready. From now on it is shown only as ${key.maskedKey}.`);
    go('/settings/api');
  });
  return h('section', null,
    h('div', { class: 'page-head' }, h('div', null,
      h('p', { class: 'crumbs' }, h('a', { href: '#/settings/api' }, 'API access')),
      h('h1', null, 'Copy your new API key'))),
    h('div', { class: 'warning', role: 'note' },
      h('span', { class: 'warning-icon', 'aria-hidden': 'true' }, '⚠'),
      h('div', null,
        h('strong', null, 'This is the only time this key will be shown.'),
        'Store it in your service’s secret store now. We keep only a hash of it, so nobody can show it to you again. If you lose it, revoke it and generate a new one.')),
    h('div', { class: 'card' },
      h('h2', { id: `${secretId}-label` }, key.label),
      h('div', { class: 'secret-box' },
        h('code', { class: 'secret', id: secretId, 'aria-labelledby': `${secretId}-label`, 'data-secret': '' }, key.key),
        copyButton(() => key.key, { label: 'Copy key', status })),
      status,
      keyMeta(key, { usage: false }),
      h('p', { class: 'small muted' }, 'Send it on every request as ', h('code', null, 'Authorization: Bearer <key>'), '. Examples for curl, JavaScript and Python are under “Use your key”.'),
      h('div', { class: 'actions' }, done)));
}
