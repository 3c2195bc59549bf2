//! Shared pieces of the loom models.
#![allow(dead_code)]

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};
use std::task::{Context as TaskContext, Poll, Wake, Waker};

/// A minimal executor for one future, parking on loom's `Notify`.
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    struct NotifyWaker(loom::sync::Notify);
    impl Wake for NotifyWaker {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.notify();
        }
    }
    let notify = std::sync::Arc::new(NotifyWaker(loom::sync::Notify::new()));
    let waker = Waker::from(notify.clone());
    let mut cx = TaskContext::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready(output) => return output,
            Poll::Pending => notify.0.wait(),
        }
    }
}

/// Runs a model with the given preemption bound (`LOOM_MAX_PREEMPTIONS`
/// overrides it) and reports how many interleavings loom explored.
pub(crate) fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    let runs = std::sync::Arc::new(StdAtomicUsize::new(0));
    let counter = runs.clone();
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    let started = std::time::Instant::now();
    builder.check(move || {
        counter.fetch_add(1, StdOrdering::Relaxed);
        f();
    });
    eprintln!(
        "{name}: {} interleavings in {:.1?}",
        runs.load(StdOrdering::Relaxed),
        started.elapsed()
    );
}

/// Spins until `done()` holds, yielding to loom between checks.
///
/// At most one thread of a model may spin at a time. Loom 0.7 does not
/// count a switch away from a thread that called `yield_now` as a
/// preemption, so two spinning threads can hand the turn to each other
/// forever, starving the thread they wait for without spending any of the
/// preemption bound, until the model fails with "exceeded maximum number of
/// branches", even when the code under test is correct. Let the other
/// threads block instead, or spawn them where what they wait for exists (as
/// model 7 in `executor.rs` spawns its waker thread from the first poll).
pub(crate) fn spin_until(mut done: impl FnMut() -> bool) {
    while !done() {
        loom::thread::yield_now();
    }
}

/// A record of the first violation found in any interleaving, for checks
/// that run where panicking would unwind through loom's objects (futures'
/// destructors during shutdown). Raised when the model has finished.
pub(crate) struct Violations(std::sync::Mutex<Option<String>>);

impl Violations {
    pub(crate) const fn new() -> Self {
        Violations(std::sync::Mutex::new(None))
    }

    pub(crate) fn check(&self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.lock().unwrap().get_or_insert_with(what);
        }
    }

    pub(crate) fn raise(&self) {
        if let Some(violation) = self.0.lock().unwrap().take() {
            panic!("{violation}");
        }
    }
}

/// Makes two threads' attempts to enter one context overlap: whoever gets in
/// stays inside ([`Overlap::stay_inside`]) until the other has made its
/// attempt and failed ([`Overlap::attempted`]).
pub(crate) struct Overlap([loom::sync::atomic::AtomicBool; 2]);

impl Overlap {
    pub(crate) fn new() -> Self {
        Overlap([
            loom::sync::atomic::AtomicBool::new(false),
            loom::sync::atomic::AtomicBool::new(false),
        ])
    }

    /// Called inside the context by contender `me` (0 or 1).
    pub(crate) fn stay_inside(&self, me: usize) {
        spin_until(|| self.0[1 - me].load(loom::sync::atomic::Ordering::Acquire));
    }

    /// Called by contender `me` with the result of its attempt.
    pub(crate) fn attempted<T>(&self, me: usize, result: &Result<T, baton_context::ContextError>) {
        if result.is_err() {
            self.0[me].store(true, loom::sync::atomic::Ordering::Release);
        }
    }
}

/// Which of two overlapping attempts to enter got in (0 or 1); panics
/// unless exactly one did and the other failed with `AlreadyEntered`.
pub(crate) fn the_one_that_entered(
    attempts: [Result<(), baton_context::ContextError>; 2],
) -> usize {
    use baton_context::ContextError::AlreadyEntered;
    match attempts {
        [Ok(()), Err(AlreadyEntered)] => 0,
        [Err(AlreadyEntered), Ok(())] => 1,
        other => panic!("exactly one must enter: {other:?}"),
    }
}
