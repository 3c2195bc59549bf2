//! Unique identities for variables and contexts.
//!
//! Identities are plain `u64`s that are never reused, so a token can never be
//! mistaken for one from a context that happened to be allocated at the same
//! address. Variables take theirs from one global counter (once per variable);
//! contexts are created on every spawn, so each thread reserves a block of
//! ids at a time and hands them out without touching shared memory.
//!
//! These counters are data, not protocol: they use `std` atomics even under
//! loom.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_VAR: AtomicU64 = AtomicU64::new(1);
static NEXT_CONTEXT_BLOCK: AtomicU64 = AtomicU64::new(1);
const BLOCK: u64 = 1024;

/// A fresh variable id (never 0: 0 means "not assigned yet").
pub(crate) fn next_var_id() -> u64 {
    NEXT_VAR.fetch_add(1, Ordering::Relaxed)
}

std::thread_local! {
    static CONTEXT_IDS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

/// A fresh context id (never 0).
pub(crate) fn next_context_id() -> u64 {
    let take_block = || NEXT_CONTEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed);
    CONTEXT_IDS
        .try_with(|ids| {
            let (mut next, mut end) = ids.get();
            if next == end {
                next = take_block();
                end = next + BLOCK;
            }
            ids.set((next + 1, end));
            next
        })
        // The thread is being torn down: fall back to a block of one.
        .unwrap_or_else(|_| NEXT_CONTEXT_BLOCK.fetch_add(BLOCK, Ordering::Relaxed))
}
