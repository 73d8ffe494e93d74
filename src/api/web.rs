//! The web UI (public/: plain HTML, one stylesheet, ES modules) is served as
//! Workers static assets (`[assets]` in wrangler.toml): Cloudflare answers
//! those requests itself, before and without the Worker, so they cost no
//! Worker invocation and none of their bytes sit in the wasm. Every route runs
//! the Worker first (`run_worker_first`), and any path that is not a file
//! reaches it too and gets the API's 404 envelope. Headers
//! (the strict CSP among them) are in `public/_headers`; the platform adds
//! ETag revalidation. What is left here are native checks of those files.

#![cfg(test)]

use std::path::PathBuf;

fn public(path: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/public")).join(path.trim_start_matches('/'))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(public(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every file of the UI, as served paths. Not public/docs/vendor/: Swagger UI
/// for /docs, copied from node_modules by scripts/build.sh (third-party, and
/// absent until a build).
fn files(dir: &str, out: &mut Vec<String>) {
    for e in std::fs::read_dir(public(dir)).unwrap() {
        let e = e.unwrap();
        let path = format!("{dir}/{}", e.file_name().to_string_lossy());
        if e.file_type().unwrap().is_dir() {
            if path != "/docs/vendor" {
                files(&path, out);
            }
        } else {
            out.push(path);
        }
    }
}

/// The Content-Security-Policy `_headers` gives every file.
fn csp() -> String {
    read("/_headers")
        .lines()
        .find_map(|l| l.trim().strip_prefix("Content-Security-Policy: ").map(str::to_string))
        .expect("a CSP in public/_headers")
}

mod tests {
    use super::*;

    /// `./x.js` / `../ui.js` relative to `from`.
    fn resolve(from: &str, rel: &str) -> String {
        let mut parts: Vec<&str> = from.split('/').collect();
        parts.pop();
        for seg in rel.split('/') {
            match seg {
                "." => {}
                ".." => {
                    parts.pop();
                }
                s => parts.push(s),
            }
        }
        parts.join("/")
    }

    #[test]
    fn every_module_the_page_loads_is_a_file() {
        let mut all = vec![];
        files("", &mut all);
        let mut wanted = vec![];
        for f in all.iter().filter(|f| f.ends_with(".js") || f.ends_with(".html")) {
            let src = read(f);
            if f.ends_with(".js") {
                for line in src.lines() {
                    if let Some(rest) = line.split(" from '").nth(1) {
                        let rel = rest.split('\'').next().unwrap();
                        wanted.push(resolve(f, rel));
                    }
                }
            } else {
                for attr in ["src=\"", "href=\""] {
                    for piece in src.split(attr).skip(1) {
                        let url = piece.split('"').next().unwrap();
                        if url.starts_with('/') {
                            wanted.push(url.to_string());
                        }
                    }
                }
            }
        }
        assert!(wanted.len() > 10, "{wanted:?}");
        for w in wanted {
            assert!(all.contains(&w), "{w} is loaded by the UI but is not in public/");
        }
    }

    /// The `run_worker_first` patterns of wrangler.toml.
    fn worker_first() -> Vec<String> {
        let toml = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/wrangler.toml")).unwrap();
        let line = toml.lines().find(|l| l.starts_with("run_worker_first = [")).expect("run_worker_first in wrangler.toml");
        line.split('"').skip(1).step_by(2).map(str::to_string).collect()
    }

    /// Assets are answered before the Worker unless a path is listed to run
    /// it first: every route must be, or a file could take a route over and
    /// every route would pay for asset matching.
    #[test]
    fn every_route_runs_the_worker_first() {
        let patterns = worker_first();
        assert!(patterns.len() >= 4, "{patterns:?}");
        let covered = |path: &str| {
            patterns.iter().any(|p| match p.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => path == p,
            })
        };
        for r in crate::app::routes() {
            assert!(covered(r.path), "{} {} does not run the Worker first", r.method, r.path);
        }
        assert!(!covered("/") && !covered("/app.css") && !covered("/js/app.js"), "the UI's files stay assets");
    }

    /// public/ holds the UI and the document the Worker serves, nothing named like the API.
    #[test]
    fn public_holds_no_api_paths() {
        let mut all = vec![];
        files("", &mut all);
        let apiish: Vec<_> = all
            .iter()
            .filter(|f| f.starts_with("/api") || f.starts_with("/mcp") || f.starts_with("/health") || f.starts_with("/__"))
            .collect();
        assert!(apiish.is_empty(), "{apiish:?}");
        assert!(all.contains(&"/openapi.json".to_string()));
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let html = read("/index.html");
        for tag in html.split("<script").skip(1) {
            let open = tag.split('>').next().unwrap();
            assert!(open.contains("src="), "inline script: {open}");
            assert!(tag.split_once('>').unwrap().1.trim_start().starts_with("</script>"));
        }
        assert!(!html.contains("<style") && !html.contains(" style=") && !html.contains(" onclick="));
    }

    #[test]
    fn the_policy_allows_only_this_origin() {
        let csp = csp();
        for d in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ] {
            assert!(csp.split("; ").any(|x| x == d), "{d}");
        }
        assert!(!csp.contains("unsafe"));
    }

    #[test]
    fn the_headers_file_covers_every_path() {
        let text = read("/_headers");
        let rules: Vec<&str> = text.lines().filter(|l| l.starts_with('/')).map(str::trim).collect();
        assert_eq!(rules, ["/*"]);
    }
}
