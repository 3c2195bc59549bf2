//! [`BlockingTask`]: a closure dressed as a future, so that the task core
//! runs it (context, panics, `JoinHandle`, abort) like any other task.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use crate::current;
use crate::scheduler::Shared;

/// A future whose first poll runs `func` to completion and returns its
/// result. The task core polls it once, on a pool thread, inside the task's
/// context and under `catch_unwind`; it never returns `Pending`, so it is
/// never woken and never polled again.
///
/// While `func` runs, the thread belongs to the runtime that spawned it
/// (`current::enter_blocking`): `spawn`, `spawn_blocking` and
/// `Handle::current` work inside the closure. No cooperative budget is set
/// on a pool thread (`coop.rs`: unlimited outside a worker's poll), so the
/// closure may await the runtime's resources (through another executor's
/// `block_on`) as often as it likes.
pub(crate) struct BlockingTask<F> {
    func: Option<F>,
    /// The runtime the closure runs in (its `Handle::current`).
    shared: Arc<Shared>,
}

impl<F> BlockingTask<F> {
    pub(crate) fn new(func: F, shared: Arc<Shared>) -> BlockingTask<F> {
        BlockingTask {
            func: Some(func),
            shared,
        }
    }
}

// The closure is never pinned: it is moved out before it is called.
impl<F> Unpin for BlockingTask<F> {}

impl<F, R> Future for BlockingTask<F>
where
    F: FnOnce() -> R,
{
    type Output = R;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<R> {
        let this = self.get_mut();
        let func = this
            .func
            .take()
            .expect("baton: a blocking task was polled after it returned");
        let _runtime = current::enter_blocking(&this.shared);
        Poll::Ready(func())
    }
}
