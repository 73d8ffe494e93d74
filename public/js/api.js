// Calls the Jestha API with the session cookie. The session token itself is
// HttpOnly and never visible here; unsafe methods echo the __Host-jes_csrf cookie in
// X-CSRF-Token (double submit). Every failure becomes an ApiError carrying the
// envelope's code and message.

export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

function cookie(name) {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return '';
}

let onSessionLost = () => {};
export function whenSessionLost(fn) {
  onSessionLost = fn;
}

const SESSION_LOST = new Set(['invalid_session', 'unauthenticated']);

export async function request(method, path, body, { quiet401 = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (!['GET', 'HEAD'].includes(method)) headers['X-CSRF-Token'] = cookie('__Host-jes_csrf');
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, 'network_error', 'Could not reach Jestha. Check your connection and try again.');
  }
  let data = null;
  if (res.status !== 204) {
    data = await res.json().catch(() => null);
  }
  if (!res.ok) {
    const e = data && data.error ? data.error : {};
    const err = new ApiError(res.status, e.code || 'http_error', e.message || `Request failed (${res.status})`, e.retryAfter);
    if (res.status === 401 && SESSION_LOST.has(err.code) && !quiet401) onSessionLost(err);
    throw err;
  }
  return data;
}

export const api = {
  get: (path, opts) => request('GET', path, undefined, opts),
  post: (path, body, opts) => request('POST', path, body ?? {}, opts),
  patch: (path, body, opts) => request('PATCH', path, body ?? {}, opts),
  del: (path, opts) => request('DELETE', path, undefined, opts),
};

// Auth: ask for the cookie transport, so the token never reaches this script.
export function authPost(path, body) {
  return fetch(path, {
    method: 'POST',
    headers: { Accept: 'application/json', 'Content-Type': 'application/json', 'X-Session-Transport': 'cookie' },
    body: JSON.stringify(body),
    credentials: 'same-origin',
    cache: 'no-store',
  }).then(async (res) => {
    const data = await res.json().catch(() => null);
    if (!res.ok) {
      const e = data && data.error ? data.error : {};
      throw new ApiError(res.status, e.code || 'http_error', e.message || `Request failed (${res.status})`, e.retryAfter);
    }
    return data;
  }, () => {
    throw new ApiError(0, 'network_error', 'Could not reach Jestha. Check your connection and try again.');
  });
}

/** Every page of a cursor list (bounded: keys are capped per account). */
export async function listAll(path, maxPages = 10) {
  const items = [];
  let cursor = null;
  for (let i = 0; i < maxPages; i++) {
    const sep = path.includes('?') ? '&' : '?';
    const page = await api.get(cursor ? `${path}${sep}limit=100&cursor=${encodeURIComponent(cursor)}` : `${path}${sep}limit=100`);
    items.push(...(page.items || []));
    cursor = page.nextCursor;
    if (!cursor) break;
  }
  return items;
}

/**
 * Splits an envelope message like `ipAllowlist[1]: '…' is not a valid CIDR`
 * into the field it names (`ipAllowlist`), the index (1) and the text after
 * the colon. Messages that name no field come back with field null.
 */
export function fieldOf(message) {
  const m = /^([A-Za-z][A-Za-z0-9_.]*)(?:\[(\d+)\])?:\s*(.*)$/s.exec(message || '');
  if (!m) return { field: null, index: null, text: message || '' };
  return { field: m[1], index: m[2] === undefined ? null : Number(m[2]), text: m[3] };
}
