//! Tests of the readiness protocol.

#[cfg(baton_loom)]
mod loom;
