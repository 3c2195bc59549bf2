//! The current context of each thread (S1).
//!
//! A thread-local slot, [`Current`], names the context the thread is running
//! in and holds — or borrows — its bindings:
//!
//! * A thread starts in its own *base* context: empty, created lazily, never
//!   reachable from another thread (S1). Its bindings live in the slot.
//! * Entering a [`Context`](crate::Context) swaps a new slot in and keeps the
//!   old one on the entering stack frame (the [`Entered`] guard); leaving
//!   swaps it back, whether the closure returned or panicked (S4). The swap
//!   moves three words; it allocates nothing and takes no lock.
//! * While a context is entered, its slot *borrows* the context's map rather
//!   than cloning it (see `state.rs` for why that is sound). The first write
//!   makes a private copy; leaving publishes that copy into the context.
//!
//! `VAR.get()` is therefore: one thread-local access, a `RefCell` borrow
//! flag, and a lookup in the map — no atomic operation at all.

use std::cell::RefCell;
use std::mem;
use std::ptr;

use crate::context::ContextCell;
use crate::error::ContextError;
use crate::id;
use crate::map::Map;
use crate::sync::current_thread_local;
use std::sync::atomic::Ordering;

pub(crate) struct Current {
    /// The entered context, or null for the thread's base context.
    ctx: *const ContextCell,
    /// Identity of the current context, for tokens; 0 = not assigned yet
    /// (only the base context is created without one).
    id: u64,
    /// The bindings; `None` while they are borrowed from `ctx`'s cell.
    map: Option<Map>,
}

impl Current {
    const BASE: Current = Current {
        ctx: ptr::null(),
        id: 0,
        map: Some(Map::new()),
    };

    #[inline]
    pub(crate) fn with_map<R>(&self, f: impl FnOnce(&Map) -> R) -> R {
        match &self.map {
            Some(map) => f(map),
            // SAFETY: `map` is `None` only while this thread has `ctx` entered
            // (set in `enter`, until the `Entered` guard drops), so `ctx` points
            // to a live context — the guard borrows it. The cell is written only
            // by the thread that entered the context, in `publish`, and never
            // while this borrow is handed out (publish runs with the slot's map
            // already taken, and is not reachable from `f`, which only reads).
            // Other threads only read the cell.
            None => unsafe { (*self.ctx).map.with(|map| f(&*map)) },
        }
    }

    /// The bindings, for writing: on the first write after entering, this
    /// takes a private copy (an `Arc` clone) of the context's map.
    #[inline]
    pub(crate) fn map_mut(&mut self) -> &mut Map {
        if self.map.is_none() {
            let copy = self.with_map(Map::clone);
            self.map = Some(copy);
        }
        self.map.as_mut().expect("just filled")
    }

    /// The identity tokens record; assigned on first use, since most
    /// contexts (a task's copy, say) never make a token.
    #[inline]
    pub(crate) fn id(&mut self) -> u64 {
        if self.id == 0 {
            self.id = if self.ctx.is_null() {
                id::next_context_id()
            } else {
                // SAFETY: non-null `ctx` is entered by this thread, and alive.
                unsafe { (*self.ctx).id() }
            };
        }
        self.id
    }

    /// Publishes a private copy of an entered context's bindings into the
    /// context, so reads of it from this thread's nested contexts, or from
    /// other threads, see them. No-op for the base context.
    #[inline]
    fn flush(&mut self) -> Option<Map> {
        if self.ctx.is_null() || self.map.is_none() {
            return None;
        }
        self.flush_slow()
    }

    #[cold]
    fn flush_slow(&mut self) -> Option<Map> {
        let map = self.map.take()?;
        // SAFETY: `ctx` is non-null, so this thread has it entered and the
        // guard that entered it keeps it alive.
        Some(unsafe { (*self.ctx).publish(map) })
    }
}

current_thread_local! {
    static CURRENT: RefCell<Current> = RefCell::new(Current::BASE);
}

const REENTRANT: &str = "baton: the current context was modified while it was being read \
     (a ContextVar was set from inside the Clone of a context value?)";

/// Runs `f` on the current bindings. A thread that is being torn down reads
/// as an empty context.
#[inline]
pub(crate) fn with_map<R>(f: impl FnOnce(&Map) -> R) -> R {
    let mut f = Some(f);
    let found = CURRENT.try_with(|current| {
        let current = current.try_borrow().expect(REENTRANT);
        current.with_map(f.take().expect("called once"))
    });
    match found {
        Ok(r) => r,
        Err(_) => (f.take().expect("not called"))(&Map::new()),
    }
}

/// Runs `f` on the current slot, for writing.
#[inline]
pub(crate) fn with_mut<R>(f: impl FnOnce(&mut Current) -> R) -> R {
    CURRENT
        .try_with(|current| f(&mut current.try_borrow_mut().expect(REENTRANT)))
        .unwrap_or_else(|_| panic!("baton: cannot set a ContextVar while the thread is exiting"))
}

/// If `ctx` is this thread's current context, runs `f` on its live bindings.
pub(crate) fn with_map_if_current<R>(ctx: &ContextCell, f: impl FnOnce(&Map) -> R) -> Option<R> {
    CURRENT
        .try_with(|current| {
            let current = current.try_borrow().expect(REENTRANT);
            ptr::eq(current.ctx, ctx).then(|| current.with_map(f))
        })
        .ok()
        .flatten()
}

/// The guard of an entered context: restores the previous slot when dropped.
pub(crate) struct Entered<'a> {
    inner: &'a ContextCell,
    saved: Option<Current>,
}

/// Enters `inner` on this thread (S4).
#[inline]
pub(crate) fn enter(inner: &ContextCell) -> Result<Entered<'_>, ContextError> {
    inner.state.try_enter()?;
    let swapped = CURRENT.try_with(|current| {
        let mut current = current.try_borrow_mut().expect(REENTRANT);
        let flushed = current.flush();
        let saved = mem::replace(
            &mut *current,
            Current {
                ctx: inner,
                id: inner.id.load(Ordering::Relaxed),
                map: None,
            },
        );
        (saved, flushed)
    });
    match swapped {
        Ok((saved, flushed)) => {
            drop(flushed);
            Ok(Entered {
                inner,
                saved: Some(saved),
            })
        }
        Err(_) => {
            inner.state.exit();
            panic!("baton: cannot enter a context while the thread is exiting")
        }
    }
}

impl Drop for Entered<'_> {
    #[inline]
    fn drop(&mut self) {
        let saved = self.saved.take().expect("restored once");
        let mine = CURRENT
            .try_with(|current| mem::replace(&mut *current.borrow_mut(), saved))
            .ok();
        // Written to: publish the bindings into the context, then give it up,
        // then drop the old bindings (their destructors may use this very
        // context, so they run after it is free).
        let old = mine
            .and_then(|mine| mine.map)
            .map(|map| self.inner.publish(map));
        self.inner.state.exit();
        drop(old);
    }
}
