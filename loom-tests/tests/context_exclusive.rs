//! Model: an attached future's sole handle enters its context with plain
//! loads and stores.
//!
//! `Attached::poll` holds its `Context` handle by `&mut`; if the handle count
//! (read with Acquire) says it is the only one, no other thread can reach the
//! context, and it is claimed without a compare-and-swap. Once the other
//! holder's handle is gone, the count is the only thing that orders the poll
//! after that holder's last run: the first model races the run and the drop
//! of the handle against polls, with no other synchronisation between the
//! two threads, and checks that the polls see the run's write and never
//! touch the map cell without being ordered after it (a Relaxed count is
//! caught: mutation-checked).
#![cfg(baton_loom)]

use std::future::poll_fn;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::task::Poll;

use baton_context::{Context, ContextVar};
use loom::thread;

mod support;
use support::model;

static VAR: ContextVar<u32> = ContextVar::new("var");

#[test]
fn the_sole_handle_sees_the_last_holders_run() {
    quiet_refusals();
    model("the_sole_handle_sees_the_last_holders_run", || {
        let ctx = Context::new();
        let theirs = ctx.clone();
        let other = thread::spawn(move || {
            let ran = theirs.try_run(|| {
                let _ = VAR.set(2);
            });
            drop(theirs);
            ran.is_ok()
        });
        let mut fut = Box::pin(ctx.attach(poll_fn(|_| match VAR.get() {
            Some(seen) => Poll::Ready(seen),
            None => Poll::Pending,
        })));
        drop(ctx);
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        // One poll, ordered after the other thread by nothing but the
        // context itself: two handles until that thread's drop (the
        // compare-and-swap, refused while it is inside: the poll panics),
        // then one (the exclusive path, ordered by the count alone).
        let polled = catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx)));
        let they_ran = other.join().unwrap();
        match polled {
            Ok(Poll::Ready(seen)) => assert_eq!(seen, 2),
            Ok(Poll::Pending) => {}
            Err(_) => assert!(they_ran, "refused, yet nobody else was inside"),
        }
        assert_eq!(fut.context().get(&VAR), they_ran.then_some(2));
    });
}

/// Silences the panics of refused polls (retried by the model); every other
/// panic goes to the default hook.
fn quiet_refusals() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let refused = info
            .payload()
            .downcast_ref::<String>()
            .is_some_and(|m| m.contains("cannot poll an attached future"));
        if !refused {
            default(info);
        }
    }));
}

/// The poll writes through the exclusive path; a handle cloned afterwards
/// goes to another thread, which enters by the compare-and-swap while the
/// future, now one of two handles, is polled again by the same path: the
/// two never get in together, and each sees the other's completed writes.
#[test]
fn a_handle_cloned_after_an_exclusive_poll_races_the_next_poll() {
    quiet_refusals();
    model(
        "a_handle_cloned_after_an_exclusive_poll_races_the_next_poll",
        || {
            let mut fut = Box::pin(Context::new().attach(poll_fn(|_| {
                let seen = VAR.get().unwrap_or(0);
                let _ = VAR.set(seen + 1);
                Poll::<()>::Pending
            })));
            let waker = std::task::Waker::noop();
            let mut cx = std::task::Context::from_waker(waker);
            assert!(fut.as_mut().poll(&mut cx).is_pending()); // exclusive: 0 -> 1
            let theirs = fut.context().clone();
            let other = thread::spawn(move || {
                theirs.try_run(|| {
                    let seen = VAR.get().unwrap_or(0);
                    let _ = VAR.set(seen + 10);
                    seen
                })
            });
            let polled = catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx)));
            let theirs = other.join().unwrap();
            let mine = polled.is_ok();
            // Both got in (one after the other), or exactly one was refused.
            let expected = 1 + if mine { 1 } else { 0 } + if theirs.is_ok() { 10 } else { 0 };
            assert!(mine || theirs.is_ok(), "both refused");
            assert_eq!(fut.context().get(&VAR), Some(expected));
            if let Ok(seen) = theirs {
                // They saw the first poll's write, and the second poll's if it
                // got in first.
                assert!(seen == 1 || (mine && seen == 2), "they saw {seen}");
            }
        },
    );
}
