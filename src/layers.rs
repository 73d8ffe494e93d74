//! The import rules of the layers, checked by reading the source: imports
//! point down (domain <- auth <- adapters <- pipeline <- api/engine), so the
//! pure cores stay testable natively and free of request plumbing.
//!
//! - `src/domain/` imports no bindings (worker, web_sys, js_sys,
//!   wasm_bindgen), no adapters, and nothing above it: not auth (but its
//!   scope catalog), config, http, protocol, the pipeline or either Worker;
//! - `src/auth/` imports no bindings or adapters either, nor config, http,
//!   protocol, the pipeline, or either Worker (routes, app and MCP are the
//!   API's).
//!
//! A crate path is any `crate::name` (grouped `crate::{a, b}` too) outside
//! comments; `super::super` out of a layer is refused outright.

#![cfg(test)]

use std::path::{Path, PathBuf};

const BINDINGS: &[&str] = &["worker::", "web_sys", "js_sys", "wasm_bindgen"];

/// Each layer and the crate modules it must not import.
const RULES: &[(&str, &[&str])] = &[
    ("domain", &["adapters", "api", "auth", "config", "engine", "http", "pipeline", "protocol"]),
    ("auth", &["adapters", "api", "config", "engine", "http", "pipeline", "protocol"]),
];

/// What the domain may use of `auth`: the scope catalog (which event types a
/// key's scopes may see is a domain rule about scopes).
const DOMAIN_MAY_USE: &[&str] = &["auth::scope"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = e.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path);
        }
    }
}

/// The source without `//` comments (doc comments included).
fn code(src: &str) -> String {
    src.lines().map(|l| l.split("//").next().unwrap_or("")).collect::<Vec<_>>().join("\n")
}

/// Every `crate::…` path the code names, as `module::rest` (grouped imports
/// expanded one level: `crate::{a::b, c}` gives `a::b` and `c`).
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            out.extend(group[..end].split(',').map(|p| p.trim().to_string()).filter(|p| !p.is_empty()));
        } else {
            let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':')).unwrap_or(rest.len());
            out.push(rest[..end].trim_end_matches(':').to_string());
        }
    }
    out
}

/// The rule violations of one file of `layer`.
fn violations(layer: &str, forbidden: &[&str], src: &str) -> Vec<String> {
    let code = code(src);
    let mut found = Vec::new();
    for b in BINDINGS {
        if code.contains(b) {
            found.push(format!("binding {}", b.trim_end_matches(':')));
        }
    }
    if code.contains("super::super") {
        found.push("super::super (name the module by its crate path)".into());
    }
    for path in crate_paths(&code) {
        let module = path.split("::").next().unwrap_or("");
        let allowed = layer == "domain" && DOMAIN_MAY_USE.iter().any(|a| path.starts_with(a));
        if forbidden.contains(&module) && !allowed {
            found.push(format!("crate::{path}"));
        }
    }
    found
}

#[test]
fn domain_and_auth_import_nothing_above_them() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut broken = Vec::new();
    for (layer, forbidden) in RULES {
        let mut files = Vec::new();
        rust_files(&src.join(layer), &mut files);
        assert!(!files.is_empty(), "no files in src/{layer}");
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap();
            for v in violations(layer, forbidden, &text) {
                broken.push(format!("{}: {v}", f.strip_prefix(&src).unwrap().display()));
            }
        }
    }
    assert!(broken.is_empty(), "imports against the layering:\n{}", broken.join("\n"));
}

/// No source file over this many lines: a file that grows past it holds
/// more than one job and is split by job (as the OpenAPI builder is).
const MAX_FILE_LINES: usize = 500;

#[test]
fn no_source_file_is_over_the_line_bound() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("cli/src"), &mut files);
    assert!(files.len() > 50, "the walk found {} files", files.len());
    let long: Vec<String> = files
        .iter()
        .map(|f| (f, std::fs::read_to_string(f).unwrap().lines().count()))
        .filter(|(_, n)| *n > MAX_FILE_LINES)
        .map(|(f, n)| format!("{}: {n} lines", f.strip_prefix(root).unwrap().display()))
        .collect();
    assert!(long.is_empty(), "over {MAX_FILE_LINES} lines:\n{}", long.join("\n"));
}

#[test]
fn the_check_sees_every_form_of_import() {
    let forbidden = RULES[0].1;
    let v = |src: &str| violations("domain", forbidden, src);
    assert_eq!(v("use crate::adapters::d1;"), ["crate::adapters::d1"]);
    assert_eq!(v("use crate::{domain::ids, api::routes::posts};"), ["crate::api::routes::posts"]);
    assert_eq!(v("let x = crate::http::now_ms();"), ["crate::http::now_ms"]);
    assert_eq!(v("fn f(e: &worker::Env) {}"), ["binding worker"]);
    assert_eq!(v("use super::super::api;"), ["super::super (name the module by its crate path)"]);
    assert!(v("use crate::domain::clock; use crate::auth::scope::Scope; use crate::error::ApiError;").is_empty());
    assert!(v("// see crate::api::routes::posts\n/// and crate::adapters").is_empty(), "comments are not imports");
    assert_eq!(violations("auth", RULES[1].1, "use crate::pipeline::Next;"), ["crate::pipeline::Next"]);
    assert_eq!(violations("auth", RULES[1].1, "use crate::api::mcp::rpc;"), ["crate::api::mcp::rpc"]);
    assert_eq!(v("use crate::engine::gate::Gate;"), ["crate::engine::gate::Gate"]);
}
