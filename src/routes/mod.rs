//! One file per resource; each handler's doc line names its route.
pub mod accounts;
pub mod bench;
pub mod keys;
pub mod meta;
pub mod security;
pub mod webhooks;
