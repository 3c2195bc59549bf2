//! Going back from blocking work to the async runtime: code inside
//! `run_blocking` spawns onto a captured baton `Handle`, and the new task runs
//! in a copy of the closure's context (S6 + S8).
#![cfg(feature = "rayon")]

use baton::bridge::{self, RunBlocking, run_blocking, run_blocking_in};
use baton::{Builder, Context, ContextVar, Handle, Runtime, TaskGroup, spawn};

static REQUEST: ContextVar<String> = ContextVar::new("request");
static STEP: ContextVar<&str> = ContextVar::with_default("step", "none");
/// Set, bare, in each pool thread's own context, to check it is untouched.
static THREAD_MARK: ContextVar<usize> = ContextVar::new("thread_mark");

fn rt(workers: usize) -> Runtime {
    Builder::new().worker_threads(workers).build().unwrap()
}

fn pool(threads: usize) -> rayon::ThreadPool {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    // A bare broadcast runs in each thread's own context: the mark stays there.
    pool.broadcast(|b| {
        let _mark = THREAD_MARK.set(b.index());
    });
    pool
}

/// Each pool thread's own context is exactly as `pool` left it.
fn assert_pool_threads_unchanged(pool: &rayon::ThreadPool) {
    let seen = pool.broadcast(|b| {
        (
            b.index(),
            THREAD_MARK.get(),
            REQUEST.get(),
            STEP.get(),
            baton::copy_context().len(),
        )
    });
    for (index, mark, request, step, len) in seen {
        assert_eq!(mark, Some(index));
        assert_eq!(request, None);
        assert_eq!(step, Some("none"));
        assert_eq!(len, 1, "only the mark is bound");
    }
}

#[test]
fn a_task_spawned_from_run_blocking_copies_the_closures_context() {
    let rt = rt(2);
    let pool = pool(2);
    let (in_task, in_closure_after, in_caller_after) = rt.block_on(async {
        let _request = REQUEST.set("req-7".to_string());
        let _step = STEP.set("async");
        let handle = Handle::current();
        let (task, in_closure_after) = run_blocking_in(&pool, move || {
            // No runtime here: this is a rayon thread.
            assert!(Handle::try_current().is_none());
            let _step = STEP.set("blocking"); // in the job's copy
            let task = handle.spawn(async {
                let seen = (REQUEST.get(), STEP.get());
                // The task's own copy: this does not reach the closure.
                let _step = STEP.set("set-by-the-task");
                seen
            });
            // The copy was taken at spawn time: later changes stay here.
            let _step = STEP.set("blocking-after-spawn");
            (task, (REQUEST.get(), STEP.get()))
        })
        .await;
        let in_task = task.await.unwrap();
        (in_task, in_closure_after, (REQUEST.get(), STEP.get()))
    });
    assert_eq!(in_task, (Some("req-7".to_string()), Some("blocking")));
    assert_eq!(
        in_closure_after,
        (Some("req-7".to_string()), Some("blocking-after-spawn"))
    );
    assert_eq!(in_caller_after, (Some("req-7".to_string()), Some("async")));
    assert_pool_threads_unchanged(&pool);
}

#[test]
fn the_spawned_tasks_writes_do_not_reach_the_closure_that_spawned_it() {
    let rt = rt(2);
    let handle = rt.handle();
    let seen = rt.block_on(async move {
        let _step = STEP.set("async");
        run_blocking(move || {
            let task = handle.spawn(async {
                let _step = STEP.set("set-by-the-task");
                STEP.get()
            });
            // Blocking on the task from the rayon thread: the task runs on a
            // baton worker meanwhile.
            let in_task = futures::executor::block_on(task).unwrap();
            (in_task, STEP.get())
        })
        .await
    });
    assert_eq!(seen, (Some("set-by-the-task"), Some("async")));
}

#[test]
fn ctx_run_blocking_spawns_tasks_in_copies_of_ctx() {
    let rt = rt(2);
    let ctx = Context::new();
    ctx.run(|| {
        let _request = REQUEST.set("in-ctx".to_string());
    });
    let handle = rt.handle();
    let job_ctx = ctx.clone();
    let in_task = rt.block_on(async move {
        let task = job_ctx
            .run_blocking(move || {
                let task = handle.spawn(async {
                    let seen = REQUEST.get();
                    let _request = REQUEST.set("set-by-the-task".to_string());
                    seen
                });
                // A write of the job itself lands in ctx (ctx.run_blocking).
                let _step = STEP.set("written-by-the-job");
                task
            })
            .await;
        task.await.unwrap()
    });
    assert_eq!(in_task.as_deref(), Some("in-ctx"));
    // The task ran in a copy: its write did not reach ctx; the job's did.
    assert_eq!(ctx.get(&REQUEST).as_deref(), Some("in-ctx"));
    assert_eq!(ctx.get(&STEP), Some("written-by-the-job"));
}

#[test]
fn many_requests_offload_and_come_back_each_with_its_own_id() {
    let rt = rt(2);
    let pool = pool(2);
    let pool = std::sync::Arc::new(pool);
    let n = 200;
    let pool2 = pool.clone();
    let results = rt.block_on(async move {
        let mut group = TaskGroup::new();
        for i in 0..n {
            let pool = pool2.clone();
            group.spawn(async move {
                let _request = REQUEST.set(format!("req-{i}"));
                let handle = Handle::current();
                let task = run_blocking_in(&pool, move || {
                    let in_job = REQUEST.get();
                    let task = handle.spawn(async {
                        baton::yield_now().await; // may resume on another worker
                        REQUEST.get()
                    });
                    (in_job, task)
                });
                let (in_job, back) = task.await;
                (i, in_job, back.await.unwrap(), REQUEST.get())
            });
        }
        group.join_all().await.unwrap()
    });
    assert_eq!(results.len(), n);
    for (i, in_job, in_task, after) in results {
        let id = Some(format!("req-{i}"));
        assert_eq!(in_job, id);
        assert_eq!(in_task, id);
        assert_eq!(after, id);
    }
    assert_pool_threads_unchanged(&pool);
}

#[test]
fn fork_join_closures_spawn_back_with_their_own_copies() {
    let rt = rt(2);
    let pool = pool(2);
    let (left, right) = (rt.handle(), rt.handle());
    let (a, b, after) = rt.block_on(async {
        let _request = REQUEST.set("fork".to_string());
        // Blocks this thread (the `block_on` caller, not a worker) until
        // both halves have run on the pool.
        let (a, b) = bridge::install(&pool, move || {
            bridge::join(
                move || {
                    let _step = STEP.set("left");
                    left.spawn(async { (REQUEST.get(), STEP.get()) })
                },
                move || {
                    let _step = STEP.set("right");
                    right.spawn(async { (REQUEST.get(), STEP.get()) })
                },
            )
        });
        (a.await.unwrap(), b.await.unwrap(), STEP.get())
    });
    assert_eq!(a, (Some("fork".to_string()), Some("left")));
    assert_eq!(b, (Some("fork".to_string()), Some("right")));
    assert_eq!(after, Some("none"));
    assert_pool_threads_unchanged(&pool);
    // Tasks spawned the usual way see none of it.
    let task = rt.block_on(async { spawn(async { STEP.get() }).await });
    assert_eq!(task.unwrap(), Some("none"));
}
