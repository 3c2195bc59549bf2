//! User code that panics or re-enters the context machinery (enters a
//! context, sets a variable, copies the context) at every point where the
//! bridge runs it: an offloaded closure, its captures when the job is
//! skipped, its result when nobody awaits it any more, the values it writes
//! into its context, and the closures of `join`, `scope`, `install`,
//! `spawn` and `.in_context()` iterators — with the values they return and
//! write. The list is in the crate's docs ("Where user code runs").
//!
//! After each: the calling thread is in its own context, no context is left
//! claimed, nothing user code sets appears outside the context it ran in —
//! in particular never in a pool thread's own context — a panic reaches the
//! caller of the operation, the pool keeps working, and nothing aborts or
//! hangs.
//!
//! Every pool here has one thread, so that the pool thread that ran the user
//! code is the one checked afterwards. Each test runs in a child process with
//! a deadline (see the context crate's `tests/soundness.rs`): an abort or a
//! hang is a failed test, never a dead test binary.
#![cfg(not(baton_loom))]

use std::sync::mpsc;

use baton_bridge::{ParallelIteratorExt, RunBlocking, run_blocking, run_blocking_in};
use baton_context::{Context, ContextVar};
use futures::executor::block_on;
use rayon::prelude::*;
use rayon::{ThreadPool, ThreadPoolBuilder};

#[path = "../../context/tests/support/user_code.rs"]
mod user_code;
use user_code::*;

#[path = "../../context/tests/support/isolated.rs"]
mod isolated;
use isolated::isolated_tests;

/// Holds a value that acts when dropped.
static V: ContextVar<OnDrop> = ContextVar::new("v");
/// Each thread's own mark, set in its own context before anything else.
static HOME: ContextVar<&'static str> = ContextVar::new("home");

const ON_PURPOSE: &str = "panics (on purpose)";

/// A pool of one thread, whose own context holds `HOME = "pool"`.
fn pool() -> ThreadPool {
    let pool = ThreadPoolBuilder::new().num_threads(1).build().unwrap();
    pool.install(|| {
        let _ = HOME.set("pool");
    });
    pool
}

/// The pool thread is in its own context, which holds its mark and nothing
/// user code set; the pool still runs bridge jobs.
#[track_caller]
fn assert_pool_clean(pool: &ThreadPool) {
    let (home, mark, v) = pool.install(|| (HOME.get(), MARK.get(), V.with(|v| v.is_some())));
    assert_eq!(
        home,
        Some("pool"),
        "the pool thread is not in its own context"
    );
    assert_eq!(
        mark, None,
        "user code wrote into the pool thread's own context"
    );
    assert!(!v, "a job's binding is in the pool thread's own context");
    assert_eq!(block_on(run_blocking_in(pool, || HOME.get())), Some("home"));
}

/// Waits until the pool has run everything submitted to it so far (it has
/// one thread, and takes jobs from outside in order).
fn drain(pool: &ThreadPool) {
    pool.install(|| ());
}

/// Occupies the pool's thread until the returned sender is used (or
/// dropped): jobs submitted meanwhile wait.
fn block(pool: &ThreadPool) -> mpsc::Sender<()> {
    let (release, wait) = mpsc::channel::<()>();
    let (started, running) = mpsc::channel();
    pool.spawn(move || {
        started.send(()).unwrap();
        let _ = wait.recv();
    });
    running.recv().unwrap();
    release
}

fn leave_home_mark() {
    let _ = HOME.set("home");
}

/// The calling thread is in its own context, with nothing user code set; none
/// of `others` is current or claimed.
#[track_caller]
fn assert_home(others: &[&Context]) {
    assert_eq!(
        HOME.get(),
        Some("home"),
        "the thread is not in its own context"
    );
    assert_eq!(
        MARK.get(),
        None,
        "user code wrote into the caller's context"
    );
    assert!(
        V.with(|v| v.is_none()),
        "a binding appeared in the caller's context"
    );
    for ctx in others {
        assert!(!ctx.is_current(), "a context was left current");
        assert_free(ctx);
    }
}

/// The message of a panic that must come from user code.
#[track_caller]
fn user_panic(message: String) {
    assert!(message.contains(ON_PURPOSE), "{message}");
}

/// A user closure that does `action` itself: panics, or re-enters and
/// reports what it then sees of `MARK`.
fn user(action: u8) -> Option<&'static str> {
    match action {
        PANIC => panic!("user code {ON_PURPOSE}"),
        _ => {
            reenter();
            MARK.get()
        }
    }
}

/// A context with `V` bound to a value that panics when dropped: a run
/// that replaces `V` in it drops that value when it leaves the context.
fn context_with_a_bomb() -> Context {
    let ctx = Context::new();
    ctx.run(|| {
        let _ = V.set(OnDrop::armed(PANIC));
    });
    ctx
}

/// Runs `f`, which runs user code that does `action`: panicking, `f` must
/// panic with the user's panic; re-entering, it must return `returns`.
#[track_caller]
fn user_outcome<R: PartialEq + std::fmt::Debug>(action: u8, f: impl FnOnce() -> R, returns: R) {
    match action {
        PANIC => user_panic(panics(f)),
        _ => assert_eq!(f(), returns),
    }
}

// ---------------------------------------------------------------------------
// Offloads: `run_blocking`, `run_blocking_in`, `ctx.run_blocking(_in)`.

/// Offloads closures that do `action`. Panicking, the last one reuses the
/// context that the one before left after its panic; re-entering, it has a
/// context of its own, so that each write is seen where it was made.
fn offload_closure(action: u8) {
    leave_home_mark();
    let pool = pool();
    let seen = Some("user code");
    let job = move || user(action);
    user_outcome(action, || block_on(run_blocking_in(&pool, job)), seen);
    user_outcome(action, || block_on(run_blocking(job)), seen);
    let ctx = Context::new();
    user_outcome(action, || block_on(ctx.run_blocking_in(&pool, job)), seen);
    let other = Context::new();
    let last = if action == PANIC { &ctx } else { &other };
    user_outcome(action, || block_on(last.run_blocking(job)), seen);
    if action == REENTER {
        assert_eq!(ctx.get(&MARK), Some("user code"));
        assert_eq!(other.get(&MARK), Some("user code"));
    }
    assert_home(&[&ctx, &other]);
    assert_pool_clean(&pool);
}

/// The closure writes a value that does `action` when dropped into its copy.
fn offload_written_value(action: u8) {
    leave_home_mark();
    let pool = pool();
    let n = block_on(run_blocking_in(&pool, move || {
        let _ = V.set(OnDrop::armed(action));
        1
    }));
    assert_eq!(n, 1);
    drain(&pool);
    assert_home(&[]);
    assert_pool_clean(&pool);
}

/// Drops the tasks of closures that capture a value that does `action`
/// when dropped, before their jobs run.
fn offload_skipped_captures(action: u8) {
    leave_home_mark();
    let pool = pool();
    let ctx = Context::new();
    let release = block(&pool);
    let capture = OnDrop::armed(action);
    drop(run_blocking_in(&pool, move || drop(capture)));
    let capture = OnDrop::armed(action);
    drop(ctx.run_blocking_in(&pool, move || drop(capture)));
    drop(release);
    drain(&pool);
    if action == REENTER {
        assert_eq!(ctx.get(&MARK), Some("user code"));
    }
    assert_home(&[&ctx]);
    assert_pool_clean(&pool);
}

/// A skipped job in `ctx`, which is entered here when the job would run;
/// its captures do `action` when dropped.
fn offload_skipped_in_a_busy_context(action: u8) {
    leave_home_mark();
    let pool = pool();
    let ctx = Context::new();
    let release = block(&pool);
    let capture = OnDrop::armed(action);
    drop(ctx.run_blocking_in(&pool, move || drop(capture)));
    ctx.run(|| {
        drop(release);
        drain(&pool);
    });
    assert_eq!(
        ctx.get(&MARK),
        None,
        "written into a context entered elsewhere"
    );
    assert_home(&[&ctx]);
    assert_pool_clean(&pool);
}

/// `ctx.run_blocking` while `ctx` is entered here, with captures that do
/// `action` when dropped.
fn offload_already_entered_captures(action: u8) {
    leave_home_mark();
    let pool = pool();
    let ctx = Context::new();
    let capture = OnDrop::armed(action);
    let message =
        panics(|| ctx.run(|| block_on(ctx.run_blocking_in(&pool, move || drop(capture)))));
    assert!(message.contains("already entered"), "{message}");
    assert_eq!(
        ctx.get(&MARK),
        None,
        "written into a context entered elsewhere"
    );
    assert_home(&[&ctx]);
    assert_pool_clean(&pool);
}

/// Drops the task while its job runs, in a copy and then in a shared
/// context; the job's result does `action` when dropped.
fn offload_unawaited_result(action: u8) {
    leave_home_mark();
    let pool = pool();
    let ctx = Context::new();
    for shared in [false, true] {
        let (started, running) = mpsc::channel();
        let (go, wait) = mpsc::channel::<()>();
        let job = move || {
            started.send(()).unwrap();
            wait.recv().unwrap();
            OnDrop::armed(action)
        };
        let task = if shared {
            ctx.run_blocking_in(&pool, job)
        } else {
            run_blocking_in(&pool, job)
        };
        running.recv().unwrap();
        drop(task);
        go.send(()).unwrap();
        drain(&pool);
        assert_pool_clean(&pool);
    }
    if action == REENTER {
        assert_eq!(
            ctx.get(&MARK),
            Some("user code"),
            "not dropped in the job's context"
        );
    }
    assert_home(&[&ctx]);
}

/// A job that leaves its context with a panic (see `context_with_a_bomb`)
/// after making a result that does `action` when dropped.
fn offload_leaving_panics_result(action: u8) {
    leave_home_mark();
    let pool = pool();
    let ctx = context_with_a_bomb();
    let task = ctx.run_blocking_in(&pool, move || {
        let _ = V.set(OnDrop::inert());
        OnDrop::armed(action)
    });
    user_panic(panics(|| block_on(task)));
    if action == REENTER {
        assert_eq!(
            ctx.get(&MARK),
            Some("user code"),
            "not dropped in the job's context"
        );
    }
    assert_home(&[&ctx]);
    assert_pool_clean(&pool);
}

isolated_tests! {
    /// The closure panics: resumed at the await; the pool keeps working.
    fn offload_closure_panicking() {
        offload_closure(PANIC);
    }

    /// The closure re-enters: its write lands in the job's context only.
    fn offload_closure_reentrant() {
        offload_closure(REENTER);
    }

    /// The closure writes a value into its copy; the copy is dropped after
    /// the job, and the value's destructor panics there.
    fn offload_written_value_panicking() {
        offload_written_value(PANIC);
    }

    /// ... or re-enters: what it sets must not reach the pool thread's own
    /// context.
    fn offload_written_value_reentrant() {
        offload_written_value(REENTER);
    }

    /// The task is dropped before the job ran: the closure's captures are
    /// dropped without calling it, and their destructor panics.
    fn offload_skipped_captures_panicking() {
        offload_skipped_captures(PANIC);
    }

    /// ... or re-enters: inside the job's context, as running it would have.
    fn offload_skipped_captures_reentrant() {
        offload_skipped_captures(REENTER);
    }

    /// A skipped job whose shared context is entered elsewhere when it
    /// would run: its captures' destructor panics.
    fn offload_skipped_in_a_busy_context_panicking() {
        offload_skipped_in_a_busy_context(PANIC);
    }

    /// ... or re-enters: never in the pool thread's own context.
    fn offload_skipped_in_a_busy_context_reentrant() {
        offload_skipped_in_a_busy_context(REENTER);
    }

    /// `ctx.run_blocking` while the awaiting thread has `ctx` entered: fails
    /// with AlreadyEntered, and the closure's captures, dropped uncalled,
    /// panic.
    fn offload_already_entered_captures_panicking() {
        offload_already_entered_captures(PANIC);
    }

    /// ... or re-enter: never in the pool thread's own context.
    fn offload_already_entered_captures_reentrant() {
        offload_already_entered_captures(REENTER);
    }

    /// The task is dropped while the job runs: the pool thread drops the
    /// result, whose destructor panics.
    fn offload_unawaited_result_panicking() {
        offload_unawaited_result(PANIC);
    }

    /// ... or re-enters: inside the job's context, as the closure ran.
    fn offload_unawaited_result_reentrant() {
        offload_unawaited_result(REENTER);
    }

    /// Leaving the job's context drops the value the closure replaced, and
    /// that destructor panics: the await resumes that panic, and the
    /// closure's result — already made — is dropped too, here panicking.
    fn offload_leaving_panics_result_panicking() {
        offload_leaving_panics_result(PANIC);
    }

    /// ... here re-entering: inside the job's context, as the closure ran.
    fn offload_leaving_panics_result_reentrant() {
        offload_leaving_panics_result(REENTER);
    }

    /// The same with a copy: the job's copy holds the last reference to the
    /// bomb once the context it was copied from has moved on.
    fn offload_leaving_a_copy_panics_result_reentrant() {
        leave_home_mark();
        let pool = pool();
        let ctx = context_with_a_bomb();
        let release = block(&pool);
        let task = ctx.run(|| {
            let task = run_blocking_in(&pool, || {
                let _ = V.set(OnDrop::inert());
                OnDrop::armed(REENTER)
            });
            let _ = V.set(OnDrop::inert());
            task
        });
        drop(ctx);
        drop(release);
        user_panic(panics(|| block_on(task)));
        assert_home(&[]);
        assert_pool_clean(&pool);
    }
}

// ---------------------------------------------------------------------------
// Fork-join: `join`.

/// `f` inside `bridge::install` on a one-thread pool, in a context that
/// holds `HOME = "caller"`. Checks the caller's context after `f` (returned
/// or panicked), and returns `f`'s outcome.
fn in_pool<R: Send>(pool: &ThreadPool, f: impl FnOnce() -> R + Send) -> R {
    baton_bridge::install(pool, || {
        let _ = HOME.set("caller");
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        assert_eq!(HOME.get(), Some("caller"), "the caller's context is gone");
        assert_eq!(
            MARK.get(),
            None,
            "user code wrote into the caller's context"
        );
        assert!(
            V.with(|v| v.is_none()),
            "a binding appeared in the caller's context"
        );
        match outcome {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// `bridge::join` [`in_pool`]: both halves run on the pool thread (the
/// first inline, in the caller's frame).
fn join_in_pool<A, B, RA, RB>(pool: &ThreadPool, a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    in_pool(pool, || baton_bridge::join(a, b))
}

/// One half panics; the other half's result does `action` when dropped.
fn join_other_halfs_result(action: u8) {
    leave_home_mark();
    let pool = pool();
    let result = || OnDrop::armed(action);
    user_panic(panics(|| join_in_pool(&pool, || user(PANIC), result)));
    user_panic(panics(|| join_in_pool(&pool, result, || user(PANIC))));
    assert_home(&[]);
    assert_pool_clean(&pool);
}

isolated_tests! {
    fn join_closure_panicking() {
        leave_home_mark();
        let pool = pool();
        user_panic(panics(|| join_in_pool(&pool, || user(PANIC), || 1)));
        user_panic(panics(|| join_in_pool(&pool, || 1, || user(PANIC))));
        user_panic(panics(|| baton_bridge::join(|| user(PANIC), || user(PANIC))));
        assert_home(&[]);
        assert_pool_clean(&pool);
    }

    fn join_closure_reentrant() {
        leave_home_mark();
        let pool = pool();
        let (a, b) = join_in_pool(&pool, || user(REENTER), || user(REENTER));
        assert_eq!((a, b), (Some("user code"), Some("user code")));
        let (a, b) = baton_bridge::join(|| user(REENTER), || user(REENTER));
        assert_eq!((a, b), (Some("user code"), Some("user code")));
        assert_home(&[]);
        assert_pool_clean(&pool);
    }

    /// Each half writes a value into its copy; the copies are dropped after
    /// the halves, and the values' destructors panic there.
    fn join_written_value_panicking() {
        leave_home_mark();
        let pool = pool();
        let write = || {
            let _ = V.set(OnDrop::armed(PANIC));
        };
        user_panic(panics(|| join_in_pool(&pool, write, || ())));
        user_panic(panics(|| join_in_pool(&pool, || (), write)));
        assert_home(&[]);
        assert_pool_clean(&pool);
    }

    /// ... or re-enter: what they set stays out of the caller's context and
    /// the pool thread's.
    fn join_written_value_reentrant() {
        leave_home_mark();
        let pool = pool();
        let write = || {
            let _ = V.set(OnDrop::armed(REENTER));
        };
        join_in_pool(&pool, write, write);
        baton_bridge::join(write, write);
        assert_home(&[]);
        assert_pool_clean(&pool);
    }

    /// One half panics; the other half's result is dropped, and its
    /// destructor panics as well.
    fn join_other_halfs_result_panicking() {
        join_other_halfs_result(PANIC);
    }

    /// ... or re-enters: inside that half's copy, never in the caller's
    /// context.
    fn join_other_halfs_result_reentrant() {
        join_other_halfs_result(REENTER);
    }
}

// ---------------------------------------------------------------------------
// Fork-join: `scope` and `Scope::spawn`.

/// A spawned closure panics after the scope's own closure returned a value
/// that does `action` when dropped.
fn scope_result_of_a_panicking_scope(action: u8) {
    leave_home_mark();
    let pool = pool();
    user_panic(panics(|| {
        in_pool(&pool, || {
            baton_bridge::scope(|s| {
                s.spawn(|_| {
                    user(PANIC);
                });
                OnDrop::armed(action)
            })
        })
    }));
    assert_home(&[]);
    assert_pool_clean(&pool);
}

isolated_tests! {
    fn scope_closures_panicking() {
        leave_home_mark();
        let pool = pool();
        // The scope's own closure, then a spawned one.
        user_panic(panics(|| baton_bridge::install(&pool, || baton_bridge::scope(|_| user(PANIC)))));
        user_panic(panics(|| {
            baton_bridge::install(&pool, || {
                baton_bridge::scope(|s| {
                    s.spawn(|_| {
                        user(PANIC);
                    })
                })
            })
        }));
        user_panic(panics(|| {
            baton_bridge::scope(|s| {
                s.spawn(|s| {
                    s.spawn(|_| {
                        user(PANIC);
                    })
                })
            })
        }));
        assert_home(&[]);
        assert_pool_clean(&pool);
    }

    fn scope_closures_reentrant() {
        leave_home_mark();
        let pool = pool();
        let (tx, rx) = mpsc::channel();
        let seen = in_pool(&pool, || {
            baton_bridge::scope(|s| {
                let tx = tx.clone();
                s.spawn(move |s| {
                    tx.send(user(REENTER)).unwrap();
                    s.spawn(move |_| tx.send(user(REENTER)).unwrap());
                });
                user(REENTER)
            })
        });
        drop(tx);
        assert_eq!(seen, Some("user code"));
        assert_eq!(rx.iter().collect::<Vec<_>>(), [Some("user code"); 2]);
        assert_home(&[]);
        assert_pool_clean(&pool);
    }

    /// Spawned closures write values into their copies, which are dropped
    /// after them; the values' destructors panic.
    fn scope_written_value_panicking() {
        leave_home_mark();
        let pool = pool();
        user_panic(panics(|| {
            baton_bridge::install(&pool, || {
                baton_bridge::scope(|s| {
                    s.spawn(|_| {
                        let _ = V.set(OnDrop::armed(PANIC));
                    })
                })
            })
        }));
        user_panic(panics(|| {
            baton_bridge::install(&pool, || {
                baton_bridge::scope(|_| {
                    let _ = V.set(OnDrop::armed(PANIC));
                })
            })
        }));
        assert_home(&[]);
        assert_pool_clean(&pool);
    }

    /// ... or re-enter: never in the caller's or the pool thread's context.
    fn scope_written_value_reentrant() {
        leave_home_mark();
        let pool = pool();
        let write = || {
            let _ = V.set(OnDrop::armed(REENTER));
        };
        in_pool(&pool, || {
            baton_bridge::scope(|s| {
                s.spawn(move |s| {
                    write();
                    s.spawn(move |_| write());
                });
                write();
            })
        });
        assert_home(&[]);
        assert_pool_clean(&pool);
    }

    /// A spawned closure panics after the scope's own closure returned a
    /// value: that value is dropped, and its destructor panics too.
    fn scope_result_of_a_panicking_scope_panicking() {
        scope_result_of_a_panicking_scope(PANIC);
    }

    /// ... or re-enters: inside the scope closure's copy.
    fn scope_result_of_a_panicking_scope_reentrant() {
        scope_result_of_a_panicking_scope(REENTER);
    }
}

// ---------------------------------------------------------------------------
// `install` and `spawn`.

/// Configures rayon's global pool, for this test's child process: one thread,
/// whose own context holds `HOME = "pool"`, and a panic handler that reports
/// the messages of panics escaping `rayon::spawn` jobs (instead of aborting).
fn global_pool() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    ThreadPoolBuilder::new()
        .num_threads(1)
        .panic_handler(move |payload| {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            let _ = tx.send(message);
        })
        .build_global()
        .unwrap();
    rayon::broadcast(|_| {
        let _ = HOME.set("pool");
    });
    rx
}

/// [`assert_pool_clean`] for the global pool.
#[track_caller]
fn assert_global_pool_clean() {
    let seen = rayon::broadcast(|_| (HOME.get(), MARK.get(), V.with(|v| v.is_some())));
    assert_eq!(
        seen,
        [(Some("pool"), None, false)],
        "home, MARK, V of the pool thread"
    );
    assert_eq!(block_on(run_blocking(|| HOME.get())), Some("home"));
}

/// Runs `f` with `bridge::spawn` and waits until it has run.
fn spawned(f: impl FnOnce() + Send + 'static) {
    let (done, wait) = mpsc::channel();
    baton_bridge::spawn(f);
    // FIFO: this runs after `f` on the pool's one thread.
    rayon::spawn(move || done.send(()).unwrap());
    wait.recv().unwrap();
}

/// `bridge::install` of a closure that does `action`, then of one that
/// writes a value that does `action` when dropped.
fn install_closure(action: u8) {
    leave_home_mark();
    let pool = pool();
    user_outcome(
        action,
        || baton_bridge::install(&pool, || user(action)),
        Some("user code"),
    );
    let write = || {
        let _ = V.set(OnDrop::armed(action));
    };
    user_outcome(action, || baton_bridge::install(&pool, write), ());
    assert_home(&[]);
    assert_pool_clean(&pool);
}

/// `bridge::spawn` of a closure that does `action`, then of one that writes
/// a value that does `action` when dropped: a panic reaches the pool's
/// panic handler.
fn spawn_closure(action: u8) {
    leave_home_mark();
    let panics = global_pool();
    let reported = || match action {
        PANIC => user_panic(panics.recv().unwrap()),
        _ => assert!(panics.try_recv().is_err()),
    };
    let (tx, rx) = mpsc::channel();
    spawned(move || tx.send(user(action)).unwrap());
    reported();
    if action == REENTER {
        assert_eq!(rx.recv().unwrap(), Some("user code"));
    }
    spawned(move || {
        let _ = V.set(OnDrop::armed(action));
    });
    reported();
    assert_home(&[]);
    assert_global_pool_clean();
}

isolated_tests! {
    fn install_closure_panicking() {
        install_closure(PANIC);
    }

    fn install_closure_reentrant() {
        install_closure(REENTER);
    }

    /// A panic in a `bridge::spawn` closure goes to the pool's panic handler,
    /// as with `rayon::spawn`, once the pool thread is back in its context.
    fn spawn_closure_panicking() {
        spawn_closure(PANIC);
    }

    fn spawn_closure_reentrant() {
        spawn_closure(REENTER);
    }
}

// ---------------------------------------------------------------------------
// `.in_context()` parallel iterators.

/// `.in_context()` closures write values that do `action` when dropped into
/// their pieces' copies.
fn iter_written_value(action: u8) {
    leave_home_mark();
    let pool = pool();
    let write = || {
        let _ = V.set(OnDrop::armed(action));
    };
    let all = || (0..100).into_par_iter().in_context();
    user_outcome(action, || pool.install(|| all().for_each(|_| write())), ());
    let sum = || {
        all().map(|_| 1).reduce(
            || 0,
            |a, b| {
                write();
                a + b
            },
        )
    };
    user_outcome(action, || pool.install(sum), 100);
    if action == REENTER {
        all().for_each(|_| write());
    }
    assert_home(&[]);
    assert_pool_clean(&pool);
}

/// An item panics while other pieces hold results: one (in the other half
/// from the panic: the pool has one thread, so the input is split once)
/// does `action` when dropped, and so do all the others if that re-enters.
fn iter_results_of_a_panicking_iterator(action: u8) {
    leave_home_mark();
    let pool = pool();
    let others = if action == PANIC { NOTHING } else { action };
    user_panic(panics(|| {
        pool.install(|| {
            (0..100)
                .into_par_iter()
                .in_context()
                .map(|i| match i {
                    0 => OnDrop::armed(action),
                    99 => {
                        user(PANIC);
                        unreachable!()
                    }
                    _ => OnDrop::armed(others),
                })
                .collect::<Vec<_>>()
        })
    }));
    assert_home(&[]);
    assert_pool_clean(&pool);
}

isolated_tests! {
    fn iter_closures_panicking() {
        leave_home_mark();
        let pool = pool();
        user_panic(panics(|| {
            pool.install(|| (0..100).into_par_iter().in_context().map(|_| user(PANIC)).count())
        }));
        user_panic(panics(|| {
            pool.install(|| {
                (0..100).into_par_iter().in_context().map(|_| 1).reduce(|| 0, |_, _| {
                    user(PANIC);
                    0
                })
            })
        }));
        user_panic(panics(|| {
            (0..100).into_par_iter().in_context().for_each(|i| {
                if i == 50 {
                    user(PANIC);
                }
            })
        }));
        assert_home(&[]);
        assert_pool_clean(&pool);
    }

    fn iter_closures_reentrant() {
        leave_home_mark();
        let pool = pool();
        let seen: Vec<_> = pool.install(|| {
            (0..100).into_par_iter().in_context().map(|_| user(REENTER)).collect()
        });
        assert!(seen.iter().all(|s| *s == Some("user code")));
        let n = pool.install(|| {
            (0..100).into_par_iter().in_context().map(|_| 1).reduce(|| 0, |a, b| {
                user(REENTER);
                a + b
            })
        });
        assert_eq!(n, 100);
        let seen: Vec<_> = (0..100).into_par_iter().in_context().map(|_| user(REENTER)).collect();
        assert!(seen.iter().all(|s| *s == Some("user code")));
        assert_home(&[]);
        assert_pool_clean(&pool);
    }

    /// The closures write values into their pieces' copies, which are
    /// dropped after the pieces; the values' destructors panic.
    fn iter_written_value_panicking() {
        iter_written_value(PANIC);
    }

    /// ... or re-enter: never in the caller's or a pool thread's context.
    fn iter_written_value_reentrant() {
        iter_written_value(REENTER);
    }

    /// An item panics while other pieces hold results: those are dropped,
    /// and their destructors panic too.
    fn iter_results_of_a_panicking_iterator_panicking() {
        iter_results_of_a_panicking_iterator(PANIC);
    }

    /// ... or re-enter: inside a copy, never in a pool thread's context.
    fn iter_results_of_a_panicking_iterator_reentrant() {
        iter_results_of_a_panicking_iterator(REENTER);
    }
}
