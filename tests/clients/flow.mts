// An integrator's flow through openapi-fetch, typed by the `paths` that
// openapi-typescript generates from the served /openapi.json (as ./schema.d.ts,
// next to this file: tests/test_generated_clients.py generates it, type-checks
// this file with tsc --strict, then runs the output with JESTHA_URL set).
// Prints what it saw as JSON, for the test to check against the API.
import createClient from 'openapi-fetch';
import type { components, paths } from './schema.js';

declare const process: { env: Record<string, string | undefined> };

type Jes = components['schemas']['Jes'];
type ErrorCode = components['schemas']['Error']['error']['code'];

function must<T>(what: string, r: { data?: T; error?: unknown; response: Response }): T {
  if (r.data === undefined) throw new Error(`${what}: ${r.response.status} ${JSON.stringify(r.error)}`);
  return r.data;
}

const baseUrl = process.env.JESTHA_URL!;
const username = `ts${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`.slice(0, 30);

const anonymous = createClient<paths>({ baseUrl });
const made = must('signup', await anonymous.POST('/api/auth/signup', {
  body: { username, email: `${username}@example.com`, password: 'correct horse battery' },
}));
const session = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${made.session.token}` } });
const key = must('create key', await session.POST('/api/auth/api-keys', {
  body: { label: 'typescript client', scopes: ['write:jes', 'write:comment', 'read:comment', 'webhooks:manage'] },
}));

const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${key.key}` } });
const me = must('calling key', await client.GET('/api/auth/key'));
const idempotencyKey = crypto.randomUUID();
const post = () => client.POST('/api/posts', {
  params: { header: { 'Idempotency-Key': idempotencyKey } },
  body: { content: 'Posted by a generated TypeScript client #openapi', visibility: 'PUBLIC' },
});
const first = await post();
const again = await post();
const jes: Jes = must('create Jes', first);
const replayed: Jes = must('replay', again);
const comment = must('comment', await client.POST('/api/posts/{id}/comments', {
  params: { path: { id: jes.id } },
  body: { content: 'A comment, typed' },
}));
const thread = must('comments', await client.GET('/api/posts/{id}/comments', {
  params: { path: { id: jes.id }, query: { limit: 10 } },
}));
const hook = must('webhook', await client.POST('/api/auth/api-keys/{id}/webhooks', {
  params: { path: { id: me.id } },
  body: { url: 'https://example.com/hooks/typescript', events: ['post.created', 'comment.created'] },
}));
const hooks = must('webhooks', await client.GET('/api/auth/api-keys/{id}/webhooks', { params: { path: { id: me.id } } }));
const missing = await client.GET('/api/posts/{id}', { params: { path: { id: '01KBZ7T5A6B7C8D9E0F1G2H3JC' } } });
const code: ErrorCode | undefined = missing.error?.error.code;

// What the types refuse (checked by tsc, never sent): a visibility the API does
// not know, a missing path parameter, and a session-only field on a key's Jes.
export function refusedByTheTypes(): void {
  // @ts-expect-error visibility is "PUBLIC" | "FOLLOWERS" | "PRIVATE"
  void client.POST('/api/posts', { body: { content: 'x', visibility: 'public' } });
  // @ts-expect-error the Jes id is required
  void client.GET('/api/posts/{id}/comments', { params: { path: {} } });
  // @ts-expect-error a comment needs content
  void client.POST('/api/posts/{id}/comments', { params: { path: { id: 'x' } }, body: { parentId: 'y' } });
}

console.log(JSON.stringify({
  userId: made.user.id,
  keyId: me.id,
  jes: jes.id,
  replayedJes: replayed.id,
  replayed: again.response.headers.get('idempotent-replayed'),
  remaining: first.response.headers.get('x-ratelimit-remaining'),
  via: jes.via?.label,
  comment: comment.id,
  thread: thread.items.map((c) => c.id),
  webhook: hook.id,
  secret: hook.secret.slice(0, 6),
  webhooks: hooks.items.map((h) => h.id),
  missing: [missing.response.status, code],
}));
