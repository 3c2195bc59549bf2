//! The cooperative budget: each task poll may complete at most
//! [`BUDGET`] operations on the runtime's own resources (join handles, task
//! groups, timers); after that they report `Pending` (waking the task) so
//! that a task looping over always-ready resources still yields to others.
//! Outside a runtime poll the budget is unlimited.

use std::cell::Cell;
use std::task::{Context, Poll};

use baton_sync::baton_thread_local;

/// Operations per poll.
pub(crate) const BUDGET: u8 = 128;

baton_thread_local! {
    static CURRENT: Cell<Option<u8>> = Cell::new(None);
}

/// Runs `f` (a task poll) with a fresh budget, restoring the previous one.
#[inline]
pub(crate) fn with_budget<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(Option<u8>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let _ = CURRENT.try_with(|c| c.set(self.0));
        }
    }
    let prev = CURRENT.with(|c| c.replace(Some(BUDGET)));
    let _reset = Reset(prev);
    f()
}

/// Spends one unit, or wakes the task and returns `Pending` if none is left.
#[inline]
pub(crate) fn poll_proceed(cx: &mut Context<'_>) -> Poll<()> {
    let exhausted = CURRENT
        .try_with(|c| match c.get() {
            Some(0) => true,
            Some(n) => {
                c.set(Some(n - 1));
                false
            }
            None => false,
        })
        .unwrap_or(false);
    if exhausted {
        cx.waker().wake_by_ref();
        Poll::Pending
    } else {
        Poll::Ready(())
    }
}
