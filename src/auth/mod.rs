//! Credentials and the rules about them, pure: token format and hashing,
//! scopes, passwords, what a request presents, who the caller is and what a
//! route asks (`principal`), and the decision the Gate runs (`decide`). The
//! middleware that applies them is `pipeline::guard`.
pub mod challenge;
pub mod cookies;
pub mod decide;
pub mod password;
pub mod presented;
pub mod principal;
pub mod recovery;
pub mod scope;
pub mod token;
pub mod totp;
