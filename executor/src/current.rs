//! Which runtime the calling thread belongs to: a worker's (the scheduler
//! keeps a thread-local pointer to the `Worker` on the thread's stack, see
//! `scheduler/worker.rs`), a `block_on`'s (the runtime it was called on,
//! a thread-local here) or, on a blocking-pool thread, the runtime of the
//! closure it is running (another thread-local here). Each is set by a
//! guard for exactly the time the pointee is borrowed.

use std::cell::Cell;
use std::ptr;
use std::sync::Arc;

use crate::scheduler::Shared;
use crate::scheduler::worker;
use baton_sync::baton_thread_local;

baton_thread_local! {
    static BLOCK_ON: Cell<*const Arc<Shared>> = Cell::new(ptr::null());
    static BLOCKING: Cell<*const Arc<Shared>> = Cell::new(ptr::null());
}

pub(crate) const OUTSIDE: &str =
    "must be called from inside a baton runtime: use Runtime::block_on / Handle::spawn";

/// Runs `f` with the runtime of this thread (worker, `block_on` or blocking
/// closure, innermost first), if any.
#[inline]
pub(crate) fn with_shared<R>(f: impl FnOnce(Option<&Arc<Shared>>) -> R) -> R {
    worker::with_current(|worker| match worker {
        Some(worker) => f(Some(worker.shared())),
        None => {
            // A `block_on` inside a blocking closure is the inner of the two.
            let mut shared = BLOCK_ON.try_with(Cell::get).unwrap_or(ptr::null());
            if shared.is_null() {
                shared = BLOCKING.try_with(Cell::get).unwrap_or(ptr::null());
            }
            // SAFETY: set by `BlockOnGuard` while `block_on` borrows the
            // runtime that owns this `Arc`, or by `BlockingGuard` while a
            // blocking task borrows its own.
            f(unsafe { shared.as_ref() })
        }
    })
}

pub(crate) struct BlockOnGuard(());

/// Marks this thread as inside `block_on` of `shared`'s runtime.
///
/// # Panics
///
/// On a worker thread of any baton runtime, or inside another `block_on`.
#[track_caller]
pub(crate) fn enter_block_on(shared: &Arc<Shared>) -> BlockOnGuard {
    if worker::with_current(|worker| worker.is_some()) {
        panic!(
            "baton: Runtime::block_on cannot be called on a runtime worker thread: it would block \
             a thread that runs tasks. Use `.await` inside the task instead (or spawn the work)"
        );
    }
    BLOCK_ON.with(|b| {
        if !b.get().is_null() {
            panic!(
                "baton: Runtime::block_on cannot be called inside another block_on: the outer \
                 future would stop making progress. Use `.await` instead"
            );
        }
        b.set(shared);
    });
    BlockOnGuard(())
}

impl Drop for BlockOnGuard {
    fn drop(&mut self) {
        let _ = BLOCK_ON.try_with(|b| b.set(ptr::null()));
    }
}

/// Whether this thread runs a baton runtime (a worker or a `block_on`).
#[cfg(not(baton_loom))]
#[inline]
pub(crate) fn is_inside() -> bool {
    with_shared(|shared| shared.is_some())
}

pub(crate) struct BlockingGuard(*const Arc<Shared>);

/// Marks this thread (a blocking-pool thread) as running a closure of
/// `shared`'s runtime until the guard is dropped. Unlike `block_on`, this
/// forbids nothing: the closure may call `block_on` (of any runtime).
pub(crate) fn enter_blocking(shared: &Arc<Shared>) -> BlockingGuard {
    BlockingGuard(BLOCKING.with(|b| b.replace(shared)))
}

impl Drop for BlockingGuard {
    fn drop(&mut self) {
        let _ = BLOCKING.try_with(|b| b.set(self.0));
    }
}
