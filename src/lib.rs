//! baton facade (wip)
pub use baton_context::*;
