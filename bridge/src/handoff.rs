//! The hand-off between a blocking job and the future that awaits it: a
//! one-shot slot for the job's outcome, plus a slot for the awaiting task's
//! waker, in one allocation, synchronised by one atomic word.
//!
//! This is the only module of the crate (with the reference cast in
//! `scope.rs`) that uses `unsafe`; its tests run under Miri
//! (`cargo +nightly miri test -p baton-bridge --lib handoff`), and the loom
//! models in `loom-tests/` drive it through [`BlockingJob`](crate::BlockingJob)
//! with loom threads in place of rayon's.
//!
//! # The protocol
//!
//! Two parties share a [`Shared`]: the *completer* (owned by the job, runs on
//! a pool thread) and the *task* ([`BlockingTask`], owned by whoever awaits
//! the result). The state word has three bits:
//!
//! ```text
//!  COMPLETE   the outcome slot is filled; from now on it belongs to the task
//!  WAKER      the waker slot holds a waker the completer may wake
//!  CANCELLED  the task was dropped; it will never look at the slots again
//! ```
//!
//! Who may touch what:
//!
//! * **Outcome slot.** Before COMPLETE only the completer touches it (it
//!   writes the outcome, then sets COMPLETE with Release). After COMPLETE only
//!   the task touches it (it observed COMPLETE with Acquire, then takes the
//!   outcome) — unless CANCELLED is set, in which case the task is gone and
//!   the completer takes the outcome back to drop it on its own thread.
//! * **Waker slot.** While WAKER is clear, only the task touches it: it writes
//!   a waker, then sets WAKER with Release. While WAKER is set, both parties
//!   may only *read* it: the completer reads it to wake (`wake_by_ref`) after
//!   setting COMPLETE and finding WAKER in the previous value; the task reads
//!   it to ask `will_wake`. To replace a stale waker, the task clears WAKER
//!   with a compare-and-swap that fails if COMPLETE is set: if it succeeds,
//!   the completer has not set COMPLETE yet, will find WAKER clear when it
//!   does, and so will not read the slot — the task owns it again. If it
//!   fails because COMPLETE is set, the completer may be reading the slot
//!   right now; the task leaves it alone and takes the outcome instead.
//! * **Races.** The completer's `fetch_or(COMPLETE)` and the task's
//!   `fetch_or(WAKER)` are both read-modify-writes of one word, so exactly one
//!   of them sees the other: if the completer comes second it sees WAKER and
//!   wakes the waker (whose write the task published with Release); if the
//!   task comes second it sees COMPLETE and returns the outcome at once
//!   without waiting for a wake-up that will never come.
//! * **Cancellation.** Dropping the task sets CANCELLED. A job that has not
//!   started checks the bit and skips the closure; a job that has finished
//!   finds it in the previous value of its `fetch_or(COMPLETE)` and drops the
//!   outcome itself. Neither slot is touched by the task after CANCELLED.
//! * **Teardown.** Leftovers (a waker, an outcome nobody took) are dropped
//!   with the allocation, by whichever party drops the last reference; the
//!   reference count orders that after every access above.
//!
//! A completer dropped without completing (a job that was never run, e.g.
//! because its pool was torn down) completes with [`Outcome::Abandoned`], so
//! the awaiting task gets a clear panic instead of hanging forever.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};
use std::{fmt, panic};

use baton_sync::{Arc, AtomicUsize, Ordering, UnsafeCell};

const COMPLETE: usize = 1;
const WAKER: usize = 2;
const CANCELLED: usize = 4;

/// How a blocking job ended.
pub(crate) enum Outcome<R> {
    /// The closure returned this value.
    Done(R),
    /// The closure panicked with this payload.
    Panicked(Box<dyn Any + Send + 'static>),
    /// The job's context was entered elsewhere; the closure did not run.
    AlreadyEntered,
    /// The job was dropped without being run.
    Abandoned,
}

struct Shared<R> {
    state: AtomicUsize,
    outcome: UnsafeCell<Option<Outcome<R>>>,
    waker: UnsafeCell<Option<Waker>>,
}

// SAFETY: `Shared` is only reachable through one `Completer` and one
// `BlockingTask`, which access the cells as the protocol above prescribes:
// each slot is written by one party at a time, and handed over through the
// state word with Release/Acquire, so no two threads access a cell at once
// unless both only read it (the waker slot, while WAKER is set; `Waker` is
// `Sync`). The outcome is moved between threads, never shared, so `R: Send`
// suffices.
unsafe impl<R: Send> Send for Shared<R> {}
// SAFETY: as above.
unsafe impl<R: Send> Sync for Shared<R> {}

/// Creates the two ends of a hand-off.
pub(crate) fn channel<R>() -> (Completer<R>, BlockingTask<R>) {
    let shared = Arc::new(Shared {
        state: AtomicUsize::new(0),
        outcome: UnsafeCell::new(None),
        waker: UnsafeCell::new(None),
    });
    (
        Completer {
            shared: Some(shared.clone()),
        },
        BlockingTask {
            shared: Some(shared),
        },
    )
}

/// The job's end of the hand-off.
pub(crate) struct Completer<R> {
    /// `None` once completed.
    shared: Option<Arc<Shared<R>>>,
}

impl<R> Completer<R> {
    /// Whether the awaiting task has been dropped (the job may be skipped).
    #[inline]
    pub(crate) fn is_cancelled(&self) -> bool {
        self.shared
            .as_ref()
            .is_none_or(|s| s.state.load(Ordering::Acquire) & CANCELLED != 0)
    }

    /// Hands `outcome` to the task and wakes it. If the task is gone, the
    /// outcome is given back, for the caller to drop.
    pub(crate) fn complete(mut self, outcome: Outcome<R>) -> Option<Outcome<R>> {
        let shared = self.shared.take().expect("completed once");
        Self::complete_shared(&shared, outcome)
    }

    fn complete_shared(shared: &Shared<R>, outcome: Outcome<R>) -> Option<Outcome<R>> {
        if shared.state.load(Ordering::Acquire) & CANCELLED != 0 {
            return Some(outcome);
        }
        // SAFETY: COMPLETE is not set yet, so the outcome slot is ours.
        shared
            .outcome
            .with_mut(|slot| unsafe { *slot = Some(outcome) });
        let prev = shared.state.fetch_or(COMPLETE, Ordering::AcqRel);
        if prev & CANCELLED != 0 {
            // SAFETY: the task is gone and never touches the slots after
            // setting CANCELLED; we hold a reference, so the slot is alive.
            return shared.outcome.with_mut(|slot| unsafe { (*slot).take() });
        }
        if prev & WAKER != 0 {
            shared.waker.with(|waker| {
                // SAFETY: WAKER was set when we set COMPLETE, so the task
                // will not write the waker slot again (its clearing CAS fails
                // on COMPLETE); both of us only read it from now on. Acquire
                // above pairs with the Release that published the waker.
                if let Some(waker) = unsafe { &*waker } {
                    waker.wake_by_ref();
                }
            });
        }
        None
    }
}

impl<R> Drop for Completer<R> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            // Never completed: do not leave the task waiting forever.
            drop(Self::complete_shared(&shared, Outcome::Abandoned));
        }
    }
}

/// The future returned by [`run_blocking`](crate::run_blocking) and friends:
/// resolves to the closure's return value once the job has run on its pool.
///
/// It needs nothing from the executor that polls it but a
/// [`Waker`](std::task::Waker): it works on baton's runtime, on tokio, or in
/// `futures::executor::block_on`. It is `Send` when `R` is, and `Unpin`.
///
/// The job is submitted to the pool when `run_blocking` is called, not when
/// this future is first polled (like tokio's `spawn_blocking`).
///
/// # Dropping it
///
/// Dropping a `BlockingTask` before its job has started cancels the job: the
/// closure is dropped (inside the job's context) without being called. If the
/// job has started, it runs to completion and its result is discarded (on
/// the pool thread, inside the job's context, if the task was dropped
/// first).
///
/// # Panics
///
/// Awaiting it panics when the job could not deliver a value:
///
/// * if the closure panicked, that panic is resumed here
///   ([`std::panic::resume_unwind`]), with the original payload;
/// * if the job was to enter a context that was entered elsewhere at the time
///   (see [`RunBlocking::run_blocking`](crate::RunBlocking::run_blocking)), it
///   panics with a message containing "already entered"; the closure was not
///   called;
/// * if the job was dropped without running (its pool was shut down), it
///   panics saying so.
///
/// Polling it again after it returned `Ready` panics.
#[must_use = "dropping a BlockingTask cancels its job if it has not started yet"]
pub struct BlockingTask<R> {
    /// `None` once the outcome was taken.
    shared: Option<Arc<Shared<R>>>,
}

impl<R> BlockingTask<R> {
    /// Whether the job has finished, so that polling would return `Ready`
    /// (or panic). Returns `false` after the outcome was taken.
    pub fn is_finished(&self) -> bool {
        self.shared
            .as_ref()
            .is_some_and(|s| s.state.load(Ordering::Acquire) & COMPLETE != 0)
    }

    /// Registers `waker` unless the job is complete; returns whether it is.
    fn register(shared: &Shared<R>, waker: &Waker) -> bool {
        let mut state = shared.state.load(Ordering::Acquire);
        if state & COMPLETE != 0 {
            return true;
        }
        if state & WAKER != 0 {
            let same = shared.waker.with(|slot| {
                // SAFETY: while WAKER is set both parties only read the slot.
                unsafe { &*slot }
                    .as_ref()
                    .is_some_and(|stored| stored.will_wake(waker))
            });
            if same {
                return false;
            }
            // Take the slot back, unless the job completed meanwhile.
            loop {
                if state & COMPLETE != 0 {
                    return true;
                }
                match shared.state.compare_exchange_weak(
                    state,
                    state & !WAKER,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => break,
                    Err(actual) => state = actual,
                }
            }
        }
        // SAFETY: WAKER is clear and only we set it, so the completer will
        // not read the slot before our Release below; we own it.
        shared
            .waker
            .with_mut(|slot| unsafe { *slot = Some(waker.clone()) });
        let prev = shared.state.fetch_or(WAKER, Ordering::AcqRel);
        prev & COMPLETE != 0
    }
}

impl<R> Future for BlockingTask<R> {
    type Output = R;

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<R> {
        let shared = self
            .shared
            .as_ref()
            .expect("BlockingTask polled after completion");
        if !Self::register(shared, cx.waker()) {
            return Poll::Pending;
        }
        // SAFETY: we observed COMPLETE with Acquire: the outcome slot is
        // ours, and the completer's write to it is visible.
        let outcome = shared
            .outcome
            .with_mut(|slot| unsafe { (*slot).take() })
            .expect("outcome taken once");
        self.shared = None;
        match outcome {
            Outcome::Done(value) => Poll::Ready(value),
            Outcome::Panicked(payload) => panic::resume_unwind(payload),
            Outcome::AlreadyEntered => panic!(
                "baton: run_blocking cannot run in this context: {}",
                baton_context::ContextError::AlreadyEntered
            ),
            Outcome::Abandoned => panic!(
                "baton: the blocking job was dropped without running (was its thread pool shut down?)"
            ),
        }
    }
}

impl<R> Drop for BlockingTask<R> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.state.fetch_or(CANCELLED, Ordering::AcqRel);
        }
    }
}

impl<R> fmt::Debug for BlockingTask<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingTask")
            .field("finished", &self.is_finished())
            .finish()
    }
}

#[cfg(all(test, not(baton_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize as StdAtomicUsize;
    use std::sync::mpsc;
    use std::task::Wake;

    struct CountWaker(StdAtomicUsize);
    impl Wake for CountWaker {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counting_waker() -> (std::sync::Arc<CountWaker>, Waker) {
        let w = std::sync::Arc::new(CountWaker(StdAtomicUsize::new(0)));
        (w.clone(), Waker::from(w))
    }

    fn poll<R>(task: &mut BlockingTask<R>, waker: &Waker) -> Poll<R> {
        Pin::new(task).poll(&mut TaskContext::from_waker(waker))
    }

    #[test]
    fn handoff_complete_before_poll() {
        let (completer, mut task) = channel::<u32>();
        assert!(!task.is_finished());
        assert!(completer.complete(Outcome::Done(7)).is_none());
        assert!(task.is_finished());
        let (count, waker) = counting_waker();
        assert!(matches!(poll(&mut task, &waker), Poll::Ready(7)));
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn handoff_poll_then_complete_wakes_latest_waker() {
        let (completer, mut task) = channel::<String>();
        let (first, w1) = counting_waker();
        let (second, w2) = counting_waker();
        assert!(poll(&mut task, &w1).is_pending());
        assert!(poll(&mut task, &w1).is_pending());
        assert!(poll(&mut task, &w2).is_pending());
        assert!(completer.complete(Outcome::Done("x".into())).is_none());
        assert_eq!(first.0.load(Ordering::SeqCst), 0);
        assert_eq!(second.0.load(Ordering::SeqCst), 1);
        assert!(matches!(poll(&mut task, &w2), Poll::Ready(s) if s == "x"));
    }

    #[test]
    fn handoff_cancelled_gives_outcome_back() {
        let (completer, task) = channel::<Box<u32>>();
        drop(task);
        assert!(completer.is_cancelled());
        let back = completer.complete(Outcome::Done(Box::new(3)));
        assert!(matches!(back, Some(Outcome::Done(b)) if *b == 3));
    }

    #[test]
    fn handoff_dropped_after_completion_frees_outcome() {
        let (completer, mut task) = channel::<Box<u32>>();
        let (_count, waker) = counting_waker();
        assert!(poll(&mut task, &waker).is_pending());
        assert!(completer.complete(Outcome::Done(Box::new(3))).is_none());
        drop(task); // the outcome and the waker go with the allocation
    }

    #[test]
    fn handoff_abandoned_completer_panics_the_task() {
        let (completer, mut task) = channel::<u32>();
        drop(completer);
        let (_count, waker) = counting_waker();
        let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = poll(&mut task, &waker);
        }))
        .unwrap_err();
        let msg = err
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| err.downcast_ref::<String>().cloned())
            .unwrap();
        assert!(msg.contains("dropped without running"), "{msg}");
    }

    #[test]
    fn handoff_races_across_threads() {
        // The completer on another thread races the task's registration.
        for round in 0..if cfg!(miri) { 20 } else { 2000 } {
            let (completer, mut task) = channel::<usize>();
            let (tx, rx) = mpsc::channel::<()>();
            let t = std::thread::spawn(move || {
                rx.recv().unwrap();
                assert!(completer.complete(Outcome::Done(round)).is_none());
            });
            let (count, waker) = counting_waker();
            tx.send(()).unwrap();
            let got = loop {
                match poll(&mut task, &waker) {
                    Poll::Ready(v) => break v,
                    Poll::Pending => {
                        // Spin until woken: a lost wake-up would hang here.
                        while count.0.load(Ordering::SeqCst) == 0 {
                            std::thread::yield_now();
                        }
                    }
                }
            };
            assert_eq!(got, round);
            t.join().unwrap();
        }
    }

    #[test]
    fn handoff_cancel_races_completion() {
        for _ in 0..if cfg!(miri) { 20 } else { 2000 } {
            let (completer, task) = channel::<Box<usize>>();
            let t =
                std::thread::spawn(move || drop(completer.complete(Outcome::Done(Box::new(1)))));
            drop(task);
            t.join().unwrap();
        }
    }
}
