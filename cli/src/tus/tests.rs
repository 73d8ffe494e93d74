//! Native tests of the tus client: the chunk plan, the metadata header, the
//! resume decisions, and whole uploads against the fake server.
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
    Answer::canned(status, body, headers)
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
    assert!(matches!(after_patch(0, 10, Ok(answer(409, &[]))), Next::Ask { .. }), "another PATCH held it, or the offset moved");
    for refused in [400, 403, 404, 412, 413, 415, 429] {
        assert!(matches!(after_patch(0, 10, Ok(answer(refused, &[]))), Next::Fail(f) if f.status == Some(refused)), "{refused}");
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
    assert!(matches!(&gone, Next::Fail(f) if f.status == Some(404) && f.message.contains("no longer on the server")), "{gone:?}");
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
