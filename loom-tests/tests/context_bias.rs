//! Model 10: biased entering (`context/src/bias.rs`).
//!
//! A context entered over and over by one thread is biased to it, and that
//! thread then enters with plain loads and stores. Another thread must
//! revoke the bias before it may enter. These models race the owner's fast
//! entries against a revoking thread: exactly one gets in when the attempts
//! overlap, nobody is ever inside together with someone else, and whoever
//! enters later sees the earlier run's writes. (Under loom both sides of the
//! asymmetric barrier are `SeqCst` fences, and a context is biased after one
//! run.)
#![cfg(loom)]

use baton_context::{Context, ContextVar};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::thread;

mod support;
use support::{Overlap, the_one_that_entered};

static VAR: ContextVar<u32> = ContextVar::new("var");

/// A context that the calling thread has run once (and so is biased to it),
/// with `VAR` bound to 1.
fn biased() -> Context {
    let ctx = Context::new();
    ctx.run(|| {
        let _ = VAR.set(1);
    });
    ctx
}

/// The owner and another thread try to enter at once; whoever gets in stays
/// until the other has tried, so the attempts overlap: exactly one succeeds.
#[test]
fn the_owner_and_a_revoker_race_to_enter() {
    support::model("the_owner_and_a_revoker_race_to_enter", || {
        let ctx = biased();
        let overlap = Arc::new(Overlap::new());
        let inside = Arc::new(AtomicBool::new(false));

        let contender = |me: usize, value: u32| {
            let ctx = ctx.clone();
            let overlap = overlap.clone();
            let inside = inside.clone();
            move || {
                let result = ctx.try_run(|| {
                    assert!(!inside.swap(true, Ordering::SeqCst), "two inside");
                    assert_eq!(VAR.get(), Some(1));
                    let _ = VAR.set(value);
                    overlap.stay_inside(me);
                    inside.store(false, Ordering::SeqCst);
                });
                overlap.attempted(me, &result);
                result
            }
        };

        let other = thread::spawn(contender(1, 20));
        let mine = contender(0, 10)();
        let theirs = other.join().unwrap();
        let winner = the_one_that_entered([mine, theirs]);
        assert_eq!(ctx.get(&VAR), Some([10, 20][winner]));
        assert!(!ctx.is_entered());
    });
}

/// The owner tries twice (the fast path, until revoked) while another thread
/// tries once: the runs never overlap, and each sees the ones before it.
#[test]
fn the_owner_and_another_thread_take_turns() {
    support::model("the_owner_and_another_thread_take_turns", || {
        let ctx = biased();
        let inside = Arc::new(AtomicBool::new(false));
        let step = |ctx: &Context, inside: &AtomicBool| {
            ctx.try_run(|| {
                assert!(!inside.swap(true, Ordering::SeqCst), "two inside");
                let n = VAR.get().expect("bound");
                let _ = VAR.set(n + 1);
                inside.store(false, Ordering::SeqCst);
            })
            .is_ok() as u32
        };
        let other = {
            let ctx = ctx.clone();
            let inside = inside.clone();
            thread::spawn(move || step(&ctx, &inside))
        };
        let mine = step(&ctx, &inside) + step(&ctx, &inside);
        let theirs = other.join().unwrap();
        // Each run saw all the earlier ones' writes: no increment is lost.
        assert_eq!(ctx.get(&VAR), Some(1 + mine + theirs));
        // Failures are only ever due to someone else being inside.
        assert!(mine + theirs >= 1, "somebody got in");
    });
}
