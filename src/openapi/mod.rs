//! The OpenAPI 3.1 document. `build` makes it from the route table natively;
//! the Worker serves the committed result, so no document is assembled in wasm
//! (and a native test keeps the committed file equal to what the table builds).

#[cfg(not(target_arch = "wasm32"))]
pub mod build;

/// `GET /openapi.json`.
pub const DOCUMENT: &str = include_str!("openapi.json");
