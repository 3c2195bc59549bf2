//! The public API of contexts: [`Context`], [`copy_context`], and the methods
//! of [`ContextCell`] that run code inside it (S3, S4).

use std::any::Any;
use std::fmt;

use crate::cell::{CellPtr, Claim, ContextCell, SharedCell};
use crate::current;
use crate::error::ContextError;
use crate::handle::Handle;
use crate::hook;
use crate::lease::Bindings;
use crate::map::{Map, Value, downcast};
use crate::mirror;
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

impl ContextCell {
    /// The bindings: live if this thread is running in `self`, else as of
    /// the last publish.
    fn bindings(&self) -> Map {
        current::with_map_if_current(self, Map::clone).unwrap_or_else(|| self.published())
    }

    /// A copy of the calling thread's current context, in O(1) and without
    /// allocating: [`copy_context`] for embedding.
    #[inline(always)]
    pub fn copy_current() -> ContextCell {
        let copy = ContextCell::from_map(current::with_map(Map::clone));
        if mirror::capturing() {
            return mirror::captured_cell(copy);
        }
        copy
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
        let entered = unsafe { current::enter(CellPtr::unshared(self), Claim::Contended) }?;
        if hook::any() {
            return Ok(current::run_mirrored(entered, f));
        }
        let _entered = entered;
        Ok(f())
    }

    /// [`ContextCell::try_run`] without the mirror hooks: for runs where
    /// they would mirror nothing — the cell's bindings taken out (its drop),
    /// or the hooks suspended (a copy capturing) — so that those skip
    /// `run_mirrored`'s frames and unwinding guard.
    #[inline]
    pub(crate) fn try_run_unmirrored<R>(&self, f: impl FnOnce() -> R) -> Result<R, ContextError> {
        // SAFETY: as in `try_run`.
        let _entered = unsafe { current::enter(CellPtr::unshared(self), Claim::Contended) }?;
        Ok(f())
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

/// A cell's bindings are dropped inside the cell, where they belong: what
/// their destructors set lands in the cell and goes with it, never in the
/// dropping thread's own context (a task's context, dropped by a worker). A
/// destructor's panic propagates, once the cell is left.
impl Drop for ContextCell {
    #[inline]
    fn drop(&mut self) {
        let map = self.take_published();
        // A shared root is only counted down: no user code, no entering.
        if map.may_drop_values() {
            drop_inside(self, map);
        }
    }
}

/// `ContextCell`'s drop when its bindings may drop values: drops them
/// inside the cell, again while destructors wrote.
#[cold]
#[inline(never)]
fn drop_inside(cell: &mut ContextCell, mut map: Map) {
    loop {
        let mut held = Some(map);
        // No mirror hook has anything to mirror: the bindings are out.
        if cell.try_run_unmirrored(|| drop(held.take())).is_err() {
            // Entered for good: a thread's base cell, dropped at exit.
            drop(held);
            return;
        }
        // Destructors that wrote published their writes here.
        map = cell.take_published();
        if !map.may_drop_values() {
            return;
        }
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

    pub(crate) fn from_map(map: Map) -> Context {
        Context::from_bindings(Bindings::owned(map))
    }

    #[inline]
    fn from_bindings(bindings: Bindings) -> Context {
        // SAFETY: `write` writes every field of the new allocation.
        let inner = unsafe { Handle::new_in_place(|shared| SharedCell::write(shared, bindings)) };
        Context { inner }
    }

    /// The cell's address, for the thread layer: it keeps the provenance of
    /// the whole `SharedCell` (see `CellPtr::shared`).
    #[inline]
    pub(crate) fn cell_ptr(&self) -> CellPtr {
        CellPtr::shared(self.inner.as_ptr())
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
    pub(crate) fn bindings(&self) -> Map {
        current::with_map_if_current(self.inner.cell(), Map::clone)
            .unwrap_or_else(|| self.inner.read())
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
    /// [`Attached`](crate::Attached) future that holds the only handle to its context.
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
        let entered = unsafe { current::enter(self.cell_ptr(), Claim::Contended) }?;
        if hook::any() {
            return Ok(current::run_mirrored(entered, f));
        }
        let _entered = entered;
        Ok(f())
    }

    /// Whether this context is the current context of the calling thread.
    pub fn is_current(&self) -> bool {
        current::with_map_if_current(self.inner.cell(), |_| ()).is_some()
    }

    /// Whether some thread is running inside this context right now.
    pub fn is_entered(&self) -> bool {
        self.inner.cell().is_entered()
    }

    /// The value bound to `var` in this context, ignoring the variable's
    /// default (like indexing Python's `Context` mapping).
    pub fn get<T: Clone + Send + Sync + 'static>(&self, var: &ContextVar<T>) -> Option<T> {
        let key = var.key();
        self.bindings().get(key).map(|value| {
            // SAFETY: (downcast) the map holds values of type T under
            // `var`'s key.
            unsafe { downcast::<T>(value) }.clone()
        })
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

    /// Whether two handles refer to the same context.
    pub fn ptr_eq(&self, other: &Context) -> bool {
        self.inner.ptr_eq(&other.inner)
    }

    /// Whether this is the only handle to its context (see
    /// `Handle::is_unique`).
    #[inline]
    pub(crate) fn is_sole_handle(&mut self) -> bool {
        self.inner.is_unique()
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
#[inline(always)]
pub fn copy_context() -> Context {
    let copy = Context::from_bindings(current::lend());
    if mirror::capturing() {
        return mirror::captured(copy);
    }
    copy
}
