//! Which runtime the calling thread belongs to: a worker (the `Worker` on
//! that thread's stack) or a `block_on` (the runtime it was called on).
//! Both are thread-local pointers set by guards for exactly the time the
//! pointee is borrowed.

use std::cell::Cell;
use std::ptr;
use std::sync::Arc;

use crate::scheduler::Shared;
use crate::scheduler::worker::Worker;
use crate::sync::executor_thread_local;

executor_thread_local! {
    static WORKER: Cell<*const Worker> = Cell::new(ptr::null());
    static BLOCK_ON: Cell<*const Arc<Shared>> = Cell::new(ptr::null());
}

pub(crate) const OUTSIDE: &str =
    "must be called from inside a baton runtime: use Runtime::block_on / Handle::spawn";

/// Runs `f` with the worker running on this thread, if any.
#[inline]
pub(crate) fn with_worker<R>(f: impl FnOnce(Option<&Worker>) -> R) -> R {
    let worker = WORKER.try_with(Cell::get).unwrap_or(ptr::null());
    // SAFETY: the pointer is set by `WorkerGuard` for as long as the worker
    // (on this thread's stack) is borrowed by its run loop.
    f(unsafe { worker.as_ref() })
}

/// Runs `f` with the runtime of this thread (worker or `block_on`), if any.
#[inline]
pub(crate) fn with_shared<R>(f: impl FnOnce(Option<&Arc<Shared>>) -> R) -> R {
    let worker = WORKER.try_with(Cell::get).unwrap_or(ptr::null());
    // SAFETY: as in `with_worker`.
    if let Some(worker) = unsafe { worker.as_ref() } {
        return f(Some(&worker.shared));
    }
    let shared = BLOCK_ON.try_with(Cell::get).unwrap_or(ptr::null());
    // SAFETY: set by `BlockOnGuard` while `block_on` borrows the runtime
    // that owns this `Arc`.
    f(unsafe { shared.as_ref() })
}

pub(crate) struct WorkerGuard(());

/// Marks this thread as running `worker` until the guard drops.
pub(crate) fn enter_worker(worker: &Worker) -> WorkerGuard {
    WORKER.with(|w| {
        assert!(
            w.get().is_null(),
            "baton: a thread can run only one worker at a time"
        );
        w.set(worker);
    });
    WorkerGuard(())
}

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        let _ = WORKER.try_with(|w| w.set(ptr::null()));
    }
}

pub(crate) struct BlockOnGuard(());

/// Marks this thread as inside `block_on` of `shared`'s runtime.
///
/// # Panics
///
/// On a worker thread of any baton runtime, or inside another `block_on`.
#[track_caller]
pub(crate) fn enter_block_on(shared: &Arc<Shared>) -> BlockOnGuard {
    if !WORKER.with(Cell::get).is_null() {
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
