//! Files on their way to the API: a `multipart/form-data` body streamed from
//! disk with its exact length known up front (so the API can refuse an
//! oversized upload from `Content-Length` alone), opened afresh for every
//! attempt, and the two upload paths the commands use.
//!
//! How a JesClip's video travels is decided in `publish_clip` alone: the file
//! goes to `/api/uploads` over tus (`tus`), resumed after a failure on the
//! way rather than sent again whole, and the clip is published from the media
//! id it became. A Jes's images, small, still go in one `POST /api/media` each.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Cursor, Read};
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::client::Client;
use crate::failure::Failure;
use crate::tus;

/// A file field (the API's multipart uploads take no text beside them now:
/// a JesClip's caption goes in the JSON that names its uploaded video).
struct Field {
    name: String,
    path: PathBuf,
}

/// A multipart form whose files are read from disk only when it is sent.
pub struct Form {
    boundary: String,
    fields: Vec<Field>,
    label: String,
}

impl Form {
    pub fn new(label: &str) -> Form {
        Form::with_boundary(label, format!("jestha-{}", crate::random_hex(16)))
    }

    fn with_boundary(label: &str, boundary: String) -> Form {
        Form { boundary, fields: vec![], label: label.to_string() }
    }

    pub fn file(mut self, name: &str, path: &Path) -> Form {
        self.fields.push(Field { name: name.into(), path: path.to_path_buf() });
        self
    }

    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// What the progress bar says.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The body's length and a reader over it, files opened now. The file's
    /// type is left to the API, which judges it by its bytes.
    pub fn open(&self) -> io::Result<(u64, Box<dyn Read + Send>)> {
        let mut parts: VecDeque<Box<dyn Read + Send>> = VecDeque::new();
        let mut len = 0u64;
        fn push_bytes(parts: &mut VecDeque<Box<dyn Read + Send>>, len: &mut u64, bytes: Vec<u8>) {
            *len += bytes.len() as u64;
            parts.push_back(Box::new(Cursor::new(bytes)));
        }
        for Field { name, path } in &self.fields {
            let file = File::open(path).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            let meta = file.metadata()?;
            if !meta.is_file() {
                return Err(io::Error::other(format!("{}: not a regular file", path.display())));
            }
            let filename = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "file".into());
            push_bytes(&mut parts, &mut len, self.head(name, &filename).into_bytes());
            // Exactly the length announced, even if the file grows meanwhile.
            parts.push_back(Box::new(file.take(meta.len())));
            len += meta.len();
            push_bytes(&mut parts, &mut len, b"\r\n".to_vec());
        }
        push_bytes(&mut parts, &mut len, format!("--{}--\r\n", self.boundary).into_bytes());
        Ok((len, Box::new(Concat(parts))))
    }

    fn head(&self, name: &str, filename: &str) -> String {
        format!(
            "--{}\r\nContent-Disposition: form-data; name=\"{}\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            self.boundary,
            quoted(name),
            quoted(filename)
        )
    }
}

/// A header parameter's value as browsers write it (WHATWG HTML's multipart
/// encoding): quotes and line breaks percent-encoded.
fn quoted(s: &str) -> String {
    s.replace('"', "%22").replace('\r', "%0D").replace('\n', "%0A")
}

/// Readers one after another.
struct Concat(VecDeque<Box<dyn Read + Send>>);

impl Read for Concat {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(r) = self.0.front_mut() {
            let n = r.read(buf)?;
            if n > 0 || buf.is_empty() {
                return Ok(n);
            }
            self.0.pop_front();
        }
        Ok(0)
    }
}

/// Checks up front that every file can be read, so a typo fails before
/// anything is uploaded.
pub fn check_files<'a>(paths: impl IntoIterator<Item = &'a PathBuf>) -> Result<(), Failure> {
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(Failure::new("bad_file", format!("{}: not a regular file", p.display()))),
            Err(e) => return Err(Failure::new("bad_file", format!("{}: {e}", p.display()))),
        }
    }
    Ok(())
}

fn file_label(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// POST /api/media: one file; its media id, for a Jes's `mediaIds`.
pub fn upload_media(client: &mut Client, path: &Path, idempotency_key: &str) -> Result<String, Failure> {
    let form = Form::new(&file_label(path)).file("file", path);
    let media = client.upload("/api/media", &form, Some(idempotency_key))?;
    media
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Failure::new("bad_response", format!("POST /api/media answered without an id: {media}")))
}

/// Publishes a JesClip from a video file; the created JesClip. The file goes
/// up resumably, then `POST /api/jesclips` names it (`mediaId`) under the
/// command's Idempotency-Key: a rerun with that key finds the same upload
/// (`tus::upload`), so the same body, which the API replays.
pub fn publish_clip(
    client: &mut Client,
    path: &Path,
    caption: &str,
    visibility: &str,
    idempotency_key: &str,
) -> Result<Value, Failure> {
    let media_id = tus::upload(client, path, idempotency_key)?;
    let body = json!({ "mediaId": media_id, "caption": caption, "visibility": visibility });
    client.post("/api/jesclips", &body, Some(idempotency_key))
}

/// `POST /api/posts` with images uploaded first, one `POST /api/media` each.
pub fn publish_post(
    client: &mut Client,
    content: &str,
    visibility: &str,
    media: &[PathBuf],
    idempotency_key: &str,
) -> Result<Value, Failure> {
    let mut ids = Vec::with_capacity(media.len());
    for (i, path) in media.iter().enumerate() {
        ids.push(upload_media(client, path, &format!("{idempotency_key}:media:{i}"))?);
    }
    let mut body = json!({ "content": content, "visibility": visibility });
    if !ids.is_empty() {
        body["mediaIds"] = json!(ids);
    }
    client.post("/api/posts", &body, Some(&format!("{idempotency_key}:post")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::TempDir;

    fn read_all(form: &Form) -> (u64, Vec<u8>) {
        let (len, mut r) = form.open().unwrap();
        let mut out = vec![];
        r.read_to_end(&mut out).unwrap();
        (len, out)
    }

    #[test]
    fn the_body_is_exact_multipart_and_its_announced_length() {
        let t = TempDir::new("form");
        let video = t.0.join("my \"clip\".mp4");
        std::fs::write(&video, b"\x00\x00\x00\x18ftypisom-bytes").unwrap();
        let form = Form::with_boundary("clip", "B0UND".into()).file("video", &video);
        let (len, body) = read_all(&form);
        let expected = "--B0UND\r\nContent-Disposition: form-data; name=\"video\"; filename=\"my %22clip%22.mp4\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n\x00\x00\x00\x18ftypisom-bytes\r\n--B0UND--\r\n";
        assert_eq!(String::from_utf8_lossy(&body), expected);
        assert_eq!(len, body.len() as u64);
        assert_eq!(form.content_type(), "multipart/form-data; boundary=B0UND");
    }

    #[test]
    fn every_attempt_reads_the_file_afresh() {
        let t = TempDir::new("reopen");
        let f = t.0.join("a.png");
        std::fs::write(&f, b"first").unwrap();
        let form = Form::new("a.png").file("file", &f);
        let (_, one) = read_all(&form);
        let (_, two) = read_all(&form);
        assert_eq!(one, two);
        assert!(form.content_type().starts_with("multipart/form-data; boundary=jestha-"));
    }

    #[test]
    fn a_large_file_streams_whole_through_small_reads() {
        let t = TempDir::new("large");
        let f = t.0.join("big.bin");
        let data: Vec<u8> = (0..1_000_003u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&f, &data).unwrap();
        let form = Form::with_boundary("big", "b".into()).file("file", &f);
        let (len, mut r) = form.open().unwrap();
        let mut out = vec![];
        let mut buf = [0u8; 997];
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(len, out.len() as u64);
        let start = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        assert_eq!(&out[start..start + data.len()], &data[..]);
    }

    #[test]
    fn a_missing_file_or_a_directory_is_refused_before_any_upload() {
        let t = TempDir::new("missing");
        let gone = t.0.join("gone.png");
        let f = check_files([&gone]).unwrap_err();
        assert_eq!(f.code, "bad_file");
        assert!(f.message.contains("gone.png"), "{}", f.message);
        assert_eq!(check_files([&t.0]).unwrap_err().code, "bad_file");
        assert!(Form::new("x").file("file", &gone).open().is_err());
    }
}
