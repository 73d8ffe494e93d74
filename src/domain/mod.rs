//! Domain rules: pure, no bindings, tested natively.
pub mod clock;
pub mod content;
pub mod ids;
pub mod limits;
pub mod page;
pub mod validate;
