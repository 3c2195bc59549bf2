//! The state word of a context: who has it entered, and who is reading it.
//!
//! Each [`Context`](crate::Context) keeps its bindings in a cell (a
//! [`Map`](crate::map::Map)) and one atomic word that guards it:
//!
//! ```text
//!  bit 0      ENTERED   a thread is running inside the context
//!  bit 1      WRITING   that thread is publishing its bindings into the cell
//!  bits 2..   READERS   number of other threads copying the cell right now
//! ```
//!
//! # Who may touch the cell, and when
//!
//! * **Entering** sets ENTERED with a compare-and-swap from a word without it.
//!   A word that has ENTERED already makes the attempt fail with
//!   `AlreadyEntered`, whether the holder is this thread (recursion) or
//!   another one. Readers do not block entering. Acquire pairs with the
//!   Release of the previous exit, so the enterer sees what the previous
//!   holder published.
//! * **While entered**, the entering thread reads the cell *without copying
//!   it*: the current-context slot of that thread borrows the cell's map.
//!   That is sound because the entering thread is the only one that ever
//!   writes the cell, and it does so only in the two steps below. Its `set`s
//!   go to a private copy of the map (made on the first write).
//! * **Publishing** (on exit, or when the thread enters a nested context and
//!   so moves its private copy aside) sets WRITING, waits until READERS is
//!   zero, swaps the private map into the cell, then clears WRITING (and
//!   ENTERED, on exit) with Release.
//! * **Exiting without writes** just clears ENTERED: the cell never changed.
//! * **Readers** — other threads calling `ctx.get`, `ctx.copy`, `ctx.len`, … —
//!   increment READERS with a compare-and-swap from a word without WRITING,
//!   clone the map (a reference-count increment), and decrement READERS
//!   with Release. A reader therefore sees the bindings as of the last
//!   publish: a context entered on another thread is observed as it was when
//!   that thread entered it, and the writes of a run appear when it ends.
//!
//! Waits are short by construction: a reader holds READERS for one clone of
//! an `Arc`, a writer holds WRITING for one pointer swap. Neither runs user
//! code inside the window (the old map is dropped after WRITING is cleared).
//!
//! `run(noop)` therefore costs one compare-and-swap and one atomic `and`, with
//! no reference-count traffic: this is what every poll of a task pays.
//!
//! The loom model `context_entering` (in `loom-tests/`) races two threads
//! entering one context, and readers against a publishing writer.

use crate::error::ContextError;
use crate::sync::{AtomicUsize, Ordering, spin_wait};

const ENTERED: usize = 1;
const WRITING: usize = 2;
const READER: usize = 4;

pub(crate) struct EnterState(AtomicUsize);

impl EnterState {
    pub(crate) fn new() -> Self {
        EnterState(AtomicUsize::new(0))
    }

    /// Claims the context for the calling thread.
    #[inline]
    pub(crate) fn try_enter(&self) -> Result<(), ContextError> {
        // Fast path: nobody in it, nobody reading it.
        let mut state =
            match self
                .0
                .compare_exchange(0, ENTERED, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(actual) => actual,
            };
        loop {
            if state & ENTERED != 0 {
                return Err(ContextError::AlreadyEntered);
            }
            match self.0.compare_exchange(
                state,
                state | ENTERED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(()),
                Err(actual) => state = actual,
            }
        }
    }

    /// Whether some thread has the context entered (a snapshot).
    pub(crate) fn is_entered(&self) -> bool {
        self.0.load(Ordering::Relaxed) & ENTERED != 0
    }

    /// Gives the context up without having written its cell.
    #[inline]
    pub(crate) fn exit(&self) {
        let prev = self.0.fetch_and(!ENTERED, Ordering::Release);
        debug_assert!(prev & ENTERED != 0);
    }

    /// Called by the entered thread: waits until it is the cell's only user.
    pub(crate) fn begin_write(&self) {
        let prev = self.0.fetch_or(WRITING, Ordering::Acquire);
        debug_assert!(prev & ENTERED != 0 && prev & WRITING == 0);
        let mut spins = 0;
        while self.0.load(Ordering::Acquire) >= READER {
            spin_wait(&mut spins);
        }
    }

    /// Ends a write; with `exit`, also gives the context up.
    pub(crate) fn end_write(&self, exit: bool) {
        let clear = if exit { WRITING | ENTERED } else { WRITING };
        self.0.fetch_and(!clear, Ordering::Release);
    }

    /// Called by any other thread before it reads the cell.
    pub(crate) fn begin_read(&self) {
        let mut spins = 0;
        let mut state = self.0.load(Ordering::Relaxed);
        loop {
            if state & WRITING != 0 {
                spin_wait(&mut spins);
                state = self.0.load(Ordering::Relaxed);
                continue;
            }
            match self.0.compare_exchange_weak(
                state,
                state + READER,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(actual) => state = actual,
            }
        }
    }

    pub(crate) fn end_read(&self) {
        self.0.fetch_sub(READER, Ordering::Release);
    }
}
