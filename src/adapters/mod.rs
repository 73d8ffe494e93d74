//! The only code that touches bindings and runtime APIs.
pub mod crypto;
pub mod d1;
pub mod media;
pub mod gate;
pub mod webhooks;
