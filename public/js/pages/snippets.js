// "Use your key": curl, JavaScript and Python examples for one of the
// account's keys, shown masked, against this server's own address.

import { listAll } from '../api.js';
import { h, copyButton, nextId } from '../ui.js';

export function examples(origin, key) {
  const auth = `Bearer ${key.maskedKey}`;
  if (key.scopes.includes('write:jes')) {
    return {
      what: 'Create a Jes (needs write:jes)',
      curl: [
        `curl -X POST ${origin}/api/posts \\`,
        `  -H "Authorization: ${auth}" \\`,
        '  -H "Content-Type: application/json" \\',
        `  -d '{"content":"Hello from my service","visibility":"PUBLIC"}'`,
      ].join('\n'),
      js: [
        `const res = await fetch('${origin}/api/posts', {`,
        "  method: 'POST',",
        '  headers: {',
        `    'Authorization': '${auth}',`,
        "    'Content-Type': 'application/json',",
        '  },',
        "  body: JSON.stringify({ content: 'Hello from my service', visibility: 'PUBLIC' }),",
        '});',
        'if (!res.ok) {',
        '  throw new Error(`Jestha API ${res.status}: ${await res.text()}`);',
        '}',
        'const jes = await res.json();',
        'console.log(jes.id);',
      ].join('\n'),
      python: [
        'import requests',
        '',
        'res = requests.post(',
        `    "${origin}/api/posts",`,
        `    headers={"Authorization": "${auth}"},`,
        '    json={"content": "Hello from my service", "visibility": "PUBLIC"},',
        '    timeout=10,',
        ')',
        'res.raise_for_status()',
        'print(res.json()["id"])',
      ].join('\n'),
    };
  }
  return {
    what: 'Check the key and read the account it is bound to (every key may)',
    curl: [`curl ${origin}/api/auth/me \\`, `  -H "Authorization: ${auth}"`].join('\n'),
    js: [
      `const res = await fetch('${origin}/api/auth/me', {`,
      `  headers: { 'Authorization': '${auth}' },`,
      '});',
      'if (!res.ok) {',
      '  throw new Error(`Jestha API ${res.status}: ${await res.text()}`);',
      '}',
      'const me = await res.json();',
      'console.log(me.id, me.username);',
    ].join('\n'),
    python: [
      'import requests',
      '',
      'res = requests.get(',
      `    "${origin}/api/auth/me",`,
      `    headers={"Authorization": "${auth}"},`,
      '    timeout=10,',
      ')',
      'res.raise_for_status()',
      'print(res.json()["id"])',
    ].join('\n'),
  };
}

function snippet(title, lang, code) {
  const id = nextId('snippet');
  const status = h('span', { class: 'small copy-status', role: 'status' });
  return h('section', { class: 'snippet', 'aria-labelledby': id },
    h('div', { class: 'snippet-head' },
      h('h2', { id }, title),
      h('span', null, status, ' ', copyButton(() => code, { label: 'Copy', ariaLabel: `Copy the ${title} example`, status }))),
    h('pre', { tabindex: '0', 'aria-labelledby': id, dataset: { lang } }, h('code', null, code)));
}

export async function page() {
  const keys = (await listAll('/api/auth/api-keys')).filter((k) => k.status === 'active');
  const head = h('div', { class: 'page-head' }, h('div', null,
    h('h1', null, 'Use your key'),
    h('p', null, 'Send the key as a Bearer token on every request. That is the whole integration.')));
  if (!keys.length) {
    return h('section', null, head, h('div', { class: 'card empty' },
      h('p', null, 'You have no active key.'),
      h('p', null, h('a', { href: '#/settings/api/new' }, 'Generate a key'), ' and come back for ready-to-run examples.')));
  }
  const selectId = nextId('key-select');
  const select = h('select', { id: selectId }, keys.map((k) => h('option', { value: k.id }, `${k.label} (${k.maskedKey})`)));
  const out = h('div');
  const show = () => {
    const key = keys.find((k) => k.id === select.value) || keys[0];
    const ex = examples(location.origin, key);
    out.replaceChildren(
      h('p', { class: 'muted' }, ex.what, '.'),
      snippet('curl', 'shell', ex.curl),
      snippet('JavaScript (fetch)', 'js', ex.js),
      snippet('Python (requests)', 'python', ex.python));
  };
  select.addEventListener('change', show);
  show();
  return h('section', null, head,
    h('div', { class: 'card' },
      h('div', { class: 'field' }, h('label', { for: selectId }, 'Key'), select),
      h('p', { class: 'hint' }, 'Keys are shown masked: paste the full key you stored when you generated it, ideally from an environment variable or your secret manager. Never commit it to git.')),
    out);
}
