//! [`BlockingJob`]: one offloaded closure, its context, and the hand-off to
//! the future that awaits it — independent of the thread pool that runs it.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use baton_context::{Context, ContextCell, ContextError};

use crate::contain::{Enter, Failed, Panic, discard, drop_inside, run_inside};
use crate::handoff::{self, BlockingTask, Completer, Outcome};

/// The context a job runs in.
enum JobContext {
    /// A private copy taken when the job was created, stored inline (no
    /// allocation). It is entered in place, inside the pool's job allocation.
    Copy(ContextCell),
    /// A shared context: the job's writes land in it.
    Shared(Context),
}

impl Enter for JobContext {
    #[inline]
    fn try_run<R>(&self, f: impl FnOnce() -> R) -> Result<R, ContextError> {
        match self {
            JobContext::Copy(cell) => cell.try_run(f),
            JobContext::Shared(ctx) => ctx.try_run(f),
        }
    }

    #[inline]
    fn retire(self) -> Option<Panic> {
        match self {
            JobContext::Copy(cell) => cell.retire(),
            JobContext::Shared(ctx) => ctx.retire(),
        }
    }
}

/// The pool side of an offload: a closure, the context to run it in, and the
/// completion end of the hand-off to its [`BlockingTask`].
///
/// [`run_blocking`](crate::run_blocking) is `BlockingJob::new` plus
/// `rayon::spawn(move || job.run())`. The type is public so that a job can be
/// run by any thread — another pool, a plain `std::thread`, or a loom thread
/// in the models of `loom-tests/`, which check this very hand-off.
///
/// ```
/// use baton_bridge::BlockingJob;
/// use baton_context::ContextVar;
///
/// static USER: ContextVar<&str> = ContextVar::new("user");
///
/// let _token = USER.set("ada");
/// let (job, task) = BlockingJob::new(|| format!("hello {}", USER.get().unwrap()));
/// std::thread::spawn(move || job.run());
/// assert_eq!(futures::executor::block_on(task), "hello ada");
/// ```
#[must_use = "a BlockingJob does nothing unless run; dropping it fails its task"]
pub struct BlockingJob<F, R> {
    ctx: JobContext,
    f: F,
    completer: Completer<R>,
}

impl<F, R> BlockingJob<F, R>
where
    F: FnOnce() -> R,
{
    /// A job that will run `f` in a copy of the calling thread's current
    /// context, taken now, and the future of its result.
    #[inline]
    pub fn new(f: F) -> (Self, BlockingTask<R>) {
        Self::with(JobContext::Copy(ContextCell::copy_current()), f)
    }

    /// A job that will run `f` inside `ctx` itself (its writes land in
    /// `ctx`), and the future of its result.
    ///
    /// If `ctx` is entered elsewhere when the job runs, `f` is not called and
    /// awaiting the task panics with an `AlreadyEntered` message.
    #[inline]
    pub fn with_context(ctx: &Context, f: F) -> (Self, BlockingTask<R>) {
        Self::with(JobContext::Shared(ctx.clone()), f)
    }

    #[inline]
    fn with(ctx: JobContext, f: F) -> (Self, BlockingTask<R>) {
        let (completer, task) = handoff::channel();
        (BlockingJob { ctx, f, completer }, task)
    }

    /// Whether the task was dropped, so that running the job would only drop
    /// the closure.
    pub fn is_cancelled(&self) -> bool {
        self.completer.is_cancelled()
    }

    /// Runs the job on the calling thread and hands its outcome to the task.
    ///
    /// * If the task was dropped already, `f` is dropped (inside the job's
    ///   context; in a scratch context if that is entered elsewhere) without
    ///   being called.
    /// * Otherwise `f` runs inside the job's context. The calling thread's
    ///   own context is saved before and restored exactly after, also if `f`
    ///   panics, and also when `f` itself waits (in `rayon::join`, say) and
    ///   the thread runs other jobs meanwhile: contexts nest with stack
    ///   discipline.
    /// * A panic is caught and handed to the task, which resumes it: a panic
    ///   in `f`, and also one of leaving the job's context (a destructor of a
    ///   binding that `f` replaced; then `f`'s result is dropped inside the
    ///   job's context).
    /// * If the task was dropped while `f` ran, the result is dropped inside
    ///   the job's context (in a scratch context if that is entered
    ///   elsewhere by then), as it was made.
    /// * The job's copy of the context is dropped last, in a scratch
    ///   context: what the destructors of its bindings set goes nowhere.
    ///
    /// Nothing user code does here reaches the calling thread's own context.
    /// This function does not unwind: panics from dropping the closure, the
    /// result or the job's context, or from waking the task, are caught and
    /// discarded (the panic hook reports them), so a pool thread is never
    /// torn down (rayon aborts on a panic escaping a job).
    pub fn run(self) {
        if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| self.run_inner())) {
            // Dropping a payload can panic too; do not let that escape.
            std::mem::forget(payload);
        }
    }

    fn run_inner(self) {
        let BlockingJob { ctx, f, completer } = self;
        if completer.is_cancelled() {
            // Skip the job. Drop the closure's captures in its context, as
            // running it would have.
            discard(drop_inside(&ctx, f));
        } else {
            let outcome = match run_inside(&ctx, f) {
                Ok(value) => Outcome::Done(value),
                Err(Failed::AlreadyEntered) => Outcome::AlreadyEntered,
                Err(Failed::Panicked(payload)) => Outcome::Panicked(payload),
            };
            // The job's context was left, its writes published and the
            // thread's own context restored; now wake the task. If nobody
            // awaits the outcome any more, it comes back: drop it where it
            // was made.
            // (Waking runs the executor's code: should it panic, the job's
            // context must still be dropped below, not while unwinding.)
            match panic::catch_unwind(AssertUnwindSafe(|| completer.complete(outcome))) {
                Ok(Some(unwanted)) => discard(drop_inside(&ctx, unwanted)),
                Ok(None) => {}
                Err(payload) => discard(Some(payload)),
            }
        }
        discard(ctx.retire());
    }
}

impl<F, R> fmt::Debug for BlockingJob<F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingJob")
            .field("shared_context", &matches!(self.ctx, JobContext::Shared(_)))
            .field("cancelled", &self.completer.is_cancelled())
            .finish()
    }
}
