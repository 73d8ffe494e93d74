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
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use jestha_edge::auth::token::{self, TokenKind};

    use super::*;
    use crate::fake::{Fake, Reply};
    use crate::http::Http;
    use crate::store::tests::TempDir;
    use crate::store::Store;
    use crate::ui::Ui;

    const MIB: u64 = 1024 * 1024;

    fn answer(status: u16, headers: &[(&str, &str)]) -> Answer {
        let body = if status >= 400 { r#"{"error":{"code":"x","message":"refused"}}"# } else { "" };
        Answer {
            status,
            body: body.as_bytes().to_vec(),
            retry_after: None,
            ratelimit: None,
            ratelimit_policy: None,
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        }
    }

    fn plan(total: u64, mut offset: u64) -> Vec<(u64, u64)> {
        let mut out = vec![];
        while offset < total {
            let len = chunk_len(offset, total);
            out.push((offset, len));
            offset += len;
        }
        out
    }

    #[test]
    fn the_file_goes_in_8_mib_chunks_and_every_one_but_the_last_is_at_least_5_mib() {
        assert_eq!(plan(12 * MIB, 0), [(0, 8 * MIB), (8 * MIB, 4 * MIB)]);
        assert_eq!(plan(8 * MIB, 0), [(0, 8 * MIB)]);
        assert_eq!(plan(1, 0), [(0, 1)]);
        assert_eq!(plan(30 * MIB + 7, 0).len(), 4);
        // Resumed where the server kept whole 5 MiB parts.
        assert_eq!(plan(23 * MIB, 5 * MIB), [(5 * MIB, 8 * MIB), (13 * MIB, 8 * MIB), (21 * MIB, 2 * MIB)]);
        for (total, from) in [(23 * MIB + 12345, 0), (40 * MIB, 15 * MIB), (9 * MIB, 5 * MIB)] {
            let p = plan(total, from);
            assert!(p[..p.len() - 1].iter().all(|&(_, len)| (PART..=MAX_PATCH).contains(&len)), "{p:?}");
            assert_eq!(p.iter().map(|&(_, l)| l).sum::<u64>(), total - from);
        }
        assert_eq!(chunk_len(5, 5), 0);
    }

    #[test]
    fn metadata_is_base64_per_tus_and_the_api_reads_it_back() {
        let m = metadata(Path::new("/videos/clip.mp4"));
        assert_eq!(m, "filename Y2xpcC5tcDQ=,filetype dmlkZW8vbXA0");
        assert_eq!(jestha_edge::domain::upload::metadata_type(&m), Ok(Some("video/mp4".into())));
        let odd = metadata(Path::new("my, \"odd\" clip.MOV"));
        assert!(!odd.contains('"') && odd.matches(',').count() == 1, "commas and spaces only between pairs: {odd}");
        assert_eq!(jestha_edge::domain::upload::metadata_type(&odd), Ok(Some("video/quicktime".into())));
        let unknown = metadata(Path::new("clip.bin"));
        assert_eq!(unknown, "filename Y2xpcC5iaW4=", "no type claimed when the extension does not tell");
        assert_eq!(jestha_edge::domain::upload::metadata_type(&unknown), Ok(None));
    }

    #[test]
    fn only_an_upload_of_this_api_is_followed() {
        let api = "https://api.example";
        assert_eq!(upload_path(api, "/api/uploads/U1"), Some("/api/uploads/U1".into()));
        assert_eq!(upload_path(api, "https://api.example/api/uploads/U1"), Some("/api/uploads/U1".into()));
        assert_eq!(upload_path(api, "https://elsewhere.example/api/uploads/U1"), None);
        assert_eq!(upload_path(api, "/api/posts/1"), None);
    }

    #[test]
    fn a_patch_goes_on_from_its_offset_or_ends_with_the_media_id() {
        let total = 12 * MIB;
        assert_eq!(after_patch(0, total, Ok(answer(204, &[("upload-offset", "8388608")]))), Next::Send(8 * MIB));
        let last = answer(204, &[("upload-offset", "12582912"), ("jestha-media-id", "M1")]);
        assert_eq!(after_patch(8 * MIB, total, Ok(last)), Next::Done("M1".into()));
        let stuck = after_patch(8 * MIB, total, Ok(answer(204, &[("upload-offset", "8388608")])));
        assert!(matches!(stuck, Next::Fail(f) if f.code == "bad_response"), "a 204 that did not move never loops");
        let full = after_patch(8 * MIB, total, Ok(answer(204, &[("upload-offset", "12582912")])));
        assert!(matches!(full, Next::Fail(f) if f.code == "bad_response"), "complete without a media id");
    }

    #[test]
    fn the_network_a_5xx_or_a_409_asks_the_server_and_a_refusal_ends_the_upload() {
        let net = Failure::new("network", "http://127.0.0.1:1: connection reset");
        assert_eq!(after_patch(0, 10, Err(net.clone())), Next::Ask { why: net.clone(), retry_after: None });
        let busy = Answer { retry_after: Some(7), ..answer(503, &[]) };
        assert!(matches!(after_patch(0, 10, Ok(busy)), Next::Ask { why, retry_after: Some(7) } if why.status == Some(503)));
        assert!(
            matches!(after_patch(0, 10, Ok(answer(409, &[]))), Next::Ask { .. }),
            "another PATCH held it, or the offset moved"
        );
        for refused in [400, 403, 404, 412, 413, 415, 429] {
            assert!(
                matches!(after_patch(0, 10, Ok(answer(refused, &[]))), Next::Fail(f) if f.status == Some(refused)),
                "{refused}"
            );
        }
        let shrank = Failure::new("bad_file", "clip.mp4: the file shrank during the upload");
        assert_eq!(after_patch(0, 10, Err(shrank.clone())), Next::Fail(shrank));
    }

    #[test]
    fn head_resumes_at_the_servers_offset_finds_a_finished_upload_or_a_gone_one() {
        assert_eq!(after_head(12 * MIB, Ok(answer(200, &[("upload-offset", "5242880")]))), Next::Send(5 * MIB));
        assert_eq!(after_head(12 * MIB, Ok(answer(200, &[("upload-offset", "0")]))), Next::Send(0));
        let done = answer(200, &[("upload-offset", "12582912"), ("jestha-media-id", "M1")]);
        assert_eq!(after_head(12 * MIB, Ok(done)), Next::Done("M1".into()), "the last PATCH landed, its answer lost");
        let gone = after_head(10, Ok(answer(404, &[])));
        assert!(
            matches!(&gone, Next::Fail(f) if f.status == Some(404) && f.message.contains("no longer on the server")),
            "{gone:?}"
        );
        assert!(matches!(after_head(10, Ok(answer(502, &[]))), Next::Ask { .. }));
        let past = after_head(10, Ok(answer(200, &[("upload-offset", "11")])));
        assert!(matches!(past, Next::Fail(f) if f.code == "bad_response"));
    }

    /// A client of the fake with an API key, its waits recorded, its store in `dir`.
    fn client(fake: &Fake, dir: &TempDir, max_retries: u32) -> (Client, Rc<RefCell<Vec<u64>>>) {
        let waits = Rc::new(RefCell::new(vec![]));
        let w = waits.clone();
        let http = Http::with_sleep(
            Ui { json: false, colour: false, interactive: false },
            max_retries,
            Box::new(move |d| w.borrow_mut().push(d.as_secs())),
        );
        let key = token::generate(TokenKind::ApiKey, |b| b.iter_mut().enumerate().for_each(|(i, x)| *x = (i * 3) as u8));
        (Client::connect(http, fake.url(), Some(&key), Store::new(dir.0.join("cfg"))).unwrap(), waits)
    }

    fn video(dir: &TempDir, len: u64) -> (std::path::PathBuf, Vec<u8>) {
        let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let path = dir.0.join("clip.mp4");
        std::fs::write(&path, &data).unwrap();
        (path, data)
    }

    fn created(id: &str) -> Reply {
        Reply::json(201, "").header("location", &format!("/api/uploads/{id}"))
    }

    /// As the API answers under wrangler dev: an empty 204 marked gzip.
    fn patched(offset: u64) -> Reply {
        Reply::json(204, "").header("upload-offset", &offset.to_string()).header("content-encoding", "gzip")
    }

    /// A HEAD's answer, marked gzip as the API's are, with no body.
    fn stands(offset: u64) -> Reply {
        Reply::json(200, "").header("upload-offset", &offset.to_string()).header("content-encoding", "gzip")
    }

    fn finished(offset: u64, media: &str) -> Reply {
        patched(offset).header("jestha-media-id", media)
    }

    #[test]
    fn a_12_mib_file_goes_up_in_two_patches_each_at_its_offset() {
        let t = TempDir::new("tus-two");
        let (path, data) = video(&t, 12 * MIB);
        let fake = Fake::start(vec![created("U1"), patched(8 * MIB), finished(12 * MIB, "M1")]);
        let (mut c, waits) = client(&fake, &t, 6);
        assert_eq!(upload(&mut c, &path, "k1").unwrap(), "M1");
        let seen = fake.requests();
        let lines: Vec<_> = seen.iter().map(|s| s.line.as_str()).collect();
        assert_eq!(lines, ["POST /api/uploads", "PATCH /api/uploads/U1", "PATCH /api/uploads/U1"]);
        assert!(seen.iter().all(|s| s.header("tus-resumable") == Some("1.0.0") && s.header("authorization").is_some()));
        assert_eq!(seen[0].header("upload-length"), Some("12582912"));
        assert_eq!(seen[0].header("upload-metadata"), Some("filename Y2xpcC5tcDQ=,filetype dmlkZW8vbXA0"));
        assert!(seen[0].body.is_empty() && seen[0].header("idempotency-key").is_none(), "tus creation takes no key");
        for (s, (from, to)) in seen[1..].iter().zip([(0, 8 * MIB), (8 * MIB, 12 * MIB)]) {
            assert_eq!(s.header("upload-offset"), Some(from.to_string().as_str()));
            assert_eq!(s.header("content-type"), Some(OFFSET_TYPE));
            assert!(s.body == data[from as usize..to as usize], "the chunk's own bytes, from {from}");
        }
        assert!(waits.borrow().is_empty());
    }

    #[test]
    fn a_failed_patch_is_resumed_from_the_offset_head_gives_after_the_backoff() {
        let t = TempDir::new("tus-resume");
        let (path, data) = video(&t, 12 * MIB);
        let fake = Fake::start(vec![
            created("U1"),
            Reply::json(503, r#"{"error":{"code":"internal","message":"R2 hiccup"}}"#),
            stands(5 * MIB),
            Reply::hang_up(),
            stands(5 * MIB),
            finished(12 * MIB, "M1"),
        ]);
        let (mut c, waits) = client(&fake, &t, 6);
        assert_eq!(upload(&mut c, &path, "k1").unwrap(), "M1");
        let seen = fake.requests();
        let lines: Vec<_> = seen.iter().map(|s| s.line.split(' ').next().unwrap()).collect();
        assert_eq!(lines, ["POST", "PATCH", "HEAD", "PATCH", "HEAD", "PATCH"]);
        assert_eq!(seen[3].header("upload-offset"), Some("5242880"));
        assert!(seen[5].body == data[5 * MIB as usize..], "the rest, read afresh from 5 MiB");
        assert_eq!(*waits.borrow(), [1, 2], "1 s, then 2 s: two failures in a row");
    }

    #[test]
    fn a_lost_answer_to_the_last_patch_is_found_complete_by_head() {
        let t = TempDir::new("tus-lost");
        let (path, _) = video(&t, 1000);
        let fake = Fake::start(vec![created("U1"), Reply::hang_up(), stands(1000).header("jestha-media-id", "M9")]);
        let (mut c, waits) = client(&fake, &t, 6);
        assert_eq!(upload(&mut c, &path, "k1").unwrap(), "M9");
        assert_eq!(fake.requests().len(), 3);
        assert_eq!(*waits.borrow(), [1]);
    }

    #[test]
    fn the_retries_give_up_after_max_retries_failures_in_a_row() {
        let t = TempDir::new("tus-giveup");
        let (path, _) = video(&t, 1000);
        let down = || Reply::json(503, r#"{"error":{"code":"internal","message":"down"}}"#);
        let fake = Fake::start(vec![created("U1"), down(), down(), down()]);
        let (mut c, waits) = client(&fake, &t, 2);
        let f = upload(&mut c, &path, "k1").unwrap_err();
        assert_eq!((f.code.as_str(), f.status), ("http_503", Some(503)), "the last HEAD's: a HEAD answer has no body");
        assert_eq!(fake.requests().len(), 4, "POST, PATCH, HEAD, HEAD");
        assert_eq!(*waits.borrow(), [1, 2]);
    }

    #[test]
    fn a_refused_file_ends_at_once_with_the_servers_error() {
        let t = TempDir::new("tus-refused");
        let (path, _) = video(&t, 1000);
        let fake = Fake::start(vec![
            created("U1"),
            Reply::json(403, r#"{"error":{"code":"insufficient_scope","message":"Token missing scope(s): write:jesclip"}}"#),
        ]);
        let (mut c, waits) = client(&fake, &t, 6);
        let f = upload(&mut c, &path, "k1").unwrap_err();
        assert_eq!((f.code.as_str(), f.message.as_str()), ("insufficient_scope", "Token missing scope(s): write:jesclip"));
        assert_eq!(fake.requests().len(), 2);
        assert!(waits.borrow().is_empty());
    }

    #[test]
    fn a_rerun_with_the_same_key_finds_its_upload_and_a_new_key_or_a_changed_file_begins_afresh() {
        let t = TempDir::new("tus-rerun");
        let (path, _) = video(&t, 1000);
        let fake = Fake::start(vec![
            created("U1"),
            finished(1000, "M1"),
            // The rerun with k1: HEAD finds it complete.
            stands(1000).header("jestha-media-id", "M1"),
            // Another key: a new upload.
            created("U2"),
            finished(1000, "M2"),
        ]);
        let (mut c, _) = client(&fake, &t, 6);
        assert_eq!(upload(&mut c, &path, "k1").unwrap(), "M1");
        assert_eq!(upload(&mut c, &path, "k1").unwrap(), "M1");
        assert_eq!(upload(&mut c, &path, "k2").unwrap(), "M2");
        let lines: Vec<_> = fake.requests().into_iter().map(|s| s.line).collect();
        assert_eq!(
            lines,
            ["POST /api/uploads", "PATCH /api/uploads/U1", "HEAD /api/uploads/U1", "POST /api/uploads", "PATCH /api/uploads/U2"]
        );
        // The same key for a file that changed since: not the old upload.
        std::fs::write(&path, vec![7u8; 1001]).unwrap();
        let mine = fingerprint(&c.api, &path).unwrap();
        assert_eq!(remembered(&c, "k1", &mine), None);
    }

    #[test]
    fn a_rerun_resumes_an_unfinished_upload_and_one_the_server_forgot_begins_afresh() {
        let t = TempDir::new("tus-unfinished");
        let (path, data) = video(&t, 9 * MIB);
        let fake = Fake::start(vec![
            created("U1"),
            Reply::json(400, r#"{"error":{"code":"invalid_request","message":"stop here"}}"#),
            stands(5 * MIB),
            finished(9 * MIB, "M1"),
            Reply::json(404, r#"{"error":{"code":"not_found","message":"Not found"}}"#),
            created("U2"),
            patched(8 * MIB),
            finished(9 * MIB, "M2"),
        ]);
        let (mut c, _) = client(&fake, &t, 6);
        assert_eq!(upload(&mut c, &path, "k1").unwrap_err().code, "invalid_request");
        assert_eq!(upload(&mut c, &path, "k1").unwrap(), "M1", "resumed from 5 MiB");
        assert!(fake.requests()[3].body == data[5 * MIB as usize..]);
        // The server forgot U1 (expired): the same key begins a new upload.
        assert_eq!(upload(&mut c, &path, "k1").unwrap(), "M2");
        assert_eq!(fake.requests()[5].line, "POST /api/uploads");
    }
}
