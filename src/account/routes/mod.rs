//! One file per resource; each handler's doc line names its route.
pub mod account;
pub mod accounts;
pub mod admin;
pub mod audit;
pub mod key_edit;
pub mod keys;
pub mod oauth;
pub mod security;
pub mod sessions;
pub mod twofactor;
