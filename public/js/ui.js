// Small DOM helpers: an element builder (text only, never HTML strings), form
// fields whose errors sit next to them, a confirm dialog, a copy button and
// date formatting.

import { fieldOf } from './api.js';

let uid = 0;
export const nextId = (p = 'id') => `${p}-${++uid}`;

/** h('button', {class: 'btn', onclick: fn}, 'Label') */
export function h(tag, props, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked') el.checked = !!v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, String(v));
  }
  add(el, kids);
  return el;
}

function add(el, kids) {
  for (const k of kids.flat(Infinity)) {
    if (k === null || k === undefined || k === false) continue;
    el.append(k instanceof Node ? k : document.createTextNode(String(k)));
  }
}

/** A labelled input with hint and an error slot tied by aria-describedby. */
export function field({ name, label, type = 'text', hint, value, autocomplete, attrs = {}, control }) {
  const id = nextId(name);
  const input = control || (type === 'textarea'
    ? h('textarea', { id, name, ...attrs })
    : h('input', { id, name, type, autocomplete, ...attrs }));
  input.id = id;
  input.dataset.field = name;
  if (value !== undefined) input.value = value;
  const hintEl = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintEl) input.setAttribute('aria-describedby', hintEl.id);
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, label), hintEl, input);
  return { wrap, input };
}

function describedBy(el, add, remove) {
  const ids = new Set((el.getAttribute('aria-describedby') || '').split(/\s+/).filter(Boolean));
  if (remove) ids.delete(remove);
  if (add) ids.add(add);
  if (ids.size) el.setAttribute('aria-describedby', [...ids].join(' '));
  else el.removeAttribute('aria-describedby');
}

export function clearErrors(form) {
  for (const e of form.querySelectorAll('.field-error, .form-error')) e.remove();
  for (const el of form.querySelectorAll('[data-field]')) {
    el.removeAttribute('aria-invalid');
    describedBy(el, null, `${el.id}-error`);
  }
}

/** Puts `message` under the control (an input or a fieldset) and links it. */
export function setFieldError(control, message) {
  const errId = `${control.id}-error`;
  const err = h('p', { class: 'field-error', id: errId }, message);
  if (control.tagName === 'FIELDSET') {
    control.append(err);
  } else {
    control.setAttribute('aria-invalid', 'true');
    control.insertAdjacentElement('afterend', err);
  }
  describedBy(control, errId);
}

export function formError(form, message) {
  const err = h('p', { class: 'form-error', role: 'alert' }, message);
  const actions = form.querySelector('.actions');
  if (actions) actions.insertAdjacentElement('beforebegin', err);
  else form.append(err);
  return err;
}

export function humanMessage(err) {
  switch (err.code) {
    case 'rate_limited':
    case 'quota_exceeded':
      if (/try again/i.test(err.message)) return err.message;
      return `${err.message}. Try again in ${err.retryAfter ?? 'a few'} seconds.`;
    case 'internal_error':
      return 'Something went wrong on our side. Please try again.';
    default: {
      const { field, text } = fieldOf(err.message);
      return field && text ? `${field}: ${text}` : err.message;
    }
  }
}

/**
 * Shows an API error next to the field its message names (`label: …`), or at
 * the form's foot when it names none. `fields` maps API field names to the
 * form's `data-field` names, optionally with a function that rewrites the text
 * (e.g. `ipAllowlist[2]` to a line number).
 */
export function showApiError(form, err, fields = {}) {
  clearErrors(form);
  const { field, index, text } = fieldOf(err.message);
  const spec = field ? (fields[field] ?? field) : null;
  const name = typeof spec === 'object' && spec ? spec.field : spec;
  const control = name ? form.querySelector(`[data-field="${CSS.escape(name)}"]`) : null;
  const fieldish = err.status === 400 || err.status === 409;
  if (control && fieldish) {
    const msg = typeof spec === 'object' && spec.text ? spec.text(index, text) : capitalize(text);
    setFieldError(control, msg);
    const focusable = control.tagName === 'FIELDSET' ? control.querySelector('input, select, textarea, button') : control;
    focusable?.focus();
    return;
  }
  const fe = formError(form, humanMessage(err));
  fe.setAttribute('tabindex', '-1');
  fe.focus();
}

const capitalize = (s) => (s ? s[0].toUpperCase() + s.slice(1) : s);

/** Disables the submit button while `fn` runs. */
export async function busy(button, fn, label) {
  const old = button.textContent;
  button.disabled = true;
  if (label) button.textContent = label;
  try {
    return await fn();
  } finally {
    button.disabled = false;
    button.textContent = old;
  }
}

/** A modal confirm built on <dialog>: Esc and Cancel say no; focus starts on Cancel. */
export function confirmDialog({ title, body, confirmLabel = 'Confirm', danger = false }) {
  return new Promise((resolve) => {
    const titleId = nextId('dlg-title');
    const bodyId = nextId('dlg-body');
    const cancel = h('button', { type: 'button', class: 'btn', value: 'cancel' }, 'Cancel');
    const ok = h('button', { type: 'button', class: danger ? 'btn btn-danger' : 'btn btn-primary', value: 'ok' }, confirmLabel);
    const dlg = h('dialog', { 'aria-labelledby': titleId, 'aria-describedby': bodyId },
      h('h2', { id: titleId }, title),
      h('div', { id: bodyId }, body),
      h('div', { class: 'actions' }, ok, cancel),
    );
    const opener = document.activeElement;
    let answer = false;
    cancel.addEventListener('click', () => dlg.close());
    ok.addEventListener('click', () => { answer = true; dlg.close(); });
    dlg.addEventListener('close', () => {
      dlg.remove();
      if (opener && opener.isConnected) opener.focus();
      resolve(answer);
    });
    document.body.append(dlg);
    dlg.showModal();
    cancel.focus();
  });
}

/** A button that copies `getText()` and says so in a live region. */
export function copyButton(getText, { label = 'Copy', status, ariaLabel } = {}) {
  const btn = h('button', { type: 'button', class: 'btn', 'aria-label': ariaLabel }, label);
  btn.addEventListener('click', async () => {
    const text = getText();
    let ok = false;
    try {
      await navigator.clipboard.writeText(text);
      ok = true;
    } catch {
      ok = legacyCopy(text);
    }
    if (status) status.textContent = ok ? 'Copied to the clipboard.' : 'Could not copy: select the text and copy it yourself.';
  });
  return btn;
}

function legacyCopy(text) {
  const ta = h('textarea', { readonly: true, 'aria-hidden': 'true', class: 'offscreen' });
  ta.value = text;
  document.body.append(ta);
  ta.select();
  let ok = false;
  try { ok = document.execCommand('copy'); } catch { ok = false; }
  ta.remove();
  return ok;
}

const full = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const day = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium' });

export function time(iso, { relative = false, dateOnly = false } = {}) {
  if (!iso) return null;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  let text = dateOnly ? day.format(d) : full.format(d);
  if (relative) {
    const s = Math.round((Date.now() - d.getTime()) / 1000);
    if (s < 45) text = 'just now';
    else if (s < 3600) text = `${Math.round(s / 60)} min ago`;
    else if (s < 86400) text = `${Math.round(s / 3600)} h ago`;
  }
  return h('time', { datetime: d.toISOString(), title: full.format(d) }, text);
}

export function badge(text, tone) {
  return h('span', { class: `badge badge-${tone}` }, text);
}

export function loading(text = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, text);
}
