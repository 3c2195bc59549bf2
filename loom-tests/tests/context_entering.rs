//! Model 1: entering a context, and reading it from other threads.
//!
//! Runs `baton-context`'s real code: under `--cfg baton_loom` its state word,
//! its map cell and its per-thread current context are loom's.
#![cfg(baton_loom)]

use baton_context::{Context, ContextVar};
use loom::sync::Arc;
use loom::thread;

mod support;
use support::{Overlap, the_one_that_entered};

static VAR: ContextVar<u32> = ContextVar::new("var");
static OTHER: ContextVar<u32> = ContextVar::new("other");

/// Two threads race to `run` the same context. Whoever gets in stays inside
/// until the other has made its attempt, so the attempts overlap: exactly one
/// succeeds, the other gets `AlreadyEntered`, and neither thread's own context
/// changes.
#[test]
fn two_threads_race_to_enter_one_context() {
    loom::model(|| {
        let ctx = Context::new();
        let overlap = Arc::new(Overlap::new());

        let contender = |me: usize, own: u32, inside: u32| {
            let ctx = ctx.clone();
            let overlap = overlap.clone();
            move || {
                let _own = VAR.set(own);
                let result = ctx.try_run(|| {
                    let _ = VAR.set(inside);
                    overlap.stay_inside(me);
                });
                overlap.attempted(me, &result);
                // This thread's own context is untouched either way.
                assert_eq!(VAR.get(), Some(own));
                result
            }
        };

        let other = thread::spawn(contender(1, 2, 20));
        let mine = contender(0, 1, 10)();
        let theirs = other.join().unwrap();

        let winner = the_one_that_entered([mine, theirs]);
        assert_eq!(ctx.get(&VAR), Some([10, 20][winner]));
        assert!(!ctx.is_entered());
    });
}

/// A thread publishes bindings while another reads the context: every
/// snapshot holds both variables or neither (the map cell is never read while
/// written; loom's cell tracking would flag that too).
#[test]
fn readers_see_whole_publishes() {
    loom::model(|| {
        let ctx = Context::new();
        let writer = {
            let ctx = ctx.clone();
            thread::spawn(move || {
                ctx.run(|| {
                    let _ = VAR.set(1);
                    let _ = OTHER.set(1);
                });
            })
        };
        let snapshot = ctx.copy();
        assert_eq!(snapshot.get(&VAR), snapshot.get(&OTHER));
        writer.join().unwrap();
        assert_eq!(ctx.get(&VAR), Some(1));
        assert_eq!(ctx.get(&OTHER), Some(1));
    });
}

/// Nested entering on two threads at once: each thread's stack of contexts is
/// restored exactly, and writes land where they were made.
#[test]
fn nested_runs_on_two_threads_restore_exactly() {
    loom::model(|| {
        let outer = Context::new();
        let shared = Context::new();
        let t = {
            let shared = shared.clone();
            thread::spawn(move || {
                let _ = VAR.set(7);
                let entered = shared.try_run(|| {
                    let _ = OTHER.set(70);
                    VAR.get()
                });
                assert_eq!(VAR.get(), Some(7));
                assert_eq!(OTHER.get(), None);
                entered
            })
        };
        outer.run(|| {
            let _ = VAR.set(1);
            let entered = shared.try_run(|| {
                assert_eq!(VAR.get(), None);
                let _ = OTHER.set(10);
            });
            assert_eq!(VAR.get(), Some(1));
            assert_eq!(OTHER.get(), None);
            if entered.is_ok() {
                assert!(matches!(shared.get(&OTHER), Some(10) | Some(70)));
            }
        });
        let theirs = t.join().unwrap();
        assert_eq!(VAR.get(), None);
        assert_eq!(outer.get(&VAR), Some(1));
        if let Ok(seen) = theirs {
            assert_eq!(
                seen, None,
                "a context entered by another thread shows nothing of its own"
            );
        }
    });
}
