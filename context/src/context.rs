//! [`Context`] and [`copy_context`]: mappings of variables to values that code
//! runs inside (S3, S4).

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::mem;
use std::sync::atomic::{AtomicU64, Ordering};

use triomphe::Arc;

use crate::attach::Attached;
use crate::current;
use crate::error::ContextError;
use crate::id;
use crate::map::{Map, Value};
use crate::state::EnterState;
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
    inner: Arc<ContextCell>,
}

/// A context stored inline, for executors that keep a task's context inside
/// the task's own allocation.
///
/// [`Context`] is a shared, clonable handle to one of these (behind an
/// `Arc`); a `ContextCell` is the same thing without the handle: it cannot be
/// cloned and must not move while it is entered (it is borrowed then).
/// `ContextCell::copy_current()` is `copy_context()` without an allocation.
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
pub struct ContextCell {
    pub(crate) state: EnterState,
    /// Identity for tokens, assigned on the first `set` inside; 0 = not yet.
    /// (An id, not an address: addresses are reused, ids never.)
    pub(crate) id: AtomicU64,
    /// The bindings as of the last publish; see `state.rs` for the protocol.
    pub(crate) map: UnsafeCell<Map>,
}

// SAFETY: the only non-`Sync` field is the `map` cell, and every access to it
// follows the protocol documented in `state.rs`: it is written only by the
// thread that has the context entered, while holding WRITING with no readers;
// it is read by that thread (which is then not writing it) or by readers that
// hold a READERS count, which excludes WRITING. `Map` itself is `Send + Sync`.
unsafe impl Sync for ContextCell {}

impl ContextCell {
    fn from_map(map: Map) -> Self {
        ContextCell {
            state: EnterState::new(),
            id: AtomicU64::new(0),
            map: UnsafeCell::new(map),
        }
    }

    /// Swaps `map` into the cell, returning the previous bindings. Only the
    /// thread that has this context entered may call this.
    pub(crate) fn publish(&self, map: Map) -> Map {
        self.state.begin_write();
        // SAFETY: we have the context entered (caller's contract) and hold
        // WRITING with no readers: nobody else can access the cell.
        let old = self
            .map
            .with_mut(|cell| unsafe { mem::replace(&mut *cell, map) });
        self.state.end_write();
        old
    }

    /// This context's identity, assigned on first use.
    pub(crate) fn id(&self) -> u64 {
        match self.id.load(Ordering::Relaxed) {
            0 => {
                let fresh = id::next_context_id();
                match self
                    .id
                    .compare_exchange(0, fresh, Ordering::Relaxed, Ordering::Relaxed)
                {
                    Ok(_) => fresh,
                    Err(winner) => winner,
                }
            }
            id => id,
        }
    }

    /// A copy of the published bindings, from any thread.
    fn read(&self) -> Map {
        self.state.begin_read();
        // SAFETY: holding a READERS count excludes the only writer.
        let map = self.map.with(|cell| unsafe { (*cell).clone() });
        self.state.end_read();
        map
    }

    /// The bindings: live if this thread is running in `self`, else as of
    /// the last publish.
    fn bindings(&self) -> Map {
        current::with_map_if_current(self, Map::clone).unwrap_or_else(|| self.read())
    }

    /// The cell of a thread's base context: never entered by anyone, so it
    /// is marked entered for good, by its thread (see `current.rs`).
    pub(crate) fn new_base() -> ContextCell {
        let cell = ContextCell::from_map(Map::new());
        cell.state.try_enter().expect("a new cell is not entered");
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
        let _entered = current::enter(self)?;
        Ok(f())
    }

    /// Whether some thread is running inside this context right now.
    pub fn is_entered(&self) -> bool {
        self.state.is_entered()
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
        Context {
            inner: Arc::new(ContextCell::from_map(map)),
        }
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
        self.inner.bindings()
    }

    /// Runs `f` inside this context and returns its result (S4).
    ///
    /// Variables set by `f` are stored in this context: visible to
    /// [`Context::get`] and to the next `run`. On return, normal or by panic,
    /// the thread's previous context is restored exactly.
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
        self.inner.try_run(f)
    }

    /// Whether this context is the current context of the calling thread.
    pub fn is_current(&self) -> bool {
        self.inner.is_current()
    }

    /// Whether some thread is running inside this context right now.
    pub fn is_entered(&self) -> bool {
        self.inner.is_entered()
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
        Arc::ptr_eq(&self.inner, &other.inner)
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
#[inline]
pub fn copy_context() -> Context {
    Context {
        inner: Arc::new(ContextCell::copy_current()),
    }
}
