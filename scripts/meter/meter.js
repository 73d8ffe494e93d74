// jestha meter, shared part (scripts/meter/): counts the calls a Worker
// makes through its bindings before they leave (D1 queries, a batch being
// one; Durable Object calls; R2 and Queue operations; service bindings) and
// fetches to the Internet: the platform's subrequests, counted where they
// happen, so no count can drift from the code, and no byte of it is in the
// wasm. The entries around worker-build's module (http.js for the API and the
// account Worker, engine.js for the engine and its Gate objects) count only
// with METER=true (tests and `make bench`; never set in a deployment).
//
// Besides totals, each invocation (a Worker request with the work it defers
// with waitUntil; a Durable Object's request or alarm) is counted apart, and
// `widest` is the most subrequests any one made, since the last reading:
// the number the Free plan bounds (50 per invocation). A Durable Object
// object's requests share its env, so one of them is charged everything the
// object did while it was running: an upper bound, exact when the object
// serves one request at a time (a fan-out node always does).
//
// Beside the subrequests, the units Cloudflare bills (`make bench` prices
// them): D1 rows read and written (each result's meta), Durable Object
// storage rows (a key read or written through the KV API is a row; an alarm
// set is counted as one row written, an upper bound), alarm invocations, R2
// operations by class, Queue messages, and queue batches (billed as Worker
// requests; a cron run is an invocation of the API like a request).

export const totals = {
  invocations: 0, objects: 0, subrequests: 0, widest: 0, widestObject: 0,
  d1: 0, durableObjects: 0, r2: 0, queue: 0, service: 0, external: 0,
  d1RowsRead: 0, d1RowsWritten: 0, doRowsRead: 0, doRowsWritten: 0, alarms: 0,
  r2ClassA: 0, r2ClassB: 0, queueMessages: 0, queueBatches: 0,
  // Of the subrequests, those made by invocations of their own rather than
  // by the request's chain (Durable Objects, queue batches), by kind.
  apartSubrequests: 0, apart_d1: 0, apart_durableObjects: 0, apart_r2: 0, apart_queue: 0, apart_service: 0,
};
let pending = 0;
const RAW = Symbol("raw");

// A tally is what one invocation (or one object) has made so far; `charge`
// is called with it on every subrequest and keeps `widest` up to date.
function count(tally, kind) {
  totals[kind] += 1;
  totals.subrequests += 1;
  if (tally.apart) {
    totals.apartSubrequests += 1;
    totals[`apart_${kind}`] += 1;
  }
  tally.n += 1;
  tally.charge(tally);
}

// `apart`: an invocation no HTTP request's chain includes (a queue batch).
export function invocationTally(apart = false) {
  totals.invocations += 1;
  return { n: 0, apart, charge: (t) => { totals.widest = Math.max(totals.widest, t.n); } };
}

// Runs a Worker's handler (fetch, queue, scheduled) as one metered
// invocation: its bindings counted, its deferred work tracked.
export function invoke(handler, self, args, apart = false) {
  const tally = invocationTally(apart);
  return handler.apply({ env: meteredEnv(self.env, tally), ctx: deferring(self.ctx) }, args);
}

// An object's tally: `open` holds the count at the start of each request
// still running; each is charged what the object made since.
export function objectTally() {
  const t = {
    n: 0, open: [], apart: true,
    charge: (x) => {
      const since = x.open.length ? x.n - Math.min(...x.open) : 1;
      totals.widestObject = Math.max(totals.widestObject, since);
    },
  };
  return t;
}

export async function within(tally, run) {
  totals.objects += 1;
  const start = tally.n;
  tally.open.push(start);
  try {
    return await run();
  } finally {
    tally.open.splice(tally.open.indexOf(start), 1);
  }
}

function bound(t, k) {
  const v = Reflect.get(t, k);
  return typeof v === "function" && k !== "constructor" ? v.bind(t) : v;
}

function methods(target, counted, kind, tally, wrap = (x) => x) {
  return new Proxy(target, {
    get(t, k) {
      const v = Reflect.get(t, k);
      if (typeof v !== "function" || k === "constructor") return v;
      if (counted.includes(k)) return (...a) => { if (kind) count(tally, kind); return wrap(v.apply(t, a)); };
      return v.bind(t);
    },
  });
}

function rows(result) {
  totals.d1RowsRead += result?.meta?.rows_read ?? 0;
  totals.d1RowsWritten += result?.meta?.rows_written ?? 0;
  return result;
}

function statement(stmt, tally) {
  return new Proxy(stmt, {
    get(t, k) {
      if (k === RAW) return t;
      if (k === "bind") return (...a) => statement(t.bind(...a), tally);
      if (k === "first") {
        return (col) => {
          count(tally, "d1");
          return t.all().then((r) => {
            rows(r);
            const row = r.results[0] ?? null;
            return col === undefined || row === null ? row : row[col] ?? null;
          });
        };
      }
      if (["all", "run"].includes(k)) return (...a) => { count(tally, "d1"); return t[k](...a).then(rows); };
      if (k === "raw") return (...a) => { count(tally, "d1"); return t[k](...a); };
      return bound(t, k);
    },
  });
}

// R2's classes: A writes and lists, B reads; deletes and aborts are free.
const R2_CLASS = {
  put: "r2ClassA", list: "r2ClassA", createMultipartUpload: "r2ClassA", uploadPart: "r2ClassA", complete: "r2ClassA",
  get: "r2ClassB", head: "r2ClassB", delete: null, abort: null,
};

function r2Op(t, k, tally, wrap = (x) => x) {
  return (...a) => {
    count(tally, "r2");
    if (R2_CLASS[k]) totals[R2_CLASS[k]] += 1;
    return wrap(t[k](...a));
  };
}

function r2Upload(upload, tally) {
  return new Proxy(upload, {
    get(t, k) {
      return ["uploadPart", "complete", "abort"].includes(k) ? r2Op(t, k, tally) : bound(t, k);
    },
  });
}

// `resumeMultipartUpload` only names an upload (no request); its operations count.
function r2Bucket(r2, tally) {
  return new Proxy(r2, {
    get(t, k) {
      if (k === "createMultipartUpload") return r2Op(t, k, tally, (p) => p.then((u) => r2Upload(u, tally)));
      if (k === "resumeMultipartUpload") return (...a) => r2Upload(t[k](...a), tally);
      return Object.hasOwn(R2_CLASS, k) ? r2Op(t, k, tally) : bound(t, k);
    },
  });
}

function queue(q, tally) {
  return new Proxy(q, {
    get(t, k) {
      if (k === "send") return (...a) => { count(tally, "queue"); totals.queueMessages += 1; return t.send(...a); };
      if (k === "sendBatch") return (m, ...a) => { count(tally, "queue"); totals.queueMessages += m.length; return t.sendBatch(m, ...a); };
      return bound(t, k);
    },
  });
}

// A Durable Object's storage, its rows counted (the KV API: a key is a row).
function keys(k) {
  return Array.isArray(k) ? k.length : 1;
}
export function meteredState(state) {
  const storage = new Proxy(state.storage, {
    get(t, k) {
      const f = bound(t, k);
      if (k === "get") return (key, ...a) => { totals.doRowsRead += keys(key); return f(key, ...a); };
      if (k === "list") return (...a) => f(...a).then((m) => { totals.doRowsRead += m.size; return m; });
      if (k === "put") return (key, ...a) => { totals.doRowsWritten += typeof key === "string" ? 1 : Object.keys(key).length; return f(key, ...a); };
      if (k === "delete") return (key, ...a) => { totals.doRowsWritten += keys(key); return f(key, ...a); };
      if (["setAlarm", "deleteAlarm", "deleteAll"].includes(k)) return (...a) => { totals.doRowsWritten += 1; return f(...a); };
      return f;
    },
  });
  return new Proxy(state, { get: (t, k) => (k === "storage" ? storage : bound(t, k)) });
}

const WRAP = {
  DB: (db, tally) => new Proxy(db, {
    get(t, k) {
      if (k === "prepare") return (sql) => statement(t.prepare(sql), tally);
      if (k === "batch") {
        return (stmts) => {
          count(tally, "d1");
          return t.batch(stmts.map((s) => s[RAW] ?? s)).then((rs) => { rs.forEach(rows); return rs; });
        };
      }
      if (k === "exec") return (...a) => { count(tally, "d1"); return t.exec(...a); };
      return bound(t, k);
    },
  }),
  GATE: (ns, tally) => methods(ns, ["get", "getByName"], null, tally,
    (stub) => methods(stub, ["fetch"], "durableObjects", tally)),
  MEDIA: (r2, tally) => r2Bucket(r2, tally),
  WEBHOOKS: (q, tally) => queue(q, tally),
  WEBHOOKS_DLQ: (q, tally) => queue(q, tally),
  ENGINE: (s, tally) => methods(s, ["fetch"], "service", tally),
  ACCOUNT: (s, tally) => methods(s, ["fetch"], "service", tally),
};

// `env` as the Worker's code sees it, every binding call counted against `tally`.
export function meteredEnv(env, tally) {
  return new Proxy(env, {
    get(t, k) {
      const v = Reflect.get(t, k);
      return WRAP[k] && v ? WRAP[k](v, tally) : v;
    },
  });
}

// Fetches to the Internet, counted in the totals (not per invocation: the
// global fetch does not know whose it is).
let realFetch = null;
export function countExternalFetches() {
  if (realFetch) return;
  realFetch = globalThis.fetch;
  globalThis.fetch = (...a) => {
    totals.external += 1;
    totals.subrequests += 1;
    return realFetch(...a);
  };
}

// ctx with waitUntil tracked, so a reading can wait for deferred work.
export function deferring(ctx) {
  return new Proxy(ctx, {
    get(t, k) {
      if (k === "waitUntil") {
        return (p) => {
          pending += 1;
          t.waitUntil(Promise.resolve(p).finally(() => { pending -= 1; }));
        };
      }
      return bound(t, k);
    },
  });
}

// The totals; `?settle=1` first waits (up to 30 s) for deferred work. Every
// reading starts the next `widest` afresh.
export async function reading(url) {
  // Polled: a promise resolved in another request's context would not wake this one.
  for (let i = 0; url.searchParams.has("settle") && pending > 0 && i < 3000; i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  const out = { ...totals, pending };
  totals.widest = 0;
  totals.widestObject = 0;
  return out;
}
