//! Loom models of the task core, driven by [`FakeScheduler`]: the real
//! state machine, harness, waker and owned list, with no runtime around
//! them. Run with
//!
//! ```text
//! RUSTFLAGS="--cfg baton_loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom \
//!     cargo test -p baton-executor --release --lib task::tests::loom
//! ```
//!
//! Every model ends by checking that the task was freed: the allocation
//! holds a handle of the scheduler, so the scheduler's strong count is back
//! to one exactly when no reference was leaked (and loom would report a
//! reference dropped twice as a use after free of its tracked cells).

use std::sync::Arc;
use std::task::{Poll, Waker};

use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::thread;

use super::{DropCount, FakeScheduler, poll_once};
use baton_sync::Mutex;

/// (a) A wake from another thread races a poll that returns `Pending`:
/// the task is re-scheduled exactly once if the wake came after the poll
/// claimed the task, not at all if the poll started after it (that poll
/// saw the wake's effect), and is never lost.
#[test]
fn a_wake_racing_a_pending_poll_is_never_lost() {
    loom::model(|| {
        let sched = FakeScheduler::new();
        let flag = Arc::new(AtomicBool::new(false));
        let slot: Arc<Mutex<Option<Waker>>> = Arc::new(Mutex::new(None));
        let polls_that_saw_flag = Arc::new(AtomicUsize::new(0));
        let mut handle = {
            let (flag, slot, saw) = (flag.clone(), slot.clone(), polls_that_saw_flag.clone());
            sched.spawn(std::future::poll_fn(move |cx| {
                if flag.load(Ordering::SeqCst) {
                    saw.fetch_add(1, Ordering::SeqCst);
                    return Poll::Ready(());
                }
                *slot.lock() = Some(cx.waker().clone());
                Poll::Pending
            }))
        };
        // First poll: registers the waker, Pending, idle.
        assert_eq!(sched.run_all(), 1);
        let waker = slot.lock().take().expect("registered");
        // Due again (e.g. some other event): the racing poll below.
        waker.wake_by_ref();
        assert_eq!(sched.queued(), 1);
        let waker_b = waker.clone();
        let waker_thread = {
            let flag = flag.clone();
            thread::spawn(move || {
                flag.store(true, Ordering::SeqCst);
                waker_b.wake();
            })
        };
        let racing = sched.pop().expect("queued");
        racing.run(0);
        waker_thread.join().unwrap();
        // Re-scheduled at most once; and if the racing poll did not see the
        // flag, the wake came after it claimed the task: re-scheduled.
        let queued = sched.queued();
        assert!(queued <= 1, "scheduled {queued} times");
        if polls_that_saw_flag.load(Ordering::SeqCst) == 0 {
            assert_eq!(queued, 1, "the wake was lost");
        }
        sched.run_all();
        assert_eq!(polls_that_saw_flag.load(Ordering::SeqCst), 1);
        assert!(matches!(poll_once(&mut handle), Poll::Ready(Ok(()))));
        drop((handle, waker));
        drop(slot.lock().take());
        assert_eq!(Arc::strong_count(&sched), 1);
    });
}

/// (b) `abort` from another thread races the poll that completes the task:
/// the handle sees the output or a cancellation, exactly one of them; the
/// future is dropped exactly once, and the output once if it was made.
#[test]
fn abort_racing_completion_is_observed_once() {
    loom::model(|| {
        let sched = FakeScheduler::new();
        let future_drops = Arc::new(AtomicUsize::new(0));
        let output_drops = Arc::new(AtomicUsize::new(0));
        let handle = {
            let guard = DropCount(future_drops.clone());
            let out = output_drops.clone();
            Arc::new(sched.spawn(async move {
                let _guard = guard;
                DropCount(out)
            }))
        };
        let aborter = {
            let handle = handle.clone();
            thread::spawn(move || handle.abort())
        };
        let task = sched.pop().expect("spawned");
        task.run(0);
        aborter.join().unwrap();
        // An abort of the idle, already-queued task queued nothing new; one
        // that found it complete did nothing.
        assert_eq!(sched.run_all(), 0);
        assert_eq!(future_drops.load(Ordering::SeqCst), 1);
        let mut handle = Arc::try_unwrap(handle).unwrap_or_else(|_| panic!("one handle"));
        match poll_once(&mut handle) {
            Poll::Ready(Ok(output)) => {
                assert_eq!(output_drops.load(Ordering::SeqCst), 0);
                drop(output);
                assert_eq!(output_drops.load(Ordering::SeqCst), 1);
            }
            Poll::Ready(Err(e)) => {
                assert!(e.is_cancelled());
                assert_eq!(output_drops.load(Ordering::SeqCst), 0);
            }
            Poll::Pending => panic!("the task finished"),
        }
        drop(handle);
        assert_eq!(Arc::strong_count(&sched), 1);
    });
}

/// (c) The `JoinHandle` is dropped on another thread while the task
/// completes: the output is dropped exactly once, by whoever owns it then
/// (the runner if the handle was gone at COMPLETE, else the handle).
#[test]
fn join_handle_drop_racing_completion_drops_the_output_once() {
    loom::model(|| {
        let sched = FakeScheduler::new();
        let output_drops = Arc::new(AtomicUsize::new(0));
        let handle = {
            let out = output_drops.clone();
            sched.spawn(async move { DropCount(out) })
        };
        let dropper = thread::spawn(move || drop(handle));
        let task = sched.pop().expect("spawned");
        task.run(0);
        dropper.join().unwrap();
        assert_eq!(output_drops.load(Ordering::SeqCst), 1);
        assert_eq!(sched.completed(), 1);
        assert_eq!(Arc::strong_count(&sched), 1);
    });
}
