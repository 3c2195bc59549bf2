//! The state of a context: who has it entered, who is reading it, and its
//! identity.
//!
//! A context keeps its bindings in a cell (a [`Map`](crate::map::Map), one
//! word) next to one atomic word, the [`EntryWord`]:
//!
//! ```text
//!  bit 0      ENTERED   a thread is running inside the context
//!  bit 1      SHARED    the cell is behind a `Context` handle (an `Arc`),
//!                       so other threads may read it: an `Access` word
//!                       follows the cell
//!  bits 2..   identity  for tokens; 0 = not assigned yet (assigned on the
//!                       first `set` inside, since most contexts never make
//!                       a token). 62 bits: never reused.
//! ```
//!
//! A shared context (`Context`) adds a second word, [`Access`], that only
//! other threads' *readers* touch:
//!
//! ```text
//!  bit 0      WRITING   the entered thread is publishing its bindings
//!  bits 1..   READERS   number of other threads copying the cell
//! ```
//!
//! An unshared cell (`ContextCell`, which is `Send` but not `Sync`: a task's
//! own copy, a rayon job's) has no `Access` word. Only the one thread that
//! holds it at a time can reach it, so nobody can read it concurrently, and it
//! is two words in all.
//!
//! Readers touch only `Access`, so leaving a context is a plain release store
//! to the entry word rather than a read-modify-write.
//!
//! # Who may touch the cell, and when
//!
//! * **Entering** sets ENTERED. If it is set already the attempt fails with
//!   `AlreadyEntered`, whether the holder is this thread (recursion) or
//!   another one. A shared context is claimed with a compare-and-swap
//!   (Acquire, pairing with the Release of the previous exit, so the enterer
//!   sees what the previous holder published). An unshared cell cannot be
//!   raced — whoever moved it to this thread synchronised with its previous
//!   user — so it is claimed with a plain load and store. Neither can a
//!   shared one whose only handle the caller holds by `&mut` (an attached
//!   future's poll): the handle count, read with Acquire, proves it (see
//!   `handle.rs`), and it is claimed the same way. Readers do not block
//!   entering.
//! * **While entered**, the entering thread reads the cell *without copying
//!   it*: the current-context slot of that thread borrows the cell's map.
//!   That is sound because the entering thread is the only one that ever
//!   writes the cell, and it does so only in the two steps below. Its `set`s
//!   go to a private copy of the map (made on the first write). It alone may
//!   also assign the identity (a store: every other thread's access to the
//!   entry word is a compare-and-swap that fails while ENTERED is set).
//! * **Publishing** (on exit, or when the thread enters a nested context and
//!   so moves its private copy aside) swaps the private map into the cell. In
//!   a shared context it first sets WRITING and waits until READERS is zero,
//!   and clears WRITING with Release afterwards.
//! * **Exiting** stores the entry word without ENTERED, with Release (after
//!   publishing, if the run wrote anything).
//! * **Readers** — other threads calling `ctx.get`, `ctx.copy`, `ctx.len`, … on
//!   a shared context — increment READERS with a compare-and-swap from a word
//!   without WRITING, clone the map (a reference-count increment), and
//!   decrement READERS with Release. A reader therefore sees the bindings as
//!   of the last publish: a context entered on another thread is observed as
//!   it was when that thread entered it, and the writes of a run appear when
//!   it ends.
//!
//! Waits are short by construction: a reader holds READERS for one clone of
//! an `Arc`, a writer holds WRITING for one pointer swap. Neither runs user
//! code inside the window (the old map is dropped after WRITING is cleared).
//!
//! `run(noop)` on a `Context` therefore costs one compare-and-swap and one
//! release store; on a `ContextCell` — what every poll of a task pays — or an
//! attached future's sole handle, two plain loads and two plain stores; none
//! touches a reference count.
//!
//! The loom model `context_entering` (in `loom-tests/`) races two threads
//! entering one context, and readers against a publishing writer.

use crate::error::ContextError;
use baton_sync::{AtomicU64, AtomicUsize, Ordering, spin_wait};

const ENTERED: u64 = 1;
const SHARED: u64 = 2;
const ID_SHIFT: u32 = 2;

/// The entered flag, the shared flag and the identity of a context.
pub(crate) struct EntryWord(AtomicU64);

impl EntryWord {
    /// A cell nobody has entered, with no identity yet.
    pub(crate) fn new(shared: bool) -> Self {
        EntryWord(AtomicU64::new(if shared { SHARED } else { 0 }))
    }

    /// Claims the context for the calling thread.
    #[inline]
    /// Returns the identity as of the claim (0 = not assigned yet).
    pub(crate) fn try_enter(&self) -> Result<u64, ContextError> {
        let word = self.0.load(Ordering::Relaxed);
        if word & ENTERED != 0 {
            return Err(ContextError::AlreadyEntered);
        }
        if word & SHARED == 0 {
            // Unshared: no other thread can reach the cell (see above).
            self.0.store(word | ENTERED, Ordering::Relaxed);
            Ok(word >> ID_SHIFT)
        } else {
            self.enter_shared(word)
        }
    }

    /// Claims the context with a plain load and store, even if it is
    /// shared: for a caller that has proved no other thread can reach it.
    #[inline]
    pub(crate) fn try_enter_exclusive(&self) -> Result<u64, ContextError> {
        let word = self.0.load(Ordering::Relaxed);
        if word & ENTERED != 0 {
            return Err(ContextError::AlreadyEntered);
        }
        self.0.store(word | ENTERED, Ordering::Relaxed);
        Ok(word >> ID_SHIFT)
    }

    #[inline]
    fn enter_shared(&self, mut word: u64) -> Result<u64, ContextError> {
        loop {
            match self.0.compare_exchange_weak(
                word,
                word | ENTERED,
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => return Ok(word >> ID_SHIFT),
                // Someone entered meanwhile.
                Err(actual) if actual & ENTERED != 0 => {
                    return Err(ContextError::AlreadyEntered);
                }
                // A spurious failure, or the previous holder assigned the
                // identity and left: try again with the new word.
                Err(actual) => word = actual,
            }
        }
    }

    /// Whether some thread has the context entered (a snapshot).
    pub(crate) fn is_entered(&self) -> bool {
        self.0.load(Ordering::Relaxed) & ENTERED != 0
    }

    /// Whether the cell has an [`Access`] word after it (a `Context`).
    #[inline]
    pub(crate) fn is_shared(&self) -> bool {
        self.0.load(Ordering::Relaxed) & SHARED != 0
    }

    /// Gives the context up. Only the thread that has it entered may call
    /// this.
    #[inline]
    pub(crate) fn exit(&self) {
        // Only the entered thread writes the word, so this load sees its own
        // last store.
        let word = self.0.load(Ordering::Relaxed);
        debug_assert!(word & ENTERED != 0);
        self.0.store(word & !ENTERED, Ordering::Release);
    }

    /// The identity; 0 = not assigned yet.
    #[inline]
    pub(crate) fn id(&self) -> u64 {
        self.0.load(Ordering::Relaxed) >> ID_SHIFT
    }

    /// Assigns the identity. Only the thread that has the context entered
    /// may call this, once.
    pub(crate) fn set_id(&self, id: u64) {
        debug_assert!(id != 0 && id < (1 << (64 - ID_SHIFT)));
        let word = self.0.load(Ordering::Relaxed);
        debug_assert!(word & ENTERED != 0 && word >> ID_SHIFT == 0);
        self.0.store(word | (id << ID_SHIFT), Ordering::Relaxed);
    }
}

const WRITING: usize = 1;
const READER: usize = 2;

/// The readers/writer word of a shared context.
pub(crate) struct Access(AtomicUsize);

impl Access {
    pub(crate) fn new() -> Self {
        Access(AtomicUsize::new(0))
    }

    /// Called by the entered thread: waits until it is the cell's only user.
    pub(crate) fn begin_write(&self) {
        let prev = self.0.fetch_or(WRITING, Ordering::Acquire);
        debug_assert!(prev & WRITING == 0);
        let mut spins = 0;
        while self.0.load(Ordering::Acquire) >= READER {
            spin_wait(&mut spins);
        }
    }

    /// Ends a write.
    pub(crate) fn end_write(&self) {
        self.0.fetch_and(!WRITING, Ordering::Release);
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
