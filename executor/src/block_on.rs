//! `Runtime::block_on`: drive one future on the calling thread.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use baton_context::ContextCell;

use crate::coop;
use crate::current;
use crate::scheduler::Shared;
use crate::scheduler::park::{Park, Parker};

struct ThreadWaker(Parker);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Runs `future` to completion on this thread, inside a copy of the caller's
/// context (S7), with `shared` as the thread's runtime (for `spawn`,
/// `sleep`, ...). The future is dropped inside that copy too.
pub(crate) fn block_on<F: Future>(shared: &Arc<Shared>, future: F) -> F::Output {
    let _guard = current::enter_block_on(shared);
    let context = ContextCell::copy_current();
    let parker = Arc::new(ThreadWaker(Parker::new()));
    let waker = Waker::from(parker.clone());
    let mut cx = Context::from_waker(&waker);
    let mut slot = pin!(Some(future));
    loop {
        let polled = context.run(|| {
            panic::catch_unwind(AssertUnwindSafe(|| {
                coop::with_budget(|| match slot.as_mut().as_pin_mut() {
                    Some(future) => future.poll(&mut cx),
                    None => unreachable!(),
                })
            }))
        });
        match polled {
            Ok(Poll::Ready(output)) => {
                context.run(|| slot.set(None));
                return output;
            }
            Ok(Poll::Pending) => parker.0.park(None),
            Err(panic) => {
                let _ = context.run(|| panic::catch_unwind(AssertUnwindSafe(|| slot.set(None))));
                panic::resume_unwind(panic);
            }
        }
    }
}
