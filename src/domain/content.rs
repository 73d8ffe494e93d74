//! Content rules, pure and tested natively: who may see a Jes, what text and
//! media a Jes may carry, hashtag extraction, magic-byte sniffing of uploads,
//! byte ranges for media, and the timestamp format content responses use.

/// Longest Jes text, in characters.
pub const MAX_JES_CHARS: usize = 500;
/// Longest JesClip caption, in characters.
pub const MAX_CAPTION_CHARS: usize = 300;
/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 1000;
/// Images one Jes may carry.
pub const MAX_MEDIA_PER_JES: usize = 4;
/// Distinct hashtags one Jes or caption may carry.
pub const MAX_HASHTAGS: usize = 10;
/// Longest hashtag, in characters (without the `#`).
pub const MAX_HASHTAG_CHARS: usize = 50;

/// What a post is: the `kind` column of `posts`. Routes under
/// `/api/jesclips` act on JesClips, the rest on Jes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostKind {
    Jes,
    Jesclip,
}

impl PostKind {
    pub fn of_path(path: &str) -> PostKind {
        if path.starts_with("/api/jesclips") {
            PostKind::Jesclip
        } else {
            PostKind::Jes
        }
    }

    /// As stored, and as the `type` field of a rendered post.
    pub fn as_str(self) -> &'static str {
        match self {
            PostKind::Jes => "jes",
            PostKind::Jesclip => "jesclip",
        }
    }

    /// As messages name it.
    pub fn name(self) -> &'static str {
        match self {
            PostKind::Jes => "Jes",
            PostKind::Jesclip => "JesClip",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    /// Everyone, signed in or not.
    Public,
    /// The author and the accounts that follow the author.
    Followers,
    /// The author only.
    Private,
}

impl Visibility {
    pub fn parse(raw: &str) -> Result<Visibility, String> {
        match raw {
            "PUBLIC" => Ok(Visibility::Public),
            "FOLLOWERS" => Ok(Visibility::Followers),
            "PRIVATE" => Ok(Visibility::Private),
            _ => Err("visibility: must be one of PUBLIC, FOLLOWERS, PRIVATE".into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "PUBLIC",
            Visibility::Followers => "FOLLOWERS",
            Visibility::Private => "PRIVATE",
        }
    }
}

/// How the caller stands to a Jes, as loaded with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Viewer {
    /// The caller's account wrote it.
    pub is_author: bool,
    /// The caller's account follows the author.
    pub follows_author: bool,
}

/// The visibility decision. A deleted Jes (or one whose author deleted their
/// account) is seen by no one; everything else by its visibility. Routes answer
/// 404 for anything this refuses, never 403, so existence does not leak.
/// The list queries in `routes::content::sql::VISIBLE` encode the same rule in SQL.
pub fn may_see(visibility: Visibility, deleted: bool, viewer: Viewer) -> bool {
    if deleted {
        return false;
    }
    match visibility {
        Visibility::Public => true,
        Visibility::Followers => viewer.is_author || viewer.follows_author,
        Visibility::Private => viewer.is_author,
    }
}

fn forbidden_char(c: char) -> bool {
    // Newlines and tabs are part of a post; other controls and the bidi
    // overrides (text that renders reversed) are not.
    (c.is_control() && c != '\n' && c != '\t') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Text a person writes (Jes, caption, comment): trimmed, at most `max`
/// characters, newlines allowed, other control characters refused. Empty is
/// allowed here; callers decide whether a field may be empty.
pub fn body_text(field: &str, raw: &str, max: usize) -> Result<String, String> {
    let t = raw.trim().replace("\r\n", "\n");
    let n = t.chars().count();
    if n > max {
        return Err(format!("{field}: must be at most {max} characters (got {n})"));
    }
    if t.chars().any(forbidden_char) {
        return Err(format!("{field}: must not contain control characters"));
    }
    Ok(t)
}

/// A JeHub name: 1 to 30 of `a-z 0-9 _ -`, stored lowercase.
pub fn hub(raw: &str) -> Result<String, String> {
    let h = raw.trim().to_ascii_lowercase();
    if h.is_empty() || h.len() > 30 || !h.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err("hub: must be 1 to 30 of a-z, 0-9, _ and -".into());
    }
    Ok(h)
}

/// Word characters for hashtags and search: ASCII letters, digits and `_`,
/// and any non-ASCII character outside the common punctuation and space
/// blocks. Deliberately table-free: Unicode property tables cost the Worker
/// tens of KB of wasm.
fn tag_char(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_alphanumeric() || c == '_';
    }
    !matches!(c, '\u{80}'..='\u{bf}' | '\u{d7}' | '\u{f7}' | '\u{2000}'..='\u{2bff}' | '\u{3000}'..='\u{303f}'
        | '\u{fe30}'..='\u{fe4f}' | '\u{ff00}'..='\u{ff0f}' | '\u{ff1a}'..='\u{ff20}' | '\u{ff3b}'..='\u{ff40}'
        | '\u{ff5b}'..='\u{ff65}' | '\u{fff0}'..='\u{ffff}')
}

/// The hashtags in a text, lowercased, without `#`, deduplicated, in order of
/// first appearance. A `#` inside a word (`a#b`, `&#39;`) starts no tag, nor
/// does one followed only by digits (`#1`). More than `MAX_HASHTAGS` is an error.
pub fn hashtags(text: &str) -> Result<Vec<String>, String> {
    let mut tags: Vec<String> = Vec::new();
    let mut prev: Option<char> = None;
    for (i, c) in text.char_indices() {
        let starts = c == '#' && !prev.is_some_and(|p| tag_char(p) || p == '&' || p == '#');
        prev = Some(c);
        if !starts {
            continue;
        }
        let rest = &text[i + 1..];
        let end = rest.find(|ch: char| !tag_char(ch)).unwrap_or(rest.len());
        let tag = &rest[..end];
        if tag.is_empty() || tag.chars().all(|ch| ch.is_ascii_digit()) {
            continue;
        }
        if tag.chars().count() > MAX_HASHTAG_CHARS {
            return Err(format!("content: hashtags must be at most {MAX_HASHTAG_CHARS} characters"));
        }
        // ASCII case folding only (no Unicode tables, see `tag_char`).
        let tag = tag.to_ascii_lowercase();
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.len() > MAX_HASHTAGS {
        return Err(format!("content: at most {MAX_HASHTAGS} distinct hashtags"));
    }
    Ok(tags)
}

/// A hashtag as typed in a search box (`#Rust` or `rust`), normalised.
pub fn tag_query(raw: &str) -> Option<String> {
    let t = raw.trim().trim_start_matches('#').to_ascii_lowercase();
    (!t.is_empty() && t.chars().count() <= MAX_HASHTAG_CHARS && t.chars().all(tag_char)).then_some(t)
}

/// An FTS5 query for free text: every word becomes a quoted prefix term, so
/// nothing the caller types is parsed as FTS syntax (`NEAR`, `*`, `"`, `-`).
pub fn fts_query(raw: &str) -> Option<String> {
    let words: Vec<String> = raw
        .split(|c: char| !tag_char(c) || c == '_')
        .filter(|w| !w.is_empty())
        .take(8)
        // The unicode61 tokenizer folds case itself.
        .map(|w| format!("\"{w}\"*"))
        .collect();
    (!words.is_empty()).then(|| words.join(" "))
}

/// `%` and `_` escaped for `LIKE … ESCAPE '\'`.
pub fn like_prefix(raw: &str) -> String {
    let mut s = String::with_capacity(raw.len() + 1);
    for c in raw.chars() {
        if matches!(c, '%' | '_' | '\\') {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('%');
    s
}

/// What an upload really is, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    Jpeg,
    Png,
    Gif,
    Webp,
    Mp4,
    QuickTime,
    Webm,
}

impl Sniffed {
    pub fn mime(self) -> &'static str {
        match self {
            Sniffed::Jpeg => "image/jpeg",
            Sniffed::Png => "image/png",
            Sniffed::Gif => "image/gif",
            Sniffed::Webp => "image/webp",
            Sniffed::Mp4 => "video/mp4",
            Sniffed::QuickTime => "video/quicktime",
            Sniffed::Webm => "video/webm",
        }
    }

    pub fn is_image(self) -> bool {
        matches!(self, Sniffed::Jpeg | Sniffed::Png | Sniffed::Gif | Sniffed::Webp)
    }
}

/// How many leading bytes `sniff` needs to see.
pub const SNIFF_BYTES: usize = 64;

/// Identifies an allowed image or video by its magic bytes. Anything else
/// (SVG, HTML, executables, an MP3 renamed .mp4) is `None`.
pub fn sniff(head: &[u8]) -> Option<Sniffed> {
    let at = |i: usize, sig: &[u8]| head.len() >= i + sig.len() && &head[i..i + sig.len()] == sig;
    if at(0, &[0xFF, 0xD8, 0xFF]) {
        Some(Sniffed::Jpeg)
    } else if at(0, b"\x89PNG\r\n\x1a\n") {
        Some(Sniffed::Png)
    } else if at(0, b"GIF87a") || at(0, b"GIF89a") {
        Some(Sniffed::Gif)
    } else if at(0, b"RIFF") && at(8, b"WEBP") {
        Some(Sniffed::Webp)
    } else if at(4, b"ftyp") {
        // ISO base media: the major brand says QuickTime or one of the MP4 family.
        if at(8, b"qt  ") {
            Some(Sniffed::QuickTime)
        } else if head.len() >= 12 && head[8..12].iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            Some(Sniffed::Mp4)
        } else {
            None
        }
    } else if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        // EBML: WebM names its DocType in the header; plain Matroska is refused.
        let window = &head[4..head.len().min(SNIFF_BYTES)];
        window.windows(4).any(|w| w == b"webm").then_some(Sniffed::Webm)
    } else {
        None
    }
}

/// Whether a declared content type agrees with what the bytes are. Clients
/// that send no type or `application/octet-stream` are trusted to the sniff;
/// anything else must name the same format (with the usual aliases).
pub fn declared_matches(declared: &str, sniffed: Sniffed) -> bool {
    let d = declared.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if d.is_empty() || d == "application/octet-stream" {
        return true;
    }
    match sniffed {
        Sniffed::Jpeg => matches!(d.as_str(), "image/jpeg" | "image/jpg" | "image/pjpeg"),
        Sniffed::Mp4 | Sniffed::QuickTime => matches!(d.as_str(), "video/mp4" | "video/quicktime" | "video/x-m4v"),
        other => d == other.mime(),
    }
}

/// A byte range to serve, inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAsk {
    /// No (usable) Range header: the whole object.
    Full,
    /// `start..=end` of the object.
    Part { start: u64, end: u64 },
    /// Outside the object: 416.
    Unsatisfiable,
}

/// Parses a `Range` header against an object of `size` bytes (RFC 9110 §14).
/// One range only; a multi-range or malformed header is ignored (the whole
/// object is served, as the RFC allows).
pub fn range(header: Option<&str>, size: u64) -> RangeAsk {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return RangeAsk::Full };
    if spec.contains(',') {
        return RangeAsk::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return RangeAsk::Full };
    let num = |s: &str| -> Option<Option<u64>> {
        let s = s.trim();
        if s.is_empty() {
            Some(None)
        } else if s.bytes().all(|c| c.is_ascii_digit()) && s.len() <= 18 {
            s.parse().ok().map(Some)
        } else {
            None
        }
    };
    let (Some(a), Some(b)) = (num(a), num(b)) else { return RangeAsk::Full };
    match (a, b) {
        (None, None) => RangeAsk::Full,
        (None, Some(suffix)) => {
            if suffix == 0 || size == 0 {
                RangeAsk::Unsatisfiable
            } else {
                RangeAsk::Part { start: size.saturating_sub(suffix), end: size - 1 }
            }
        }
        (Some(start), end) => {
            if start >= size {
                return RangeAsk::Unsatisfiable;
            }
            match end {
                Some(e) if e < start => RangeAsk::Full,
                Some(e) => RangeAsk::Part { start, end: e.min(size - 1) },
                None => RangeAsk::Part { start, end: size - 1 },
            }
        }
    }
}

/// Whether an `If-None-Match` header matches `etag` (weak comparison, `*`).
pub fn etag_matches(header: &str, etag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_string();
    header.split(',').any(|t| t.trim() == "*" || bare(t) == bare(etag))
}

/// Unix milliseconds as RFC 3339 UTC with milliseconds (see `clock::rfc3339_millis`).
pub use crate::domain::clock::rfc3339_millis as ts;

#[cfg(test)]
mod tests {
    use super::*;

    const AUTHOR: Viewer = Viewer { is_author: true, follows_author: false };
    const FOLLOWER: Viewer = Viewer { is_author: false, follows_author: true };
    const STRANGER: Viewer = Viewer { is_author: false, follows_author: false };

    #[test]
    fn visibility_decides_who_sees_a_jes() {
        use Visibility::*;
        for v in [AUTHOR, FOLLOWER, STRANGER] {
            assert!(may_see(Public, false, v));
        }
        assert!(may_see(Followers, false, AUTHOR));
        assert!(may_see(Followers, false, FOLLOWER));
        assert!(!may_see(Followers, false, STRANGER));
        assert!(may_see(Private, false, AUTHOR));
        assert!(!may_see(Private, false, FOLLOWER));
        assert!(!may_see(Private, false, STRANGER));
        for vis in [Public, Followers, Private] {
            assert!(!may_see(vis, true, AUTHOR), "deleted is gone, even for the author");
        }
    }

    #[test]
    fn visibility_values_are_exact() {
        assert_eq!(Visibility::parse("FOLLOWERS"), Ok(Visibility::Followers));
        assert!(Visibility::parse("public").unwrap_err().starts_with("visibility:"));
        assert!(Visibility::parse("").is_err());
        assert_eq!(Visibility::Private.as_str(), "PRIVATE");
    }

    #[test]
    fn body_text_keeps_newlines_and_refuses_controls_and_overlength() {
        assert_eq!(body_text("content", "  hi\r\nthere ", 10).unwrap(), "hi\nthere");
        assert!(body_text("content", "a\u{0}b", 10).unwrap_err().starts_with("content:"));
        assert!(body_text("content", "evil\u{202e}txt", 100).is_err());
        let e = body_text("content", &"é".repeat(11), 10).unwrap_err();
        assert!(e.contains("at most 10") && e.contains("got 11"), "{e}");
        assert_eq!(body_text("content", "   ", 10).unwrap(), "");
    }

    #[test]
    fn hashtags_are_found_lowercased_deduplicated_in_order() {
        assert_eq!(hashtags("Loving #Rust and #wasm, #rust again #café! #日本…").unwrap(), vec!["rust", "wasm", "café", "日本"]);
        assert_eq!(hashtags("a#b &#39; #1 #_x ##y #").unwrap(), vec!["_x"]);
        assert_eq!(hashtags("#2024goals").unwrap(), vec!["2024goals"]);
        let many: String = (0..11).map(|i| format!("#t{i} ")).collect();
        assert!(hashtags(&many).unwrap_err().contains("at most 10"));
        assert!(hashtags(&format!("#{}", "a".repeat(51))).is_err());
    }

    #[test]
    fn search_input_never_reaches_fts_as_syntax() {
        assert_eq!(fts_query("Hello, wörld!").as_deref(), Some("\"Hello\"* \"wörld\"*"));
        assert_eq!(fts_query("a\" OR NEAR(b*)").as_deref(), Some("\"a\"* \"OR\"* \"NEAR\"* \"b\"*"));
        assert_eq!(fts_query(" -*- "), None);
        assert_eq!(like_prefix("a_b%"), "a\\_b\\%%");
        assert_eq!(tag_query(" #Rust ").as_deref(), Some("rust"));
        assert_eq!(tag_query("#"), None);
        assert_eq!(tag_query("no spaces"), None);
    }

    #[test]
    fn hubs_are_slugs() {
        assert_eq!(hub(" Rust-Lang ").unwrap(), "rust-lang");
        assert!(hub("").is_err());
        assert!(hub("a b").unwrap_err().starts_with("hub:"));
    }

    #[test]
    fn uploads_are_identified_by_their_bytes() {
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some(Sniffed::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some(Sniffed::Png));
        assert_eq!(sniff(b"GIF89a\x01\x00"), Some(Sniffed::Gif));
        assert_eq!(sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some(Sniffed::Webp));
        assert_eq!(sniff(b"\0\0\0\x18ftypisom\0\0\x02\0"), Some(Sniffed::Mp4));
        assert_eq!(sniff(b"\0\0\0\x14ftypqt  \0\0\0\0"), Some(Sniffed::QuickTime));
        assert_eq!(sniff(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\x82\x84webm"), Some(Sniffed::Webm));
        assert_eq!(sniff(b"\x1a\x45\xdf\xa3\x9f\x42\x82\x88matroska"), None);
        assert_eq!(sniff(b"<svg xmlns="), None);
        assert_eq!(sniff(b"ID3\x04\0\0\0"), None, "an MP3 is not a video");
        assert_eq!(sniff(b"\xff\xd8"), None, "too short");
        assert_eq!(sniff(b""), None);
        assert!(Sniffed::Webp.is_image() && !Sniffed::Webm.is_image());
    }

    #[test]
    fn declared_types_must_agree_with_the_bytes() {
        assert!(declared_matches("", Sniffed::Png));
        assert!(declared_matches("application/octet-stream", Sniffed::Mp4));
        assert!(declared_matches("image/jpg", Sniffed::Jpeg));
        assert!(declared_matches("Video/QuickTime", Sniffed::Mp4));
        assert!(declared_matches("video/webm; codecs=vp9", Sniffed::Webm));
        assert!(!declared_matches("image/png", Sniffed::Jpeg));
        assert!(!declared_matches("video/mp4", Sniffed::Webm));
        assert!(!declared_matches("text/html", Sniffed::Gif));
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        use RangeAsk::*;
        assert_eq!(range(None, 100), Full);
        assert_eq!(range(Some("bytes=0-9"), 100), Part { start: 0, end: 9 });
        assert_eq!(range(Some("bytes=90-"), 100), Part { start: 90, end: 99 });
        assert_eq!(range(Some("bytes=-10"), 100), Part { start: 90, end: 99 });
        assert_eq!(range(Some("bytes=-500"), 100), Part { start: 0, end: 99 });
        assert_eq!(range(Some("bytes=50-5000"), 100), Part { start: 50, end: 99 });
        assert_eq!(range(Some("bytes=100-"), 100), Unsatisfiable);
        assert_eq!(range(Some("bytes=-0"), 100), Unsatisfiable);
        assert_eq!(range(Some("bytes=0-1,5-6"), 100), Full);
        assert_eq!(range(Some("bytes=9-3"), 100), Full);
        assert_eq!(range(Some("items=0-1"), 100), Full);
        assert_eq!(range(Some("bytes=a-b"), 100), Full);
        assert_eq!(range(Some("bytes=0-0"), 0), Unsatisfiable);
    }

    #[test]
    fn etags_compare_weakly() {
        assert!(etag_matches("\"abc\"", "\"abc\""));
        assert!(etag_matches("W/\"abc\", \"x\"", "\"abc\""));
        assert!(etag_matches("*", "\"abc\""));
        assert!(!etag_matches("\"abd\"", "\"abc\""));
    }

    #[test]
    fn timestamps_always_carry_milliseconds() {
        assert_eq!(ts(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(ts(1_700_000_000_120), "2023-11-14T22:13:20.120Z");
        assert_eq!(ts(1_700_000_000_007), "2023-11-14T22:13:20.007Z");
    }
}
