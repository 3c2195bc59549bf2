//! The blocking pool: [`spawn_blocking`] runs a closure on a thread of the
//! runtime's elastic pool, inside a copy of the caller's context, and
//! returns a [`JoinHandle`] of its result.
//!
//! # Files
//!
//! ```text
//! task.rs      BlockingTask: a future whose first poll runs the closure
//! pool.rs      BlockingPool (the runtime's), Pool (shared with the
//!              threads and the tasks): the queue, the threads, shutdown
//! schedule.rs  the Schedule implementation of Pool
//! ```
//!
//! # A closure is a task
//!
//! A closure is wrapped in a [`BlockingTask`](task::BlockingTask) and bound
//! through the task core like any task (`OwnedTasks::bind`), with a copy of
//! the caller's context (`ContextCell::copy_current`, taken at the call) and
//! the pool as its scheduler (`schedule.rs`: a second implementation of
//! `Schedule`, beside the runtime's). A pool thread runs it with
//! `Notified::run`, so the task core does what it does for every task: it
//! enters the task's context for the poll (and for dropping the closure or
//! its result) and restores the thread's own afterwards, catches a panic
//! (the handle resolves to `JoinError::panic`; the thread goes on), and
//! delivers the result to the `JoinHandle`. Abort comes the same way: a
//! queued task is NOTIFIED, so `abort` only marks it CANCELLED and the
//! thread that takes it drops the closure unrun (the handle resolves to a
//! cancelled error); a running one is marked too, but its one poll returns
//! `Ready`, so it completes normally.
//!
//! While the closure runs, the thread belongs to the closure's runtime
//! (`current::enter_blocking`): `spawn`, `spawn_blocking` and
//! `Handle::current` work inside it, and so does `Runtime::block_on`, which
//! a worker forbids.
//!
//! # Threads: growing and shrinking
//!
//! `Pool::state` (one mutex) holds the queue of due tasks and the counts:
//! `threads` (started, not exited), `idle` (waiting for a job and not
//! claimed for one) and `notified` (wake-ups sent and not yet taken).
//!
//! * **Push** (a spawn): under the lock, the task goes to the back of the
//!   queue; then, if `idle > 0`, the pusher claims one idle thread for it
//!   (`idle -= 1`, `notified += 1`) and signals the condition variable;
//!   otherwise, below `max_blocking_threads`, it starts a thread (under the
//!   lock, so `threads` and the handles never disagree); at the limit, the
//!   job waits for a thread to finish its current one.
//! * **A thread** pops and runs jobs (without the lock) until the queue is
//!   empty, then counts itself idle (`idle += 1`) and waits, with a
//!   deadline `keep_alive` (10 s) from then. On each wake-up: if
//!   `notified > 0` it takes one (`notified -= 1`; the pusher already took
//!   it out of `idle`) and goes back to the queue; else on shutdown it
//!   leaves (`idle -= 1`); else past its deadline it retires (`idle -= 1`,
//!   and it takes its own handle out of the pool: nobody joins it); else
//!   the wake-up was spurious, or another thread took the job first, and it
//!   waits again. Whichever idle thread takes a wake-up, each one sent
//!   stands for exactly one thread leaving `idle`, so no job is left queued
//!   while a thread is counted idle, and a thread that times out just as a
//!   job arrives takes the job instead of retiring.
//! * **Exit**: a leaving thread decrements `threads` in the same critical
//!   section in which it saw its reason to leave, then signals `exited`.
//!   (Were it counted out later, a job pushed in between at the limit
//!   would find neither an idle thread nor room for a new one, and wait
//!   for nobody.)
//!
//! # Shutdown
//!
//! After the runtime's workers stopped and its tasks were cancelled
//! (`Shared::finish_shutdown`, last step): under the lock, set `shutdown`
//! (a push from now on drops its `Notified`), take the queue and the
//! handles, and wake every idle thread; then close the owned list and shut
//! its tasks down: a queued task is idle, so it is claimed and cancelled
//! inside its context (its handle resolves to cancelled); a running one is
//! left to finish; a spawn from now on is cancelled at once by the closed
//! list. Then wait until `threads` is 0 — or 1, when the shutdown runs on a
//! thread of this pool (a closure that drops its runtime): it cannot wait
//! for itself — for as long as it takes with no deadline (a plain drop),
//! or until the deadline of `Runtime::shutdown_timeout`. If every thread
//! exited, join them; else drop the handles, detaching the threads, which
//! exit once their closures return.

mod pool;
mod schedule;
mod task;

pub(crate) use pool::BlockingPool;

use crate::current;
use crate::task::JoinHandle;

/// Runs the blocking closure `f` on the current runtime's blocking pool and
/// returns a handle to its result.
///
/// Use it for work that blocks a thread — file I/O, a synchronous client,
/// a lock held for long — which must not run on a worker: it would stop
/// the worker's other tasks. (CPU-bound work belongs on rayon, with the
/// bridge's `run_blocking`.) The pool starts a thread when no idle one can
/// take the job, up to
/// [`Builder::max_blocking_threads`](crate::Builder::max_blocking_threads)
/// (512 by default; beyond that jobs wait in a queue); a thread idle for
/// 10 seconds exits. Threads are named after the workers with `-blocking`
/// appended.
///
/// The closure runs in a **copy of the caller's current context, taken
/// now**: it sees the values set before the call, and what it sets stays in
/// the copy. Inside it, [`spawn`](crate::spawn), `spawn_blocking` and
/// [`Handle::current`](crate::Handle::current) use this runtime.
///
/// Awaiting the handle gives the closure's result, or a
/// [`JoinError`](crate::JoinError): a panic in the closure (the pool thread
/// survives it), or a cancellation. [`abort`](JoinHandle::abort) cancels a
/// job that has not started yet; a running closure cannot be stopped and
/// runs to its end. When the runtime is dropped, queued jobs are cancelled,
/// jobs spawned afterwards are cancelled at once, and running ones are
/// waited for (with [`Runtime::shutdown_timeout`](crate::Runtime::shutdown_timeout),
/// only until the timeout).
///
/// ```
/// use baton_context::ContextVar;
///
/// static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");
///
/// let rt = baton_executor::Runtime::new();
/// rt.block_on(async {
///     let _t = REQUEST_ID.set(7);
///     let read = baton_executor::spawn_blocking(|| {
///         // A blocking call, on a pool thread, in a copy of the context.
///         let contents = std::fs::read_to_string("/no/such/file").unwrap_or_default();
///         (REQUEST_ID.get(), contents.len())
///     });
///     assert_eq!(read.await.unwrap(), (Some(7), 0));
/// });
/// ```
///
/// # Panics
///
/// Outside a baton runtime, with a message naming the fix (use
/// `Runtime::block_on`, or [`Handle::spawn_blocking`](crate::Handle::spawn_blocking)).
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let handle = current::with_shared(|shared| shared.map(|s| s.blocking().spawn(f, s.clone())));
    // Matched here, not in the closure, so the panic names the caller.
    match handle {
        Some(handle) => handle,
        None => panic!("baton: spawn_blocking {}", current::OUTSIDE),
    }
}
