//! rayon's wait loops are re-entrant: a thread waiting inside `join` or
//! `scope` runs other jobs meanwhile. These tests force that to happen — with
//! bridge jobs of other contexts running on the waiting thread — and check
//! that the waiting job's context is intact after each wait.
//!
//! Each test uses a two-thread pool, so the schedule is forced: the waiting
//! job's other half is stolen by the second thread and blocks until one of
//! the other jobs has run on the first thread, which can only happen inside
//! the first thread's wait loop.

mod common;

use common::{ID, assert_pool_threads_unchanged, marked_pool};

use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, ThreadId};
use std::time::Duration;

use baton_bridge::{BlockingTask, RunBlocking, run_blocking_in};
use baton_context::Context;
use futures::executor::block_on;
use rayon::ThreadPool;

/// Safety net: a broken schedule fails instead of hanging.
const LONG: Duration = Duration::from_secs(60);

/// A one-shot signal.
#[derive(Default)]
struct Latch {
    set: Mutex<bool>,
    cv: Condvar,
}

impl Latch {
    fn new() -> Arc<Latch> {
        Arc::default()
    }

    fn set(&self) {
        *self.set.lock().unwrap() = true;
        self.cv.notify_all();
    }

    fn wait(&self) {
        let guard = self.set.lock().unwrap();
        let (guard, _) = self
            .cv
            .wait_timeout_while(guard, LONG, |set| !*set)
            .unwrap();
        assert!(*guard, "schedule did not happen");
    }
}

type Other = BlockingTask<(Option<u32>, ThreadId)>;

/// Submits, from inside the pool, bridge jobs with contexts of their own
/// (ids 1000+k). The first one that runs on `waiting` signals `ran_on_waiter`.
fn submit_others(
    pool: &ThreadPool,
    waiting: ThreadId,
    ran_on_waiter: &Arc<Latch>,
    base: u32,
) -> Vec<Other> {
    (0..4)
        .map(|k| {
            let ctx = Context::new();
            ctx.run(|| {
                let _ = ID.set(base + k);
            });
            let ran_on_waiter = ran_on_waiter.clone();
            ctx.run_blocking_in(pool, move || {
                let here = thread::current().id();
                let seen = ID.get();
                let _ = ID.set(u32::MAX); // must not reach the waiting job
                if here == waiting {
                    ran_on_waiter.set();
                }
                (seen, here)
            })
        })
        .collect()
}

fn check_others(others: Vec<Other>, base: u32, waiting: ThreadId) {
    let mut on_waiter = 0;
    for (k, task) in others.into_iter().enumerate() {
        let (seen, ran_on) = block_on(task);
        assert_eq!(seen, Some(base + k as u32), "another job saw a foreign id");
        on_waiter += usize::from(ran_on == waiting);
    }
    assert!(on_waiter > 0, "no other job ran inside the wait");
}

#[test]
fn rayon_join_and_scope_waits_restore_the_waiting_jobs_context() {
    let pool = Arc::new(marked_pool(2));
    let _t = ID.set(1);
    // The waiting job is itself a bridge job, in a copy of (ID = 1).
    let task = run_blocking_in(&pool, {
        let pool = pool.clone();
        move || {
            let me = thread::current().id();
            assert_eq!(ID.get(), Some(1));
            let _ = ID.set(10);

            // rayon::join: the right half is stolen and waits until another
            // job has run on this thread, which happens inside join's wait.
            let (started, ran) = (Latch::new(), Latch::new());
            let mut others = Vec::new();
            rayon::join(
                || {
                    started.wait();
                    others = submit_others(&pool, me, &ran, 1000);
                },
                || {
                    started.set();
                    ran.wait();
                },
            );
            assert_eq!(ID.get(), Some(10), "context lost after rayon::join");
            let _ = ID.set(11);

            // rayon::scope: the same with a spawned closure.
            let (started, ran) = (Latch::new(), Latch::new());
            let mut others2 = Vec::new();
            rayon::scope(|s| {
                s.spawn(|_| {
                    started.set();
                    ran.wait();
                });
                started.wait();
                others2 = submit_others(&pool, me, &ran, 2000);
            });
            assert_eq!(ID.get(), Some(11), "context lost after rayon::scope");
            (me, others, others2)
        }
    });
    let (me, others, others2) = block_on(task);
    check_others(others, 1000, me);
    check_others(others2, 2000, me);
    assert_eq!(ID.get(), Some(1));
    assert_pool_threads_unchanged(&pool);
}

#[test]
fn bridge_join_and_scope_waits_restore_the_waiting_jobs_context() {
    let pool = Arc::new(marked_pool(2));
    let _t = ID.set(1);
    let task = run_blocking_in(&pool, {
        let pool = pool.clone();
        move || {
            let me = thread::current().id();
            let _ = ID.set(10);

            let (started, ran) = (Latch::new(), Latch::new());
            let mut others = Vec::new();
            let (left, right) = baton_bridge::join(
                || {
                    started.wait();
                    let _ = ID.set(20); // the left half's own copy
                    others = submit_others(&pool, me, &ran, 1000);
                    ID.get()
                },
                || {
                    assert_eq!(ID.get(), Some(10));
                    started.set();
                    ran.wait();
                    ID.get()
                },
            );
            assert_eq!((left, right), (Some(20), Some(10)));
            assert_eq!(ID.get(), Some(10), "context lost after bridge::join");

            let (started, ran) = (Latch::new(), Latch::new());
            let mut others2 = Vec::new();
            baton_bridge::scope(|s| {
                let _ = ID.set(30);
                s.spawn(|_| {
                    assert_eq!(ID.get(), Some(30));
                    started.set();
                    ran.wait();
                    assert_eq!(ID.get(), Some(30));
                });
                started.wait();
                others2 = submit_others(&pool, me, &ran, 2000);
            });
            assert_eq!(ID.get(), Some(10), "context lost after bridge::scope");
            (me, others, others2)
        }
    });
    let (me, others, others2) = block_on(task);
    check_others(others, 1000, me);
    check_others(others2, 2000, me);
    assert_eq!(ID.get(), Some(1));
    assert_pool_threads_unchanged(&pool);
}
