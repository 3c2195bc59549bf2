//! `Context::attach` and `PackedCell::attach`: every poll, and the drop,
//! run inside the context.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};

use baton_context::{Context, ContextVar, PackedCell};
use futures::task::noop_waker;

static ID: ContextVar<u32> = ContextVar::new("id");

/// What a probe saw: ("poll" or "drop", the value of ID then).
type Seen = Arc<Mutex<Vec<(&'static str, Option<u32>)>>>;

/// Records what it sees in each poll and in its drop.
struct Probe {
    polls_left: u32,
    seen: Seen,
}

impl Future for Probe {
    type Output = Option<u32>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<u32>> {
        self.seen.lock().unwrap().push(("poll", ID.get()));
        if self.polls_left == 0 {
            return Poll::Ready(ID.get());
        }
        self.polls_left -= 1;
        let _ = ID.set(ID.get().unwrap_or(0) + 1);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.seen.lock().unwrap().push(("drop", ID.get()));
    }
}

#[test]
fn attach_polls_and_drops_inside_its_context() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let ctx = Context::new();
    ctx.run(|| {
        let _ = ID.set(10);
    });
    let fut = ctx.attach(Probe {
        polls_left: 2,
        seen: seen.clone(),
    });
    let out = futures::executor::block_on(fut);
    assert_eq!(out, Some(12));
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            ("poll", Some(10)),
            ("poll", Some(11)),
            ("poll", Some(12)),
            ("drop", Some(12))
        ]
    );
    assert_eq!(ID.get(), None);
    assert_eq!(ctx.get(&ID), Some(12));
}

#[test]
fn an_attached_future_dropped_before_completion_drops_inside_its_context() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let ctx = Context::new();
    ctx.run(|| {
        let _ = ID.set(5);
    });
    let mut fut = Box::pin(ctx.attach(Probe {
        polls_left: 10,
        seen: seen.clone(),
    }));
    let waker = noop_waker();
    assert!(
        fut.as_mut()
            .poll(&mut TaskContext::from_waker(&waker))
            .is_pending()
    );
    drop(fut);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![("poll", Some(5)), ("drop", Some(6))]
    );
}

#[test]
fn joined_attached_futures_are_isolated_from_each_other() {
    /// Returns `Pending` once, waking itself: lets the other future run.
    struct YieldOnce(bool);
    impl Future for YieldOnce {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
            if std::mem::replace(&mut self.0, true) {
                return Poll::Ready(());
            }
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
    async fn handle(id: u32) -> Option<u32> {
        let _ = ID.set(id);
        YieldOnce(false).await;
        ID.get()
    }
    let (a, b) = futures::executor::block_on(async {
        futures::join!(
            Context::new().attach(handle(123)),
            Context::new().attach(handle(456))
        )
    });
    assert_eq!((a, b), (Some(123), Some(456)));
}

#[test]
fn polling_an_attached_future_whose_context_is_entered_panics_clearly() {
    let ctx = Context::new();
    let mut fut = Box::pin(ctx.attach(async { 1 }));
    let waker = noop_waker();
    let err = ctx.run(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = fut.as_mut().poll(&mut TaskContext::from_waker(&waker));
        }))
        .unwrap_err()
    });
    let msg = err.downcast_ref::<String>().unwrap();
    assert!(msg.contains("already entered"), "{msg}");
}

#[test]
fn a_packed_attached_future_polls_and_drops_inside_its_copy() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let token = ID.set(10);
    let fut = PackedCell::copy_current().attach(Probe {
        polls_left: 2,
        seen: seen.clone(),
    });
    ID.reset(token).unwrap();
    let out = futures::executor::block_on(fut);
    assert_eq!(out, Some(12));
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            ("poll", Some(10)),
            ("poll", Some(11)),
            ("poll", Some(12)),
            ("drop", Some(12))
        ]
    );
    assert_eq!(ID.get(), None);
}

#[test]
fn a_packed_attached_future_dropped_before_completion_drops_inside_its_copy() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut fut = Box::pin(PackedCell::new().attach(Probe {
        polls_left: 10,
        seen: seen.clone(),
    }));
    let waker = noop_waker();
    let mut cx = TaskContext::from_waker(&waker);
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    assert!(fut.as_mut().poll(&mut cx).is_pending());
    drop(fut);
    assert_eq!(
        *seen.lock().unwrap(),
        vec![("poll", None), ("poll", Some(1)), ("drop", Some(2))]
    );
    assert_eq!(ID.get(), None);
}

#[test]
fn a_packed_attached_future_moves_between_threads_with_its_context() {
    let mut fut = Box::pin(PackedCell::new().attach(async {
        let _ = ID.set(1);
        // Pending once, then read the value on whichever thread polls.
        let mut yielded = false;
        std::future::poll_fn(|cx| {
            if std::mem::replace(&mut yielded, true) {
                Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await;
        ID.get()
    }));
    let waker = noop_waker();
    assert!(
        fut.as_mut()
            .poll(&mut TaskContext::from_waker(&waker))
            .is_pending()
    );
    let out = std::thread::spawn(move || {
        let waker = noop_waker();
        let out = fut.as_mut().poll(&mut TaskContext::from_waker(&waker));
        (out, ID.get())
    })
    .join()
    .unwrap();
    assert_eq!(out, (Poll::Ready(Some(1)), None));
    assert_eq!(ID.get(), None);
}

#[test]
fn a_packed_attached_future_whose_drop_panics_leaves_the_caller_intact() {
    struct PanicOnDrop;
    impl Drop for PanicOnDrop {
        fn drop(&mut self) {
            let _ = ID.set(99);
            panic!("the future's drop");
        }
    }
    let guard = PanicOnDrop;
    let fut = PackedCell::new().attach(async move {
        let _guard = &guard;
        std::future::pending::<()>().await;
    });
    let mut fut = Box::pin(fut);
    let waker = noop_waker();
    assert!(
        fut.as_mut()
            .poll(&mut TaskContext::from_waker(&waker))
            .is_pending()
    );
    let _outer = ID.set(1);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(fut)));
    assert!(panicked.is_err());
    assert_eq!(
        ID.get(),
        Some(1),
        "the drop's set stayed in the task's copy"
    );
}
