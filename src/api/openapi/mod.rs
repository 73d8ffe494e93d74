//! The OpenAPI 3.1 document. `build` makes it from the route table natively;
//! the Worker serves the committed result, so no document is assembled in wasm
//! (and a native test keeps the committed file equal to what the table builds).

#[cfg(not(target_arch = "wasm32"))]
pub mod build;
pub mod examples;

/// The committed document, `public/openapi.json`: `GET /openapi.json` reads
/// it through the assets binding (routes/meta.rs), so the wasm never holds it,
/// and fills its example credentials (`examples`).
#[cfg(test)]
pub const DOCUMENT: &str = include_str!("../../../public/openapi.json");
