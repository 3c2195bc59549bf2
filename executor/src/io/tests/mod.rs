//! Tests of the readiness protocol and the reactor.

#[cfg(baton_loom)]
mod loom;
#[cfg(all(unix, not(baton_loom)))]
mod reactor;
