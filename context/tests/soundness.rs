//! User code that runs inside the context machinery — a value's `Drop` or
//! `Clone`, a default function, a polled future — panicking or re-entering
//! (entering a context, setting a variable, copying the context) at every
//! point where this crate runs it. The list of those points is in the
//! crate's docs ("Where user code runs"); each has a panicking and a
//! re-entrant test here.
//!
//! After each: the thread is back in its own context, no context is left
//! claimed, no binding appears where it was not made, nothing aborts and
//! nothing hangs.
//!
//! The first four tests are the reproductions of the review that found
//! these bugs; on the code they were found in, they read freed memory, hang
//! or abort the process. So every test here runs in a child process (this
//! test binary, run again for that one test) with a deadline, and on a
//! fresh thread: a regression is a failed test, never a dead test binary.
//! Under Miri, which cannot start processes, they run in-process.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread;

use baton_context::{Context, ContextError, ContextVar, copy_context};

#[path = "support/user_code.rs"]
mod user_code;
use user_code::*;

/// Holds a value that acts when dropped.
static V: ContextVar<OnDrop> = ContextVar::new("v");
/// A second variable of the same kind.
static W: ContextVar<OnDrop> = ContextVar::new("w");
/// A plain value, read back after the user code ran.
static S: ContextVar<String> = ContextVar::new("s");
/// Set in the test thread's own context before anything else.
static HOME: ContextVar<&'static str> = ContextVar::new("home");

/// Sets `HOME` in the thread's own context: `assert_home` checks later that
/// the thread is back there.
fn leave_home_mark() {
    let _ = HOME.set("home");
}

/// The thread is in its own context: it sees its own mark, and none of
/// `others` is current or entered.
fn assert_home(others: &[&Context]) {
    assert_eq!(
        HOME.get(),
        Some("home"),
        "the thread is not in its own context"
    );
    for ctx in others {
        assert!(!ctx.is_current(), "a context was left current");
        assert_free(ctx);
    }
}

// ---------------------------------------------------------------------------
// Each test in a child process, on a fresh thread.

#[path = "support/isolated.rs"]
mod isolated;
use isolated::isolated_tests;

// ---------------------------------------------------------------------------
// The reproductions.

isolated_tests! {
    /// Reproduction 1: a destructor that panicked while a context was being
    /// entered left that context current with no guard; once it was
    /// dropped, the thread read freed memory.
    fn reproduction_1_a_panicking_destructor_while_entering_leaves_no_dangling_context() {
        leave_home_mark();
        let (bomb, trigger) = OnDrop::new();
        let _ = V.set(bomb);
        // Entering publishes the base context's writes into its own cell.
        Context::new().run(|| {});
        let victim = Context::new();
        victim.run(|| {
            let _ = S.set("x".repeat(40));
        });
        // A new private write; the bomb stays in the base cell until the
        // next entry publishes over it.
        let _ = V.set(OnDrop::inert());
        trigger.store(PANIC, Ordering::SeqCst);
        let message = panics(|| victim.run(|| ()));
        assert!(message.contains("a destructor panics"), "{message}");
        assert_home(&[&victim]);
        assert_eq!(victim.get(&S).as_deref(), Some(&*"x".repeat(40)));
        drop(victim);
        assert_eq!(S.get(), None);
        // A recycled handle is a stranger's context, not the thread's.
        let stranger = Context::new();
        assert!(!stranger.is_current());
        let _ = S.set("mine".into());
        assert_eq!(stranger.get(&S), None);
        assert_eq!(S.get().as_deref(), Some("mine"));
    }

    /// Reproduction 2: the caller's replaced values were dropped after the
    /// switch, so what their destructors set landed in the context being
    /// entered.
    fn reproduction_2_a_destructor_does_not_write_into_the_context_being_entered() {
        leave_home_mark();
        let (value, trigger) = OnDrop::new();
        let _ = V.set(value);
        Context::new().run(|| {});
        let _ = V.set(OnDrop::inert());
        trigger.store(REENTER, Ordering::SeqCst);
        let victim = Context::new();
        victim.run(|| assert_eq!(MARK.get(), None, "the destructor ran inside"));
        assert_eq!(victim.get(&MARK), None, "a binding its closure never made");
        assert_eq!(victim.len(), 0);
        assert_eq!(MARK.get(), Some("user code"));
        assert_home(&[&victim]);
    }

    /// Reproduction 3: a `Clone` that runs a context inside `VAR.get()` got
    /// the reentrancy panic, and left that context claimed for good.
    fn reproduction_3_a_reentrant_clone_leaves_no_context_claimed() {
        leave_home_mark();
        let ctx = Context::new();
        let _ = ENTERS.set(EntersOnClone(ctx.clone()));
        let message = panics(|| drop(ENTERS.get()));
        assert!(message.contains("modified while it was being read"), "{message}");
        assert_home(&[&ctx]);
        assert_eq!(ctx.try_run(|| 1), Ok(1));
        // `Context::get` clones outside any borrow: there it just works.
        assert!(Context::new().run(copy_context).get(&ENTERS).is_none());
        let copy = copy_context();
        assert!(copy.get(&ENTERS).is_some());
        assert_home(&[&ctx, &copy]);
    }

    /// Reproduction 4: a destructor that sets a variable, run by the
    /// thread-exit cleanup, panicked inside a thread-local destructor: the
    /// process aborted.
    fn reproduction_4_a_destructor_that_sets_a_variable_at_thread_exit_does_not_abort() {
        thread_exit_drop(REENTER);
    }
}

/// A thread that exits with two values that do `action` when dropped: one
/// in its base context's published bindings, one in its private writes.
fn thread_exit_drop(action: u8) {
    let (value, trigger) = OnDrop::new();
    trigger.store(action, Ordering::SeqCst);
    let (published, trigger2) = OnDrop::new();
    trigger2.store(action, Ordering::SeqCst);
    thread::spawn(move || {
        let _ = W.set(published);
        Context::new().run(|| {}); // into the base cell
        let _ = V.set(value); // and one in the private map
    })
    .join()
    .expect("the thread exits cleanly");
}

/// A value whose `Clone` runs a context.
struct EntersOnClone(Context);

impl Clone for EntersOnClone {
    fn clone(&self) -> Self {
        self.0.run(|| ());
        EntersOnClone(self.0.clone())
    }
}

static ENTERS: ContextVar<EntersOnClone> = ContextVar::new("enters");

// ---------------------------------------------------------------------------
// Every point where user code runs, panicking and re-entrant.

/// A value that panics when cloned.
#[derive(Debug)]
struct PanicsOnClone;

impl Clone for PanicsOnClone {
    fn clone(&self) -> Self {
        panic!("a clone panics (on purpose)")
    }
}

static CLONE_PANICS: ContextVar<PanicsOnClone> = ContextVar::new("clone_panics");

/// A value whose `Clone` re-enters (without touching the slot it is read
/// from, that is: through `Context::get`, `with` or a default).
#[derive(Debug)]
struct ReentersOnClone;

impl Clone for ReentersOnClone {
    fn clone(&self) -> Self {
        reenter();
        ReentersOnClone
    }
}

static CLONE_REENTERS: ContextVar<ReentersOnClone> = ContextVar::new("clone_reenters");
static DEFAULT_PANICS: ContextVar<u32> =
    ContextVar::with_default_fn("default_panics", || panic!("a default panics (on purpose)"));
static DEFAULT_REENTERS: ContextVar<u32> = ContextVar::with_default_fn("default_reenters", || {
    reenter();
    5
});

/// A context whose `V` holds a value that does what the returned trigger
/// says when dropped.
fn context_holding_a_value() -> (Context, Arc<AtomicU8>) {
    let ctx = Context::new();
    let (value, trigger) = OnDrop::new();
    ctx.run(|| {
        let _ = V.set(value);
    });
    (ctx, trigger)
}

/// `reset` of a value that does `action` when dropped, inside a context.
fn reset_drop(action: u8) {
    leave_home_mark();
    let ctx = Context::new();
    ctx.run(|| {
        let (value, trigger) = OnDrop::new();
        let token = V.set(value);
        trigger.store(action, Ordering::SeqCst);
        match action {
            PANIC => {
                panics(|| V.reset(token).unwrap());
                assert!(V.with(|v| v.is_none()), "the reset happened");
                let _ = S.set("after".into());
            }
            _ => V.reset(token).unwrap(),
        }
    });
    match action {
        PANIC => assert_eq!(ctx.get(&S).as_deref(), Some("after")),
        _ => {
            assert_eq!(ctx.get(&MARK), Some("user code"));
            assert_eq!(MARK.get(), None);
        }
    }
    assert_home(&[&ctx]);
}

/// Enters a context while the caller's writes replace a value that does
/// `action` when dropped.
fn enter_drop(action: u8) {
    leave_home_mark();
    let outer = Context::new();
    let victim = Context::new();
    outer.run(|| {
        let (value, trigger) = OnDrop::new();
        let _ = V.set(value);
        Context::new().run(|| {});
        let _ = V.set(OnDrop::inert());
        trigger.store(action, Ordering::SeqCst);
        match action {
            PANIC => {
                panics(|| victim.run(|| unreachable!("entered after the panic")));
                assert!(outer.is_current());
                assert!(!victim.is_entered());
                // Both usable again.
                victim.run(|| {
                    let _ = S.set("victim".into());
                });
            }
            _ => {
                victim.run(|| assert_eq!(MARK.get(), None));
                assert_eq!(MARK.get(), Some("user code"));
            }
        }
    });
    match action {
        PANIC => {
            assert_eq!(victim.get(&S).as_deref(), Some("victim"));
            assert!(outer.contains(&V));
        }
        _ => {
            assert_eq!(victim.len(), 0);
            assert_eq!(outer.get(&MARK), Some("user code"));
        }
    }
    assert_home(&[&outer, &victim]);
}

/// Leaves a context whose run replaced a value that does `action` when
/// dropped.
fn exit_drop(action: u8) {
    leave_home_mark();
    let (ctx, trigger) = context_holding_a_value();
    let run = || {
        ctx.run(|| {
            let _ = V.set(OnDrop::inert());
            let _ = S.set("written".into());
            trigger.store(action, Ordering::SeqCst);
        })
    };
    match action {
        PANIC => {
            let message = panics(run);
            assert!(message.contains("a destructor panics"), "{message}");
        }
        _ => run(),
    }
    assert_eq!(
        ctx.get(&S).as_deref(),
        Some("written"),
        "the run's writes were kept"
    );
    assert_eq!(S.get(), None);
    if action == REENTER {
        // The destructor ran in the context the value belonged to.
        assert_eq!(ctx.get(&MARK), Some("user code"));
        assert_eq!(MARK.get(), None);
    }
    assert_home(&[&ctx]);
}

/// Drops the last handle of a context that holds a value that does
/// `action` when dropped.
fn context_drop(action: u8) {
    leave_home_mark();
    let (ctx, trigger) = context_holding_a_value();
    trigger.store(action, Ordering::SeqCst);
    match action {
        PANIC => {
            panics(move || drop(ctx));
            assert_home(&[]);
            // The handle's memory is reused cleanly.
            let next = Context::new();
            assert_eq!(next.len(), 0);
            assert_home(&[&next]);
        }
        _ => {
            drop(ctx);
            assert_eq!(MARK.get(), Some("user code"));
            assert_home(&[]);
        }
    }
}

isolated_tests! {
    /// `reset` drops the value it replaces, in the current context.
    fn reset_drop_panicking() {
        reset_drop(PANIC);
    }

    fn reset_drop_reentrant() {
        reset_drop(REENTER);
    }

    /// Entering a context publishes the caller's writes and drops the
    /// bindings they replace: in the caller's context, before the switch.
    fn enter_drop_panicking() {
        enter_drop(PANIC);
    }

    fn enter_drop_reentrant() {
        enter_drop(REENTER);
    }

    /// Leaving a context publishes the run's writes and drops the bindings
    /// they replace: inside that context, before the switch back; a panic
    /// is resumed once the caller's context is restored.
    fn exit_drop_panicking() {
        exit_drop(PANIC);
    }

    fn exit_drop_reentrant() {
        exit_drop(REENTER);
    }

    /// A run that panics, and a destructor that panics on the way out: the
    /// run's panic is the one that propagates, and nothing aborts.
    fn exit_drop_panicking_while_the_run_panics() {
        leave_home_mark();
        let (ctx, trigger) = context_holding_a_value();
        let message = panics(|| {
            ctx.run(|| {
                let _ = V.set(OnDrop::inert());
                trigger.store(PANIC, Ordering::SeqCst);
                panic!("the run panics (on purpose)");
            })
        });
        assert!(message.contains("the run panics"), "{message}");
        assert_home(&[&ctx]);
    }

    /// A copy of a copy's bindings, written inside: the lent root it
    /// replaces goes back to its lender after the switch.
    fn exit_of_a_lent_copy_reentrant() {
        leave_home_mark();
        let (value, trigger) = OnDrop::new();
        let _ = V.set(value);
        let copy = copy_context();
        copy.run(|| {
            let _ = V.set(OnDrop::inert());
        });
        trigger.store(REENTER, Ordering::SeqCst);
        // The base context still holds the value: nothing ran yet.
        assert_eq!(MARK.get(), None);
        drop(V.set(OnDrop::inert()));
        // The base context's published bindings still hold the value; the
        // next entry publishes over them and drops it, here, before the
        // switch.
        assert_eq!(MARK.get(), None);
        Context::new().run(|| assert_eq!(MARK.get(), None));
        assert_eq!(MARK.get(), Some("user code"));
        assert_eq!(copy.get(&MARK), None);
        assert_home(&[&copy]);
    }

    /// The last handle of a context drops its values in the dropper's
    /// context.
    fn context_drop_panicking() {
        context_drop(PANIC);
    }

    fn context_drop_reentrant() {
        context_drop(REENTER);
    }

    /// Thread exit drops the thread's own bindings: a panicking destructor
    /// there is reported and the thread still ends normally.
    fn thread_exit_drop_panicking() {
        thread_exit_drop(PANIC);
    }

    fn thread_exit_drop_reentrant_inside_a_context() {
        // A destructor at thread exit that runs a context and writes there:
        // its writes inside that context are kept.
        static KEEP: ContextVar<Keep> = ContextVar::new("keep");
        struct Keep(Context);
        impl Drop for Keep {
            fn drop(&mut self) {
                self.0.run(|| {
                    let _ = S.set("written at exit".into());
                    reenter();
                });
            }
        }
        let ctx = Context::new();
        let inside = ctx.clone();
        thread::spawn(move || {
            let _ = KEEP.set(Keep(inside));
        })
        .join()
        .expect("the thread exits cleanly");
        assert_eq!(ctx.get(&S).as_deref(), Some("written at exit"));
        assert_eq!(ctx.get(&MARK), Some("user code"));
        assert_free(&ctx);
    }

    /// `Clone` inside `VAR.get()`.
    fn get_clone_panicking() {
        leave_home_mark();
        let _ = CLONE_PANICS.set(PanicsOnClone);
        panics(|| {
            CLONE_PANICS.get();
        });
        let _ = S.set("the slot is free".into());
        assert_eq!(S.get().as_deref(), Some("the slot is free"));
        let copy = copy_context();
        panics(|| {
            copy.get(&CLONE_PANICS);
        });
        assert_home(&[&copy]);
    }

    fn get_clone_reentrant() {
        leave_home_mark();
        let _ = CLONE_REENTERS.set(ReentersOnClone);
        // Inside `VAR.get()` the slot is being read: the documented panic.
        let message = panics(|| {
            CLONE_REENTERS.get();
        });
        assert!(message.contains("modified while it was being read"), "{message}");
        assert_eq!(MARK.get(), None);
        // `Context::get` and `with` clone outside the read: both work.
        let copy = copy_context();
        assert!(copy.get(&CLONE_REENTERS).is_some());
        assert_eq!(MARK.get(), Some("user code"));
        assert_eq!(copy.get(&MARK), None);
        let ctx = Context::new();
        ctx.run(|| CLONE_REENTERS.with(|v| drop(v.cloned())));
        assert_home(&[&copy, &ctx]);
    }

    /// `with_default_fn`'s function.
    fn default_fn_panicking() {
        leave_home_mark();
        panics(|| {
            DEFAULT_PANICS.get();
        });
        panics(|| DEFAULT_PANICS.with(|_| ()));
        let _ = DEFAULT_PANICS.set(1);
        assert_eq!(DEFAULT_PANICS.get(), Some(1));
        assert_home(&[]);
    }

    fn default_fn_reentrant() {
        leave_home_mark();
        let ctx = Context::new();
        assert_eq!(ctx.run(|| DEFAULT_REENTERS.get()), Some(5));
        assert_eq!(ctx.get(&MARK), Some("user code"));
        assert_eq!(ctx.run(|| DEFAULT_REENTERS.with(|v| v.copied())), Some(5));
        assert_eq!(MARK.get(), None);
        assert_home(&[&ctx]);
    }

    /// An attached future: its poll and its drop run inside its context.
    fn attached_poll_and_drop_panicking() {
        leave_home_mark();
        let ctx = Context::new();
        let fut = ctx.attach(async { panic!("a poll panics (on purpose)") });
        panics(move || futures::executor::block_on(fut));
        let (value, trigger) = OnDrop::new();
        let fut = ctx.copy().attach(async move {
            let _keep = value;
            std::future::pending::<()>().await
        });
        let mut fut = Box::pin(fut);
        let waker = std::task::Waker::noop();
        let _ = fut.as_mut().poll(&mut std::task::Context::from_waker(waker));
        trigger.store(PANIC, Ordering::SeqCst);
        panics(move || drop(fut));
        assert_home(&[&ctx]);
    }

    fn attached_poll_and_drop_reentrant() {
        leave_home_mark();
        let ctx = Context::new();
        let (value, trigger) = OnDrop::new();
        trigger.store(REENTER, Ordering::SeqCst);
        let fut = ctx.attach(async move {
            reenter();
            let _keep = value;
            std::future::pending::<()>().await
        });
        let mut fut = Box::pin(fut);
        let waker = std::task::Waker::noop();
        assert!(fut.as_mut().poll(&mut std::task::Context::from_waker(waker)).is_pending());
        assert_eq!(ctx.get(&MARK), Some("user code"));
        assert_eq!(MARK.get(), None);
        // The sole handle's exclusive path, then a clone's contended one.
        let other = ctx.clone();
        assert!(fut.as_mut().poll(&mut std::task::Context::from_waker(waker)).is_pending());
        drop(other);
        drop(fut);
        assert_eq!(MARK.get(), None);
        assert_home(&[&ctx]);
    }

    /// Running a context from inside itself is refused, and leaves it
    /// entered by its rightful holder only.
    fn recursion_is_refused_cleanly() {
        leave_home_mark();
        let ctx = Context::new();
        let inner = ctx.clone();
        ctx.run(move || {
            assert_eq!(inner.try_run(|| ()), Err(ContextError::AlreadyEntered));
            panics(|| inner.run(|| ()));
            assert!(inner.is_current());
        });
        assert_home(&[&ctx]);
    }
}
