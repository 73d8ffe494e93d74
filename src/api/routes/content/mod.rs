//! What the content routes (posts, clips, comments, media, feeds) share: the
//! SQL that renders content (`sql`), list pages (`list`), and loading one Jes
//! the caller may see (`load`). Content renders in SQL (`json_object`) for
//! the wasm's sake: no row or response structs to (de)serialize per route.
pub mod list;
pub mod load;
pub mod sql;
