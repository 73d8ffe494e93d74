//! Jestha Edge: the public API of Jestha, deployed as two Workers built from
//! this one crate, each a folder and a cargo feature (the default builds both,
//! which native tests and checks compile):
//!
//! - `api/` (feature `api`, wrangler.toml): every route, through the request
//!   `pipeline/`; the cron is handed to the engine.
//! - `engine/` (feature `engine`, wrangler.engine.toml): the `Gate` Durable
//!   Object, which holds each credential's live state and counters, the
//!   webhook queue consumer, and the cron's sweeps behind its one HTTP entry.
//!
//! Beside them, the core both share: `domain/` and `auth/` (pure rules),
//! `adapters/` (the only code that touches bindings), `protocol` (API <->
//! Gate messages), `config`, `error`, `http`, `log`. Each Worker's module
//! carries only the code its entry points reach, so the API's isolates load
//! no Durable Object or delivery code and the engine's no routes (README,
//! "Wasm size"). docs/architecture.md has the map.

pub mod adapters;
pub mod auth;
pub mod config;
pub mod domain;
pub mod error;
pub mod http;
pub mod log;
pub mod protocol;

#[cfg(feature = "api")]
pub mod api;
#[cfg(feature = "engine")]
pub mod engine;
#[cfg(feature = "api")]
pub mod pipeline;

#[cfg(test)]
mod layers;

#[cfg(feature = "engine")]
pub use engine::gate::Gate;
