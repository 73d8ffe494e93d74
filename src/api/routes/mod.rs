//! One file per resource; each handler's doc line names its route.
pub mod account;
pub mod accounts;
pub mod bench;
pub mod clips;
pub mod comments;
pub mod content;
pub mod feeds;
pub mod keys;
pub mod media;
pub mod meta;
pub mod notifications;
pub mod posts;
pub mod security;
pub mod webhooks;
