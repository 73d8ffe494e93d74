//! Credentials and the one place that decides who may call what.
pub mod cookies;
pub mod decide;
pub mod guard;
pub mod password;
pub mod scope;
pub mod token;
