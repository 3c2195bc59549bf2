//! The free functions [`spawn`] and [`spawn_with_context`].

use std::future::Future;

use baton_context::{Context, ContextCell};

use crate::current;
use crate::task::JoinHandle;

/// Spawns `future` as a new task on the current runtime.
///
/// The task runs in a **copy of the caller's current context, taken now**
/// (S6): it sees the values set before the spawn; values it sets are
/// invisible to the caller and to other tasks; values the caller sets later
/// are invisible to it. Each poll enters that context on whichever worker
/// runs it, and the future is dropped inside it too.
///
/// Callable in tasks and inside the future given to
/// [`Runtime::block_on`](crate::Runtime::block_on). Dropping the returned
/// [`JoinHandle`] detaches the task.
///
/// ```
/// use baton_context::ContextVar;
///
/// static USER: ContextVar<&str> = ContextVar::new("user");
///
/// let rt = baton_executor::Runtime::new();
/// rt.block_on(async {
///     let _t = USER.set("alice");
///     let child = baton_executor::spawn(async {
///         let seen = USER.get();
///         let _t = USER.set("bob"); // only in the child's context
///         seen
///     });
///     let _t2 = USER.set("carol"); // after the spawn: the child never sees it
///     assert_eq!(child.await.unwrap(), Some("alice"));
///     assert_eq!(USER.get(), Some("carol"));
/// });
/// ```
///
/// # Panics
///
/// Outside a baton runtime, with a message naming the fix (use
/// `Runtime::block_on` or `Handle::spawn`).
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    // The panic is raised here, not in the closure, so that it reports the
    // caller's location (`#[track_caller]` does not reach into closures).
    let mut future = Some(future);
    let spawned = current::with_shared(|shared| {
        shared.map(|shared| shared.spawn(future.take().expect("once"), ContextCell::copy_current()))
    });
    match spawned {
        Some(handle) => handle,
        None => panic!("baton: spawn {}", current::OUTSIDE),
    }
}

/// Spawns `future` to run in `context` itself, not a copy: what the task
/// sets lands in `context` (Python's `create_task(context=ctx)`).
///
/// Tasks that share one context are never polled at the same time: a task
/// whose context is entered elsewhere when it is due waits (it is retried
/// after a short back-off, without keeping a worker busy) and never fails
/// for that; dropping its future waits the same way. Do not await such a
/// task while holding its context entered on the awaiting thread (e.g. by
/// calling `block_on` inside `context.run`): it could never run.
///
/// ```
/// use baton_context::{Context, ContextVar};
///
/// static STEP: ContextVar<u32> = ContextVar::new("step");
///
/// let rt = baton_executor::Runtime::new();
/// let ctx = Context::new();
/// rt.block_on(async {
///     baton_executor::spawn_with_context(ctx.clone(), async { let _ = STEP.set(1); })
///         .await
///         .unwrap();
/// });
/// assert_eq!(ctx.get(&STEP), Some(1));
/// ```
///
/// # Panics
///
/// Outside a baton runtime.
#[track_caller]
pub fn spawn_with_context<F>(context: Context, future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let mut work = Some((future, context));
    let spawned = current::with_shared(|shared| {
        shared.map(|shared| {
            let (future, context) = work.take().expect("once");
            shared.spawn(future, context)
        })
    });
    match spawned {
        Some(handle) => handle,
        None => panic!("baton: spawn_with_context {}", current::OUTSIDE),
    }
}
