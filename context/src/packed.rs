//! A context cell in one word, for hosts whose task sizes are size classes.
//!
//! A [`ContextCell`] is two words: the entry word (the entered flag and the
//! identity, `state.rs`) and the bindings. Inside another runtime's task the
//! second word can cost a size class: tokio rounds every task allocation up
//! to a multiple of 128 bytes, and its task header, trailer and output slot
//! leave exactly 24 bytes for a future — a future holding one `Arc` takes
//! 16, so 16 bytes of context would double the allocation and 8 do not.
//!
//! A [`PackedCell`] therefore keeps, between runs, only what a task needs
//! then, in one word:
//!
//! ```text
//!  null            an empty context, no identity
//!  bit 0 clear     the root of the bindings (a `Map`, from `Map::into_raw`),
//!                  no identity yet
//!  bit 0 set       a boxed `ContextCell`: the identity has been assigned
//! ```
//!
//! * **No entered flag is needed between runs.** `run` takes `&mut self`, so
//!   nothing else can enter the cell while a run is in progress, and nothing
//!   can reach it at all between runs.
//! * **A run builds the entry word on the stack.** It takes the bindings out
//!   of the word into a `ContextCell` on its own stack frame, runs inside that
//!   cell exactly as `ContextCell::run` does, and puts the bindings back when
//!   the run ends — by a guard, so an unwinding run puts them back too.
//! * **The identity moves the cell into a box.** A context's identity is
//!   assigned by the first `set` inside it (a token names it). It cannot share
//!   the word with the bindings, so a run that assigned one moves its stack
//!   cell into a box, where the context stays for the rest of its life: one
//!   16-byte allocation for a context that sets a variable, none for one that
//!   only reads what it was copied with — the common task.
//!
//! The address of the stack cell is the context's only while the run lasts.
//! Nothing keeps a cell's address past a run (the thread's current-context
//! slot is restored on exit, and the mirror hooks key their records by it
//! only within one run), so a cell that moves between runs is sound, as a
//! `ContextCell` moved between polls of an unpinned future is.

use std::fmt;
use std::mem;
use std::ptr;

use crate::cell::ContextCell;
use crate::map::Map;

/// Bit 0 of the word: the word is a boxed [`ContextCell`].
const BOXED: usize = 1;

/// A [`ContextCell`] in one word: what to store inline in another runtime's
/// task, where every word of the future can cost a size class
/// (`baton::tokio::spawn` keeps one in each tokio task).
///
/// It behaves as a `ContextCell`: a private context, `Send` but not `Sync`,
/// entered by [`run`](PackedCell::run) — which takes `&mut self`, since
/// nothing else may enter it meanwhile. While the context has only read what
/// it was copied with, the word is its bindings; the first `set` inside it
/// gives the context an identity, for its tokens, and moves it into a
/// 16-byte box, where it stays.
///
/// ```
/// use baton_context::{ContextVar, PackedCell};
///
/// static ID: ContextVar<u32> = ContextVar::new("id");
///
/// let _token = ID.set(1);
/// let mut cell = PackedCell::copy_current();
/// assert_eq!(std::mem::size_of_val(&cell), std::mem::size_of::<usize>());
/// let token = cell.run(|| {
///     assert_eq!(ID.get(), Some(1));
///     ID.set(2)
/// });
/// assert_eq!(ID.get(), Some(1));
/// // The token belongs to the cell's context, and works in a later run.
/// cell.run(|| {
///     assert_eq!(ID.get(), Some(2));
///     ID.reset(token).unwrap();
///     assert_eq!(ID.get(), Some(1));
/// });
/// ```
pub struct PackedCell {
    /// See the module docs: null, a `Map`'s raw root, or a tagged
    /// `Box<ContextCell>`. A raw pointer, so `PackedCell` is neither `Send`
    /// nor `Sync` unless said so below.
    word: *mut (),
}

// SAFETY: the word owns either a `Map` (`Send + Sync`) or a
// `Box<ContextCell>` (`ContextCell` is `Send`), and is reached only through
// `&mut self` or by its owner's drop. Like `ContextCell`, it is not `Sync`:
// nothing guards a run against a concurrent reader.
unsafe impl Send for PackedCell {}

impl PackedCell {
    /// A new, empty context.
    pub const fn new() -> PackedCell {
        PackedCell {
            word: ptr::null_mut(),
        }
    }

    /// A copy of the calling thread's current context:
    /// [`ContextCell::copy_current`], packed.
    #[inline]
    pub fn copy_current() -> PackedCell {
        PackedCell::from_cell(ContextCell::copy_current())
    }

    /// Packs `cell`: its bindings alone, unless it has an identity already.
    #[inline]
    pub fn from_cell(mut cell: ContextCell) -> PackedCell {
        if cell.has_identity() {
            return PackedCell::boxed(cell);
        }
        let map = cell.take_published();
        // `cell` is empty now: its drop has nothing to do.
        drop(cell);
        let word = map.into_raw();
        debug_assert_eq!(word.addr() & BOXED, 0, "a map root is 8-aligned");
        PackedCell { word }
    }

    /// `cell`, moved into a box (it has an identity).
    #[cold]
    #[inline(never)]
    fn boxed(cell: ContextCell) -> PackedCell {
        let raw = Box::into_raw(Box::new(cell)).cast::<()>();
        PackedCell {
            word: raw.map_addr(|addr| addr | BOXED),
        }
    }

    /// Runs `f` inside this context, as [`ContextCell::run`] does: the
    /// context is the calling thread's current context while `f` runs, and
    /// what `f` sets stays in it.
    #[inline]
    pub fn run<R>(&mut self, f: impl FnOnce() -> R) -> R {
        if self.word.addr() & BOXED != 0 {
            let cell = self
                .word
                .map_addr(|addr| addr & !BOXED)
                .cast::<ContextCell>();
            // SAFETY: a tagged word is a `Box<ContextCell>` this cell owns,
            // borrowed here for the run only (`&mut self`).
            return unsafe { &*cell }.run(f);
        }
        // SAFETY: an untagged word is a `Map`'s raw root (or null), owned
        // by this cell; it is taken back once, and the word is emptied
        // until the guard puts the bindings back.
        let map = unsafe { Map::from_raw(mem::replace(&mut self.word, ptr::null_mut())) };
        let guard = PutBack {
            slot: self,
            cell: ContextCell::from_map(map),
        };
        guard.cell.run(f)
    }

    /// The cell this word holds, unpacked; the word is left empty.
    fn take_cell(&mut self) -> ContextCell {
        let word = mem::replace(&mut self.word, ptr::null_mut());
        if word.addr() & BOXED != 0 {
            let cell = word.map_addr(|addr| addr & !BOXED).cast::<ContextCell>();
            // SAFETY: a tagged word is a `Box<ContextCell>` this cell owned;
            // the word no longer holds it.
            *unsafe { Box::from_raw(cell) }
        } else {
            // SAFETY: an untagged word is a `Map`'s raw root (or null) this
            // cell owned; the word no longer holds it.
            ContextCell::from_map(unsafe { Map::from_raw(word) })
        }
    }

    /// Unpacks the context into a [`ContextCell`].
    pub fn into_cell(mut self) -> ContextCell {
        self.take_cell()
    }
}

/// Puts a run's stack cell back into its word when the run ends or unwinds:
/// the bindings alone, or the whole cell boxed if the run gave it an
/// identity.
struct PutBack<'a> {
    slot: &'a mut PackedCell,
    cell: ContextCell,
}

impl Drop for PutBack<'_> {
    #[inline]
    fn drop(&mut self) {
        let cell = mem::replace(&mut self.cell, ContextCell::from_map(Map::new()));
        *self.slot = PackedCell::from_cell(cell);
    }
}

/// The bindings are dropped inside the context, as a [`ContextCell`]'s are.
impl Drop for PackedCell {
    #[inline]
    fn drop(&mut self) {
        if !self.word.is_null() {
            drop(self.take_cell());
        }
    }
}

impl Default for PackedCell {
    fn default() -> Self {
        PackedCell::new()
    }
}

impl From<ContextCell> for PackedCell {
    fn from(cell: ContextCell) -> Self {
        PackedCell::from_cell(cell)
    }
}

impl fmt::Debug for PackedCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackedCell")
            .field("boxed", &(self.word.addr() & BOXED != 0))
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ContextVar;
    use std::panic::{AssertUnwindSafe, catch_unwind};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static N: ContextVar<u32> = ContextVar::new("packed.n");
    static DROPS: ContextVar<Arc<Counted>> = ContextVar::new("packed.drops");

    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn one_word() {
        assert_eq!(mem::size_of::<PackedCell>(), mem::size_of::<usize>());
        assert_eq!(
            mem::size_of::<Option<PackedCell>>(),
            2 * mem::size_of::<usize>()
        );
    }

    #[test]
    fn an_empty_cell_runs_in_an_empty_context() {
        let _outer = N.set(1);
        let mut cell = PackedCell::new();
        assert_eq!(cell.run(|| N.get()), None);
        assert_eq!(N.get(), Some(1));
    }

    #[test]
    fn a_copy_reads_what_it_was_copied_with_and_stays_unboxed() {
        let token = N.set(7);
        let mut cell = PackedCell::copy_current();
        N.reset(token).unwrap();
        for _ in 0..3 {
            assert_eq!(cell.run(|| N.get()), Some(7));
            assert_eq!(cell.word.addr() & BOXED, 0);
        }
        assert_eq!(N.get(), None);
    }

    #[test]
    fn writes_persist_across_runs_and_never_reach_the_caller() {
        let mut cell = PackedCell::copy_current();
        let token = cell.run(|| N.set(3));
        assert_ne!(cell.word.addr() & BOXED, 0, "an identity boxes the cell");
        assert_eq!(N.get(), None);
        cell.run(|| {
            assert_eq!(N.get(), Some(3));
            N.reset(token).expect("the token is the cell's own");
            assert_eq!(N.get(), None);
            let _ = N.set(4);
        });
        assert_eq!(cell.run(|| N.get()), Some(4));
    }

    #[test]
    fn a_token_from_another_packed_cell_is_foreign() {
        let mut a = PackedCell::new();
        let mut b = PackedCell::new();
        let token = a.run(|| N.set(1));
        let err = b.run(|| N.reset(token)).unwrap_err();
        assert!(err.to_string().contains("different Context"), "{err}");
        // A token from the caller's context is foreign inside a cell too.
        let outer = N.set(9);
        let mut c = PackedCell::copy_current();
        assert!(c.run(|| N.reset(outer)).is_err());
    }

    #[test]
    fn an_unwinding_run_puts_the_bindings_back() {
        let token = N.set(5);
        let mut cell = PackedCell::copy_current();
        N.reset(token).unwrap();
        let panicked = catch_unwind(AssertUnwindSafe(|| cell.run(|| panic!("inside"))));
        assert!(panicked.is_err());
        assert_eq!(cell.run(|| N.get()), Some(5));
        // Unwinding after a `set`: the write and the identity are kept.
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            cell.run(|| {
                let _ = N.set(6);
                panic!("after a set")
            })
        }));
        assert!(panicked.is_err());
        assert_eq!(cell.run(|| N.get()), Some(6));
        assert_eq!(N.get(), None);
    }

    #[test]
    fn runs_nest_inside_other_contexts() {
        let mut outer = PackedCell::new();
        let mut inner = PackedCell::new();
        outer.run(|| {
            let _ = N.set(1);
            inner.run(|| {
                assert_eq!(N.get(), None);
                let _ = N.set(2);
            });
            assert_eq!(N.get(), Some(1));
        });
        assert_eq!(outer.run(|| N.get()), Some(1));
        assert_eq!(inner.run(|| N.get()), Some(2));
    }

    #[test]
    fn values_are_dropped_once_packed_or_boxed() {
        let drops = Arc::new(AtomicUsize::new(0));
        {
            let token = DROPS.set(Arc::new(Counted(drops.clone())));
            let cell = PackedCell::copy_current();
            DROPS.reset(token).unwrap();
            drop(cell);
        }
        assert_eq!(drops.load(Ordering::SeqCst), 1, "unboxed");
        {
            let mut cell = PackedCell::new();
            cell.run(|| {
                let _ = DROPS.set(Arc::new(Counted(drops.clone())));
            });
            drop(cell);
        }
        assert_eq!(drops.load(Ordering::SeqCst), 2, "boxed");
    }

    #[test]
    fn unpacks_into_the_same_context() {
        let mut cell = PackedCell::new();
        cell.run(|| {
            let _ = N.set(8);
        });
        let unpacked = cell.into_cell();
        assert_eq!(unpacked.run(|| N.get()), Some(8));
        let repacked = PackedCell::from(unpacked);
        let mut repacked = repacked;
        assert_eq!(repacked.run(|| N.get()), Some(8));
    }
}
