//! [`Context`] and [`copy_context`]: mappings of variables to values that code
//! runs inside (S3, S4).

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::mem;

use crate::attach::Attached;
use crate::current::{self, Claim};
use crate::error::ContextError;
use crate::handle::Handle;
use crate::id;
use crate::lease::{Bindings, Loan};
use crate::map::{Map, Value};
use crate::state::{Access, EntryWord};
use crate::sync::UnsafeCell;
use crate::var::ContextVar;

/// A mapping of [`ContextVar`]s to values, that code can run inside.
///
/// The equivalent of Python's `contextvars.Context`. Every thread has a current
/// context; [`Context::run`] makes `self` the current context for the duration
/// of a closure. Clones are handles to the *same* context (use
/// [`Context::copy`] for an independent one). A context is entered by at most
/// one thread at a time, and never recursively.
///
/// ```
/// use baton_context::{copy_context, ContextVar};
///
/// static REQUEST_ID: ContextVar<&str> = ContextVar::new("request_id");
///
/// let _token = REQUEST_ID.set("abc-123");
/// let ctx = copy_context();
/// ctx.run(|| {
///     assert_eq!(REQUEST_ID.get(), Some("abc-123"));
///     let _ = REQUEST_ID.set("changed inside");
/// });
/// // The change landed in `ctx`, not in the caller's context.
/// assert_eq!(ctx.get(&REQUEST_ID), Some("changed inside"));
/// assert_eq!(REQUEST_ID.get(), Some("abc-123"));
/// ```
#[derive(Clone)]
pub struct Context {
    inner: Handle,
}

/// A context stored inline, for executors that keep a task's context inside
/// the task's own allocation: two words, no allocation.
///
/// [`Context`] is a shared, clonable handle to a context; a `ContextCell` is
/// the same thing without the handle: it cannot be cloned, and it is `Send`
/// but not `Sync` — one thread at a time uses it, so nothing guards it
/// against concurrent readers and entering it costs no atomic
/// read-modify-write. `ContextCell::copy_current()` is `copy_context()`
/// without an allocation.
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
    pub(crate) entry: EntryWord,
    /// The bindings as of the last publish; see `state.rs` for the protocol.
    pub(crate) map: UnsafeCell<Map>,
}

/// What a [`Context`] handle points to: a cell marked SHARED, followed by
/// the readers/writer word that lets other threads read it (`state.rs`).
///
/// `repr(C)` with the cell first, so that a pointer to the whole `SharedCell`
/// is also a pointer to its cell: the current-context slot keeps such a
/// pointer, and `ContextCell::publish` casts it back to reach `access`.
///
/// A copy made by [`copy_context`] may hold its bindings on *loan* from the
/// copying thread (see `lease.rs`): then `map` is a non-owning copy of the
/// lent root, never dropped, and `loan` is given back when the cell lets go
/// of it (a publish, or the drop).
#[repr(C)]
pub(crate) struct SharedCell {
    cell: ContextCell,
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

impl ContextCell {
    fn from_map(map: Map) -> Self {
        ContextCell {
            entry: EntryWord::new(false),
            map: UnsafeCell::new(map),
        }
    }

    /// Swaps `map` into the cell at `this`, returning the previous bindings.
    ///
    /// # Safety
    /// `this` points to a live cell that the calling thread has entered. If
    /// the cell is shared, `this` was derived from a pointer to its whole
    /// [`SharedCell`] (as [`Context::cell_ptr`] makes them).
    pub(crate) unsafe fn publish(this: *const ContextCell, map: Map) -> Bindings {
        // SAFETY: alive (caller's contract).
        let cell = unsafe { &*this };
        if cell.entry.is_shared() {
            // SAFETY: a shared cell is the first field of a `repr(C)`
            // `SharedCell`, and `this` may address all of it (contract).
            let shared = unsafe { &*this.cast::<SharedCell>() };
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

    /// Claims the cell at `this` for the calling thread (S4): a plain load
    /// and store for an unshared cell, the ENTERED compare-and-swap for a
    /// shared one (`state.rs`).
    ///
    /// # Safety
    /// `this` points to a live cell.
    #[inline(always)]
    pub(crate) unsafe fn try_enter(this: *const ContextCell) -> Result<(), ContextError> {
        // SAFETY: alive (caller's contract).
        unsafe { &*this }.entry.try_enter()
    }

    /// Claims the cell at `this` with a plain load and store, shared or not.
    ///
    /// # Safety
    /// `this` points to a live cell that no other thread can reach: the
    /// caller holds the only handle to it, by `&mut`, and the count that
    /// said so was read with Acquire (so everything earlier holders did,
    /// their exit included, is visible here).
    #[inline(always)]
    pub(crate) unsafe fn try_enter_exclusive(this: *const ContextCell) -> Result<(), ContextError> {
        // SAFETY: alive (caller's contract).
        unsafe { &*this }.entry.try_enter_exclusive()
    }

    /// Gives up the cell at `this`, which the calling thread has entered.
    ///
    /// # Safety
    /// `this` points to a live cell, which the calling thread has entered.
    #[inline(always)]
    pub(crate) unsafe fn exit(this: *const ContextCell) {
        // SAFETY: alive (caller's contract).
        unsafe { &*this }.entry.exit();
    }

    /// This context's identity, assigned on first use. Only the thread that
    /// has the context entered may call this.
    pub(crate) fn id(&self) -> u64 {
        match self.entry.id() {
            0 => {
                let fresh = id::next_context_id();
                self.entry.set_id(fresh);
                fresh
            }
            id => id,
        }
    }

    /// The bindings: live if this thread is running in `self`, else as of
    /// the last publish.
    fn bindings(&self) -> Map {
        current::with_map_if_current(self, Map::clone).unwrap_or_else(|| {
            // SAFETY: `self` is not `Sync`, so no other thread can reach it;
            // this thread writes the cell only in `publish`, which is not
            // running (it calls no user code).
            self.map.with(|slot| unsafe { (*slot).clone() })
        })
    }

    /// The cell of a thread's base context: never entered by anyone, so it
    /// is marked entered for good, by its thread (see `current.rs`).
    pub(crate) fn new_base() -> ContextCell {
        let cell = ContextCell::from_map(Map::new());
        cell.entry.try_enter().expect("a new cell is not entered");
        cell
    }

    /// A new, empty context cell.
    pub fn new() -> ContextCell {
        ContextCell::from_map(Map::new())
    }

    /// A copy of the calling thread's current context, in O(1) and without
    /// allocating: [`copy_context`] for embedding.
    #[inline]
    pub fn copy_current() -> ContextCell {
        ContextCell::from_map(current::with_map(Map::clone))
    }

    /// Runs `f` inside this context; see [`Context::run`].
    ///
    /// # Panics
    ///
    /// If the context is already entered (the message contains "already
    /// entered").
    #[inline]
    #[track_caller]
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        match self.try_run(f) {
            Ok(r) => r,
            Err(e) => panic!("baton: cannot run in this context: {e}"),
        }
    }

    /// Runs `f` inside this context, or returns
    /// [`ContextError::AlreadyEntered`] without calling it; see
    /// [`Context::try_run`].
    #[inline]
    pub fn try_run<R>(&self, f: impl FnOnce() -> R) -> Result<R, ContextError> {
        // SAFETY: `self` is borrowed for as long as the guard lives, and an
        // unshared cell is never cast to a `SharedCell`.
        let _entered = unsafe { current::enter(self, Claim::Contended) }?;
        Ok(f())
    }

    /// Whether some thread is running inside this context right now.
    pub fn is_entered(&self) -> bool {
        self.entry.is_entered()
    }

    /// Whether this is the current context of the calling thread.
    pub fn is_current(&self) -> bool {
        current::with_map_if_current(self, |_| ()).is_some()
    }

    /// A new shared [`Context`] holding a copy of these bindings.
    pub fn to_context(&self) -> Context {
        Context::from_map(self.bindings())
    }

    /// How many variables are bound in this context.
    pub fn len(&self) -> usize {
        self.bindings().len()
    }

    /// Whether no variable is bound in this context.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for ContextCell {
    fn default() -> Self {
        ContextCell::new()
    }
}

impl fmt::Debug for ContextCell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContextCell")
            .field("len", &self.len())
            .finish()
    }
}

impl Context {
    /// A new, empty context.
    pub fn new() -> Context {
        Context::from_map(Map::new())
    }

    fn from_map(map: Map) -> Context {
        Context::from_bindings(Bindings::owned(map))
    }

    #[inline]
    fn from_bindings(bindings: Bindings) -> Context {
        let (map, loan) = bindings.into_parts();
        // SAFETY: every field of the cell is written, none read.
        let inner = unsafe {
            Handle::new_in_place(|shared| {
                (&raw mut (*shared).cell.entry).write(EntryWord::new(true));
                (&raw mut (*shared).cell.map).write(UnsafeCell::new(map));
                (&raw mut (*shared).access).write(Access::new());
                (&raw mut (*shared).loan).write(UnsafeCell::new(loan));
            })
        };
        Context { inner }
    }

    /// The cell, as a pointer that may address the whole [`SharedCell`]
    /// (what [`ContextCell::publish`] needs). Never go through
    /// `&self.inner.cell` for this: a reference to the field alone could not
    /// be cast back to the whole.
    #[inline]
    fn cell_ptr(&self) -> *const ContextCell {
        self.inner.as_ptr().cast()
    }

    /// A copy of the published bindings, from any thread.
    fn read(&self) -> Map {
        let shared = &*self.inner;
        shared.access.begin_read();
        // SAFETY: holding a READERS count excludes the only writer.
        let map = shared.cell.map.with(|slot| unsafe { (*slot).clone() });
        shared.access.end_read();
        map
    }

    /// A new context with the same bindings as this one, in O(1). Later
    /// changes to either are invisible to the other (S3).
    ///
    /// If another thread has `self` entered, the copy holds the bindings as
    /// of when that thread entered it.
    pub fn copy(&self) -> Context {
        Context::from_map(self.bindings())
    }

    /// The bindings: live if this thread is running in `self`, else as of
    /// the last publish.
    fn bindings(&self) -> Map {
        current::with_map_if_current(self.cell_ptr(), Map::clone).unwrap_or_else(|| self.read())
    }

    /// Runs `f` inside this context and returns its result (S4).
    ///
    /// Variables set by `f` are stored in this context: visible to
    /// [`Context::get`] and to the next `run`. On return, normal or by panic,
    /// the thread's previous context is restored exactly.
    ///
    /// # Cost
    ///
    /// Entering takes one atomic compare-and-swap (any thread may hold a
    /// handle and race for the context), and leaving one release store.
    /// Where one party provably owns a context, entering costs plain loads
    /// and stores instead: a [`ContextCell`] (a task's own context), and an
    /// [`Attached`] future that holds the only handle to its context.
    ///
    /// # Panics
    ///
    /// If the context is already entered, by this thread or another one, with
    /// a message containing "already entered". Use [`Context::try_run`] to get
    /// the error instead.
    #[inline]
    #[track_caller]
    pub fn run<R>(&self, f: impl FnOnce() -> R) -> R {
        match self.try_run(f) {
            Ok(r) => r,
            Err(e) => panic!("baton: cannot run in this context: {e}"),
        }
    }

    /// Like [`Context::run`], but returns [`ContextError::AlreadyEntered`]
    /// (without calling `f`) if the context is entered already.
    #[inline]
    pub fn try_run<R>(&self, f: impl FnOnce() -> R) -> Result<R, ContextError> {
        // SAFETY: `self` (and so the cell) outlives the guard, and the
        // pointer addresses the whole `SharedCell`.
        let _entered = unsafe { current::enter(self.cell_ptr(), Claim::Contended) }?;
        Ok(f())
    }

    /// [`Context::try_run`] for a caller that holds this handle by `&mut`:
    /// if it is the only handle, no other thread can reach the context, and
    /// it is entered with plain loads and stores instead of the
    /// compare-and-swap (what [`Attached`] polls pay).
    #[inline]
    pub(crate) fn try_run_mut<R>(&mut self, f: impl FnOnce() -> R) -> Result<R, ContextError> {
        let claim = if self.inner.is_unique() {
            Claim::Exclusive
        } else {
            Claim::Contended
        };
        // SAFETY: as in `try_run`; and exclusive when so claimed: `&mut
        // self` keeps this, the only handle, from being cloned or lent
        // meanwhile, and `is_unique` read the count with Acquire.
        let _entered = unsafe { current::enter(self.cell_ptr(), claim) }?;
        Ok(f())
    }

    /// Whether this context is the current context of the calling thread.
    pub fn is_current(&self) -> bool {
        current::with_map_if_current(self.cell_ptr(), |_| ()).is_some()
    }

    /// Whether some thread is running inside this context right now.
    pub fn is_entered(&self) -> bool {
        self.inner.cell.entry.is_entered()
    }

    /// The value bound to `var` in this context, ignoring the variable's
    /// default (like indexing Python's `Context` mapping).
    pub fn get<T: Clone + Send + Sync + 'static>(&self, var: &ContextVar<T>) -> Option<T> {
        let key = var.key();
        // SAFETY (downcast): the map holds values of type T under `var`'s key.
        self.bindings()
            .get(key)
            .map(|value| unsafe { crate::var::downcast::<T>(value) }.clone())
    }

    /// Whether `var` is bound in this context.
    pub fn contains<T: Send + Sync + 'static>(&self, var: &ContextVar<T>) -> bool {
        self.bindings().get(var.key()).is_some()
    }

    /// How many variables are bound in this context.
    pub fn len(&self) -> usize {
        self.bindings().len()
    }

    /// Whether no variable is bound in this context.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound variables' names and values, in no particular order.
    ///
    /// Values are type-erased; [`std::sync::Arc::downcast`] gets them back.
    pub fn iter(&self) -> Iter {
        let map = self.bindings();
        let mut items = Vec::with_capacity(map.len());
        map.for_each(|_, name, value| items.push((name, value.clone())));
        Iter {
            items: items.into_iter(),
        }
    }

    /// Wraps `fut` so that each of its polls, and its drop, runs inside this
    /// context. See [`Attached`].
    pub fn attach<F: Future>(&self, fut: F) -> Attached<F> {
        Attached::new(self.clone(), fut)
    }

    /// Whether two handles refer to the same context.
    pub fn ptr_eq(&self, other: &Context) -> bool {
        self.inner.ptr_eq(&other.inner)
    }
}

impl Default for Context {
    fn default() -> Self {
        Context::new()
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&'static str> = self.iter().map(|(name, _)| name).collect();
        names.sort_unstable();
        f.debug_struct("Context").field("vars", &names).finish()
    }
}

/// Iterator over the names and values bound in a [`Context`], returned by
/// [`Context::iter`]. It holds a snapshot taken when it was created.
#[derive(Debug)]
pub struct Iter {
    items: std::vec::IntoIter<(&'static str, Value)>,
}

impl Iterator for Iter {
    type Item = (&'static str, std::sync::Arc<dyn Any + Send + Sync>);

    fn next(&mut self) -> Option<Self::Item> {
        self.items.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.items.size_hint()
    }
}

impl ExactSizeIterator for Iter {}

/// A copy of the calling thread's current context, in O(1) (S3).
///
/// The equivalent of Python's `contextvars.copy_context()`.
///
/// ```
/// use baton_context::{copy_context, ContextVar};
///
/// static TRACE_ID: ContextVar<&str> = ContextVar::with_default("trace_id", "");
///
/// let _token = TRACE_ID.set("abc-123");
/// let ctx = copy_context();
/// std::thread::spawn(move || {
///     // A new thread starts empty (S1) ...
///     assert_eq!(TRACE_ID.get(), Some(""));
///     // ... unless it runs in a copy taken by its parent.
///     ctx.run(|| assert_eq!(TRACE_ID.get(), Some("abc-123")));
/// })
/// .join()
/// .unwrap();
/// ```
///
/// On its own thread, a copy costs no atomic operation: the bindings are lent
/// by the thread rather than counted, until the thread changes them or
/// leaves its context (see the crate's `lease.rs`).
#[inline]
pub fn copy_context() -> Context {
    Context::from_bindings(current::lend())
}
