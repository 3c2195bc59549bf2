//! Context, run, copy and threads: the behaviours of CPython's
//! `Lib/test/test_context.py` (`test_context_run_*`, `test_context_copy_*`,
//! `test_context_threads_*`, mapping tests), one test each.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;

use baton_context::{Context, ContextCell, ContextError, ContextVar, copy_context};

static A: ContextVar<i32> = ContextVar::new("a");
/// Loop counts for the threaded tests: smaller under Miri, which is slow.
const ROUNDS: usize = if cfg!(miri) { 20 } else { 2_000 };
static B: ContextVar<i32> = ContextVar::new("b");
static D: ContextVar<i32> = ContextVar::with_default("d", -1);

#[test]
fn new_context_is_empty() {
    let ctx = Context::new();
    assert_eq!(ctx.len(), 0);
    assert!(ctx.is_empty());
    assert_eq!(ctx.iter().count(), 0);
    assert_eq!(format!("{ctx:?}"), "Context { vars: [] }");
}

#[test]
fn run_returns_the_closures_result_and_isolates() {
    let ctx = Context::new();
    let seen = ctx.run(|| {
        let _ = A.set(1);
        A.get()
    });
    assert_eq!(seen, Some(1));
    assert_eq!(A.get(), None);
    assert_eq!(ctx.get(&A), Some(1));
    // The next run sees the earlier run's changes.
    assert_eq!(ctx.run(|| A.get()), Some(1));
}

#[test]
fn run_keeps_values_set_before_a_panic_and_restores_the_caller() {
    let outer = Context::new();
    outer.run(|| {
        let _ = A.set(100);
        let ctx = Context::new();
        let result = catch_unwind(AssertUnwindSafe(|| {
            ctx.run(|| {
                let _ = A.set(1);
                let _ = B.set(2);
                panic!("inside the context");
            })
        }));
        assert!(result.is_err());
        assert_eq!(A.get(), Some(100));
        assert_eq!(B.get(), None);
        assert_eq!(ctx.get(&A), Some(1));
        assert_eq!(ctx.get(&B), Some(2));
        // The context is not left entered.
        assert!(!ctx.is_entered());
        assert_eq!(ctx.run(|| A.get()), Some(1));
    });
}

#[test]
fn nested_run_of_two_contexts() {
    let ctx1 = Context::new();
    let ctx2 = Context::new();
    ctx1.run(|| {
        let _ = A.set(1);
        ctx2.run(|| {
            assert_eq!(A.get(), None);
            let _ = A.set(2);
            let _ = B.set(2);
            // The outer context's bindings as of the nested entry are visible
            // through its handle.
            assert_eq!(ctx1.get(&A), Some(1));
        });
        assert_eq!(A.get(), Some(1));
        assert_eq!(B.get(), None);
    });
    assert_eq!(ctx1.get(&A), Some(1));
    assert_eq!(ctx2.get(&A), Some(2));
    assert_eq!(ctx2.get(&B), Some(2));
}

#[test]
fn run_of_an_entered_context_is_already_entered_recursively() {
    let ctx = Context::new();
    ctx.run(|| {
        assert_eq!(ctx.try_run(|| ()), Err(ContextError::AlreadyEntered));
        let msg = catch_unwind(AssertUnwindSafe(|| ctx.run(|| ()))).unwrap_err();
        let msg = msg.downcast_ref::<String>().unwrap();
        assert!(msg.contains("already entered"), "{msg}");
        // A clone is a handle to the same context.
        assert_eq!(
            ctx.clone().try_run(|| ()),
            Err(ContextError::AlreadyEntered)
        );
    });
    // Still usable afterwards.
    assert_eq!(ctx.try_run(|| 5), Ok(5));
}

#[test]
fn run_of_a_context_entered_by_another_thread_is_already_entered() {
    let ctx = Context::new();
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let remote = ctx.clone();
    let holder = thread::spawn(move || {
        remote.run(|| {
            let _ = A.set(7);
            entered_tx.send(()).unwrap();
            release_rx.recv().unwrap();
        })
    });
    entered_rx.recv().unwrap();
    assert!(ctx.is_entered());
    assert_eq!(ctx.try_run(|| ()), Err(ContextError::AlreadyEntered));
    // Reading it from here works, and sees it as of when the holder entered.
    assert_eq!(ctx.get(&A), None);
    // The failed attempt left this thread's context alone.
    assert_eq!(A.get(), None);
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    // The holder's writes are published on exit.
    assert_eq!(ctx.get(&A), Some(7));
    assert_eq!(ctx.try_run(|| A.get()), Ok(Some(7)));
}

#[test]
fn copy_is_independent_both_ways() {
    let ctx = Context::new();
    ctx.run(|| {
        let _ = A.set(1);
    });
    let copy = ctx.copy();
    assert_eq!(copy.get(&A), Some(1));
    copy.run(|| {
        let _ = A.set(2);
        let _ = B.set(2);
    });
    ctx.run(|| {
        let _ = A.set(3);
    });
    assert_eq!(ctx.get(&A), Some(3));
    assert_eq!(ctx.get(&B), None);
    assert_eq!(copy.get(&A), Some(2));
    assert_eq!(copy.get(&B), Some(2));
    assert!(!ctx.ptr_eq(&copy));
}

#[test]
fn copy_context_copies_the_current_context_with_live_changes() {
    let ctx = Context::new();
    ctx.run(|| {
        let _ = A.set(1);
        let inner = copy_context();
        let _ = A.set(2);
        assert_eq!(inner.get(&A), Some(1));
        // ctx.copy() from inside ctx sees the live bindings too.
        assert_eq!(ctx.copy().get(&A), Some(2));
        assert_eq!(ctx.get(&A), Some(2));
    });
}

#[test]
fn mapping_reads_ignore_the_var_default() {
    let ctx = Context::new();
    assert_eq!(ctx.get(&D), None);
    assert!(!ctx.contains(&D));
    assert_eq!(ctx.run(|| D.get()), Some(-1));
    ctx.run(|| {
        let _ = D.set(4);
    });
    assert_eq!(ctx.get(&D), Some(4));
}

#[test]
fn iter_and_debug_list_the_bound_vars() {
    let ctx = Context::new();
    ctx.run(|| {
        let _ = A.set(1);
        let _ = B.set(2);
    });
    let mut items: Vec<(&str, i32)> = ctx
        .iter()
        .map(|(name, value)| (name, *value.downcast::<i32>().unwrap()))
        .collect();
    items.sort();
    assert_eq!(items, vec![("a", 1), ("b", 2)]);
    assert_eq!(format!("{ctx:?}"), r#"Context { vars: ["a", "b"] }"#);
}

#[test]
fn a_new_thread_starts_empty() {
    static VAR: ContextVar<&str> = ContextVar::with_default("thread_local_var", "default");
    let _t = VAR.set("async value");
    let seen = thread::spawn(|| (VAR.get(), copy_context().len()))
        .join()
        .unwrap();
    assert_eq!(seen, (Some("default"), 0));
    assert_eq!(VAR.get(), Some("async value"));
}

#[test]
fn ten_threads_setting_and_reading_one_var_do_not_interfere() {
    static VAR: ContextVar<usize> = ContextVar::new("shared");
    let barrier = Arc::new(Barrier::new(10));
    let handles: Vec<_> = (0..10)
        .map(|i| {
            let barrier = barrier.clone();
            thread::spawn(move || {
                for round in 0..ROUNDS {
                    let token = VAR.set(i * 10_000 + round);
                    if round == 0 {
                        barrier.wait();
                    }
                    assert_eq!(VAR.get(), Some(i * 10_000 + round));
                    if round % 2 == 0 {
                        VAR.reset(token).unwrap();
                    }
                }
                VAR.get()
            })
        })
        .collect();
    for (i, handle) in handles.into_iter().enumerate() {
        assert_eq!(handle.join().unwrap(), Some(i * 10_000 + ROUNDS - 1));
    }
}

#[test]
fn threads_running_copies_of_one_context_do_not_interfere() {
    let base = Context::new();
    base.run(|| {
        let _ = A.set(-1);
    });
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let ctx = base.copy();
            thread::spawn(move || {
                ctx.run(|| {
                    assert_eq!(A.get(), Some(-1));
                    for _ in 0..ROUNDS / 20 {
                        let _ = A.set(i);
                        thread::yield_now();
                        assert_eq!(A.get(), Some(i));
                    }
                });
                ctx.get(&A)
            })
        })
        .collect();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.join().unwrap(), Some(i as i32));
    }
    assert_eq!(base.get(&A), Some(-1));
}

#[test]
fn two_threads_racing_to_enter_one_context_exactly_one_wins_at_a_time() {
    let ctx = Context::new();
    let barrier = Arc::new(Barrier::new(2));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let ctx = ctx.clone();
            let barrier = barrier.clone();
            thread::spawn(move || {
                barrier.wait();
                let mut entered = 0;
                for _ in 0..ROUNDS * 5 {
                    if let Ok(()) = ctx.try_run(|| {
                        // Inside, nobody else is: increment without loss.
                        let n = A.get().unwrap_or(0);
                        let _ = A.set(n + 1);
                    }) {
                        entered += 1;
                    }
                    // Whatever happened, this thread is back in its own context.
                    assert_eq!(A.get(), None);
                }
                entered
            })
        })
        .collect();
    let total: i32 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(ctx.get(&A), Some(total));
}

#[test]
fn readers_on_other_threads_see_consistent_snapshots_while_a_writer_runs() {
    let ctx = Context::new();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let ctx = ctx.clone();
        let done = done.clone();
        thread::spawn(move || {
            let mut reads = 0;
            while !done.load(std::sync::atomic::Ordering::Acquire) || reads == 0 {
                // A and B are always published together, equal: any one
                // snapshot holds both or neither.
                let snapshot = ctx.copy();
                assert_eq!(snapshot.get(&A), snapshot.get(&B));
                reads += 1;
            }
            reads
        })
    };
    for i in 0..ROUNDS as i32 {
        ctx.run(|| {
            let _ = A.set(i);
            let _ = B.set(i);
        });
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    assert!(reader.join().unwrap() > 0);
    assert_eq!(ctx.get(&A), Some(ROUNDS as i32 - 1));
}

#[test]
fn context_cell_copies_without_a_handle() {
    let _t = A.set(11);
    let cell = ContextCell::copy_current();
    assert_eq!(cell.len(), 1);
    cell.run(|| {
        assert_eq!(A.get(), Some(11));
        assert!(cell.is_current());
        let _ = A.set(12);
        assert_eq!(cell.try_run(|| ()), Err(ContextError::AlreadyEntered));
    });
    assert_eq!(cell.to_context().get(&A), Some(12));
    assert_eq!(A.get(), Some(11));
}

#[test]
fn values_are_dropped_when_the_last_context_holding_them_goes() {
    /// Holds a reference only so that its drop can be observed.
    struct Probe(#[allow(dead_code)] Arc<()>);
    static VAR: ContextVar<Probe> = ContextVar::new("probe");
    let alive = Arc::new(());
    let ctx = Context::new();
    ctx.run(|| {
        let _ = VAR.set(Probe(alive.clone()));
    });
    let copy = ctx.copy();
    assert_eq!(Arc::strong_count(&alive), 2);
    drop(ctx);
    assert_eq!(Arc::strong_count(&alive), 2);
    drop(copy);
    assert_eq!(Arc::strong_count(&alive), 1);
}

#[test]
fn a_values_destructor_may_use_context_vars() {
    struct Reads;
    impl Drop for Reads {
        fn drop(&mut self) {
            let _ = A.get();
            let _ = B.set(1);
        }
    }
    static VAR: ContextVar<Reads> = ContextVar::new("reads");
    let ctx = Context::new();
    ctx.run(|| {
        let t = VAR.set(Reads);
        VAR.reset(t).unwrap();
    });
    assert_eq!(ctx.get(&B), Some(1));
}

#[test]
fn a_threads_base_context_keeps_its_bindings_and_tokens_across_nested_runs() {
    thread::spawn(|| {
        let first = A.set(1);
        let ctx = Context::new();
        ctx.run(|| {
            assert_eq!(A.get(), None);
            let _ = A.set(10);
        });
        assert_eq!(A.get(), Some(1));
        assert_eq!(copy_context().get(&A), Some(1));
        // Tokens made in the base context before a nested run still match it.
        let second = A.set(2);
        ctx.run(|| assert_eq!(A.get(), Some(10)));
        assert_eq!(A.get(), Some(2));
        A.reset(second).unwrap();
        assert_eq!(A.get(), Some(1));
        A.reset(first).unwrap();
        assert_eq!(A.get(), None);
        // And a token from a nested context is still foreign here.
        let inner = ctx.run(|| B.set(3));
        assert_eq!(B.reset(inner), Err(ContextError::WrongContext));
    })
    .join()
    .unwrap();
}

#[test]
fn a_threads_base_bindings_are_dropped_when_the_thread_exits() {
    struct Probe(#[allow(dead_code)] Arc<()>);
    static VAR: ContextVar<Probe> = ContextVar::new("probe");
    let alive = Arc::new(());
    // Bindings held only by the thread's slot.
    let probe = alive.clone();
    thread::spawn(move || {
        let _ = VAR.set(Probe(probe));
    })
    .join()
    .unwrap();
    assert_eq!(Arc::strong_count(&alive), 1);
    // Bindings published into the base context's own cell by a nested run,
    // plus later private writes on top.
    let (first, second) = (alive.clone(), alive.clone());
    thread::spawn(move || {
        let _ = VAR.set(Probe(first));
        Context::new().run(|| ());
        let _ = B.set(1);
        let _ = VAR.set(Probe(second));
    })
    .join()
    .unwrap();
    assert_eq!(Arc::strong_count(&alive), 1);
}

#[test]
fn a_thread_local_destructor_may_read_context_vars() {
    struct ReadsOnExit(std::sync::mpsc::Sender<Option<i32>>);
    impl Drop for ReadsOnExit {
        fn drop(&mut self) {
            let _ = self.0.send(A.get());
        }
    }
    std::thread_local! {
        static ON_EXIT: std::cell::RefCell<Option<ReadsOnExit>> =
            const { std::cell::RefCell::new(None) };
    }
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        ON_EXIT.with(|slot| *slot.borrow_mut() = Some(ReadsOnExit(tx)));
        let _ = A.set(5);
    })
    .join()
    .unwrap();
    // Whichever destructor runs first, the read neither panics nor hangs: it
    // sees the binding, or (after the slot's cleanup) an empty context.
    let seen = rx.recv().expect("the destructor ran");
    assert!(matches!(seen, Some(5) | None), "{seen:?}");
}

// Handles are recycled through a per-thread free list (`handle.rs`).

#[test]
fn recycled_handles_start_fresh() {
    // Fill the pool, then reuse every slot: each reused context must
    // hold only its own bindings, and not be entered.
    let many: Vec<Context> = (0..64).map(|_| Context::new()).collect();
    for (i, ctx) in many.iter().enumerate() {
        ctx.run(|| {
            let _ = A.set(i as i32);
        });
    }
    drop(many);
    for _ in 0..64 {
        let ctx = copy_context();
        assert!(!ctx.is_entered());
        assert_eq!(ctx.get(&A), None);
        ctx.run(|| assert_eq!(A.get(), None));
    }
}

#[test]
fn the_last_clone_frees_on_another_thread() {
    let ctx = Context::new();
    ctx.run(|| {
        let _ = A.set(7);
    });
    let clones: Vec<Context> = (0..8).map(|_| ctx.clone()).collect();
    drop(ctx);
    let handles: Vec<_> = clones
        .into_iter()
        .map(|c| std::thread::spawn(move || c.get(&A)))
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), Some(7));
    }
}
