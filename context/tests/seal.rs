//! `seal_thread`: a sealed thread refuses a `set` in its own base context,
//! with a message that names the fix, and nowhere else. Every test runs on
//! a fresh thread, so that the test harness's threads stay unsealed.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context as TaskContext, Poll, Waker};
use std::thread;

use baton_context::{
    Context, ContextCell, ContextVar, copy_context, is_thread_sealed, seal_thread,
};

static ID: ContextVar<u64> = ContextVar::new("request_id");

/// Runs `f` on a new thread and returns its result (a panic fails the test).
fn on_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    thread::spawn(f).join().expect("the test thread panicked")
}

/// The message of the panic in `f`, or `None` if it did not panic.
fn panic_message(f: impl FnOnce()) -> Option<String> {
    let payload = catch_unwind(AssertUnwindSafe(f)).err()?;
    Some(if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else {
        "<not a string>".to_string()
    })
}

/// The refusal's message: what happened and the fixes, by name.
fn assert_refusal(message: Option<String>) {
    let message = message.expect("the set was not refused");
    for needle in [
        "baton: this thread is sealed",
        "leak into everything that later runs on it",
        "baton::tokio::spawn",
        "Context::attach",
        "copy_context().run(..)",
        "\"request_id\"",
    ] {
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
}

fn poll_once<F: Future>(fut: F) -> Poll<F::Output> {
    let mut fut = pin!(fut);
    fut.as_mut()
        .poll(&mut TaskContext::from_waker(Waker::noop()))
}

#[test]
fn a_set_in_a_sealed_threads_own_context_panics_and_stores_nothing() {
    on_thread(|| {
        assert!(!is_thread_sealed());
        seal_thread();
        assert!(is_thread_sealed());
        assert_refusal(panic_message(|| drop(ID.set(1))));
        assert_eq!(ID.get(), None);
        assert!(copy_context().is_empty());
        // Still refused the second time, and `scope` too.
        assert_refusal(panic_message(|| drop(ID.set(2))));
        assert_refusal(panic_message(|| ID.scope(3, || ())));
        assert_eq!(ID.get(), None);
    });
}

#[test]
fn sealing_is_idempotent_and_per_thread() {
    on_thread(|| {
        seal_thread();
        seal_thread();
        assert!(is_thread_sealed());
        // Another thread is not sealed by this one.
        let other = on_thread(|| {
            let sealed = is_thread_sealed();
            let _ = ID.set(5);
            (sealed, ID.get())
        });
        assert_eq!(other, (false, Some(5)));
    });
}

#[test]
fn an_unsealed_thread_sets_in_its_own_context_as_before() {
    on_thread(|| {
        let token = ID.set(1);
        assert_eq!(ID.get(), Some(1));
        ID.reset(token).unwrap();
        assert_eq!(ID.get(), None);
    });
}

#[test]
fn inside_run_a_sealed_thread_sets_as_usual() {
    on_thread(|| {
        seal_thread();
        let ctx = Context::new();
        ctx.run(|| {
            let token = ID.set(1);
            assert_eq!(ID.get(), Some(1));
            ID.reset(token).unwrap();
            let _ = ID.set(2);
        });
        assert_eq!(ctx.get(&ID), Some(2));
        assert_eq!(ID.get(), None);
        // copy_context().run(..), the fix the message names.
        let copy = copy_context();
        copy.run(|| {
            let _ = ID.set(3);
            // Nested runs too.
            Context::new().run(|| drop(ID.set(4)));
        });
        assert_eq!(copy.get(&ID), Some(3));
        // Back in the base context: refused again.
        assert_refusal(panic_message(|| drop(ID.set(5))));
        assert_eq!(ID.get(), None);
    });
}

#[test]
fn an_attached_future_on_a_sealed_thread_sets_as_usual() {
    on_thread(|| {
        seal_thread();
        let ctx = copy_context();
        let polled = poll_once(ctx.attach(async {
            let _ = ID.set(1);
            ID.get()
        }));
        assert_eq!(polled, Poll::Ready(Some(1)));
        assert_eq!(ctx.get(&ID), Some(1));
        assert_eq!(ID.get(), None);
    });
}

#[test]
fn a_task_context_on_a_sealed_thread_sets_as_usual() {
    // What baton's executor does around each poll of a task.
    on_thread(|| {
        seal_thread();
        let cell = ContextCell::copy_current();
        cell.run(|| drop(ID.set(9)));
        assert_eq!(cell.run(|| ID.get()), Some(9));
        assert_eq!(ID.get(), None);
    });
}

#[test]
fn a_token_made_before_sealing_may_still_be_reset() {
    on_thread(|| {
        let first = ID.set(1);
        let second = ID.set(2);
        seal_thread();
        // Undoing an older set leaks nothing new.
        ID.reset(second).unwrap();
        assert_eq!(ID.get(), Some(1));
        ID.reset(first).unwrap();
        assert_eq!(ID.get(), None);
    });
}

static DROPS: AtomicUsize = AtomicUsize::new(0);

/// A value whose destructor panics, or sets a variable.
struct Loud(bool);

impl Drop for Loud {
    fn drop(&mut self) {
        DROPS.fetch_add(1, Ordering::SeqCst);
        if self.0 {
            panic!("a destructor panics (on purpose)");
        }
        // Re-entering: refused too, in the same base context.
        assert_refusal(panic_message(|| drop(ID.set(1))));
        Context::new().run(|| drop(ID.set(2)));
    }
}

static LOUD: ContextVar<Loud> = ContextVar::new("loud");

#[test]
fn a_refused_values_destructor_runs_before_the_panic_and_may_panic_or_reenter() {
    on_thread(|| {
        seal_thread();
        let before = DROPS.load(Ordering::SeqCst);
        // Its own panic goes to the hook; the refusal is what propagates.
        let message = panic_message(|| drop(LOUD.set(Loud(true))));
        assert!(message.unwrap().contains("this thread is sealed"));
        let message = panic_message(|| drop(LOUD.set(Loud(false))));
        assert!(message.unwrap().contains("this thread is sealed"));
        assert_eq!(DROPS.load(Ordering::SeqCst), before + 2);
        assert_eq!(ID.get(), None);
        assert!(copy_context().is_empty());
    });
}

#[test]
fn a_sealed_thread_that_panics_in_a_run_is_back_in_its_sealed_base() {
    on_thread(|| {
        seal_thread();
        let ctx = Arc::new(Context::new());
        let inner = ctx.clone();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            inner.run(|| {
                let _ = ID.set(1);
                panic!("in the run");
            })
        }));
        assert!(caught.is_err());
        assert_eq!(ctx.get(&ID), Some(1));
        assert_refusal(panic_message(|| drop(ID.set(2))));
    });
}
