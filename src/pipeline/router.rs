//! Which route a request is for: the routing decision as plain data, so it is
//! unit-tested natively and the Worker carries no general-purpose router.
//!
//! Patterns are the route table's paths (`/api/posts/{id}`): literal segments
//! match exactly, a `{name}` segment matches one non-empty segment and yields
//! its percent-decoded value. `HEAD` is answered by the `GET` route. A path
//! that matches only under other methods is `405` with those methods in
//! `Allow`; a path that matches nothing is not found (the web app's files, or
//! the 404 envelope).

use http::Method;

/// The outcome of matching one request against the table.
#[derive(Debug, PartialEq, Eq)]
pub enum Found {
    /// The route at `index`, with its path parameters in order.
    Route {
        index: usize,
        params: Vec<String>,
    },
    /// The path exists under other methods (the `Allow` header's value).
    MethodNotAllowed {
        allow: String,
    },
    NotFound,
}

/// Matches `method` and `path` against `table` (method, pattern), first match wins.
pub fn find<'a>(table: impl IntoIterator<Item = (&'a Method, &'a str)>, method: &Method, path: &str) -> Found {
    let wanted = if *method == Method::HEAD { &Method::GET } else { method };
    let mut allow: Vec<&str> = Vec::new();
    for (index, (m, pattern)) in table.into_iter().enumerate() {
        let Some(params) = matches(pattern, path) else { continue };
        if m == wanted {
            return match params {
                Some(params) => Found::Route { index, params },
                // A parameter that is not UTF-8 once decoded names nothing here.
                None => Found::NotFound,
            };
        }
        if !allow.contains(&m.as_str()) {
            allow.push(m.as_str());
        }
    }
    if allow.is_empty() {
        return Found::NotFound;
    }
    if allow.contains(&"GET") {
        allow.push("HEAD");
    }
    Found::MethodNotAllowed { allow: allow.join(",") }
}

/// `None` when the path does not fit the pattern; `Some(None)` when it fits
/// but a parameter does not decode to UTF-8; else the decoded parameters.
fn matches(pattern: &str, path: &str) -> Option<Option<Vec<String>>> {
    let mut want = pattern.split('/');
    let mut have = path.split('/');
    let mut params = Vec::new();
    let mut decodable = true;
    loop {
        match (want.next(), have.next()) {
            (None, None) => return Some(decodable.then_some(params)),
            (Some(w), Some(h)) if w.starts_with('{') && w.ends_with('}') => {
                if h.is_empty() {
                    return None;
                }
                match percent_encoding::percent_decode_str(h).decode_utf8() {
                    Ok(v) => params.push(v.into_owned()),
                    Err(_) => decodable = false,
                }
            }
            (Some(w), Some(h)) if w == h => {}
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Vec<(Method, &'static str)> {
        vec![
            (Method::GET, "/health"),
            (Method::POST, "/api/posts"),
            (Method::GET, "/api/posts/{id}"),
            (Method::PATCH, "/api/posts/{id}"),
            (Method::DELETE, "/api/posts/{id}"),
            (Method::POST, "/api/posts/{id}/like"),
            (Method::DELETE, "/api/posts/{id}/like"),
            (Method::GET, "/api/auth/api-keys/{id}/webhooks/{webhookId}/deliveries"),
        ]
    }

    fn run(method: Method, path: &str) -> Found {
        let t = table();
        find(t.iter().map(|(m, p)| (m, *p)), &method, path)
    }

    #[test]
    fn literal_and_parameter_segments() {
        assert_eq!(run(Method::GET, "/health"), Found::Route { index: 0, params: vec![] });
        assert_eq!(run(Method::GET, "/api/posts/p1"), Found::Route { index: 2, params: vec!["p1".into()] });
        assert_eq!(run(Method::DELETE, "/api/posts/p1/like"), Found::Route { index: 6, params: vec!["p1".into()] });
        assert_eq!(
            run(Method::GET, "/api/auth/api-keys/k1/webhooks/wh_2/deliveries"),
            Found::Route { index: 7, params: vec!["k1".into(), "wh_2".into()] }
        );
    }

    #[test]
    fn parameters_are_percent_decoded_and_never_empty() {
        assert_eq!(run(Method::GET, "/api/posts/a%20b"), Found::Route { index: 2, params: vec!["a b".into()] });
        assert_eq!(run(Method::GET, "/api/posts/a+b"), Found::Route { index: 2, params: vec!["a+b".into()] });
        assert_eq!(run(Method::GET, "/api/posts/%ff"), Found::NotFound);
        assert_eq!(run(Method::GET, "/api/posts/"), Found::NotFound);
        assert_eq!(run(Method::GET, "/api/posts//like"), Found::NotFound);
    }

    #[test]
    fn trailing_slashes_and_extra_segments_do_not_match() {
        assert_eq!(run(Method::GET, "/health/"), Found::NotFound);
        assert_eq!(run(Method::GET, "/api/posts/p1/like/x"), Found::NotFound);
        assert_eq!(run(Method::GET, "/"), Found::NotFound);
        assert_eq!(run(Method::GET, "/app.js"), Found::NotFound);
    }

    #[test]
    fn head_is_answered_by_get() {
        assert_eq!(run(Method::HEAD, "/api/posts/p1"), Found::Route { index: 2, params: vec!["p1".into()] });
        assert_eq!(run(Method::HEAD, "/api/posts"), Found::MethodNotAllowed { allow: "POST".into() });
    }

    #[test]
    fn other_methods_are_a_405_listing_the_allowed_ones() {
        assert_eq!(run(Method::PUT, "/api/posts/p1"), Found::MethodNotAllowed { allow: "GET,PATCH,DELETE,HEAD".into() });
        assert_eq!(run(Method::GET, "/api/posts"), Found::MethodNotAllowed { allow: "POST".into() });
        assert_eq!(run(Method::GET, "/api/posts/p1/like"), Found::MethodNotAllowed { allow: "POST,DELETE".into() });
    }
}
