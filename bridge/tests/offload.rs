//! `run_blocking`, `run_blocking_in` and `RunBlocking`: what the job sees,
//! where its writes go, panics, cancellation, and the pool threads' own
//! contexts.

mod common;

use common::{ID, MARK, assert_pool_threads_unchanged, mark_pool_threads, pool};

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex, mpsc};
use std::time::Duration;

use baton_bridge::{BlockingJob, RunBlocking, run_blocking, run_blocking_in};
use baton_context::Context;
use futures::executor::block_on;

/// Safety net against a hang turning into a stuck test run.
const LONG: Duration = Duration::from_secs(60);

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn closure_sees_callers_values_and_its_sets_stay_private() {
    let _t = ID.set(5);
    let (seen, after_set) = block_on(run_blocking(|| {
        let seen = ID.get();
        let _ = ID.set(6);
        (seen, ID.get())
    }));
    assert_eq!(seen, Some(5));
    assert_eq!(after_set, Some(6));
    assert_eq!(ID.get(), Some(5), "the job's write leaked to the caller");
}

#[test]
fn copy_is_taken_at_the_call_not_at_the_poll() {
    let pool = pool(1);
    let t = ID.set(1);
    let task = run_blocking_in(&pool, || ID.get());
    ID.reset(t).unwrap();
    let _t = ID.set(2);
    assert_eq!(block_on(task), Some(1));
}

#[test]
fn ctx_run_blocking_writes_land_in_ctx() {
    let pool = pool(2);
    let ctx = Context::new();
    ctx.run(|| {
        let _ = ID.set(1);
    });
    let seen = block_on(ctx.run_blocking(|| {
        let seen = ID.get();
        let _ = ID.set(2);
        seen
    }));
    assert_eq!(seen, Some(1));
    assert_eq!(ctx.get(&ID), Some(2));
    // ... and the next job in ctx sees the previous one's write.
    let seen = block_on(ctx.run_blocking_in(&pool, || {
        let seen = ID.get();
        let _ = ID.set(3);
        seen
    }));
    assert_eq!(seen, Some(2));
    assert_eq!(ctx.get(&ID), Some(3));
    assert_eq!(ID.get(), None);
}

#[test]
fn pool_threads_contexts_unchanged_after_jobs_and_panicking_jobs() {
    const N: usize = 3;
    let pool = pool(N);
    mark_pool_threads(&pool);

    // N jobs at once, so that every pool thread runs one of them.
    let barrier = Arc::new(Barrier::new(N));
    let tasks: Vec<_> = (0..N as u32)
        .map(|i| {
            let barrier = barrier.clone();
            let _t = ID.set(100 + i);
            run_blocking_in(&pool, move || {
                barrier.wait();
                assert_eq!(MARK.get(), None, "the job saw the pool thread's value");
                let _ = ID.set(200 + i);
                let _ = MARK.set(999);
                ID.get()
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(block_on(task), Some(200 + i as u32));
    }
    assert_pool_threads_unchanged(&pool);

    // The same with jobs that panic after writing.
    let barrier = Arc::new(Barrier::new(N));
    let tasks: Vec<_> = (0..N as u32)
        .map(|i| {
            let barrier = barrier.clone();
            let _t = ID.set(300 + i);
            run_blocking_in(&pool, move || {
                barrier.wait();
                let _ = ID.set(400 + i);
                let _ = MARK.set(999);
                panic!("job {i} fails");
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        let payload = catch_unwind(AssertUnwindSafe(|| block_on(task))).unwrap_err();
        assert_eq!(panic_message(&*payload), format!("job {i} fails"));
    }
    assert_pool_threads_unchanged(&pool);
}

#[test]
fn panic_is_resumed_with_its_payload_and_the_pool_keeps_working() {
    #[derive(Debug, PartialEq)]
    struct Payload(u32);

    let pool = pool(1);
    let task = run_blocking_in(&pool, || -> u32 { std::panic::panic_any(Payload(17)) });
    let payload = catch_unwind(AssertUnwindSafe(|| block_on(task))).unwrap_err();
    assert_eq!(payload.downcast_ref::<Payload>(), Some(&Payload(17)));

    // The only pool thread survived.
    assert_eq!(block_on(run_blocking_in(&pool, || 1 + 1)), 2);
    // The global pool too.
    let task = run_blocking(|| -> u32 { panic!("global") });
    assert!(catch_unwind(AssertUnwindSafe(|| block_on(task))).is_err());
    assert_eq!(block_on(run_blocking(|| 3)), 3);
}

#[test]
fn context_entered_on_another_thread_fails_with_already_entered() {
    let pool = pool(1);
    let ctx = Context::new();
    let (entered_tx, entered_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let holder = {
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            ctx.run(|| {
                entered_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            })
        })
    };
    entered_rx.recv().unwrap();

    let ran = Arc::new(AtomicBool::new(false));
    let task = {
        let ran = ran.clone();
        ctx.run_blocking_in(&pool, move || ran.store(true, Ordering::SeqCst))
    };
    let payload = catch_unwind(AssertUnwindSafe(|| block_on(task))).unwrap_err();
    let msg = panic_message(&*payload);
    assert!(msg.contains("already entered"), "unexpected message: {msg}");
    assert!(
        !ran.load(Ordering::SeqCst),
        "the closure ran in a context entered elsewhere"
    );

    release_tx.send(()).unwrap();
    holder.join().unwrap();
    // Free again: it works.
    let ran2 = ran.clone();
    block_on(ctx.run_blocking_in(&pool, move || ran2.store(true, Ordering::SeqCst)));
    assert!(ran.load(Ordering::SeqCst));
}

#[test]
fn context_entered_by_the_awaiting_thread_fails_instead_of_hanging() {
    let ctx = Context::new();
    let payload = ctx
        .run(|| catch_unwind(AssertUnwindSafe(|| block_on(ctx.run_blocking(|| 1)))).unwrap_err());
    assert!(panic_message(&*payload).contains("already entered"));
    assert!(!ctx.is_entered());
}

/// Records where it was dropped.
struct DropProbe {
    dropped: Arc<Mutex<Vec<Option<u32>>>>,
}

impl Drop for DropProbe {
    fn drop(&mut self) {
        self.dropped.lock().unwrap().push(ID.get());
    }
}

#[test]
fn dropping_the_future_before_the_job_starts_skips_it() {
    let pool = pool(1);
    // Occupy the only thread.
    let (started_tx, started_rx) = mpsc::channel();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let blocker = run_blocking_in(&pool, move || {
        started_tx.send(()).unwrap();
        gate_rx.recv_timeout(LONG).unwrap();
    });
    started_rx.recv_timeout(LONG).unwrap();

    let ran = Arc::new(AtomicBool::new(false));
    let dropped = Arc::new(Mutex::new(Vec::new()));
    let task = {
        let _t = ID.set(8);
        let ran = ran.clone();
        let probe = DropProbe {
            dropped: dropped.clone(),
        };
        run_blocking_in(&pool, move || {
            let _probe = probe;
            ran.store(true, Ordering::SeqCst);
        })
    };
    drop(task);
    gate_tx.send(()).unwrap();
    block_on(blocker);
    // Jobs submitted from outside run in order: once this one is done, the
    // cancelled one has had its turn.
    block_on(run_blocking_in(&pool, || ()));

    assert!(!ran.load(Ordering::SeqCst), "a cancelled job ran");
    // The closure was dropped, once, inside the job's context.
    assert_eq!(*dropped.lock().unwrap(), vec![Some(8)]);
}

#[test]
fn dropping_the_future_while_the_job_runs_discards_the_result() {
    let pool = pool(1);
    let (started_tx, started_rx) = mpsc::channel();
    let (gate_tx, gate_rx) = mpsc::channel::<()>();
    let dropped = Arc::new(Mutex::new(Vec::new()));
    let task = {
        let dropped = dropped.clone();
        run_blocking_in(&pool, move || {
            started_tx.send(()).unwrap();
            gate_rx.recv_timeout(LONG).unwrap();
            let _ = ID.set(9);
            DropProbe { dropped }
        })
    };
    started_rx.recv_timeout(LONG).unwrap();
    drop(task);
    gate_tx.send(()).unwrap();
    block_on(run_blocking_in(&pool, || ()));
    // Dropped exactly once, on the pool thread, inside the job's context
    // (where it was made: it sees the job's write).
    assert_eq!(*dropped.lock().unwrap(), vec![Some(9)]);
    assert_eq!(ID.get(), None);
}

#[test]
fn dropping_a_job_unrun_fails_its_task_instead_of_hanging() {
    let (job, task) = BlockingJob::new(|| 1);
    assert!(!task.is_finished());
    drop(job);
    assert!(task.is_finished());
    let payload = catch_unwind(AssertUnwindSafe(|| block_on(task))).unwrap_err();
    assert!(panic_message(&*payload).contains("dropped without running"));
}

#[test]
fn blocking_job_runs_on_any_thread() {
    let _t = ID.set(12);
    let ctx = Context::new();
    let (copy_job, copy_task) = BlockingJob::new(|| ID.get());
    let (ctx_job, ctx_task) = BlockingJob::with_context(&ctx, || {
        let _ = ID.set(13);
    });
    assert!(!copy_job.is_cancelled());
    let t = std::thread::spawn(move || {
        copy_job.run();
        ctx_job.run();
        ID.get()
    });
    assert_eq!(t.join().unwrap(), None, "the thread's own context changed");
    assert_eq!(block_on(copy_task), Some(12));
    block_on(ctx_task);
    assert_eq!(ctx.get(&ID), Some(13));
}

#[test]
fn many_offloads_on_a_small_pool_each_see_their_own_copy() {
    let pool = pool(2);
    mark_pool_threads(&pool);
    let done = AtomicUsize::new(0);
    let tasks: Vec<_> = (0..500u32)
        .map(|i| {
            let _t = ID.set(i);
            run_blocking_in(&pool, move || {
                let seen = ID.get();
                let _ = ID.set(u32::MAX);
                seen
            })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(block_on(task), Some(i as u32));
        done.fetch_add(1, Ordering::Relaxed);
    }
    assert_eq!(done.load(Ordering::Relaxed), 500);
    assert_pool_threads_unchanged(&pool);
}
