//! The pure core of Idempotency-Key for bodies that are never held whole: an
//! upload's fingerprint computed while its bytes stream past (`StreamFp`),
//! and the multipart boundary it ignores (`boundary`). Pure so both Workers
//! can use it (the one that streams the body computes it) and so it is
//! tested natively; the layer that claims keys is `pipeline::idempotency`.
//!
//! The fingerprint is
//! `SHA-256("s2" ‖ u64be(|method|) ‖ method ‖ u64be(|target|) ‖ target ‖ seg₁ ‖ u64be(|seg₁|) ‖ … ‖ segₙ ‖ u64be(|segₙ|))`,
//! where the segments are `CRLF ‖ body` split at each leftmost,
//! non-overlapping RFC 2046 delimiter `CRLF--boundary` (the leading CRLF lets
//! the first delimiter, at offset 0 without one, be found the same way); a raw
//! body is one segment. Only delimiters split: the boundary's bytes inside a
//! caption (`qq` under boundary `q`) are content, so different captions never
//! share a fingerprint. Each length comes *after* its segment, so nothing is
//! buffered; read from the end the encoding still decodes one way.
//! Leaving the boundary out is what lets a faithful retry match: clients
//! draw a fresh random boundary for every attempt.
//!
//! Time is linear in the body: the delimiter (at most 74 bytes) is found with
//! Knuth-Morris-Pratt, at most two steps per byte, never re-reading one; at
//! most 73 bytes are held back between windows (and those are a prefix of the
//! delimiter, so they are not even stored). Feed windows with `push` as they
//! arrive (uploads stream), then `finish`.

use sha2::{Digest, Sha256};

/// RFC 2046: a boundary is 1 to 70 characters.
pub const MAX_BOUNDARY: usize = 70;

/// The `boundary` parameter of a `multipart/form-data` Content-Type:
/// `Ok(None)` for another type, an error for a multipart type whose boundary
/// is missing, empty, longer than 70 characters or not of RFC 2046's
/// characters (the caller answers 400).
pub fn boundary(content_type: &str) -> Result<Option<&str>, String> {
    let mut params = content_type.split(';');
    if !params.next().unwrap_or("").trim().eq_ignore_ascii_case("multipart/form-data") {
        return Ok(None);
    }
    let b = params
        .find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("boundary").then(|| v.trim())
        })
        .ok_or("Content-Type: multipart/form-data needs a boundary")?;
    let b = match b.strip_prefix('"') {
        Some(quoted) => quoted.strip_suffix('"').ok_or("Content-Type: the boundary's quote is not closed")?,
        None => b,
    };
    if b.is_empty() || b.len() > MAX_BOUNDARY {
        return Err(format!("Content-Type: the multipart boundary must be 1 to {MAX_BOUNDARY} characters"));
    }
    // bchars: DIGIT / ALPHA / "'()+_,-./:=?" and space (not last).
    let bchar = |c: u8| c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&c);
    if !b.bytes().all(bchar) || b.ends_with(' ') {
        return Err("Content-Type: the multipart boundary has characters RFC 2046 does not allow".into());
    }
    Ok(Some(b))
}

/// A request's fingerprint, fed the body in windows of any size.
pub struct StreamFp {
    h: Sha256,
    /// The boundary (empty: the body is one segment) and its KMP failure table.
    b: Vec<u8>,
    fail: Vec<usize>,
    /// How many of the boundary's first bytes the stream now ends with (`b[..q]`).
    q: usize,
    /// Bytes of the current segment hashed so far.
    seg: u64,
    /// Matcher steps taken (tests hold them to a bound per byte).
    #[cfg(test)]
    steps: usize,
}

impl StreamFp {
    /// `target`: path and query. `boundary`: from `boundary()`, or `None`.
    pub fn new(method: &str, target: &str, boundary: Option<&str>) -> StreamFp {
        let mut h = Sha256::new();
        h.update(b"s2");
        for part in [method.as_bytes(), target.as_bytes()] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        let b = match boundary.filter(|b| !b.is_empty()) {
            Some(b) => [b"\r\n--", b.as_bytes()].concat(),
            None => Vec::new(),
        };
        let mut fail = vec![0; b.len()];
        let mut k = 0;
        for i in 1..b.len() {
            while k > 0 && b[i] != b[k] {
                k = fail[k - 1];
            }
            if b[i] == b[k] {
                k += 1;
            }
            fail[i] = k;
        }
        let multipart = !b.is_empty();
        let mut fp = StreamFp {
            h,
            b,
            fail,
            q: 0,
            seg: 0,
            #[cfg(test)]
            steps: 0,
        };
        if multipart {
            fp.push(b"\r\n");
        }
        fp
    }

    /// Feeds the next window of the body.
    pub fn push(&mut self, data: &[u8]) {
        if self.b.is_empty() {
            self.h.update(data);
            self.seg += data.len() as u64;
            return;
        }
        // Held back from earlier windows: `b[..held]`, just before `data[0]`.
        let mut held = self.q;
        // Hashed so far from `data`: everything before `from`.
        let mut from = 0;
        for (i, &c) in data.iter().enumerate() {
            while self.q > 0 && c != self.b[self.q] {
                self.q = self.fail[self.q - 1];
                #[cfg(test)]
                {
                    self.steps += 1;
                }
            }
            #[cfg(test)]
            {
                self.steps += 1;
            }
            if c == self.b[self.q] {
                self.q += 1;
            }
            if self.q == self.b.len() {
                // The boundary ends at `i`: the segment is everything before it.
                let end = i + 1;
                let start = end as isize - self.b.len() as isize; // < 0: it began in `held`
                self.emit(held, &mut from, data, start);
                held = 0;
                from = end;
                self.h.update(self.seg.to_be_bytes());
                self.seg = 0;
                self.q = 0;
            }
        }
        // Hash all but the bytes that may still begin a boundary (`b[..q]`).
        let keep_from = data.len() as isize - self.q as isize;
        self.emit(held, &mut from, data, keep_from);
    }

    /// Hashes the stream up to `until` (an index into `data`; negative
    /// reaches back into the `held` boundary prefix before it).
    fn emit(&mut self, held: usize, from: &mut usize, data: &[u8], until: isize) {
        if until < 0 {
            // Only part of the held prefix is data; the rest stays held.
            let n = (held as isize + until) as usize;
            self.h.update(&self.b[..n]);
            self.seg += n as u64;
            // The bytes b[n..held] remain pending; the caller resets `held`.
            return;
        }
        if held > 0 && *from == 0 {
            self.h.update(&self.b[..held]);
            self.seg += held as u64;
        }
        let until = until as usize;
        if until > *from {
            self.h.update(&data[*from..until]);
            self.seg += (until - *from) as u64;
            *from = until;
        }
    }

    /// The fingerprint, hex: what is still held back is data too.
    pub fn finish(mut self) -> String {
        let q = self.q;
        self.h.update(&self.b[..q]);
        self.seg += q as u64;
        self.h.update(self.seg.to_be_bytes());
        hex::encode(self.h.finalize())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The definition, on a whole body: split, then hash with suffixes.
    fn reference(method: &str, target: &str, body: &[u8], boundary: Option<&str>) -> String {
        let mut h = Sha256::new();
        h.update(b"s2");
        for part in [method.as_bytes(), target.as_bytes()] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        let framed = [b"\r\n".as_slice(), body].concat();
        let mut rest = body;
        if let Some(b) = boundary.filter(|b| !b.is_empty()).map(|b| [b"\r\n--", b.as_bytes()].concat()) {
            rest = &framed;
            while let Some(at) = rest.windows(b.len()).position(|w| *w == b[..]) {
                h.update(&rest[..at]);
                h.update((at as u64).to_be_bytes());
                rest = &rest[at + b.len()..];
            }
        }
        h.update(rest);
        h.update((rest.len() as u64).to_be_bytes());
        hex::encode(h.finalize())
    }

    fn streamed(body: &[u8], boundary: Option<&str>, cuts: &[usize]) -> String {
        let mut fp = StreamFp::new("POST", "/api/jesclips", boundary);
        let mut at = 0;
        for &c in cuts {
            fp.push(&body[at..c]);
            at = c;
        }
        fp.push(&body[at..]);
        fp.finish()
    }

    fn form(boundary: &str, caption: &str, video: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\n{caption}\r\n").as_bytes(),
        );
        v.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"c.mp4\"\r\nContent-Type: video/mp4\r\n\r\n")
                .as_bytes(),
        );
        v.extend_from_slice(video);
        v.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        v
    }

    /// A small deterministic generator (no rand crate): xorshift.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn streamed_equals_the_definition_at_every_cut() {
        // Near-boundaries, overlaps and a boundary split across windows.
        let b = "abab-ac";
        let bodies: [&[u8]; 6] = [
            b"",
            b"--abab-ac",
            b"xx\r\n--abab-abab-acyy\r\n--abab-ac",
            b"\r\n--ababab-acab-ababab-ac--abab-a\r\n--abab-ac--",
            b"aa\r\n--\r\n--abab-aabab-acab",
            b"--abab-ac\r\n--abab-ac\r\r\n--abab-ac",
        ];
        for body in bodies {
            let want = reference("POST", "/api/jesclips", body, Some(b));
            assert_eq!(streamed(body, Some(b), &[]), want, "{body:?}");
            for i in 0..=body.len() {
                assert_eq!(streamed(body, Some(b), &[i]), want, "{body:?} cut at {i}");
                for j in i..=body.len() {
                    assert_eq!(streamed(body, Some(b), &[i, j]), want, "{body:?} cut at {i},{j}");
                }
            }
            let single: Vec<usize> = (1..body.len()).collect();
            assert_eq!(streamed(body, Some(b), &single), want, "{body:?} byte by byte");
        }
    }

    #[test]
    fn streamed_equals_the_definition_on_random_bodies_and_windows() {
        let mut r = Rng(0x9e37_79b9_7f4a_7c15);
        for round in 0..400 {
            // A small alphabet makes partial and overlapping matches common.
            let boundary: String = (0..1 + r.below(6)).map(|_| b"ab-"[r.below(3)] as char).collect();
            let body: Vec<u8> = (0..r.below(300)).map(|_| b"ab-\r\n-"[r.below(6)]).collect();
            let mut cuts: Vec<usize> = (0..r.below(8)).map(|_| r.below(body.len() + 1)).collect();
            cuts.sort_unstable();
            let want = reference("POST", "/api/jesclips", &body, Some(&boundary));
            assert_eq!(streamed(&body, Some(&boundary), &cuts), want, "round {round}: {boundary:?} {body:?} {cuts:?}");
        }
    }

    #[test]
    fn a_raw_body_is_one_segment() {
        let body = b"\x00\x00\x00\x18ftypmp42 and the rest";
        assert_eq!(streamed(body, None, &[3, 9]), reference("POST", "/api/jesclips", body, None));
    }

    #[test]
    fn equal_requests_with_different_boundaries_are_equal() {
        let video: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let one = form("----WebKitFormBoundary7MA4YWxkTrZu0gW", "sunset #beach", &video);
        let two = form("d5f9c3a2b1e04c7f", "sunset #beach", &video);
        assert_eq!(
            streamed(&one, Some("----WebKitFormBoundary7MA4YWxkTrZu0gW"), &[100, 65_636]),
            streamed(&two, Some("d5f9c3a2b1e04c7f"), &[7, 131_072]),
        );
    }

    #[test]
    fn different_captions_bytes_paths_or_methods_never_are() {
        let video = b"\x00\x00\x00\x18ftypmp42";
        let b = "XyZ";
        let base = streamed(&form(b, "sunset", video), Some(b), &[]);
        assert_ne!(base, streamed(&form(b, "sunrise", video), Some(b), &[]));
        assert_ne!(base, streamed(&form(b, "sunset", b"\x00\x00\x00\x18ftypmp41"), Some(b), &[]));
        // Moving a byte across a boundary changes the segment lengths.
        assert_ne!(base, streamed(&form(b, "sunse", b"t\x00\x00\x00\x18ftypmp42"), Some(b), &[]));
        let mut other = StreamFp::new("POST", "/api/posts", Some(b));
        other.push(&form(b, "sunset", video));
        assert_ne!(base, other.finish());
        let mut put = StreamFp::new("PUT", "/api/jesclips", Some(b));
        put.push(&form(b, "sunset", video));
        assert_ne!(base, put.finish());
    }

    #[test]
    fn the_boundary_inside_content_is_content() {
        // The old search stripped the boundary wherever it occurred, so these
        // two different captions fingerprinted alike.
        let one = streamed(&form("q", "qq", b"v"), Some("q"), &[]);
        let two = streamed(&form("Z", "ZZ", b"v"), Some("Z"), &[]);
        assert_ne!(one, two);
        // `--q` not after a line break does not split the caption.
        assert_ne!(streamed(&form("q", "a--qb", b"v"), Some("q"), &[]), streamed(&form("Z", "a--Zb", b"v"), Some("Z"), &[]));
        assert_eq!(streamed(&form("q", "a--Zb", b"v"), Some("q"), &[]), streamed(&form("Y", "a--Zb", b"v"), Some("Y"), &[2]));
    }

    #[test]
    fn time_is_linear_even_when_the_body_nearly_matches_everywhere() {
        // A naive scan re-reads up to |boundary| bytes per byte on these
        // bodies; the matcher takes at most two steps per byte, however the
        // body is cut. Counted, not timed.
        let b = "a".repeat(69) + "b";
        let near: Vec<u8> = b"\r\n--".iter().chain(b"a".repeat(69).iter()).chain(b"c").copied().cycle().take(1 << 20).collect();
        for body in [vec![b'a'; 1 << 20], near] {
            let mut fp = StreamFp::new("POST", "/", Some(&b));
            for w in body.chunks(4096 + 3) {
                fp.push(w);
            }
            assert!(fp.steps <= 2 * body.len(), "{} steps for {} bytes", fp.steps, body.len());
            assert_eq!(fp.finish(), reference("POST", "/", &body, Some(&b)));
        }
    }

    #[test]
    fn boundaries_follow_rfc_2046() {
        assert_eq!(boundary("application/json"), Ok(None));
        assert_eq!(boundary("multipart/form-data; boundary=abc"), Ok(Some("abc")));
        assert_eq!(boundary("Multipart/Form-Data;Boundary=\"a b'c\""), Ok(Some("a b'c")));
        assert_eq!(boundary(&format!("multipart/form-data; boundary={}", "x".repeat(70))).map(|b| b.map(str::len)), Ok(Some(70)));
        for bad in [
            "multipart/form-data".to_string(),
            "multipart/form-data; boundary=".to_string(),
            "multipart/form-data; boundary=\"\"".to_string(),
            "multipart/form-data; boundary=\"abc".to_string(),
            "multipart/form-data; boundary=a\u{e9}".to_string(),
            "multipart/form-data; boundary=\"abc \"".to_string(),
            format!("multipart/form-data; boundary={}", "x".repeat(71)),
        ] {
            assert!(boundary(&bad).is_err(), "{bad}");
        }
    }
}
