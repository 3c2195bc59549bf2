//! The I/O reactor: readiness-based, edge-triggered, on epoll through mio.
//!
//! Files, bottom up:
//!
//! ```text
//! waker_slot.rs    one waker, stored and taken with no lock (AtomicWaker)
//! scheduled_io.rs  a source's readiness word and its reader/writer wakers;
//!                  the race between an event and a waker, in prose
//! reactor.rs       the epoll instance, registration, tokens, one turn
//! registration.rs  PollEvented: a registered source and its poll loop
//! ```
//!
//! Nothing here decides who waits in epoll: `driver.rs` does (a parked
//! worker), with the timers. The sockets built on [`PollEvented`] are in
//! `net/`. The loom models of the readiness race are in `tests/loom.rs`.

#[cfg(not(baton_loom))]
pub(crate) mod reactor;
#[cfg(not(baton_loom))]
pub(crate) mod registration;
// Under loom only the models (and the timers) use these.
#[cfg_attr(baton_loom, allow(dead_code))]
pub(crate) mod scheduled_io;
pub(crate) mod waker_slot;

#[cfg(not(baton_loom))]
pub(crate) use registration::PollEvented;

#[cfg(test)]
mod tests;
