//! One file per resource; each handler's doc line names its route.
pub mod account;
pub mod accounts;
pub mod keys;
pub mod oauth;
pub mod security;
pub mod twofactor;
