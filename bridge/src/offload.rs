//! Offloading blocking work to rayon: [`run_blocking`], [`run_blocking_in`]
//! and the [`RunBlocking`] trait for [`Context`].

use baton_context::Context;
use rayon::ThreadPool;

use crate::handoff::BlockingTask;
use crate::job::BlockingJob;

/// Runs `f` on rayon's global pool inside a copy of the current context, and
/// returns a future of its result (S8).
///
/// The equivalent of Python's `asyncio.to_thread(f)`, which runs
/// `copy_context().run(f)` on a worker thread: `f` sees every variable the
/// caller could see when `run_blocking` was called; what `f` sets stays in
/// the copy and is seen neither by the caller nor by any other job. The pool
/// thread's own context is the same before and after the job.
///
/// The job is submitted now; the returned [`BlockingTask`] needs only a
/// [`Waker`](std::task::Waker), so any executor can await it. A panic in `f`
/// is resumed where the task is awaited. Dropping the task before the job
/// starts skips the job.
///
/// Await it from async code (or block on it from a thread outside the pool):
/// blocking a pool thread of the same pool on it can deadlock when no other
/// pool thread is free to run the job.
///
/// ```
/// use baton_bridge::run_blocking;
/// use baton_context::ContextVar;
///
/// static REQUEST_ID: ContextVar<u64> = ContextVar::new("request_id");
///
/// futures::executor::block_on(async {
///     let _token = REQUEST_ID.set(42);
///     let seen = run_blocking(|| {
///         let seen = REQUEST_ID.get();
///         let _ = REQUEST_ID.set(7); // stays in the job's copy
///         seen
///     })
///     .await;
///     assert_eq!(seen, Some(42));
///     assert_eq!(REQUEST_ID.get(), Some(42));
/// });
/// ```
///
/// # Going back to the async runtime
///
/// Code inside `f` can hand work back to a baton runtime through a `Handle`
/// captured before the offload (`baton::Handle::current()`, then
/// `handle.spawn(fut)` inside `f`): the new task copies the context current
/// in `f` — the job's copy — as every spawn does. This crate does not depend
/// on the executor, so the facade crate `baton` tests that path.
pub fn run_blocking<F, R>(f: F) -> BlockingTask<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let (job, task) = BlockingJob::new(f);
    rayon::spawn(move || job.run());
    task
}

/// Like [`run_blocking`], on the given pool instead of rayon's global pool.
///
/// ```
/// use baton_bridge::run_blocking_in;
/// use baton_context::ContextVar;
///
/// static STEP: ContextVar<&str> = ContextVar::new("step");
///
/// let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
/// let _token = STEP.set("resize");
/// let task = run_blocking_in(&pool, || STEP.get());
/// assert_eq!(futures::executor::block_on(task), Some("resize"));
/// ```
pub fn run_blocking_in<F, R>(pool: &ThreadPool, f: F) -> BlockingTask<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let (job, task) = BlockingJob::new(f);
    pool.spawn(move || job.run());
    task
}

/// Offloading to rayon inside a given context, rather than a copy of the
/// current one. Implemented for [`Context`].
///
/// ```
/// use baton_bridge::RunBlocking;
/// use baton_context::{Context, ContextVar};
///
/// static RESULT: ContextVar<u32> = ContextVar::new("result");
///
/// let ctx = Context::new();
/// let n = futures::executor::block_on(ctx.run_blocking(|| {
///     let _ = RESULT.set(6 * 7);
///     6 * 7
/// }));
/// assert_eq!(n, 42);
/// assert_eq!(ctx.get(&RESULT), Some(42)); // the write landed in ctx
/// ```
pub trait RunBlocking {
    /// Runs `f` on rayon's global pool inside this context itself (Python's
    /// `loop.run_in_executor(None, ctx.run, f)`): `f`'s writes land in it.
    ///
    /// A context is entered by at most one thread at a time. If it is
    /// entered elsewhere when the job starts — by another thread, or by the
    /// task awaiting this very job — `f` is not called and awaiting the
    /// returned task panics with a message containing "already entered". It
    /// never waits for the context to become free.
    fn run_blocking<F, R>(&self, f: F) -> BlockingTask<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static;

    /// Like [`RunBlocking::run_blocking`], on the given pool.
    fn run_blocking_in<F, R>(&self, pool: &ThreadPool, f: F) -> BlockingTask<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static;
}

impl RunBlocking for Context {
    fn run_blocking<F, R>(&self, f: F) -> BlockingTask<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (job, task) = BlockingJob::with_context(self, f);
        rayon::spawn(move || job.run());
        task
    }

    fn run_blocking_in<F, R>(&self, pool: &ThreadPool, f: F) -> BlockingTask<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let (job, task) = BlockingJob::with_context(self, f);
        pool.spawn(move || job.run());
        task
    }
}
