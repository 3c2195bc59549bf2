//! The task core driven by a fake scheduler: [`FakeScheduler`] implements
//! [`Schedule`] by recording what it is handed, and the tests run the
//! recorded tasks by hand. The unit tests below run under Miri as well; the
//! loom models are in `loom.rs`.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll, Waker};

use baton_context::ContextCell;

use crate::task::join::{JoinError, JoinHandle};
use crate::task::list::OwnedTasks;
use crate::task::schedule::{Notified, Schedule, Task};
use baton_sync::{AtomicUsize, Mutex, Ordering};

#[cfg(baton_loom)]
mod loom;

/// A scheduler that runs nothing by itself: scheduled, yielded and
/// deferred tasks wait in `queue` (in order) until a test runs them.
pub(super) struct FakeScheduler {
    queue: Mutex<VecDeque<Notified>>,
    owned: OwnedTasks,
    /// `count_completed` calls.
    completed: AtomicUsize,
    /// Tasks handed over by `yield_now` (a wake during their own poll).
    yielded: AtomicUsize,
}

impl Schedule for FakeScheduler {
    fn schedule(&self, task: Notified) {
        self.queue.lock().push_back(task);
    }

    fn yield_now(&self, task: Notified) {
        self.yielded.fetch_add(1, Ordering::SeqCst);
        self.queue.lock().push_back(task);
    }

    fn defer(&self, task: Notified) {
        self.queue.lock().push_back(task);
    }

    fn count_completed(&self) {
        self.completed.fetch_add(1, Ordering::SeqCst);
    }

    fn release(&self, task: &Task) -> Option<Task> {
        self.owned.remove(task)
    }
}

impl FakeScheduler {
    pub(super) fn new() -> Arc<FakeScheduler> {
        Arc::new(FakeScheduler {
            queue: Mutex::new(VecDeque::new()),
            owned: OwnedTasks::new(1),
            completed: AtomicUsize::new(0),
            yielded: AtomicUsize::new(0),
        })
    }

    /// Spawns `future` in a context of its own; its first `Notified` is
    /// queued.
    pub(super) fn spawn<F>(self: &Arc<Self>, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (handle, notified) = self.owned.bind(future, ContextCell::new(), self.clone());
        self.schedule(notified.expect("the list is open"));
        handle
    }

    /// Takes the oldest queued task.
    pub(super) fn pop(&self) -> Option<Notified> {
        self.queue.lock().pop_front()
    }

    /// Number of queued tasks.
    pub(super) fn queued(&self) -> usize {
        self.queue.lock().len()
    }

    /// Runs queued tasks until none is left; returns how many runs.
    pub(super) fn run_all(&self) -> usize {
        let mut runs = 0;
        while let Some(task) = self.pop() {
            task.run(0);
            runs += 1;
        }
        runs
    }

    pub(super) fn completed(&self) -> usize {
        self.completed.load(Ordering::SeqCst)
    }

    #[cfg(not(baton_loom))]
    pub(super) fn yielded(&self) -> usize {
        self.yielded.load(Ordering::SeqCst)
    }

    /// Shuts every task down and drops the queued references.
    #[cfg(not(baton_loom))]
    pub(super) fn shutdown(&self) {
        self.owned.close_and_shutdown_all(None);
        drop(std::mem::take(&mut *self.queue.lock()));
    }
}

/// Polls a `JoinHandle` once with a waker that does nothing.
pub(super) fn poll_once<T>(handle: &mut JoinHandle<T>) -> Poll<Result<T, JoinError>> {
    Pin::new(handle).poll(&mut TaskCx::from_waker(Waker::noop()))
}

/// Counts its drops.
pub(super) struct DropCount(pub(super) Arc<AtomicUsize>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Returns `Pending` (and wakes itself by reference) `n` times, then
/// `Ready(output)`.
#[cfg(not(baton_loom))]
pub(super) struct YieldThen<T> {
    pub(super) n: usize,
    pub(super) output: Option<T>,
}

#[cfg(not(baton_loom))]
impl<T: Unpin> Future for YieldThen<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<T> {
        if self.n == 0 {
            return Poll::Ready(self.output.take().expect("polled after Ready"));
        }
        self.n -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(not(baton_loom))]
mod unit {
    use std::mem::size_of;

    use super::*;
    use crate::task::cell::{Cell, Head, Stage};
    use crate::task::state::ToRunning;
    use baton_sync::UnsafeCell;

    struct Fut64([u64; 8]);
    impl Future for Fut64 {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _: &mut TaskCx<'_>) -> Poll<()> {
            Poll::Ready(())
        }
    }

    #[test]
    fn one_task_with_a_64_byte_future_is_56_bytes_context_and_64_bytes() {
        let head = size_of::<Head<FakeScheduler>>();
        let stage = size_of::<UnsafeCell<Stage<Fut64>>>();
        let context = size_of::<ContextCell>();
        let size = size_of::<Cell<Fut64, ContextCell, FakeScheduler>>();
        println!(
            "task allocation with a 64-byte future: {size} bytes \
             (header and scheduler {head}, context {context}, stage {stage})"
        );
        assert!(head <= 56, "{head}");
        // No discriminant: the stage costs the future's bytes alone.
        assert_eq!(stage, size_of::<Fut64>());
        assert!(size <= 56 + context + 64, "{size}");
        let _ = Fut64([0; 8]).0;
    }

    #[test]
    fn a_task_runs_to_completion_and_is_freed() {
        let sched = FakeScheduler::new();
        let mut handle = sched.spawn(async { 7 });
        assert!(poll_once(&mut handle).is_pending());
        assert_eq!(sched.run_all(), 1);
        assert!(handle.is_finished());
        assert_eq!(sched.completed(), 1);
        assert!(matches!(poll_once(&mut handle), Poll::Ready(Ok(7))));
        drop(handle);
        // The task (which held a scheduler handle) is gone.
        assert_eq!(Arc::strong_count(&sched), 1);
    }

    #[test]
    fn a_wake_during_the_poll_yields_once() {
        let sched = FakeScheduler::new();
        let mut handle = sched.spawn(YieldThen {
            n: 2,
            output: Some(()),
        });
        assert_eq!(sched.run_all(), 3);
        assert_eq!(sched.yielded(), 2);
        assert!(matches!(poll_once(&mut handle), Poll::Ready(Ok(()))));
    }

    #[test]
    fn abort_of_an_idle_task_drops_its_future_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let guard = DropCount(drops.clone());
        let sched = FakeScheduler::new();
        let (tx, rx) = std::sync::mpsc::channel::<Waker>();
        let mut handle = sched.spawn(std::future::poll_fn(move |cx| {
            let _ = &guard;
            let _ = tx.send(cx.waker().clone());
            Poll::<()>::Pending
        }));
        assert_eq!(sched.run_all(), 1);
        handle.abort();
        assert_eq!(sched.queued(), 1);
        // A second abort, and a wake, add nothing.
        handle.abort();
        rx.recv().unwrap().wake();
        assert_eq!(sched.queued(), 1);
        assert_eq!(sched.run_all(), 1);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        match poll_once(&mut handle) {
            Poll::Ready(Err(e)) => assert!(e.is_cancelled()),
            _ => panic!("expected a cancellation"),
        }
        drop(handle);
        assert_eq!(Arc::strong_count(&sched), 1);
    }

    #[test]
    fn a_detached_task_drops_its_output() {
        let drops = Arc::new(AtomicUsize::new(0));
        let sched = FakeScheduler::new();
        let out = DropCount(drops.clone());
        drop(sched.spawn(async move { out }));
        assert_eq!(sched.run_all(), 1);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert_eq!(Arc::strong_count(&sched), 1);
    }

    #[test]
    fn a_panicking_poll_becomes_a_join_error() {
        let sched = FakeScheduler::new();
        let mut handle = sched.spawn(async { panic!("boom") });
        sched.run_all();
        match poll_once::<()>(&mut handle) {
            Poll::Ready(Err(e)) => assert!(e.is_panic()),
            _ => panic!("expected a panic error"),
        }
    }

    #[test]
    fn shutdown_cancels_idle_tasks_and_refuses_new_ones() {
        let drops = Arc::new(AtomicUsize::new(0));
        let guard = DropCount(drops.clone());
        let sched = FakeScheduler::new();
        let mut idle = sched.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await
        });
        assert_eq!(sched.run_all(), 1);
        sched.shutdown();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert!(matches!(poll_once(&mut idle), Poll::Ready(Err(e)) if e.is_cancelled()));
        // Closed: a new task is cancelled at once, and nothing is queued.
        let (mut late, notified) = sched
            .owned
            .bind(async {}, ContextCell::new(), sched.clone());
        assert!(notified.is_none());
        assert!(matches!(poll_once(&mut late), Poll::Ready(Err(e)) if e.is_cancelled()));
        drop((idle, late));
        assert_eq!(Arc::strong_count(&sched), 1);
    }

    /// The runtime shut down while a worker was running the task: shutdown
    /// found it RUNNING (and dropped the owned list's reference), then the
    /// runner could not enter the task's context to drop the future and its
    /// re-queued `Notified` was dropped by the closed queues. The last
    /// reference (the handle's) frees a task that is not COMPLETE: `dealloc`
    /// must drop the future, once.
    #[test]
    fn dealloc_drops_the_future_of_a_task_that_never_completed() {
        let drops = Arc::new(AtomicUsize::new(0));
        let guard = DropCount(drops.clone());
        let sched = FakeScheduler::new();
        let handle = sched.spawn(async move {
            let _guard = guard;
            std::future::pending::<()>().await
        });
        // The simulated runner takes the Notified's reference.
        let raw = sched.pop().unwrap().into_raw();
        // SAFETY: the runner's reference keeps the task alive.
        let state = unsafe { raw.state() };
        assert_eq!(state.transition_to_running(0).0, ToRunning::Success);
        sched.shutdown();
        assert!(state.load().is_cancelled() && state.load().is_running());
        // The runner gives RUNNING up (context busy) and its Notified is
        // dropped by the closed queue.
        state.transition_running_to_notified();
        // SAFETY: the runner's reference becomes the Notified's.
        drop(unsafe { Notified::from_raw(raw) });
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        assert_eq!(state.load().ref_count(), 1);
        drop(handle);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        assert_eq!(Arc::strong_count(&sched), 1);
    }
}
