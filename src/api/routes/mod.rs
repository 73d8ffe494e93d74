//! One file per resource; each handler's doc line names its route.
pub mod auth;
pub mod bench;
pub mod clips;
pub mod comments;
pub mod content;
pub mod feeds;
pub mod media;
pub mod meta;
pub mod notifications;
pub mod posts;
pub mod uploads;
pub mod webhooks;

/// `POST /mcp` is a route of the table like the others.
pub use super::mcp;
