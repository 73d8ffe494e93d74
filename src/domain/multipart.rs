//! A push parser for `multipart/form-data` (RFC 7578 over RFC 2046) that
//! never holds a part's content: it is fed the body in windows and answers
//! events, and a file's bytes come back as ranges of the window just pushed
//! (`Span::In`), so the caller can hand them on (as views of the runtime's
//! own chunk) without copying. Only what could still begin a delimiter, and a
//! part's header lines, are held back: at most `MAX_HEADER_BYTES`.
//!
//! No parser crate: multer would bring encoding_rs, httparse, mime and memchr
//! into a size-bounded wasm module; the search here is a scan for CR and a
//! compare.

use super::idempotency::boundary;

/// A part's header lines together.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Parts per body.
pub const MAX_PARTS: u8 = 16;

const INVALID: &str = "body: not a valid multipart/form-data body";

/// What a part is, from its headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartHead {
    pub name: String,
    /// Present for a file (possibly empty).
    pub filename: Option<String>,
    pub content_type: Option<String>,
}

/// Bytes of the current part's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Span {
    /// `window[a..b]` of the window just pushed.
    In(usize, usize),
    /// Bytes held back from earlier windows (fewer than a delimiter's length).
    Held(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ev {
    Part(PartHead),
    Data(Span),
    PartEnd,
    /// The closing delimiter: what follows is ignored.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Preamble,
    AfterDelim,
    Headers,
    Body,
    Done,
}

pub struct Parser {
    /// `\r\n--` and the boundary.
    delim: Vec<u8>,
    state: State,
    held: Vec<u8>,
    parts: u8,
}

impl Parser {
    /// For a body of this Content-Type; a missing or invalid boundary is an error.
    pub fn new(content_type: &str) -> Result<Parser, String> {
        let b = boundary(content_type)?.ok_or("Content-Type must be multipart/form-data")?;
        let mut delim = b"\r\n--".to_vec();
        delim.extend_from_slice(b.as_bytes());
        // The body is read as if it began with CRLF, so the first delimiter
        // is found like every other one.
        Ok(Parser { delim, state: State::Preamble, held: b"\r\n".to_vec(), parts: 0 })
    }

    /// Feeds the next window; appends what it completes to `out`.
    pub fn push(&mut self, window: &[u8], out: &mut Vec<Ev>) -> Result<(), String> {
        if self.held.is_empty() {
            let used = self.run(window, 0, out)?;
            self.held.extend_from_slice(&window[used..]);
        } else {
            let h = self.held.len();
            let mut buf = std::mem::take(&mut self.held);
            buf.extend_from_slice(window);
            let used = self.run(&buf, h, out)?;
            self.held = buf[used..].to_vec();
        }
        Ok(())
    }

    /// Whether the closing delimiter was seen (else the body ended early).
    pub fn finish(&self) -> Result<(), String> {
        match self.state {
            State::Done => Ok(()),
            _ => Err("body: ended before the multipart body's closing boundary".into()),
        }
    }

    /// Parses `buf`, whose first `h` bytes were held back; returns how much
    /// of it was used (the rest is held for the next window).
    fn run(&mut self, buf: &[u8], h: usize, out: &mut Vec<Ev>) -> Result<usize, String> {
        let mut at = 0;
        loop {
            let rest = &buf[at..];
            match self.state {
                State::Done => return Ok(buf.len()),
                State::Preamble => match find(rest, &self.delim) {
                    Some(i) => {
                        at += i + self.delim.len();
                        self.state = State::AfterDelim;
                    }
                    None => return Ok(at + rest.len().saturating_sub(self.delim.len() - 1)),
                },
                State::AfterDelim => {
                    // Transport padding (spaces, tabs) may follow a delimiter.
                    let pad = rest.iter().take_while(|&&c| c == b' ' || c == b'\t').count();
                    let after = &rest[pad..];
                    if after.len() < 2 {
                        if pad > MAX_HEADER_BYTES {
                            return Err(INVALID.into());
                        }
                        return Ok(at);
                    }
                    if after.starts_with(b"--") {
                        out.push(Ev::End);
                        self.state = State::Done;
                    } else if after.starts_with(b"\r\n") {
                        at += pad + 2;
                        self.state = State::Headers;
                    } else {
                        return Err(INVALID.into());
                    }
                }
                State::Headers => {
                    let end = if rest.starts_with(b"\r\n") { Some(0) } else { find(rest, b"\r\n\r\n").map(|i| i + 2) };
                    let Some(end) = end else {
                        if rest.len() > MAX_HEADER_BYTES {
                            return Err(format!("body: a part's headers are limited to {MAX_HEADER_BYTES} bytes"));
                        }
                        return Ok(at);
                    };
                    if end > MAX_HEADER_BYTES {
                        return Err(format!("body: a part's headers are limited to {MAX_HEADER_BYTES} bytes"));
                    }
                    if self.parts == MAX_PARTS {
                        return Err(format!("body: at most {MAX_PARTS} parts"));
                    }
                    self.parts += 1;
                    out.push(Ev::Part(part_head(&rest[..end])?));
                    at += end + 2;
                    self.state = State::Body;
                }
                State::Body => {
                    let (data_end, next) = match find(rest, &self.delim) {
                        Some(i) => (i, Some(i + self.delim.len())),
                        None => (rest.len() - held_suffix(rest, &self.delim), None),
                    };
                    span(buf, h, at, at + data_end, out);
                    match next {
                        Some(n) => {
                            out.push(Ev::PartEnd);
                            at += n;
                            self.state = State::AfterDelim;
                        }
                        None => return Ok(at + data_end),
                    }
                }
            }
        }
    }
}

/// Emits `buf[a..b]` as content: the held part as a copy, the rest as a
/// range of the window (which starts at `buf[h]`).
fn span(buf: &[u8], h: usize, a: usize, b: usize, out: &mut Vec<Ev>) {
    if a < h.min(b) {
        out.push(Ev::Data(Span::Held(buf[a..h.min(b)].to_vec())));
    }
    let a = a.max(h);
    if b > a {
        out.push(Ev::Data(Span::In(a - h, b - h)));
    }
}

/// The first occurrence of `needle` (which starts with CR) in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i + needle.len() <= hay.len() {
        match hay[i..hay.len() - needle.len() + 1].iter().position(|&c| c == needle[0]) {
            Some(p) => i += p,
            None => return None,
        }
        if hay[i..].starts_with(needle) {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// How many of `hay`'s last bytes could begin `delim` (held for the next window).
fn held_suffix(hay: &[u8], delim: &[u8]) -> usize {
    let from = hay.len().saturating_sub(delim.len() - 1);
    (from..hay.len()).find(|&i| hay[i] == b'\r' && delim.starts_with(&hay[i..])).map_or(0, |i| hay.len() - i)
}

/// A part's header lines (each ending in CRLF): its name, file name and type.
fn part_head(raw: &[u8]) -> Result<PartHead, String> {
    let text = std::str::from_utf8(raw).map_err(|_| "body: a part's headers are not UTF-8")?;
    let (mut disposition, mut content_type) = (None, None);
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let (name, value) = line.split_once(':').ok_or(INVALID)?;
        if name.trim().eq_ignore_ascii_case("content-disposition") {
            disposition = Some(value.trim());
        } else if name.trim().eq_ignore_ascii_case("content-type") {
            content_type = Some(value.trim().to_string());
        }
    }
    let disposition = disposition.ok_or("body: a part has no Content-Disposition")?;
    let mut params = params(disposition)?.into_iter();
    match params.next() {
        Some((kind, None)) if kind.eq_ignore_ascii_case("form-data") => {}
        _ => return Err("body: a part is not form-data".into()),
    }
    let (mut name, mut filename) = (None, None);
    for (k, v) in params {
        if k.eq_ignore_ascii_case("name") {
            name = v;
        } else if k.eq_ignore_ascii_case("filename") {
            filename = v;
        }
    }
    let name = name.filter(|n| !n.is_empty()).ok_or("body: a part has no name")?;
    Ok(PartHead { name, filename, content_type })
}

/// `form-data; name="a"; filename="b"`: the first item, then key=value
/// pairs; values may be quoted, with backslash escapes.
fn params(s: &str) -> Result<Vec<(String, Option<String>)>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c == ';' {
                break;
            }
            key.push(c);
            chars.next();
        }
        let mut value = None;
        if chars.peek() == Some(&'=') {
            chars.next();
            let mut v = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => v.push(chars.next().ok_or(INVALID)?),
                        Some(c) => v.push(c),
                        None => return Err(INVALID.into()),
                    }
                }
                while chars.peek().is_some_and(|&c| c != ';') {
                    chars.next();
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ';' {
                        break;
                    }
                    v.push(c);
                    chars.next();
                }
                v = v.trim().to_string();
            }
            value = Some(v);
        }
        out.push((key.trim().to_string(), value));
        if chars.next().is_none() {
            return Ok(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CT: &str = "multipart/form-data; boundary=AaB03x";

    /// What a body parses to: each part's head and content, and whether it closed.
    #[derive(Debug, PartialEq, Eq)]
    struct Parsed {
        parts: Vec<(PartHead, Vec<u8>)>,
        closed: bool,
    }

    fn parse(ct: &str, body: &[u8], cuts: &[usize]) -> Result<Parsed, String> {
        let mut p = Parser::new(ct)?;
        let mut parts: Vec<(PartHead, Vec<u8>)> = Vec::new();
        let mut open = false;
        let mut closed = false;
        let mut at = 0;
        let ends: Vec<usize> = cuts.iter().copied().chain([body.len()]).collect();
        for end in ends {
            let window = &body[at..end];
            let mut out = Vec::new();
            p.push(window, &mut out)?;
            for ev in out {
                assert!(!closed, "an event after End: {ev:?}");
                match ev {
                    Ev::Part(h) => {
                        assert!(!open, "a part began inside another");
                        open = true;
                        parts.push((h, vec![]));
                    }
                    Ev::Data(s) => {
                        assert!(open, "data outside a part");
                        let bytes = match s {
                            Span::In(a, b) => {
                                assert!(a < b, "an empty span");
                                window[a..b].to_vec()
                            }
                            Span::Held(v) => {
                                assert!(!v.is_empty() && v.len() < p.delim.len(), "held {} bytes", v.len());
                                v
                            }
                        };
                        parts.last_mut().unwrap().1.extend(bytes);
                    }
                    Ev::PartEnd => {
                        assert!(open);
                        open = false;
                    }
                    Ev::End => {
                        assert!(!open);
                        closed = true;
                    }
                }
            }
            at = end;
        }
        assert_eq!(closed, p.finish().is_ok());
        Ok(Parsed { parts, closed })
    }

    fn field(name: &str) -> PartHead {
        PartHead { name: name.into(), filename: None, content_type: None }
    }

    fn file(name: &str, filename: &str, ct: &str) -> PartHead {
        PartHead { name: name.into(), filename: Some(filename.into()), content_type: Some(ct.into()) }
    }

    const RFC: &[u8] = b"preamble, ignored\r\n--AaB03x\r\n\
        Content-Disposition: form-data; name=\"caption\"\r\n\r\n\
        sunset\r\n--AaB03x  \r\n\
        content-disposition: form-data; name=\"video\"; filename=\"c \\\"1\\\".mp4\"\r\n\
        Content-Type: video/mp4\r\n\r\n\
        \x00\x00\x00\x18ftyp\r\n--AaB0\r\n-\r\n--AaB03\r\n\r\n\r\n--AaB03x--\r\nepilogue, ignored --AaB03x\r\n";

    fn rfc_parsed() -> Parsed {
        Parsed {
            parts: vec![
                (field("caption"), b"sunset".to_vec()),
                (file("video", "c \"1\".mp4", "video/mp4"), b"\x00\x00\x00\x18ftyp\r\n--AaB0\r\n-\r\n--AaB03\r\n\r\n".to_vec()),
            ],
            closed: true,
        }
    }

    #[test]
    fn parts_and_near_delimiters_parse_the_same_at_every_cut() {
        let want = rfc_parsed();
        assert_eq!(parse(CT, RFC, &[]).unwrap(), want);
        for i in 0..=RFC.len() {
            assert_eq!(parse(CT, RFC, &[i]).unwrap(), want, "cut at {i}");
            for j in (i..=RFC.len()).step_by(7) {
                assert_eq!(parse(CT, RFC, &[i, j]).unwrap(), want, "cut at {i},{j}");
            }
        }
        let every: Vec<usize> = (1..RFC.len()).collect();
        assert_eq!(parse(CT, RFC, &every).unwrap(), want, "byte by byte");
    }

    #[test]
    fn the_body_may_start_with_the_delimiter_and_files_may_be_empty() {
        let body = b"--AaB03x\r\nContent-Disposition: form-data; name=\"video\"; filename=\"\"\r\n\r\n\r\n--AaB03x--";
        let want = Parsed {
            parts: vec![(PartHead { name: "video".into(), filename: Some(String::new()), content_type: None }, vec![])],
            closed: true,
        };
        assert_eq!(parse(CT, body, &[]).unwrap(), want);
        assert_eq!(parse(CT, body, &[3, 40]).unwrap(), want);
    }

    #[test]
    fn a_close_delimiter_alone_is_an_empty_form() {
        assert_eq!(parse(CT, b"--AaB03x--\r\n", &[]).unwrap(), Parsed { parts: vec![], closed: true });
    }

    #[test]
    fn a_body_without_its_close_delimiter_does_not_finish() {
        let cut = &RFC[..RFC.len() - 40];
        let parsed = parse(CT, cut, &[]).unwrap();
        assert!(!parsed.closed);
        assert!(parse(CT, b"", &[]).is_ok_and(|p| !p.closed));
        // A bare `--AaB03x` inside content, without the CRLF before it, is content.
        let body = b"--AaB03x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nx--AaB03x--";
        assert!(!parse(CT, body, &[]).unwrap().closed);
    }

    #[test]
    fn malformed_bodies_are_errors() {
        let long = format!(
            "--AaB03x\r\nContent-Disposition: form-data; name=\"a\"\r\nX-Pad: {}\r\n\r\nv\r\n--AaB03x--",
            "p".repeat(9000)
        );
        assert!(parse(CT, long.as_bytes(), &[100]).unwrap_err().contains("limited to 8192"));
        for bad in [
            &b"--AaB03x\r\nContent-Type: text/plain\r\n\r\nv\r\n--AaB03x--"[..],
            b"--AaB03x\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nv\r\n--AaB03x--",
            b"--AaB03x\r\nContent-Disposition: form-data; filename=\"a\"\r\n\r\nv\r\n--AaB03x--",
            b"--AaB03x\r\nContent-Disposition: form-data; name=\"a\r\n\r\nv\r\n--AaB03x--",
            b"--AaB03xjunk\r\n",
        ] {
            assert!(parse(CT, bad, &[]).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        let many: String = (0..17)
            .map(|i| format!("--AaB03x\r\nContent-Disposition: form-data; name=\"f{i}\"\r\n\r\nv\r\n"))
            .collect::<String>()
            + "--AaB03x--";
        assert!(parse(CT, many.as_bytes(), &[]).unwrap_err().contains("at most 16 parts"));
    }

    #[test]
    fn the_boundary_is_checked() {
        assert!(Parser::new("application/json").is_err());
        assert!(Parser::new("multipart/form-data").is_err());
        assert!(Parser::new(&format!("multipart/form-data; boundary={}", "x".repeat(71))).is_err());
        assert!(Parser::new(&format!("multipart/form-data; boundary={}", "x".repeat(70))).is_ok());
    }

    #[test]
    fn content_is_handed_on_as_window_ranges_not_copies() {
        // A large file in 64 KiB windows: everything but what could begin a
        // delimiter comes back as a range of the window.
        let mut body = b"--AaB03x\r\nContent-Disposition: form-data; name=\"video\"; filename=\"c.mp4\"\r\n\r\n".to_vec();
        let content: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
        body.extend_from_slice(&content);
        body.extend_from_slice(b"\r\n--AaB03x--\r\n");
        let mut p = Parser::new(CT).unwrap();
        let (mut copied, mut got) = (0, Vec::new());
        for w in body.chunks(65_536) {
            let mut out = Vec::new();
            p.push(w, &mut out).unwrap();
            for ev in out {
                match ev {
                    Ev::Data(Span::In(a, b)) => got.extend_from_slice(&w[a..b]),
                    Ev::Data(Span::Held(v)) => {
                        copied += v.len();
                        got.extend(v);
                    }
                    _ => {}
                }
            }
            assert!(p.held.len() < MAX_HEADER_BYTES);
        }
        p.finish().unwrap();
        assert_eq!(got, content);
        assert!(copied < 100, "{copied} bytes copied");
    }
}
