// The account's own timeline: its Jes and JesClips, newest first, each one
// made with an API key wearing a small "via {label}" chip (seed 001 §3), with
// engagement counts. Reads the session-only GET /api/users/:username/posts
// (or a profile route that carries the list) and says so plainly when the
// server has neither.

import { api, ApiError } from '../api.js';
import { h, time, badge } from '../ui.js';

const asList = (v) => (Array.isArray(v) ? v : v && Array.isArray(v.items) ? v.items : []);

/** Accepts the profile route's likely shapes: {items}, {posts:{items}}, {jes, jesclips}. */
export function extract(res) {
  const lists = [res.items, res.posts, res.jes, res.jesclips, res.clips, res.content];
  const seen = new Set();
  const items = [];
  for (const l of lists) {
    for (const it of asList(l)) {
      const k = `${kindOf(it)}:${it.id}`;
      if (!seen.has(k)) {
        seen.add(k);
        items.push(it);
      }
    }
  }
  items.sort((a, b) => String(b.createdAt || '').localeCompare(String(a.createdAt || '')) || String(b.id).localeCompare(String(a.id)));
  const nextCursor = res.nextCursor ?? (res.posts && res.posts.nextCursor) ?? null;
  const profile = res.user || res.profile || (res.username ? res : null);
  return { profile, items, nextCursor };
}

function kindOf(it) {
  const t = String(it.type || it.kind || '').toLowerCase();
  if (t.includes('clip')) return 'jesclip';
  if (t) return t.includes('bounce') ? 'bounce' : 'jes';
  return it.caption !== undefined || it.video || it.videoUrl ? 'jesclip' : 'jes';
}

function viaLabel(it) {
  if (!it.via) return null;
  return typeof it.via === 'string' ? it.via : it.via.label || null;
}

const COUNT_NAMES = [['likes', 'like'], ['comments', 'comment'], ['bounces', 'bounce'], ['saves', 'save']];

function countsOf(it) {
  const c = it.counts || it.engagement;
  if (c) return c;
  if (it.likeCount !== undefined) {
    return { likes: it.likeCount, comments: it.commentCount, bounces: it.bounceCount, saves: it.saveCount };
  }
  return null;
}

function countsList(c) {
  return h('ul', { class: 'counts', 'aria-label': 'Engagement' },
    COUNT_NAMES.map(([k, one]) => {
      const n = Number(c[k] ?? 0);
      return h('li', null, h('strong', null, String(n)), ` ${one}${n === 1 ? '' : 's'}`);
    }));
}

function item(it, me) {
  const kind = kindOf(it);
  const via = viaLabel(it);
  const counts = countsOf(it);
  const countsSlot = h('div', { class: 'counts-slot' }, counts ? countsList(counts) : null);
  const video = kind === 'jesclip' ? (it.videoUrl || (it.video && it.video.url) || (it.mediaId && `/api/media/${encodeURIComponent(it.mediaId)}`)) : null;
  const images = (Array.isArray(it.media) ? it.media : [])
    .filter((m) => m && m.url && String(m.contentType || '').startsWith('image/') && m.url.startsWith('/'));
  const el = h('li', { class: 'post', dataset: { kind, id: it.id } },
    h('div', { class: 'post-head' },
      h('span', { class: 'post-author' }, (it.author && it.author.displayName) || me.displayName),
      h('span', null, `@${(it.author && it.author.username) || me.username}`),
      h('span', { 'aria-hidden': 'true' }, '·'),
      time(it.createdAt, { relative: true }),
      h('span', { class: 'kind' }, kind === 'jesclip' ? 'JesClip' : kind === 'bounce' || it.bounceOf ? (it.content ? 'Quote-bounce' : 'Bounce') : 'Jes'),
      it.visibility && it.visibility !== 'PUBLIC' ? badge(it.visibility.toLowerCase(), 'neutral') : null,
      via ? h('span', { class: 'via', title: `Posted with the API key “${via}”` }, `via ${via}`) : null),
    h('p', { class: 'post-body' }, it.content ?? it.caption ?? ''),
    video && video.startsWith('/') ? h('video', { controls: true, preload: 'metadata', src: video, class: 'clip' }) : null,
    images.length ? h('div', { class: 'post-media' }, images.map((m) => h('img', { src: m.url, alt: 'Image attached to this Jes', loading: 'lazy' }))) : null,
    countsSlot);
  return { el, kind, countsSlot, needsCounts: !counts && kind !== 'jesclip' && it.id };
}

/** Counts missing from the list come from the single-Jes route (sessions always see them). */
async function fillCounts(rows) {
  await Promise.all(rows.filter((r) => r.needsCounts).slice(0, 20).map(async (r) => {
    try {
      const jes = await api.get(`/api/posts/${encodeURIComponent(r.needsCounts)}`);
      const c = countsOf(jes);
      if (c) r.countsSlot.replaceChildren(countsList(c));
    } catch {
      // Counts are a nicety: the Jes is shown without them.
    }
  }));
}

/**
 * The account's content: GET /api/users/:username/posts ({items, nextCursor}),
 * or the profile route when it carries the list itself. Null when neither exists.
 */
async function load(username, cursor) {
  const base = `/api/users/${encodeURIComponent(username)}`;
  const q = cursor ? `?cursor=${encodeURIComponent(cursor)}` : '';
  const tries = [`${base}/posts${q}`, `${base}${q}`];
  for (const [i, path] of tries.entries()) {
    try {
      const res = extract(await api.get(path));
      if (i === 0 || res.items.length) return res;
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 404)) throw err;
    }
  }
  return null;
}

export async function page({ state }) {
  const me = state.me;
  const head = h('div', { class: 'page-head' }, h('div', null,
    h('h1', null, 'Your timeline'),
    h('p', null, 'Your Jes and JesClips, newest first. What an API key posted carries a “via” chip with the key’s label.')));
  const first = await load(me.username);
  if (!first) {
    return h('section', null, head, h('div', { class: 'card empty', dataset: { state: 'timeline-unavailable' } },
      h('p', null, 'Your timeline is not available on this server yet.'),
      h('p', null, 'Meanwhile you can ', h('a', { href: '#/settings/api' }, 'manage your API keys'), '.')));
  }
  const feed = h('ol', { class: 'feed', 'aria-label': 'Your Jes and JesClips' });
  const more = h('button', { type: 'button', class: 'btn', hidden: !first.nextCursor }, 'Load older');
  let cursor = first.nextCursor;
  const add = async (list) => {
    const rows = list.map((it) => item(it, me));
    feed.append(...rows.map((r) => r.el));
    await fillCounts(rows);
  };
  more.addEventListener('click', async () => {
    more.disabled = true;
    try {
      const next = await load(me.username, cursor);
      if (next) await add(next.items);
      cursor = next && next.nextCursor;
      more.hidden = !cursor;
    } finally {
      more.disabled = false;
    }
  });
  if (!first.items.length) {
    return h('section', null, head, h('div', { class: 'card empty', dataset: { state: 'timeline-empty' } },
      h('p', null, 'Nothing here yet.'),
      h('p', null, 'Post from the Jestha app, or ', h('a', { href: '#/settings/api/new' }, 'generate a key'), ' and post with the API.')));
  }
  await add(first.items);
  return h('section', null, head, feed, h('div', { class: 'actions' }, more));
}
