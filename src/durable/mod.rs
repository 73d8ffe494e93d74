//! Durable Objects: thin shells over the pure logic in `auth` and `domain`.
pub mod gate;
pub mod protocol;
