//! The cell layer: where a context's bindings live between runs.
//!
//! * [`ContextCell`] — the bindings as of the last publish, and the entry
//!   word (`state.rs`). Two words; what a task keeps inline.
//! * [`SharedCell`] — a cell behind a [`Context`](crate::Context) handle
//!   (`handle.rs`): the cell, followed by the readers/writer word that lets
//!   other threads read it, and the loan behind its bindings if they are
//!   lent (`lease.rs`).
//! * [`CellPtr`] — the address of a live cell, as the thread layer
//!   (`current.rs`) keeps the current context. Only this layer builds one,
//!   from an unshared cell or from a handle's pointer to its whole
//!   `SharedCell`, so a shared cell's pointer can always be cast back to
//!   the whole (which publishing needs: the `Access` word follows the cell).
//!
//! This layer knows nothing of threads' current contexts: it claims, gives
//! up and publishes into cells, as the thread layer tells it to.

use std::mem::{self, ManuallyDrop};
use std::ptr::NonNull;

use crate::error::ContextError;
use crate::id;
use crate::lease::{Bindings, Loan};
use crate::map::Map;
use crate::state::{Access, EntryWord};
use baton_sync::UnsafeCell;

/// A context stored inline, for executors that keep a task's context inside
/// the task's own allocation: two words, no allocation.
///
/// [`Context`](crate::Context) is a shared, clonable handle to a context; a
/// `ContextCell` is the same thing without the handle: it cannot be cloned,
/// and it is `Send` but not `Sync` — one thread at a time uses it, so nothing
/// guards it against concurrent readers and entering it costs no atomic
/// read-modify-write. `ContextCell::copy_current()` is
/// [`copy_context()`](crate::copy_context) without an allocation.
///
/// ```
/// use baton_context::{ContextCell, ContextVar};
///
/// static ID: ContextVar<u32> = ContextVar::new("id");
///
/// let _token = ID.set(1);
/// let cell = ContextCell::copy_current();
/// cell.run(|| {
///     assert_eq!(ID.get(), Some(1));
///     let _ = ID.set(2);
/// });
/// assert_eq!(cell.run(|| ID.get()), Some(2));
/// assert_eq!(ID.get(), Some(1));
/// ```
#[repr(C)]
pub struct ContextCell {
    /// Entered flag, shared flag and identity; see `state.rs`.
    entry: EntryWord,
    /// The bindings as of the last publish; see `state.rs` for the protocol.
    map: UnsafeCell<Map>,
}

/// What a [`Context`](crate::Context) handle points to: a cell marked
/// SHARED, followed by the readers/writer word that lets other threads read
/// it (`state.rs`).
///
/// `repr(C)` with the cell first, so that a pointer to the whole `SharedCell`
/// is also a pointer to its cell: [`CellPtr::shared`] keeps such a pointer,
/// and publishing casts it back to reach `access`.
///
/// A copy made by [`copy_context`](crate::copy_context) may hold its
/// bindings on *loan* from the copying thread (see `lease.rs`): then `map` is
/// a non-owning copy of the lent root, never dropped, and `loan` is given
/// back when the cell lets go of it (a publish, or the drop).
#[repr(C)]
pub(crate) struct SharedCell {
    /// `ManuallyDrop`: `SharedCell`'s own drop takes the bindings (and their
    /// loan) out, which leaves the cell nothing to drop.
    cell: ManuallyDrop<ContextCell>,
    access: Access,
    /// The loan behind `map`, if it is lent; same access rules as `map`.
    loan: UnsafeCell<Option<Loan>>,
}

impl Drop for SharedCell {
    fn drop(&mut self) {
        // The map and its loan go back together, for `Bindings` to drop the
        // one or give back the other.
        // SAFETY: `&mut self`: nobody else can reach the cell.
        let map = self
            .cell
            .map
            .with_mut(|slot| unsafe { mem::take(&mut *slot) });
        // SAFETY: as above.
        let loan = self.loan.with_mut(|loan| unsafe { (*loan).take() });
        drop(Bindings::from_parts(map, loan));
    }
}

// SAFETY: the only non-`Sync` field is the cell's `map`, and every access to
// it follows the protocol documented in `state.rs`: it is written only by the
// thread that has the context entered, while holding WRITING with no readers;
// it is read by that thread (which is then not writing it) or by readers that
// hold a READERS count, which excludes WRITING. `Map` itself is `Send + Sync`.
unsafe impl Sync for SharedCell {}

impl SharedCell {
    /// Writes a new shared cell holding `bindings` at `this`, field by field.
    ///
    /// In place rather than built on the stack and moved: see
    /// `Handle::new_in_place`.
    ///
    /// # Safety
    /// `this` is valid for writes and holds no value.
    #[inline]
    pub(crate) unsafe fn write(this: *mut SharedCell, bindings: Bindings) {
        let (map, loan) = bindings.into_parts();
        // SAFETY: valid for writes (contract); every field is written once,
        // none read.
        unsafe {
            let cell = (&raw mut (*this).cell).cast::<ContextCell>();
            (&raw mut (*cell).entry).write(EntryWord::new(true));
            (&raw mut (*cell).map).write(UnsafeCell::new(map));
            (&raw mut (*this).access).write(Access::new());
            (&raw mut (*this).loan).write(UnsafeCell::new(loan));
        }
    }

    /// The cell.
    #[inline]
    pub(crate) fn cell(&self) -> &ContextCell {
        &self.cell
    }

    /// A copy of the published bindings, from any thread: a reader of the
    /// protocol in `state.rs`.
    pub(crate) fn read(&self) -> Map {
        self.access.begin_read();
        // SAFETY: holding a READERS count excludes the only writer.
        let map = self.cell.map.with(|slot| unsafe { (*slot).clone() });
        self.access.end_read();
        map
    }
}

impl ContextCell {
    /// A cell holding `map`, entered by nobody.
    pub(crate) fn from_map(map: Map) -> Self {
        ContextCell {
            entry: EntryWord::new(false),
            map: UnsafeCell::new(map),
        }
    }

    /// The cell of a thread's base context: never entered by anyone, so it
    /// is marked entered for good, by its thread (see `current.rs`).
    pub(crate) fn new_base() -> ContextCell {
        let cell = ContextCell::from_map(Map::new());
        cell.entry
            .try_enter_exclusive()
            .expect("a new cell is not entered");
        cell
    }

    /// The published bindings of an unshared cell (a copy of the root).
    ///
    /// Sound because `ContextCell` is not `Sync`: no other thread can reach
    /// `self`, and this thread writes the cell only in a publish, which runs
    /// no user code.
    pub(crate) fn published(&self) -> Map {
        debug_assert!(!self.entry.is_shared());
        // SAFETY: see above.
        self.map.with(|slot| unsafe { (*slot).clone() })
    }

    /// Runs `f` on the published bindings of an unshared cell (sound as
    /// [`published`](Self::published) is; `f` must not reach the cell).
    pub(crate) fn with_published<R>(&self, f: impl FnOnce(&Map) -> R) -> R {
        debug_assert!(!self.entry.is_shared());
        // SAFETY: as in `published`; `f` neither writes nor publishes into
        // this cell, which it cannot reach.
        self.map.with(|slot| f(unsafe { &*slot }))
    }

    /// Takes the published bindings out, leaving the cell empty.
    pub(crate) fn take_published(&mut self) -> Map {
        // SAFETY: `&mut self`: nobody else can reach the cell.
        self.map.with_mut(|slot| unsafe { mem::take(&mut *slot) })
    }

    /// A new, empty context cell.
    pub fn new() -> ContextCell {
        ContextCell::from_map(Map::new())
    }

    /// Whether some thread is running inside this context right now.
    pub fn is_entered(&self) -> bool {
        self.entry.is_entered()
    }

    /// Whether the cell's identity has been assigned (by a `set` inside it):
    /// a token may then name it (`packed.rs`).
    pub(crate) fn has_identity(&self) -> bool {
        self.entry.id() != 0
    }
}

impl Default for ContextCell {
    fn default() -> Self {
        ContextCell::new()
    }
}

/// How a cell is claimed by [`CellPtr::try_enter`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Whoever may reach the cell may race us for it: claim it as its kind
    /// requires (a compare-and-swap for a shared cell).
    Contended,
    /// The caller has proved that no other thread can reach the cell (it
    /// holds the only handle, by `&mut`, and read the count with Acquire):
    /// a plain load and store.
    Exclusive,
}

/// The address of a live cell (see the module docs).
///
/// Holding one promises nothing about liveness: every use is `unsafe`, and
/// its caller vouches that the cell is alive (the `Entered` guard borrows
/// the cell it entered; the base cell is the thread's own).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct CellPtr(NonNull<ContextCell>);

impl CellPtr {
    /// An unshared cell's address.
    #[inline(always)]
    pub(crate) fn unshared(cell: &ContextCell) -> CellPtr {
        debug_assert!(!cell.entry.is_shared());
        CellPtr(NonNull::from(cell))
    }

    /// A shared cell's address, from a pointer to its whole `SharedCell`
    /// (`Handle::as_ptr`), never from a reference to the `cell` field alone.
    #[inline(always)]
    pub(crate) fn shared(whole: NonNull<SharedCell>) -> CellPtr {
        CellPtr(whole.cast())
    }

    /// The thread's own base cell (from `Box::into_raw`).
    pub(crate) fn base(cell: NonNull<ContextCell>) -> CellPtr {
        CellPtr(cell)
    }

    /// The address, as a key (mirror hooks: `hook.rs`).
    #[inline]
    pub(crate) fn addr(self) -> usize {
        self.0.as_ptr() as usize
    }

    /// Whether this addresses `cell`.
    #[inline]
    pub(crate) fn is(self, cell: *const ContextCell) -> bool {
        std::ptr::eq(self.0.as_ptr(), cell)
    }

    /// Claims the cell for the calling thread (S4): a plain load and store
    /// for an unshared cell or an exclusive claim, the ENTERED
    /// compare-and-swap for a shared one (`state.rs`). Returns the identity
    /// as of the claim (0 = not assigned yet), read by the claim itself.
    ///
    /// # Safety
    /// The cell is alive; with [`Claim::Exclusive`], no other thread can
    /// reach it, and everything its earlier holders did is visible here.
    #[inline(always)]
    pub(crate) unsafe fn try_enter(self, claim: Claim) -> Result<u64, ContextError> {
        // SAFETY: alive (contract).
        let entry = unsafe { &self.0.as_ref().entry };
        match claim {
            Claim::Contended => entry.try_enter(),
            Claim::Exclusive => entry.try_enter_exclusive(),
        }
    }

    /// Gives the cell up.
    ///
    /// # Safety
    /// The cell is alive, and the calling thread has it entered.
    #[inline(always)]
    pub(crate) unsafe fn exit(self) {
        // SAFETY: alive (contract).
        unsafe { self.0.as_ref() }.entry.exit();
    }

    /// Swaps `map` into the cell, returning the previous bindings.
    ///
    /// # Safety
    /// The cell is alive and the calling thread has it entered.
    pub(crate) unsafe fn publish(self, map: Map) -> Bindings {
        // SAFETY: alive (contract).
        let cell = unsafe { self.0.as_ref() };
        if cell.entry.is_shared() {
            // SAFETY: a shared cell's `CellPtr` addresses its whole
            // `repr(C)` `SharedCell`, whose first field it is (`shared`).
            let shared = unsafe { self.0.cast::<SharedCell>().as_ref() };
            shared.access.begin_write();
            // SAFETY: we have the context entered (contract) and hold
            // WRITING with no readers: nobody else can access the cell.
            let old = cell
                .map
                .with_mut(|slot| unsafe { mem::replace(&mut *slot, map) });
            // SAFETY: as above; `loan` follows `map`'s rules.
            let loan = shared.loan.with_mut(|loan| unsafe { (*loan).take() });
            shared.access.end_write();
            Bindings::from_parts(old, loan)
        } else {
            // SAFETY: an unshared cell is reachable by one thread at a time
            // (it is not `Sync`), and this thread has it entered.
            let old = cell
                .map
                .with_mut(|slot| unsafe { mem::replace(&mut *slot, map) });
            Bindings::owned(old)
        }
    }

    /// Runs `f` on the cell's bindings.
    ///
    /// # Safety
    /// The cell is alive, and the calling thread has it entered (or owns it:
    /// the base cell): it is then the only writer, and does not publish
    /// while `f` runs (`f` only reads).
    #[inline(always)]
    pub(crate) unsafe fn with_map<R>(self, f: impl FnOnce(&Map) -> R) -> R {
        // SAFETY: alive and not written meanwhile (contract).
        unsafe { self.0.as_ref() }
            .map
            .with(|map| f(unsafe { &*map }))
    }

    /// The identity, assigned on first use.
    ///
    /// # Safety
    /// The cell is alive, and the calling thread has it entered (only that
    /// thread may assign the identity).
    pub(crate) unsafe fn id(self) -> u64 {
        // SAFETY: alive (contract).
        let entry = unsafe { &self.0.as_ref().entry };
        match entry.id() {
            0 => {
                let fresh = id::next_context_id();
                entry.set_id(fresh);
                fresh
            }
            id => id,
        }
    }

    /// A non-owning copy of the cell's root (see `Map::alias`).
    ///
    /// # Safety
    /// As for [`CellPtr::with_map`]; the copy is read only while the cell
    /// keeps its root.
    #[inline(always)]
    pub(crate) unsafe fn alias(self) -> ManuallyDrop<Map> {
        // SAFETY: the caller's contract is `with_map`'s.
        unsafe { self.with_map(Map::alias) }
    }
}
