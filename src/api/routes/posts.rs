//! Jes: create (JSON, or multipart with images), read, edit own, delete own
//! (soft), bounce and quote-bounce. Everything an API key creates belongs to
//! its bound account and carries `via: {label}`. A Jes the caller may not see
//! is a 404, whatever the route. JesClips share the table and most of this.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::adapters::crypto::random_bytes;
use crate::adapters::d1;
use crate::adapters::d1::{guard_sql, is_guard_failure};
use crate::adapters::media::r2_keys;
use crate::adapters::outbox;
use crate::api::routes::content::load::{author_of, load_own, load_visible};
use crate::api::routes::media::{self as media_routes, Uploaded};
use crate::domain::content::{self, body_text, hashtags, ts, PostKind, Visibility, MAX_JES_CHARS, MAX_MEDIA_PER_JES};
use crate::domain::event::{Event, EventType};
use crate::domain::ids;
use crate::error::{ApiError, ApiResult};
use crate::http::raw_json;
use crate::http::{json, now_ms};
use crate::pipeline::body::str_field;
use crate::pipeline::ctx::Ctx;

/// A Jes or JesClip about to be written.
pub struct Draft {
    pub kind: PostKind,
    pub content: String,
    pub visibility: Visibility,
    pub hub: Option<String>,
    pub tags: Vec<String>,
    /// The Jes this bounces: (id, author id).
    pub bounce_of: Option<(String, String)>,
    /// Media already uploaded by the caller (`mediaIds`), rendered, in order.
    pub attach: Vec<(String, Value)>,
    /// Media uploaded with this request, already in R2.
    pub uploads: Vec<Uploaded>,
}

/// The `visibility` field, PUBLIC when absent.
pub fn visibility_field(body: &Value) -> ApiResult<Visibility> {
    match str_field(body, "visibility")? {
        None => Ok(Visibility::Public),
        Some(v) => Visibility::parse(v).map_err(ApiError::invalid),
    }
}

/// The text field of a Jes (`content`) or JesClip (`caption`), validated.
pub fn text_field(body: &Value, field: &str, max: usize) -> ApiResult<String> {
    body_text(field, str_field(body, field)?.unwrap_or(""), max).map_err(ApiError::invalid)
}

fn hub_field(body: &Value) -> ApiResult<Option<String>> {
    str_field(body, "hub")?.map(|h| content::hub(h).map_err(ApiError::invalid)).transpose()
}

/// One of the caller's own uploads not yet on a Jes (`POST /api/media`),
/// rendered; `kind` is `image` or `video`. A 400 naming `field` otherwise.
pub async fn unattached(c: &Ctx, field: &str, id: &str, kind: &str) -> ApiResult<(String, Value)> {
    let db = d1::db(&c.app.env)?;
    let j: Option<String> = d1::stmt(
        &db,
        concat!(
            "SELECT ",
            crate::media_sql!(),
            " AS j FROM media m WHERE m.id = ?1 AND m.owner_id = ?2 ",
            "AND m.post_id IS NULL AND m.content_type LIKE ?3 || '/%'"
        ),
        &[id.into(), (&c.who()?.user_id).into(), kind.into()],
    )?
    .first(Some("j"))
    .await?;
    let j = j.ok_or_else(|| ApiError::invalid(format!("{field}: {id} is not an unattached {kind} of this account")))?;
    Ok((id.to_string(), serde_json::from_str(&j)?))
}

/// `mediaIds`: the caller's own uploaded images not yet on a Jes.
async fn media_ids(c: &Ctx, body: &Value) -> ApiResult<Vec<(String, Value)>> {
    let ids: Vec<String> = match body.get("mediaIds") {
        None | Some(Value::Null) => return Ok(vec![]),
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(|| ApiError::invalid("mediaIds: must be an array of strings")))
            .collect::<ApiResult<_>>()?,
        Some(_) => return Err(ApiError::invalid("mediaIds: must be an array of strings")),
    };
    if ids.len() > MAX_MEDIA_PER_JES {
        return Err(ApiError::invalid(format!("mediaIds: at most {MAX_MEDIA_PER_JES} media per Jes")));
    }
    let mut found = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        if ids[..i].contains(id) {
            return Err(ApiError::invalid(format!("mediaIds: {id} is listed twice")));
        }
        found.push(unattached(c, "mediaIds", id, "image").await?);
    }
    Ok(found)
}

/// The JSON body of `POST /api/posts` as a draft.
async fn draft_from_json(c: &mut Ctx) -> ApiResult<Draft> {
    let body = c.json(false).await?;
    let content = text_field(&body, "content", MAX_JES_CHARS)?;
    let visibility = visibility_field(&body)?;
    let hub = hub_field(&body)?;
    let tags = hashtags(&content).map_err(ApiError::invalid)?;
    let attach = media_ids(c, &body).await?;
    if content.is_empty() && attach.is_empty() {
        return Err(ApiError::invalid("content: must not be empty"));
    }
    Ok(Draft { kind: PostKind::Jes, content, visibility, hub, tags, bounce_of: None, attach, uploads: vec![] })
}

/// POST /api/posts
pub async fn create(mut c: Ctx) -> ApiResult<Response> {
    let draft = if c.is_multipart() { media_routes::jes_draft_from_form(&mut c).await? } else { draft_from_json(&mut c).await? };
    publish(&c, draft).await
}

/// The new Jes or JesClip as the API returns it: the Rust twin of `post_sql!`.
fn render_new(d: &Draft, id: &str, author: Value, via: Option<&str>, now: i64) -> Value {
    let media: Vec<Value> = d.attach.iter().map(|(_, v)| v.clone()).chain(d.uploads.iter().map(Uploaded::render)).collect();
    let mut v = if d.kind == PostKind::Jes {
        json!({
            "id": id, "type": "jes", "content": d.content, "visibility": d.visibility.as_str(),
            "author": author, "media": media, "hashtags": d.tags, "hub": d.hub,
            "bounceOf": d.bounce_of.as_ref().map(|b| &b.0),
            "createdAt": ts(now), "updatedAt": ts(now),
        })
    } else {
        json!({
            "id": id, "type": "jesclip", "caption": d.content, "visibility": d.visibility.as_str(),
            "author": author, "video": media.into_iter().next(), "hashtags": d.tags,
            "createdAt": ts(now), "updatedAt": ts(now),
        })
    };
    if let Some(label) = via {
        v["via"] = json!({ "label": label });
    }
    v
}

/// Recounts the bounces of `id` (exact: a COUNT in the writing batch).
fn recount_bounces(db: &worker::D1Database, id: &str) -> ApiResult<worker::D1PreparedStatement> {
    d1::stmt(
        db,
        "UPDATE posts SET bounce_count = (SELECT COUNT(*) FROM posts b WHERE b.bounce_of = ?1 AND b.deleted_at IS NULL) WHERE id = ?1",
        &[id.into()],
    )
}

/// Writes a draft in one batch (post, media, hashtags, counters, events) and
/// answers 201 with it. If the batch fails, media this request put in R2 are
/// deleted again, so nothing is left half-made.
pub async fn publish(c: &Ctx, d: Draft) -> ApiResult<Response> {
    let out = write_draft(c, &d).await;
    if out.is_err() {
        media_routes::discard(c, d.uploads.iter().map(|u| u.r2_key.clone()).collect()).await;
    }
    out
}

async fn write_draft(c: &Ctx, d: &Draft) -> ApiResult<Response> {
    let p = c.who()?;
    let author = author_of(c, &p.user_id).await?;
    let db = d1::db(&c.app.env)?;
    let now = now_ms();
    let id = ids::ulid(now, random_bytes());
    let via = p.via();
    let mut stmts = vec![d1::stmt(
        &db,
        "INSERT INTO posts (id, author_id, kind, content, visibility, hub, bounce_of, via_key_id, via_label, created_at, updated_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
        &[
            (&id).into(),
            (&p.user_id).into(),
            d.kind.as_str().into(),
            (&d.content).into(),
            d.visibility.as_str().into(),
            d.hub.as_ref().into(),
            d.bounce_of.as_ref().map(|b| &b.0).into(),
            via.map(|_| p.id.as_str()).into(),
            via.into(),
            now.into(),
        ],
    )?];
    for (i, u) in d.uploads.iter().enumerate() {
        stmts.push(d1::stmt(
            &db,
            "INSERT INTO media (id, owner_id, post_id, position, r2_key, content_type, size, etag, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            &[
                (&u.id).into(),
                (&p.user_id).into(),
                (&id).into(),
                ((d.attach.len() + i) as i64).into(),
                (&u.r2_key).into(),
                (&u.content_type).into(),
                (u.size as i64).into(),
                (&u.etag).into(),
                now.into(),
            ],
        )?);
    }
    if !d.attach.is_empty() {
        for (i, (mid, _)) in d.attach.iter().enumerate() {
            stmts.push(d1::stmt(
                &db,
                "UPDATE media SET post_id = ?1, position = ?2 WHERE id = ?3 AND owner_id = ?4 AND post_id IS NULL",
                &[(&id).into(), (i as i64).into(), mid.into(), (&p.user_id).into()],
            )?);
        }
        // Two requests racing to attach the same upload: only one batch commits.
        stmts.push(d1::stmt(
            &db,
            &guard_sql("(SELECT COUNT(*) FROM media WHERE post_id = ?1) = ?2"),
            &[(&id).into(), ((d.attach.len() + d.uploads.len()) as i64).into()],
        )?);
    }
    for tag in &d.tags {
        stmts.push(d1::stmt(
            &db,
            "INSERT INTO hashtags (tag, post_id, created_at) VALUES (?1, ?2, ?3)",
            &[tag.into(), (&id).into(), now.into()],
        )?);
    }
    let data = render_new(d, &id, author, via, now);
    let mut evs = Vec::new();
    match (&d.bounce_of, d.kind) {
        (Some((orig, orig_author)), _) => {
            stmts.push(recount_bounces(&db, orig)?);
            evs.push(Event::new(EventType::PostBounced, &p.user_id, now, random_bytes(), data.clone()));
            // The bounced account hears of it when it may see the bounce.
            if *orig_author != p.user_id && d.visibility == Visibility::Public {
                evs.push(Event::new(EventType::PostBounced, orig_author, now, random_bytes(), data.clone()));
            }
        }
        (None, PostKind::Jes) => evs.push(Event::new(EventType::PostCreated, &p.user_id, now, random_bytes(), data.clone())),
        (None, _) => evs.push(Event::new(EventType::JesclipCreated, &p.user_id, now, random_bytes(), data.clone())),
    }
    for ev in &evs {
        stmts.push(outbox::record(&db, ev)?);
    }
    if let Err(e) = db.batch(stmts).await.map_err(ApiError::from) {
        if d.bounce_of.is_some() && d1::is_unique_violation(&e) {
            return Err(ApiError::Conflict(
                "bounce: this account already bounced this Jes; quote-bounce with content instead".into(),
            ));
        }
        if is_guard_failure(&e) {
            return Err(ApiError::Conflict("mediaIds: a media item was attached to another Jes meanwhile".into()));
        }
        return Err(e);
    }
    for ev in evs {
        outbox::dispatch(&c.app, ev);
    }
    Ok(json(StatusCode::CREATED, &data))
}

/// GET /api/posts/{id} (and GET /api/jesclips/{id})
pub async fn get(c: Ctx) -> ApiResult<Response> {
    let row = load_visible(&c, &c.id, c.kind(), true).await?;
    Ok(raw_json(StatusCode::OK, row.json))
}

/// PATCH /api/posts/{id} (and PATCH /api/jesclips/{id}): own only.
pub async fn update(mut c: Ctx) -> ApiResult<Response> {
    let kind = c.kind();
    let (field, max) = if kind == PostKind::Jes { ("content", MAX_JES_CHARS) } else { ("caption", content::MAX_CAPTION_CHARS) };
    let body = c.json(false).await?;
    let text = match str_field(&body, field)? {
        Some(t) => Some(body_text(field, t, max).map_err(ApiError::invalid)?),
        None => None,
    };
    let visibility = str_field(&body, "visibility")?.map(|v| Visibility::parse(v).map_err(ApiError::invalid)).transpose()?;
    let hub = if kind == PostKind::Jes && body.get("hub").is_some() { Some(hub_field(&body)?) } else { None };
    if text.is_none() && visibility.is_none() && hub.is_none() {
        return Err(ApiError::invalid(format!(
            "body: give at least one of {field}, visibility{}",
            if kind == PostKind::Jes { ", hub" } else { "" }
        )));
    }
    let row = load_own(&c, &c.id, kind).await?;
    let mut data: Value = serde_json::from_str(&row.json)?;
    let tags = match &text {
        Some(t) => {
            let plain_bounce = row.bounce_of.is_some() && data[field].as_str() == Some("");
            if plain_bounce {
                return Err(ApiError::invalid(format!("{field}: a bounce has no text; quote-bounce instead")));
            }
            if t.is_empty() && kind == PostKind::Jes && row.media_count == 0.0 {
                return Err(ApiError::invalid(format!("{field}: must not be empty")));
            }
            Some(hashtags(t).map_err(ApiError::invalid)?)
        }
        None => None,
    };
    let db = d1::db(&c.app.env)?;
    let now = now_ms();
    let p = c.who()?;
    let mut stmts = vec![
        d1::stmt(
            &db,
            "UPDATE posts SET content = coalesce(?1, content), visibility = coalesce(?2, visibility), \
             hub = CASE WHEN ?3 THEN ?4 ELSE hub END, updated_at = ?5 WHERE id = ?6 AND deleted_at IS NULL",
            &[
                text.as_ref().into(),
                visibility.map(Visibility::as_str).into(),
                i64::from(hub.is_some()).into(),
                hub.as_ref().and_then(|h| h.as_ref()).into(),
                now.into(),
                (&row.id).into(),
            ],
        )?,
        // Deleted meanwhile: the whole edit (and its event) is dropped.
        d1::stmt(&db, &guard_sql("changes() = 1"), &[])?,
    ];
    if let (Some(t), Some(tags)) = (&text, &tags) {
        data[field] = json!(t);
        data["hashtags"] = json!(tags);
        stmts.push(d1::stmt(&db, "DELETE FROM hashtags WHERE post_id = ?1", &[(&row.id).into()])?);
        for tag in tags {
            stmts.push(d1::stmt(
                &db,
                "INSERT INTO hashtags (tag, post_id, created_at) VALUES (?1, ?2, ?3)",
                &[tag.into(), (&row.id).into(), now.into()],
            )?);
        }
    }
    if let Some(v) = visibility {
        data["visibility"] = json!(v.as_str());
    }
    if let Some(h) = hub {
        data["hub"] = json!(h);
    }
    data["updatedAt"] = json!(ts(now));
    let ev = Event::new(EventType::PostUpdated, &p.user_id, now, random_bytes(), data.clone());
    stmts.push(outbox::record(&db, &ev)?);
    batch_or_gone(&db, stmts).await?;
    outbox::dispatch(&c.app, ev);
    Ok(json(StatusCode::OK, &data))
}

/// Runs a batch whose guard checks the row is still live; a guard failure
/// means it was deleted meanwhile (404).
async fn batch_or_gone(db: &worker::D1Database, stmts: Vec<worker::D1PreparedStatement>) -> ApiResult<()> {
    match db.batch(stmts).await.map_err(ApiError::from) {
        Err(e) if is_guard_failure(&e) => Err(ApiError::NotFound),
        Err(e) => Err(e),
        Ok(_) => Ok(()),
    }
}

/// DELETE /api/posts/{id} (and DELETE /api/jesclips/{id}): own only. The row
/// stays as a tombstone (comments and bounces keep their parent); its text,
/// hashtags and media go, and it is a 404 from now on.
pub async fn delete(c: Ctx) -> ApiResult<Response> {
    let row = load_own(&c, &c.id, c.kind()).await?;
    let db = d1::db(&c.app.env)?;
    let keys: Vec<d1::Row> =
        d1::stmt(&db, "SELECT r2_key FROM media WHERE post_id = ?1", &[(&row.id).into()])?.all().await?.results()?;
    let now = now_ms();
    let p = c.who()?;
    let mut data: Value = serde_json::from_str(&row.json)?;
    data["deletedAt"] = json!(ts(now));
    let ev = Event::new(EventType::PostDeleted, &p.user_id, now, random_bytes(), data);
    let mut stmts = vec![
        d1::stmt(
            &db,
            "UPDATE posts SET deleted_at = ?1, updated_at = ?1, content = '' WHERE id = ?2 AND deleted_at IS NULL",
            &[now.into(), (&row.id).into()],
        )?,
        d1::stmt(&db, &guard_sql("changes() = 1"), &[])?,
        d1::stmt(&db, "DELETE FROM hashtags WHERE post_id = ?1", &[(&row.id).into()])?,
        d1::stmt(&db, "DELETE FROM media WHERE post_id = ?1", &[(&row.id).into()])?,
    ];
    if let Some(orig) = &row.bounce_of {
        stmts.push(recount_bounces(&db, orig)?);
    }
    stmts.push(outbox::record(&db, &ev)?);
    batch_or_gone(&db, stmts).await?;
    outbox::dispatch(&c.app, ev);
    media_routes::discard_later(&c, r2_keys(keys));
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// POST /api/posts/{id}/bounce: `{content?, visibility?}`; with content it is
/// a quote-bounce. A plain bounce is once per account and Jes (409 after).
pub async fn bounce(mut c: Ctx) -> ApiResult<Response> {
    let body = c.json(true).await?;
    let content = text_field(&body, "content", MAX_JES_CHARS)?;
    let visibility = visibility_field(&body)?;
    let tags = hashtags(&content).map_err(ApiError::invalid)?;
    let target = load_visible(&c, &c.id, PostKind::Jes, false).await?;
    let target_author = serde_json::from_str::<Value>(&target.json)?["author"]["id"].as_str().unwrap_or_default().to_string();
    let draft = Draft {
        kind: PostKind::Jes,
        content,
        visibility,
        hub: None,
        tags,
        bounce_of: Some((target.id, target_author)),
        attach: vec![],
        uploads: vec![],
    };
    publish(&c, draft).await
}
