//! Resumable uploads from this side: tus 1.0.0 against the API's
//! `/api/uploads` (README, "Uploads: one request, or resumable"). The file
//! goes up in `CHUNK`-sized PATCHes, each read from disk afresh at its offset.
//! When one fails on the way (the network, a 5xx, a 409 while the server
//! still holds a PATCH of ours) the client waits the API's backoff, asks the
//! server with HEAD how much it kept (a PATCH cut off midway keeps its whole
//! 5 MiB parts), and goes on from there rather than from the start. The last
//! PATCH, or HEAD once complete, names the media the file became.
//!
//! The decisions (`chunk_len`, `metadata`, `after_patch`, `after_head`,
//! `upload_path`) are plain functions; `upload` runs them against the network.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Take};
use std::path::Path;
use std::time::UNIX_EPOCH;

use base64::Engine;
use indicatif::ProgressBar;
use jestha_edge::domain::upload::{MAX_PATCH, MEDIA_ID_HEADER, PART, TUS_VERSION};

use crate::client::{now, Client};
use crate::failure::Failure;
use crate::http::{Answer, Body, Method};
use crate::retry;
use crate::store::Begun;

pub const OFFSET_TYPE: &str = "application/offset+octet-stream";
/// One PATCH's bytes: above the 5 MiB every chunk but the last must reach and
/// far below the 80 MiB a PATCH may carry, so a failure costs little to resend.
pub const CHUNK: u64 = 8 * 1024 * 1024;
const _: () = assert!(CHUNK >= PART && CHUNK <= MAX_PATCH);

/// The length of the PATCH sent from `offset`: a whole `CHUNK`, or what is
/// left. Every chunk but the last is then `CHUNK` long, whatever offset the
/// server resumed at.
pub fn chunk_len(offset: u64, total: u64) -> u64 {
    total.saturating_sub(offset).min(CHUNK)
}

/// `Upload-Metadata`: comma-separated `key base64(value)` pairs (tus 1.0.0):
/// the file's name, and its type when the extension tells (the API judges
/// the bytes anyway, and refuses a file that is not what it claims).
pub fn metadata(path: &Path) -> String {
    let b64 = |v: &str| base64::engine::general_purpose::STANDARD.encode(v);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "file".into());
    let mut m = format!("filename {}", b64(&name));
    if let Some(t) = filetype(path) {
        m.push_str(&format!(",filetype {}", b64(t)));
    }
    m
}

/// A video's type by its extension, as browsers' tus clients declare it.
fn filetype(path: &Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "mp4" | "m4v" => "video/mp4",
        "mov" | "qt" => "video/quicktime",
        "webm" => "video/webm",
        _ => return None,
    })
}

/// The upload's path on the API from a creation's `Location`, which tus
/// allows to be absolute; only this API's own is followed.
pub fn upload_path(api: &str, location: &str) -> Option<String> {
    let path = location.strip_prefix(api).unwrap_or(location);
    path.starts_with("/api/uploads/").then(|| path.to_string())
}

/// What to do next with an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// PATCH from this offset.
    Send(u64),
    /// Complete: the media the file became.
    Done(String),
    /// Unknown after a failure on the way: wait (at least `retry_after`
    /// seconds), then HEAD.
    Ask { why: Failure, retry_after: Option<u64> },
    /// Given up: the server refused, or answered what no tus server would.
    Fail(Failure),
}

/// After a PATCH sent from `offset`: on from where its `204` says, done, or
/// ask the server. A `429` was already waited out by `Http::send`.
pub fn after_patch(offset: u64, total: u64, sent: Result<Answer, Failure>) -> Next {
    match sent {
        Ok(a) if a.status == 204 => match standing(total, &a) {
            Next::Send(o) if o <= offset => Next::Fail(bad_response(&a, "a PATCH's 204 whose Upload-Offset did not move")),
            next => next,
        },
        other => on_failure(other).map_or_else(Next::Fail, |(why, retry_after)| Next::Ask { why, retry_after }),
    }
}

/// After a HEAD: where the server has the upload. Gone (`404`: expired, or
/// ended by the server after refusing its bytes) is a failure.
pub fn after_head(total: u64, sent: Result<Answer, Failure>) -> Next {
    match sent {
        Ok(a) if a.ok() => standing(total, &a),
        Ok(a) if a.status == 404 => Next::Fail(Failure {
            message: "the upload is no longer on the server (expired, or ended after a refusal): run the command again".into(),
            ..a.failure()
        }),
        other => on_failure(other).map_or_else(Next::Fail, |(why, retry_after)| Next::Ask { why, retry_after }),
    }
}

/// Where a successful answer says the upload stands.
fn standing(total: u64, a: &Answer) -> Next {
    if let Some(media) = a.header(MEDIA_ID_HEADER) {
        return Next::Done(media.to_string());
    }
    match a.header("upload-offset").and_then(|o| o.trim().parse::<u64>().ok()) {
        Some(o) if o < total => Next::Send(o),
        _ => Next::Fail(bad_response(a, "an answer with neither a media id nor an Upload-Offset short of the file's length")),
    }
}

/// A failed exchange: `Ok` with why and the server's `Retry-After` when it is
/// worth asking again after a wait (the network, a 5xx, a 409: a PATCH of
/// ours the server still holds, or an offset that moved); `Err` when final.
fn on_failure(sent: Result<Answer, Failure>) -> Result<(Failure, Option<u64>), Failure> {
    match sent {
        Err(f) if f.code == "network" => Ok((f, None)),
        Err(f) => Err(f),
        Ok(a) if a.status >= 500 || a.status == 409 => Ok((a.failure(), a.retry_after)),
        Ok(a) => Err(a.failure()),
    }
}

fn bad_response(a: &Answer, what: &str) -> Failure {
    Failure {
        code: "bad_response".into(),
        message: format!("the upload server sent {what} (HTTP {})", a.status),
        status: Some(a.status),
    }
}

/// A chunk of the file: what a PATCH sends.
pub struct Chunk<'a> {
    pub path: &'a Path,
    pub offset: u64,
    pub len: u64,
    /// The whole file's progress.
    pub bar: &'a ProgressBar,
}

impl Chunk<'_> {
    /// The chunk's bytes, the file opened now. A file that shrank since the
    /// upload began is an error here, not a short body the server refuses.
    pub fn open(&self) -> io::Result<Take<File>> {
        let named = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", self.path.display()));
        let mut f = File::open(self.path).map_err(named)?;
        if f.metadata()?.len() < self.offset + self.len {
            return Err(io::Error::other(format!("{}: the file shrank during the upload", self.path.display())));
        }
        f.seek(SeekFrom::Start(self.offset))?;
        Ok(f.take(self.len))
    }
}

fn version() -> (&'static str, String) {
    ("tus-resumable", TUS_VERSION.to_string())
}

/// Uploads `path` over tus; the media id it became. `key`, the command's
/// Idempotency-Key, names the upload in the journal (`store::Uploads`): a
/// rerun with the same key resumes it, or finds it complete and publishes the
/// same body, which the API then replays.
pub fn upload(client: &mut Client, path: &Path, key: &str) -> Result<String, Failure> {
    let mine = fingerprint(&client.api, path)?;
    let label = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let bar = client.http.ui.progress(mine.size, &label);
    let done = start(client, path, key, &mine, &bar)
        .and_then(|(location, next)| send(client, Chunk { path, offset: 0, len: mine.size, bar: &bar }, &location, next));
    bar.finish_and_clear();
    done
}

/// Runs the upload of `file` (the whole of it) at `location` from `next` to its media id.
fn send(client: &mut Client, file: Chunk, location: &str, mut next: Next) -> Result<String, Failure> {
    let (path, total, bar) = (file.path, file.len, file.bar);
    let mut retry = 0;
    loop {
        next = match next {
            Next::Send(offset) => {
                let chunk = Chunk { path, offset, len: chunk_len(offset, total), bar };
                let headers = [version(), ("upload-offset", offset.to_string())];
                let n = after_patch(offset, total, client.tus(Method::Patch, location, &headers, Body::Chunk(&chunk)));
                if matches!(n, Next::Send(_)) {
                    retry = 0; // progress: the retries count failures in a row
                }
                n
            }
            Next::Ask { why, retry_after } => {
                pause(client, bar, &why, retry_after, retry)?;
                retry += 1;
                after_head(total, client.tus(Method::Head, location, &[version()], Body::None))
            }
            Next::Done(media) => return Ok(media),
            Next::Fail(f) => return Err(f),
        };
    }
}

/// Waits before retry `retry` as `Http::send` does for a 429 (1 s doubling
/// to 60 s, never sooner than `Retry-After`), saying so, or gives up with `why`.
fn pause(client: &Client, bar: &ProgressBar, why: &Failure, retry_after: Option<u64>, retry: u32) -> Result<(), Failure> {
    let http = &client.http;
    let wait = retry::wait(&why.code, retry, http.max_retries, retry_after).ok_or_else(|| why.clone())?;
    bar.suspend(|| {
        http.ui.note(&format!(
            "{}: {}: waiting {} s before retry {} of {}, then resuming the upload where the server has it",
            why.code,
            why.message,
            wait.as_secs(),
            retry + 1,
            http.max_retries
        ))
    });
    http.pause(wait);
    Ok(())
}

/// The upload to send to and where it stands: the one the journal names for
/// `key` if the server still has it for this very file, else a new one.
fn start(client: &mut Client, path: &Path, key: &str, mine: &Begun, bar: &ProgressBar) -> Result<(String, Next), Failure> {
    if let Some(location) = remembered(client, key, mine) {
        match after_head(mine.size, client.tus(Method::Head, &location, &[version()], Body::None)) {
            Next::Fail(_) => {} // gone, or not ours any more: begin afresh
            next => return Ok((location, next)),
        }
    }
    let location = create(client, path, mine.size, bar)?;
    remember(client, key, Begun { location: location.clone(), ..mine.clone() });
    Ok((location, Next::Send(0)))
}

/// POST /api/uploads (tus creation); the new upload's path. Tried again after
/// a failure on the way: an answer lost leaves an upload the server expires.
fn create(client: &mut Client, path: &Path, total: u64, bar: &ProgressBar) -> Result<String, Failure> {
    let headers = [version(), ("upload-length", total.to_string()), ("upload-metadata", metadata(path))];
    let mut retry = 0;
    loop {
        let why = match client.tus(Method::Post, "/api/uploads", &headers, Body::None) {
            Ok(a) if a.status == 201 => {
                let location = a.header("location").unwrap_or_default();
                return upload_path(&client.api, location).ok_or_else(|| {
                    bad_response(&a, &format!("a creation whose Location is not an upload of this API: {location:?}"))
                });
            }
            other => on_failure(other)?,
        };
        pause(client, bar, &why.0, why.1, retry)?;
        retry += 1;
    }
}

/// This file as the journal knows it: the API, its canonical path, size and
/// modification time (a changed file is a new upload).
fn fingerprint(api: &str, path: &Path) -> Result<Begun, Failure> {
    let meta = std::fs::metadata(path).map_err(|e| Failure::new("bad_file", format!("{}: {e}", path.display())))?;
    let file = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let modified = meta.modified().ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos() as u64);
    Ok(Begun {
        api: api.to_string(),
        location: String::new(),
        file: file.to_string_lossy().into_owned(),
        size: meta.len(),
        modified,
        at: now(),
    })
}

/// The upload the journal names for `key` and this file. A journal that
/// cannot be read only costs sending the file again.
fn remembered(client: &Client, key: &str, mine: &Begun) -> Option<String> {
    let found = client.store().update_uploads(now(), |u| Ok(u.uploads.get(key).filter(|b| b.same_file(mine)).cloned()));
    found.ok().flatten().map(|b| b.location)
}

fn remember(client: &Client, key: &str, begun: Begun) {
    if let Err(f) = client.store().update_uploads(now(), |u| {
        u.uploads.insert(key.to_string(), begun);
        Ok(())
    }) {
        client.http.ui.warn(&format!("the upload could not be noted for a rerun: {}", f.message));
    }
}

#[cfg(test)]
mod tests;
