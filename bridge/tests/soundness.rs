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

// ---------------------------------------------------------------------------
// Offloads: `run_blocking`, `run_blocking_in`, `ctx.run_blocking(_in)`.

isolated_tests! {
    /// The closure panics: resumed at the await; the pool keeps working.
    fn offload_closure_panicking() {
        leave_home_mark();
        let pool = pool();
        user_panic(panics(|| block_on(run_blocking_in(&pool, || user(PANIC)))));
        user_panic(panics(|| block_on(run_blocking(|| user(PANIC)))));
        let ctx = Context::new();
        user_panic(panics(|| block_on(ctx.run_blocking_in(&pool, || user(PANIC)))));
        user_panic(panics(|| block_on(ctx.run_blocking(|| user(PANIC)))));
        assert_home(&[&ctx]);
        assert_pool_clean(&pool);
    }

    /// The closure re-enters: its write lands in the job's context only.
    fn offload_closure_reentrant() {
        leave_home_mark();
        let pool = pool();
        assert_eq!(block_on(run_blocking_in(&pool, || user(REENTER))), Some("user code"));
        assert_eq!(block_on(run_blocking(|| user(REENTER))), Some("user code"));
        let ctx = Context::new();
        assert_eq!(block_on(ctx.run_blocking_in(&pool, || user(REENTER))), Some("user code"));
        assert_eq!(ctx.get(&MARK), Some("user code"));
        let other = Context::new();
        assert_eq!(block_on(other.run_blocking(|| user(REENTER))), Some("user code"));
        assert_eq!(other.get(&MARK), Some("user code"));
        assert_home(&[&ctx, &other]);
        assert_pool_clean(&pool);
    }

    /// The closure writes a value into its copy; the copy is dropped after
    /// the job, and the value's destructor panics there.
    fn offload_written_value_panicking() {
        leave_home_mark();
        let pool = pool();
        let n = block_on(run_blocking_in(&pool, || {
            let _ = V.set(OnDrop::armed(PANIC));
            1
        }));
        assert_eq!(n, 1);
        drain(&pool);
        assert_home(&[]);
        assert_pool_clean(&pool);
    }

    /// ... or re-enters: what it sets must not reach the pool thread's own
    /// context.
    fn offload_written_value_reentrant() {
        leave_home_mark();
        let pool = pool();
        block_on(run_blocking_in(&pool, || {
            let _ = V.set(OnDrop::armed(REENTER));
        }));
        drain(&pool);
        assert_home(&[]);
        assert_pool_clean(&pool);
    }

    /// The task is dropped before the job ran: the closure's captures are
    /// dropped without calling it, and their destructor panics.
    fn offload_skipped_captures_panicking() {
        leave_home_mark();
        let pool = pool();
        let ctx = Context::new();
        let release = block(&pool);
        let capture = OnDrop::armed(PANIC);
        drop(run_blocking_in(&pool, move || drop(capture)));
        let capture = OnDrop::armed(PANIC);
        drop(ctx.run_blocking_in(&pool, move || drop(capture)));
        drop(release);
        drain(&pool);
        assert_home(&[&ctx]);
        assert_pool_clean(&pool);
    }

    /// ... or re-enters: inside the job's context, as running it would have.
    fn offload_skipped_captures_reentrant() {
        leave_home_mark();
        let pool = pool();
        let ctx = Context::new();
        let release = block(&pool);
        let capture = OnDrop::armed(REENTER);
        drop(run_blocking_in(&pool, move || drop(capture)));
        let capture = OnDrop::armed(REENTER);
        drop(ctx.run_blocking_in(&pool, move || drop(capture)));
        drop(release);
        drain(&pool);
        assert_eq!(ctx.get(&MARK), Some("user code"));
        assert_home(&[&ctx]);
        assert_pool_clean(&pool);
    }

    /// A skipped job whose shared context is entered elsewhere when it
    /// would run: its captures' destructor panics.
    fn offload_skipped_in_a_busy_context_panicking() {
        leave_home_mark();
        let pool = pool();
        let ctx = Context::new();
        let release = block(&pool);
        let capture = OnDrop::armed(PANIC);
        drop(ctx.run_blocking_in(&pool, move || drop(capture)));
        ctx.run(|| {
            drop(release);
            drain(&pool);
        });
        assert_home(&[&ctx]);
        assert_pool_clean(&pool);
    }

    /// ... or re-enters: never in the pool thread's own context.
    fn offload_skipped_in_a_busy_context_reentrant() {
        leave_home_mark();
        let pool = pool();
        let ctx = Context::new();
        let release = block(&pool);
        let capture = OnDrop::armed(REENTER);
        drop(ctx.run_blocking_in(&pool, move || drop(capture)));
        ctx.run(|| {
            drop(release);
            drain(&pool);
        });
        assert_eq!(ctx.get(&MARK), None, "written into a context entered elsewhere");
        assert_home(&[&ctx]);
        assert_pool_clean(&pool);
    }

    /// `ctx.run_blocking` while the awaiting thread has `ctx` entered: fails
    /// with AlreadyEntered, and the closure's captures, dropped uncalled,
    /// panic.
    fn offload_already_entered_captures_panicking() {
        leave_home_mark();
        let pool = pool();
        let ctx = Context::new();
        let capture = OnDrop::armed(PANIC);
        let message = panics(|| {
            ctx.run(|| block_on(ctx.run_blocking_in(&pool, move || drop(capture))))
        });
        assert!(message.contains("already entered"), "{message}");
        assert_home(&[&ctx]);
        assert_pool_clean(&pool);
    }

    /// ... or re-enter: never in the pool thread's own context.
    fn offload_already_entered_captures_reentrant() {
        leave_home_mark();
        let pool = pool();
        let ctx = Context::new();
        let capture = OnDrop::armed(REENTER);
        let message = panics(|| {
            ctx.run(|| block_on(ctx.run_blocking_in(&pool, move || drop(capture))))
        });
        assert!(message.contains("already entered"), "{message}");
        assert_eq!(ctx.get(&MARK), None, "written into a context entered elsewhere");
        assert_home(&[&ctx]);
        assert_pool_clean(&pool);
    }

    /// The task is dropped while the job runs: the pool thread drops the
    /// result, whose destructor panics.
    fn offload_unawaited_result_panicking() {
        leave_home_mark();
        let pool = pool();
        let ctx = Context::new();
        for shared in [false, true] {
            let (started, running) = mpsc::channel();
            let (go, wait) = mpsc::channel::<()>();
            let job = move || {
                started.send(()).unwrap();
                wait.recv().unwrap();
                OnDrop::armed(PANIC)
            };
            let task = if shared { ctx.run_blocking_in(&pool, job) } else { run_blocking_in(&pool, job) };
            running.recv().unwrap();
            drop(task);
            go.send(()).unwrap();
            drain(&pool);
        }
        assert_home(&[&ctx]);
        assert_pool_clean(&pool);
    }

    /// ... or re-enters: inside the job's context, as the closure ran.
    fn offload_unawaited_result_reentrant() {
        leave_home_mark();
        let pool = pool();
        let ctx = Context::new();
        for shared in [false, true] {
            let (started, running) = mpsc::channel();
            let (go, wait) = mpsc::channel::<()>();
            let job = move || {
                started.send(()).unwrap();
                wait.recv().unwrap();
                OnDrop::armed(REENTER)
            };
            let task = if shared { ctx.run_blocking_in(&pool, job) } else { run_blocking_in(&pool, job) };
            running.recv().unwrap();
            drop(task);
            go.send(()).unwrap();
            drain(&pool);
            assert_pool_clean(&pool);
        }
        assert_eq!(ctx.get(&MARK), Some("user code"), "not dropped in the job's context");
        assert_home(&[&ctx]);
    }

    /// Leaving the job's context drops the value the closure replaced, and
    /// that destructor panics: the await resumes that panic, and the
    /// closure's result — already made — is dropped too, here panicking.
    fn offload_leaving_panics_result_panicking() {
        leave_home_mark();
        let pool = pool();
        let ctx = context_with_a_bomb();
        let task = ctx.run_blocking_in(&pool, || {
            let _ = V.set(OnDrop::inert());
            OnDrop::armed(PANIC)
        });
        user_panic(panics(|| block_on(task)));
        assert_home(&[&ctx]);
        assert_pool_clean(&pool);
    }

    /// ... here re-entering: inside the job's context, as the closure ran.
    fn offload_leaving_panics_result_reentrant() {
        leave_home_mark();
        let pool = pool();
        let ctx = context_with_a_bomb();
        let task = ctx.run_blocking_in(&pool, || {
            let _ = V.set(OnDrop::inert());
            OnDrop::armed(REENTER)
        });
        user_panic(panics(|| block_on(task)));
        assert_eq!(ctx.get(&MARK), Some("user code"), "not dropped in the job's context");
        assert_home(&[&ctx]);
        assert_pool_clean(&pool);
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

/// `bridge::join` inside `bridge::install` on a one-thread pool: both halves
/// run on the pool thread (the first inline, in the caller's frame). Checks
/// the caller's context after it, and returns the join's outcome.
fn join_in_pool<A, B, RA, RB>(pool: &ThreadPool, a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    baton_bridge::install(pool, || {
        let _ = HOME.set("caller");
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| baton_bridge::join(a, b)));
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
        leave_home_mark();
        let pool = pool();
        user_panic(panics(|| join_in_pool(&pool, || user(PANIC), || OnDrop::armed(PANIC))));
        user_panic(panics(|| join_in_pool(&pool, || OnDrop::armed(PANIC), || user(PANIC))));
        assert_home(&[]);
        assert_pool_clean(&pool);
    }

    /// ... or re-enters: inside that half's copy, never in the caller's
    /// context.
    fn join_other_halfs_result_reentrant() {
        leave_home_mark();
        let pool = pool();
        user_panic(panics(|| join_in_pool(&pool, || user(PANIC), || OnDrop::armed(REENTER))));
        user_panic(panics(|| join_in_pool(&pool, || OnDrop::armed(REENTER), || user(PANIC))));
        assert_home(&[]);
        assert_pool_clean(&pool);
    }
}

// ---------------------------------------------------------------------------
// Fork-join: `scope` and `Scope::spawn`.

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
        let seen = baton_bridge::install(&pool, || {
            let _ = HOME.set("caller");
            let seen = baton_bridge::scope(|s| {
                let tx = tx.clone();
                s.spawn(move |s| {
                    tx.send(user(REENTER)).unwrap();
                    s.spawn(move |_| tx.send(user(REENTER)).unwrap());
                });
                user(REENTER)
            });
            assert_eq!((HOME.get(), MARK.get()), (Some("caller"), None));
            seen
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
        baton_bridge::install(&pool, || {
            let _ = HOME.set("caller");
            baton_bridge::scope(|s| {
                s.spawn(move |s| {
                    write();
                    s.spawn(move |_| write());
                });
                write();
            });
            assert_eq!((HOME.get(), MARK.get()), (Some("caller"), None));
        });
        assert_home(&[]);
        assert_pool_clean(&pool);
    }

    /// A spawned closure panics after the scope's own closure returned a
    /// value: that value is dropped, and its destructor panics too.
    fn scope_result_of_a_panicking_scope_panicking() {
        leave_home_mark();
        let pool = pool();
        user_panic(panics(|| {
            baton_bridge::install(&pool, || {
                baton_bridge::scope(|s| {
                    s.spawn(|_| {
                        user(PANIC);
                    });
                    OnDrop::armed(PANIC)
                })
            })
        }));
        assert_home(&[]);
        assert_pool_clean(&pool);
    }

    /// ... or re-enters: inside the scope closure's copy.
    fn scope_result_of_a_panicking_scope_reentrant() {
        leave_home_mark();
        let pool = pool();
        user_panic(panics(|| {
            baton_bridge::install(&pool, || {
                let _ = HOME.set("caller");
                let outcome = std::panic::catch_unwind(|| {
                    baton_bridge::scope(|s| {
                        s.spawn(|_| {
                            user(PANIC);
                        });
                        OnDrop::armed(REENTER)
                    })
                });
                assert_eq!((HOME.get(), MARK.get()), (Some("caller"), None));
                outcome
            })
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }));
        assert_home(&[]);
        assert_pool_clean(&pool);
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

isolated_tests! {
    fn install_closure_panicking() {
        leave_home_mark();
        let pool = pool();
        user_panic(panics(|| baton_bridge::install(&pool, || user(PANIC))));
        user_panic(panics(|| {
            baton_bridge::install(&pool, || {
                let _ = V.set(OnDrop::armed(PANIC));
            })
        }));
        assert_home(&[]);
        assert_pool_clean(&pool);
    }

    fn install_closure_reentrant() {
        leave_home_mark();
        let pool = pool();
        assert_eq!(baton_bridge::install(&pool, || user(REENTER)), Some("user code"));
        baton_bridge::install(&pool, || {
            let _ = V.set(OnDrop::armed(REENTER));
        });
        assert_home(&[]);
        assert_pool_clean(&pool);
    }

    /// A panic in a `bridge::spawn` closure goes to the pool's panic handler,
    /// as with `rayon::spawn`, once the pool thread is back in its context.
    fn spawn_closure_panicking() {
        leave_home_mark();
        let panics = global_pool();
        spawned(|| {
            user(PANIC);
        });
        user_panic(panics.recv().unwrap());
        spawned(|| {
            let _ = V.set(OnDrop::armed(PANIC));
        });
        user_panic(panics.recv().unwrap());
        assert_home(&[]);
        assert_global_pool_clean();
    }

    fn spawn_closure_reentrant() {
        leave_home_mark();
        let panics = global_pool();
        let (tx, rx) = mpsc::channel();
        spawned(move || tx.send(user(REENTER)).unwrap());
        assert_eq!(rx.recv().unwrap(), Some("user code"));
        spawned(|| {
            let _ = V.set(OnDrop::armed(REENTER));
        });
        assert!(panics.try_recv().is_err());
        assert_home(&[]);
        assert_global_pool_clean();
    }
}

// ---------------------------------------------------------------------------
// `.in_context()` parallel iterators.

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
        leave_home_mark();
        let pool = pool();
        user_panic(panics(|| {
            pool.install(|| {
                (0..100).into_par_iter().in_context().for_each(|_| {
                    let _ = V.set(OnDrop::armed(PANIC));
                })
            })
        }));
        user_panic(panics(|| {
            pool.install(|| {
                (0..100).into_par_iter().in_context().map(|_| 1).reduce(|| 0, |a, b| {
                    let _ = V.set(OnDrop::armed(PANIC));
                    a + b
                })
            })
        }));
        assert_home(&[]);
        assert_pool_clean(&pool);
    }

    /// ... or re-enter: never in the caller's or a pool thread's context.
    fn iter_written_value_reentrant() {
        leave_home_mark();
        let pool = pool();
        pool.install(|| {
            (0..100).into_par_iter().in_context().for_each(|_| {
                let _ = V.set(OnDrop::armed(REENTER));
            })
        });
        let n = pool.install(|| {
            (0..100).into_par_iter().in_context().map(|_| 1).reduce(|| 0, |a, b| {
                let _ = V.set(OnDrop::armed(REENTER));
                a + b
            })
        });
        assert_eq!(n, 100);
        (0..100).into_par_iter().in_context().for_each(|_| {
            let _ = V.set(OnDrop::armed(REENTER));
        });
        assert_home(&[]);
        assert_pool_clean(&pool);
    }

    /// An item panics while other pieces hold results: those are dropped,
    /// and their destructors panic too.
    fn iter_results_of_a_panicking_iterator_panicking() {
        leave_home_mark();
        let pool = pool();
        user_panic(panics(|| {
            pool.install(|| {
                (0..100)
                    .into_par_iter()
                    .in_context()
                    .map(|i| match i {
                        // In the other half from the panic (the pool has
                        // one thread: the input is split once).
                        0 => OnDrop::armed(PANIC),
                        99 => {
                            user(PANIC);
                            unreachable!()
                        }
                        _ => OnDrop::inert(),
                    })
                    .collect::<Vec<_>>()
            })
        }));
        assert_home(&[]);
        assert_pool_clean(&pool);
    }

    /// ... or re-enter: inside a copy, never in a pool thread's context.
    fn iter_results_of_a_panicking_iterator_reentrant() {
        leave_home_mark();
        let pool = pool();
        user_panic(panics(|| {
            pool.install(|| {
                (0..100)
                    .into_par_iter()
                    .in_context()
                    .map(|i| if i == 99 { user(PANIC); unreachable!() } else { OnDrop::armed(REENTER) })
                    .collect::<Vec<_>>()
            })
        }));
        assert_home(&[]);
        assert_pool_clean(&pool);
    }
}
