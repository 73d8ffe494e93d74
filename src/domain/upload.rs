//! Uploads at scale, the pure rules: what the API asks the engine when it
//! hands over an upload's unread body (`Spec`) and what the engine answers
//! (`Reply`), the judgement of a file by its first bytes (`judge`), and tus
//! 1.0.0's headers (`Upload-Metadata`, offsets, chunk sizes). The engine
//! streams (`engine::ingest`, `engine::tus`); nothing here touches a binding.

use serde::{Deserialize, Serialize};

use super::content::{declared_matches, sniff, Sniffed};

/// R2 multipart parts: every part but the last is exactly this long (R2
/// wants equal parts of at least 5 MiB), and a tus chunk other than the last
/// is at least this long.
pub const PART: u64 = 5 * 1024 * 1024;
/// The largest tus PATCH body: bounds one request's R2 parts and D1 writes.
pub const MAX_PATCH: u64 = 80 * 1024 * 1024;
/// `Upload-Metadata`, as sent.
pub const MAX_METADATA: usize = 4096;
/// Text fields of a multipart upload together.
pub const MAX_FIELDS_BYTES: usize = 64 * 1024;
pub const TUS_VERSION: &str = "1.0.0";
/// The header carrying the media id of a finished tus upload.
pub const MEDIA_ID_HEADER: &str = "jestha-media-id";

/// What a route takes (the 415 names it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Want {
    Image,
    Video,
    Any,
}

impl Want {
    fn describe(self) -> &'static str {
        match self {
            Want::Image => "an image (jpeg, png, gif, webp)",
            Want::Video => "a video (mp4, quicktime, webm)",
            Want::Any => "an image (jpeg, png, gif, webp) or a video (mp4, quicktime, webm)",
        }
    }
}

/// The caller's side of an upload, decided by the API (the guard's
/// principal), which the engine (no public address) trusts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Caller {
    pub account: String,
    /// write:jes: images may be uploaded.
    pub images: bool,
    /// write:jesclip: videos may be uploaded.
    pub videos: bool,
}

/// One single-request upload handed to the engine with its unread body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    pub caller: Caller,
    pub want: Want,
    /// The body's Content-Type as sent (multipart with its boundary, or the
    /// file's own type for a raw body).
    pub content_type: String,
    /// Whether the body is the file itself (`POST /api/media` raw).
    pub raw: bool,
    /// Multipart: the field files come in, and how many it takes.
    pub file_field: String,
    pub max_files: u8,
    /// `MAX_UPLOAD_BYTES`: per file.
    pub max_bytes: u64,
    /// The declared Content-Length (None: chunked).
    pub length: Option<u64>,
    /// Method and target when an Idempotency-Key wants the fingerprint.
    pub fingerprint: Option<(String, String)>,
    /// Only read and fingerprint the body (a retry whose key is taken).
    pub hash_only: bool,
}

/// A file the engine stored (the API writes its media row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    pub field: String,
    pub key: String,
    pub content_type: String,
    pub size: u64,
    pub etag: String,
}

/// The engine's answer to an upload or a tus request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The HTTP status to answer (an error when >= 400).
    pub status: u16,
    /// An error's message.
    pub message: String,
    /// A 403's missing scope.
    pub need: Option<String>,
    /// Response headers (tus).
    pub headers: Vec<(String, String)>,
    /// Multipart text fields, first value of each.
    pub fields: Vec<(String, String)>,
    pub files: Vec<Stored>,
    /// The streamed Idempotency-Key fingerprint, when asked for.
    pub fingerprint: Option<String>,
}

impl Reply {
    pub fn error(status: u16, message: impl Into<String>) -> Reply {
        Reply { status, message: message.into(), ..Reply::default() }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Reply {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// A file refused by its first bytes: the status and message, and for a 403
/// the scope it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
    pub need: Option<&'static str>,
}

impl From<Refusal> for Reply {
    fn from(r: Refusal) -> Reply {
        Reply { status: r.status, message: r.message, need: r.need.map(str::to_string), ..Reply::default() }
    }
}

/// Judges a file by its first bytes (at most `SNIFF_BYTES`, all of them when
/// shorter): 415 when it is not what the route takes or not what it claims
/// to be, 403 naming the scope when the caller may not upload its kind.
pub fn judge(field: &str, head: &[u8], declared: &str, want: Want, caller: &Caller) -> Result<Sniffed, Refusal> {
    let refuse = |status, message: String, need| Refusal { status, message, need };
    let sniffed = sniff(head)
        .filter(|s| want == Want::Any || s.is_image() == (want == Want::Image))
        .ok_or_else(|| refuse(415, format!("{field}: must be {}, judged by its content", want.describe()), None))?;
    if !declared_matches(declared, sniffed) {
        return Err(refuse(415, format!("{field}: declared {declared} but the content is {}", sniffed.mime()), None));
    }
    let (allowed, scope) = if sniffed.is_image() { (caller.images, "write:jes") } else { (caller.videos, "write:jesclip") };
    if !allowed {
        return Err(refuse(403, format!("Token missing scope(s): {scope}"), Some(scope)));
    }
    Ok(sniffed)
}

/// `Upload-Metadata` (tus: comma-separated `key base64value` or `key`):
/// checked, and its `filetype` (or `contentType`) decoded. Empty is fine.
pub fn metadata_type(raw: &str) -> Result<Option<String>, String> {
    use base64::Engine;
    if raw.len() > MAX_METADATA {
        return Err(format!("Upload-Metadata: at most {MAX_METADATA} bytes"));
    }
    let mut filetype = None;
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut it = pair.split(' ');
        let key = it.next().unwrap_or("");
        let value = it.next();
        if key.is_empty() || it.next().is_some() || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("Upload-Metadata: must be comma-separated `key base64value` pairs".into());
        }
        let decoded = match value {
            Some(v) => base64::engine::general_purpose::STANDARD
                .decode(v)
                .map_err(|_| format!("Upload-Metadata: the value of {key} is not base64"))?,
            None => vec![],
        };
        if key == "filetype" || (key == "contentType" && filetype.is_none()) {
            filetype = Some(String::from_utf8(decoded).map_err(|_| format!("Upload-Metadata: {key} is not UTF-8"))?);
        }
    }
    Ok(filetype)
}

/// A non-negative integer header (`Upload-Offset`, `Upload-Length`).
pub fn number(name: &str, v: Option<&str>) -> Result<u64, String> {
    let v = v.ok_or_else(|| format!("{name}: required"))?.trim();
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("{name}: must be a non-negative integer"));
    }
    v.parse().map_err(|_| format!("{name}: too large"))
}

/// Where an upload stands, for a PATCH's checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    pub offset: u64,
    pub length: u64,
    pub complete: bool,
}

/// What a PATCH does, once its headers are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Patch {
    /// Append `len` bytes; `last` when they finish the upload.
    Append { len: u64, last: bool },
    /// A retry of the PATCH that finished the upload: answer as it did.
    AlreadyComplete,
}

/// Checks a PATCH of `len` bytes at `offset` (tus core): the status and
/// message of a refusal otherwise.
pub fn patch(s: Standing, offset: u64, len: u64) -> Result<Patch, (u16, String)> {
    if s.complete {
        return if offset == s.length && len == 0 {
            Ok(Patch::AlreadyComplete)
        } else {
            Err((409, "Upload-Offset: this upload is already complete".into()))
        };
    }
    if offset != s.offset {
        return Err((409, format!("Upload-Offset: the upload is at offset {}, not {offset}", s.offset)));
    }
    if offset + len > s.length {
        return Err((413, format!("body: {len} bytes at offset {offset} would pass the Upload-Length of {}", s.length)));
    }
    if len > MAX_PATCH {
        return Err((413, format!("body: a PATCH carries at most {MAX_PATCH} bytes ({} MiB)", MAX_PATCH >> 20)));
    }
    let last = offset + len == s.length;
    if !last && len < PART {
        return Err((
            400,
            format!("Upload chunks other than the last must be at least {PART} bytes (5 MiB); this one is {len} bytes."),
        ));
    }
    Ok(Patch::Append { len, last })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MP4: &[u8] = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom";
    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR";

    fn caller(images: bool, videos: bool) -> Caller {
        Caller { account: "u1".into(), images, videos }
    }

    #[test]
    fn a_file_is_judged_by_its_bytes_then_by_the_callers_scopes() {
        assert_eq!(judge("video", MP4, "video/mp4", Want::Video, &caller(false, true)), Ok(Sniffed::Mp4));
        let r = judge("video", PNG, "", Want::Video, &caller(true, true)).unwrap_err();
        assert_eq!((r.status, r.need), (415, None));
        assert!(r.message.starts_with("video: must be a video"), "{}", r.message);
        let r = judge("file", PNG, "video/mp4", Want::Any, &caller(true, true)).unwrap_err();
        assert_eq!(r.message, "file: declared video/mp4 but the content is image/png");
        let r = judge("file", MP4, "", Want::Any, &caller(true, false)).unwrap_err();
        assert_eq!((r.status, r.need, r.message.as_str()), (403, Some("write:jesclip"), "Token missing scope(s): write:jesclip"));
        assert_eq!(judge("file", b"hello", "text/plain", Want::Any, &caller(true, true)).unwrap_err().status, 415);
    }

    #[test]
    fn upload_metadata_is_checked_and_its_filetype_read() {
        assert_eq!(metadata_type(""), Ok(None), "tuspy sends it empty");
        assert_eq!(metadata_type("filename Yy5tcDQ=,filetype dmlkZW8vbXA0"), Ok(Some("video/mp4".into())));
        assert_eq!(metadata_type("is_confidential,filetype aW1hZ2UvcG5n"), Ok(Some("image/png".into())));
        assert!(metadata_type("filename not*base64").is_err());
        assert!(metadata_type("a b c").is_err());
        assert!(metadata_type(&"a YQ==,".repeat(1000)).is_err());
    }

    #[test]
    fn offsets_and_lengths_are_plain_integers() {
        assert_eq!(number("Upload-Offset", Some("0")), Ok(0));
        assert_eq!(number("Upload-Length", Some(" 42 ")), Ok(42));
        for bad in [None, Some(""), Some("-1"), Some("1e3"), Some("99999999999999999999999")] {
            assert!(number("Upload-Offset", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn patches_follow_tus_core_and_r2s_part_size() {
        let s = Standing { offset: PART, length: 3 * PART + 7, complete: false };
        assert_eq!(patch(s, PART, PART), Ok(Patch::Append { len: PART, last: false }));
        assert_eq!(patch(s, PART, 2 * PART + 7), Ok(Patch::Append { len: 2 * PART + 7, last: true }));
        assert_eq!(patch(s, 0, PART).unwrap_err().0, 409, "wrong offset");
        assert_eq!(patch(s, PART, 2 * PART + 8).unwrap_err().0, 413, "past the length");
        let small = patch(s, PART, 1 << 20).unwrap_err();
        assert_eq!(small.0, 400);
        assert!(small.1.contains("at least 5242880 bytes (5 MiB); this one is 1048576 bytes"), "{}", small.1);
        let last_small = Standing { offset: 0, length: 100, complete: false };
        assert_eq!(patch(last_small, 0, 100), Ok(Patch::Append { len: 100, last: true }), "a last chunk may be small");
        let big = Standing { offset: 0, length: 1 << 30, complete: false };
        assert_eq!(patch(big, 0, MAX_PATCH + 1).unwrap_err().0, 413);
        let done = Standing { offset: 100, length: 100, complete: true };
        assert_eq!(patch(done, 100, 0), Ok(Patch::AlreadyComplete));
        assert_eq!(patch(done, 0, 100).unwrap_err().0, 409);
    }
}
