//! R2 (binding `MEDIA`): reading objects, and deleting them with the media
//! trash. Uploads are written by the engine as they stream (`adapters::stream`).

use worker::{Bucket, Env, Range};

use crate::error::{ApiError, ApiResult};

pub const BINDING: &str = "MEDIA";

fn bucket(env: &Env) -> ApiResult<Bucket> {
    env.bucket(BINDING).map_err(ApiError::from)
}

/// The R2 keys of rows that select `r2_key`.
pub fn r2_keys(rows: Vec<crate::adapters::d1::Row>) -> Vec<String> {
    rows.iter().filter_map(|r| r.text("r2_key")).collect()
}

/// Deletes objects; failures are reported, not raised (cleanup paths).
pub async fn delete(env: &Env, keys: &[String]) -> Result<(), ApiError> {
    if keys.is_empty() {
        return Ok(());
    }
    bucket(env)?.delete_multiple(keys.iter().map(String::as_str).collect()).await.map_err(ApiError::from)
}

/// Purges `keys` listed in `media_trash`: the objects no media row names are
/// deleted (`forget`); a key a row names keeps its object (a write reported
/// failed may still have committed) and loses its entry.
pub async fn purge(env: &Env, keys: &[String]) -> ApiResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let db = crate::adapters::d1::db(env)?;
    let list = serde_json::to_string(keys)?;
    let unnamed: Vec<crate::adapters::d1::Row> = crate::adapters::d1::stmt(
        &db,
        "SELECT j.value AS r2_key FROM json_each(?1) j WHERE NOT EXISTS (SELECT 1 FROM media m WHERE m.r2_key = j.value)",
        &[(&list).into()],
    )?
    .all()
    .await?
    .results()?;
    // In one statement with its check, so a row deleted meanwhile (whose
    // trigger lists the key again) keeps its fresh entry.
    crate::adapters::d1::stmt(
        &db,
        "DELETE FROM media_trash WHERE r2_key IN (SELECT value FROM json_each(?1)) \
         AND EXISTS (SELECT 1 FROM media m WHERE m.r2_key = media_trash.r2_key)",
        &[(&list).into()],
    )?
    .run()
    .await?;
    forget(env, &r2_keys(unnamed)).await
}

/// Deletes the objects of `keys`, which no media row names, then their
/// `media_trash` entries. Deleting an object twice is harmless, so a forget
/// racing another is too.
pub async fn forget(env: &Env, keys: &[String]) -> ApiResult<()> {
    if keys.is_empty() {
        return Ok(());
    }
    delete(env, keys).await?;
    let list = serde_json::to_string(keys)?;
    let db = crate::adapters::d1::db(env)?;
    crate::adapters::d1::stmt(
        &db,
        "DELETE FROM media_trash WHERE r2_key IN (SELECT value FROM json_each(?1))",
        &[(&list).into()],
    )?
    .run()
    .await?;
    Ok(())
}

/// The object's bytes `offset .. offset + length` (all when `None`) as a
/// stream for the response body; `None` when the object is missing.
pub async fn get(env: &Env, key: &str, part: Option<(u64, u64)>) -> ApiResult<Option<web_sys::ReadableStream>> {
    let b = bucket(env)?;
    let mut req = b.get(key);
    if let Some((offset, length)) = part {
        req = req.range(Range::OffsetWithLength { offset, length });
    }
    let Some(obj) = req.execute().await? else { return Ok(None) };
    match obj.body().map(|b| b.response_body()).transpose()? {
        Some(worker::ResponseBody::Stream(s)) => Ok(Some(s)),
        _ => Err(ApiError::internal("r2 get: no body stream")),
    }
}

/// A response body the runtime streams itself (an R2 object). A handler puts
/// it in the response's extensions; `lib.rs` hands it to the JS Response as
/// is (`adapters::js_response`), so the runtime knows its length (Content-Length survives) and no byte
/// passes through wasm.
#[derive(Clone)]
pub struct JsBody(pub web_sys::ReadableStream);

// SAFETY: Workers run one thread per isolate; the http crate's extensions
// want Send + Sync, which a JS handle cannot be shared across anyway.
unsafe impl Send for JsBody {}
unsafe impl Sync for JsBody {}
