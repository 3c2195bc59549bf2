//! The bridge under executors other than baton's: a plain tokio runtime, and
//! many tasks with distinct contexts offloading concurrently.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use baton_bridge::{RunBlocking, run_blocking};
use baton_context::{Context, ContextVar};
use futures::executor::LocalPool;
use futures::future::join_all;
use futures::task::LocalSpawnExt;

static ID: ContextVar<u32> = ContextVar::new("id");

const TASKS: u32 = 1_000;
const OFFLOADS_PER_TASK: u32 = 10;

/// One offload: reads the id in the job and in both halves of a nested
/// `join` (so the pool threads also wait and steal), then overwrites it.
fn offload() -> baton_bridge::BlockingTask<[Option<u32>; 4]> {
    run_blocking(|| {
        let before = ID.get();
        let (a, b) = baton_bridge::join(|| ID.get(), || ID.get());
        let after = ID.get();
        let _ = ID.set(u32::MAX);
        [before, a, b, after]
    })
}

#[test]
fn thousand_tasks_ten_thousand_concurrent_offloads_see_only_their_own_ids() {
    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    let checked = Arc::new(AtomicUsize::new(0));
    for id in 0..TASKS {
        let checked = checked.clone();
        // A LocalPool knows nothing of contexts: give each task its own.
        let task = Context::new().attach(async move {
            let _t = ID.set(id);
            // All offloads of all tasks are in flight before any is awaited
            // to completion: the first poll of every task submits its ten.
            let results = join_all((0..OFFLOADS_PER_TASK).map(|_| offload())).await;
            for seen in results {
                assert_eq!(seen, [Some(id); 4], "task {id} saw another task's id");
                checked.fetch_add(1, Ordering::Relaxed);
            }
            assert_eq!(
                ID.get(),
                Some(id),
                "an offload's write leaked into task {id}"
            );
        });
        spawner.spawn_local(task).unwrap();
    }
    pool.run();
    assert_eq!(
        checked.load(Ordering::Relaxed),
        (TASKS * OFFLOADS_PER_TASK) as usize
    );
    assert_eq!(ID.get(), None);
}

#[test]
fn works_under_a_plain_multi_thread_tokio_runtime() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async {
        let handles: Vec<_> = (0..200u32)
            .map(|id| {
                tokio::spawn(Context::new().attach(async move {
                    let _t = ID.set(id);
                    let seen = run_blocking(|| {
                        let seen = ID.get();
                        let _ = ID.set(u32::MAX);
                        seen
                    })
                    .await;
                    tokio::task::yield_now().await;
                    (seen, ID.get())
                }))
            })
            .collect();
        for (id, handle) in handles.into_iter().enumerate() {
            let id = id as u32;
            assert_eq!(handle.await.unwrap(), (Some(id), Some(id)));
        }
    });
}

#[test]
fn panic_resumes_in_the_awaiting_tokio_task() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let handle = tokio::spawn(async {
            run_blocking(|| -> u32 { std::panic::panic_any("from the pool") }).await
        });
        let err = handle.await.unwrap_err();
        assert!(err.is_panic());
        let payload = err.into_panic();
        assert_eq!(payload.downcast_ref::<&str>(), Some(&"from the pool"));
        // The runtime and the pool keep working.
        assert_eq!(run_blocking(|| 5).await, 5);
    });
}

#[test]
fn ctx_run_blocking_under_tokio() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let ctx = Context::new();
    let seen = rt.block_on(async {
        ctx.run_blocking(|| {
            let _ = ID.set(77);
        })
        .await;
        ctx.run_blocking(|| ID.get()).await
    });
    assert_eq!(seen, Some(77));
    assert_eq!(ctx.get(&ID), Some(77));
}
