//! One file per resource; each handler's doc line names its route.
pub mod account;
pub mod accounts;
pub mod clips;
pub mod comments;
pub mod keys;
pub mod meta;
pub mod feeds;
pub mod media;
pub mod posts;
pub mod shared;
