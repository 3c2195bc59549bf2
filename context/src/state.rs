//! The state word of a context: who has it entered, and who is reading it.
//!
//! Each [`Context`](crate::Context) keeps its bindings in a cell (a
//! [`Map`](crate::map::Map)) and two atomic words that guard it:
//!
//! ```text
//!  entered    (a bool)  a thread is running inside the context
//!  access     bit 0     WRITING: that thread is publishing its bindings
//!             bits 1..  READERS: number of other threads copying the cell
//! ```
//!
//! The flag has a word of its own so that leaving a context is a plain
//! release store rather than a read-modify-write: readers, who come and go on
//! other threads, only ever touch the `access` word.
//!
//! # Who may touch the cell, and when
//!
//! * **Entering** sets `entered` with a compare-and-swap from `false`. If it
//!   is set already the attempt fails with `AlreadyEntered`, whether the
//!   holder is this thread (recursion) or another one. Readers do not block
//!   entering. Acquire pairs with the Release of the previous exit, so the
//!   enterer sees what the previous holder published.
//! * **While entered**, the entering thread reads the cell *without copying
//!   it*: the current-context slot of that thread borrows the cell's map.
//!   That is sound because the entering thread is the only one that ever
//!   writes the cell, and it does so only in the two steps below. Its `set`s
//!   go to a private copy of the map (made on the first write).
//! * **Publishing** (on exit, or when the thread enters a nested context and
//!   so moves its private copy aside) sets WRITING, waits until READERS is
//!   zero, swaps the private map into the cell, then clears WRITING with
//!   Release.
//! * **Exiting** stores `entered = false` with Release (after publishing, if
//!   the run wrote anything).
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
//! `run(noop)` therefore costs one compare-and-swap and one release store,
//! with no reference-count traffic: this is what every poll of a task pays.
//!
//! The loom model `context_entering` (in `loom-tests/`) races two threads
//! entering one context, and readers against a publishing writer.

use crate::error::ContextError;
use crate::sync::{AtomicBool, AtomicUsize, Ordering, spin_wait};

const WRITING: usize = 1;
const READER: usize = 2;

pub(crate) struct EnterState {
    entered: AtomicBool,
    access: AtomicUsize,
}

impl EnterState {
    pub(crate) fn new() -> Self {
        EnterState {
            entered: AtomicBool::new(false),
            access: AtomicUsize::new(0),
        }
    }

    /// Claims the context for the calling thread.
    #[inline]
    pub(crate) fn try_enter(&self) -> Result<(), ContextError> {
        match self
            .entered
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        {
            Ok(_) => Ok(()),
            Err(_) => Err(ContextError::AlreadyEntered),
        }
    }

    /// Whether some thread has the context entered (a snapshot).
    pub(crate) fn is_entered(&self) -> bool {
        self.entered.load(Ordering::Relaxed)
    }

    /// Gives the context up.
    #[inline]
    pub(crate) fn exit(&self) {
        debug_assert!(self.entered.load(Ordering::Relaxed));
        self.entered.store(false, Ordering::Release);
    }

    /// Called by the entered thread: waits until it is the cell's only user.
    pub(crate) fn begin_write(&self) {
        debug_assert!(self.entered.load(Ordering::Relaxed));
        let prev = self.access.fetch_or(WRITING, Ordering::Acquire);
        debug_assert!(prev & WRITING == 0);
        let mut spins = 0;
        while self.access.load(Ordering::Acquire) >= READER {
            spin_wait(&mut spins);
        }
    }

    /// Ends a write.
    pub(crate) fn end_write(&self) {
        self.access.fetch_and(!WRITING, Ordering::Release);
    }

    /// Called by any other thread before it reads the cell.
    pub(crate) fn begin_read(&self) {
        let mut spins = 0;
        let mut state = self.access.load(Ordering::Relaxed);
        loop {
            if state & WRITING != 0 {
                spin_wait(&mut spins);
                state = self.access.load(Ordering::Relaxed);
                continue;
            }
            match self.access.compare_exchange_weak(
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
        self.access.fetch_sub(READER, Ordering::Release);
    }
}
