//! Shared pieces of the loom models.
#![allow(dead_code)]

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize as StdAtomicUsize, Ordering as StdOrdering};
use std::task::{Context as TaskContext, Poll, Wake, Waker};

/// A minimal executor for one future, parking on loom's `Notify`.
pub fn block_on<F: Future>(fut: F) -> F::Output {
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
pub fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
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
pub fn spin_until(mut done: impl FnMut() -> bool) {
    while !done() {
        loom::thread::yield_now();
    }
}

/// A record of the first violation found in any interleaving, for checks
/// that run where panicking would unwind through loom's objects (futures'
/// destructors during shutdown). Raised when the model has finished.
pub struct Violations(std::sync::Mutex<Option<String>>);

impl Violations {
    pub const fn new() -> Self {
        Violations(std::sync::Mutex::new(None))
    }

    pub fn check(&self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.lock().unwrap().get_or_insert_with(what);
        }
    }

    pub fn raise(&self) {
        if let Some(violation) = self.0.lock().unwrap().take() {
            panic!("{violation}");
        }
    }
}
