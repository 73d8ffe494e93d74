//! Domain rules: pure, no bindings, tested natively.
pub mod audit;
pub mod blocklist;
pub mod clock;
pub mod content;
pub mod event;
pub mod fanout;
pub mod idempotency;
pub mod ids;
pub mod leak;
pub mod limits;
pub mod multipart;
pub mod oauth;
pub mod page;
pub mod upload;
pub mod usage;
pub mod validate;
pub mod webhook;
