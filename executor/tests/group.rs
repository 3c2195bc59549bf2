//! TaskGroup: structured concurrency.
#![cfg(not(baton_loom))]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use baton_context::ContextVar;
use baton_executor::{Builder, Runtime, TaskGroup, yield_now};

static NAME: ContextVar<&'static str> = ContextVar::new("name");

fn rt() -> Runtime {
    Builder::new().worker_threads(2).build().unwrap()
}

#[test]
fn join_next_yields_results_as_they_finish() {
    let rt = rt();
    let mut got = rt.block_on(async {
        let mut g = TaskGroup::new();
        for i in 0..10u32 {
            g.spawn(async move {
                for _ in 0..(10 - i) {
                    yield_now().await;
                }
                i
            });
        }
        assert_eq!(g.len(), 10);
        let mut got = Vec::new();
        while let Some(r) = g.join_next().await {
            got.push(r.unwrap());
        }
        assert!(g.is_empty());
        got
    });
    got.sort();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
}

#[test]
fn join_all_returns_outputs_in_spawn_order() {
    let rt = rt();
    let out = rt.block_on(async {
        let _t = NAME.set("group-parent");
        let mut g = TaskGroup::new();
        for i in 0..5usize {
            g.spawn(async move {
                for _ in 0..(5 - i) {
                    yield_now().await;
                }
                (i, NAME.get())
            });
        }
        g.join_all().await.unwrap()
    });
    assert_eq!(
        out.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    assert!(out.iter().all(|(_, n)| *n == Some("group-parent")));
}

struct Flag(Arc<AtomicUsize>);
impl Drop for Flag {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn join_all_fails_fast_and_cancels_the_rest() {
    let rt = rt();
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    let err = rt.block_on(async move {
        let mut g = TaskGroup::new();
        for _ in 0..3 {
            let flag = Flag(d.clone());
            g.spawn(async move {
                let _flag = flag;
                std::future::pending::<()>().await;
            });
        }
        g.spawn(async { panic!("one failed") });
        g.join_all().await.unwrap_err()
    });
    assert!(err.is_panic());
    // Block until the aborted tasks are gone.
    rt.block_on(async {
        while dropped.load(Ordering::SeqCst) < 3 {
            yield_now().await;
        }
    });
}

#[test]
fn dropping_the_group_aborts_its_tasks() {
    let rt = rt();
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    rt.block_on(async move {
        let mut g = TaskGroup::new();
        for _ in 0..4 {
            let flag = Flag(d.clone());
            g.spawn(async move {
                let _flag = flag;
                std::future::pending::<()>().await;
            });
        }
        drop(g);
        while d.load(Ordering::SeqCst) < 4 {
            yield_now().await;
        }
    });
    assert_eq!(dropped.load(Ordering::SeqCst), 4);
}

#[test]
fn shutdown_waits_for_aborted_tasks() {
    let rt = rt();
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    rt.block_on(async move {
        let mut g: TaskGroup<()> = TaskGroup::new();
        for _ in 0..4 {
            let flag = Flag(d.clone());
            g.spawn(async move {
                let _flag = flag;
                std::future::pending::<()>().await;
            });
        }
        g.shutdown().await;
        assert!(g.is_empty());
        assert_eq!(d.load(Ordering::SeqCst), 4);
    });
}
