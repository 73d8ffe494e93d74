//! Jestha Edge: the public API of Jestha, deployed as three Workers built
//! from this one crate, each a folder and a cargo feature (the default builds
//! all three, which native tests and checks compile):
//!
//! - `api/` (feature `api`, wrangler.toml): the public address and what keys
//!   and tokens call, through the request `pipeline/`; it forwards the
//!   account Worker's routes to it; the cron is handed to the engine.
//! - `account/` (feature `account`, wrangler.account.toml): identity and
//!   credential issuance (signup, login, key management), reached only
//!   through the API. One route table (`app`) names each route's home.
//! - `engine/` (feature `engine`, wrangler.engine.toml): the `Gate` Durable
//!   Object, which holds each credential's live state and counters, the
//!   webhook queue consumer, and the cron's sweeps behind its one HTTP entry.
//!
//! Beside them, the core both share: `domain/` and `auth/` (pure rules),
//! `adapters/` (the only code that touches bindings), `protocol` (API <->
//! Gate messages), `config`, `error`, `http`, `log`, and for the two HTTP
//! Workers the route table (`app`), the `pipeline/` and `records`. Each Worker's module
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

#[cfg(feature = "account")]
pub mod account;
#[cfg(feature = "api")]
pub mod api;
#[cfg(feature = "routes")]
pub mod app;
#[cfg(feature = "engine")]
pub mod engine;
#[cfg(feature = "routes")]
pub mod pipeline;
#[cfg(feature = "routes")]
pub mod records;

#[cfg(test)]
mod layers;

#[cfg(feature = "engine")]
pub use engine::gate::Gate;
