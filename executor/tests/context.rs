//! S6 / S7: how contexts flow into tasks and `block_on`.
#![cfg(not(baton_loom))]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use baton_context::{Context, ContextVar, copy_context};
use baton_executor::{Builder, Runtime, sleep, spawn, spawn_with_context, yield_now};

static REQUEST_ID: ContextVar<&'static str> = ContextVar::with_default("request_id", "none");
static COUNTER: ContextVar<u64> = ContextVar::new("counter");

fn rt(workers: usize) -> Runtime {
    Builder::new().worker_threads(workers).build().unwrap()
}

#[test]
fn child_sees_parent_values_at_spawn_time() {
    let rt = rt(2);
    rt.block_on(async {
        let _t = REQUEST_ID.set("parent");
        let child = spawn(async { REQUEST_ID.get() });
        assert_eq!(child.await.unwrap(), Some("parent"));
    });
}

#[test]
fn set_after_spawn_is_not_seen_by_child() {
    let rt = rt(2);
    rt.block_on(async {
        let _t = REQUEST_ID.set("before");
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let child = spawn(async move {
            rx.await.unwrap();
            REQUEST_ID.get()
        });
        let _t2 = REQUEST_ID.set("after");
        tx.send(()).unwrap();
        assert_eq!(child.await.unwrap(), Some("before"));
        assert_eq!(REQUEST_ID.get(), Some("after"));
    });
}

#[test]
fn child_set_is_not_seen_by_parent_or_siblings() {
    let rt = rt(2);
    rt.block_on(async {
        let _t = REQUEST_ID.set("parent");
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let writer = spawn(async move {
            let _t = REQUEST_ID.set("child-a");
            let _ = tx.send(());
            yield_now().await;
            REQUEST_ID.get()
        });
        rx.await.unwrap();
        // The writer has set its value by now.
        let sibling = spawn(async { REQUEST_ID.get() });
        assert_eq!(sibling.await.unwrap(), Some("parent"));
        assert_eq!(REQUEST_ID.get(), Some("parent"));
        assert_eq!(writer.await.unwrap(), Some("child-a"));
        assert_eq!(REQUEST_ID.get(), Some("parent"));
    });
}

#[test]
fn spawn_with_context_writes_land_in_the_given_context() {
    let rt = rt(2);
    let ctx = Context::new();
    ctx.run(|| {
        let _ = REQUEST_ID.set("given");
    });
    let seen = rt.block_on(rt.spawn_with_context(ctx.clone(), async {
        let seen = REQUEST_ID.get();
        let _ = COUNTER.set(7);
        seen
    }));
    assert_eq!(seen.unwrap(), Some("given"));
    assert_eq!(ctx.get(&COUNTER), Some(7));
    // A second task in the same context sees the first one's write.
    let next =
        rt.block_on(async { spawn_with_context(ctx.clone(), async { COUNTER.get() }).await });
    assert_eq!(next.unwrap(), Some(7));
    assert_eq!(COUNTER.get(), None);
}

#[test]
fn tasks_sharing_a_context_are_never_polled_concurrently() {
    let rt = rt(2);
    let ctx = Context::new();
    ctx.run(|| {
        let _ = COUNTER.set(0);
    });
    let n = if cfg!(miri) { 4 } else { 50 };
    rt.block_on(async {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                spawn_with_context(ctx.clone(), async {
                    for _ in 0..10 {
                        let v = COUNTER.get().unwrap();
                        yield_now().await;
                        // Nobody else ran in this context between the read
                        // and the write of this poll.
                        let _ = COUNTER.set(COUNTER.get().unwrap() + 1);
                        assert!(COUNTER.get().unwrap() > v);
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert_eq!(ctx.get(&COUNTER), Some(n * 10));
}

#[test]
fn task_waits_while_its_context_is_entered_elsewhere() {
    let rt = rt(2);
    let ctx = Context::new();
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = {
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            ctx.run(|| {
                let _ = REQUEST_ID.set("holder");
                entered_tx.send(()).unwrap();
                release_rx.recv().unwrap();
            })
        })
    };
    entered_rx.recv().unwrap();
    let task = rt.spawn_with_context(ctx.clone(), async { REQUEST_ID.get() });
    // The task cannot run while the holder is inside the context.
    assert!(!task.is_finished());
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(rt.block_on(task).unwrap(), Some("holder"));
}

#[test]
fn block_on_leaves_the_callers_context_untouched() {
    let rt = rt(1);
    let _t = REQUEST_ID.set("caller");
    let inner = rt.block_on(async {
        let seen = REQUEST_ID.get();
        let _ = REQUEST_ID.set("inside");
        yield_now().await;
        (seen, REQUEST_ID.get())
    });
    assert_eq!(inner, (Some("caller"), Some("inside")));
    assert_eq!(REQUEST_ID.get(), Some("caller"));
    // ... also when the future panics.
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(async {
            let _ = REQUEST_ID.set("doomed");
            panic!("boom");
        })
    }));
    assert!(r.is_err());
    assert_eq!(REQUEST_ID.get(), Some("caller"));
}

#[test]
fn worker_context_is_restored_after_each_poll() {
    // A task that sets a var and a plain task after it on the same worker
    // must not see it: the worker's own context is unchanged by polls.
    let rt = rt(1);
    rt.block_on(async {
        spawn(async {
            let _t = REQUEST_ID.set("leaky");
            yield_now().await;
        })
        .await
        .unwrap();
        let fresh = spawn(async { REQUEST_ID.get() });
        assert_eq!(fresh.await.unwrap(), Some("none"));
    });
}

async fn handle_request(id: &'static str) -> Vec<String> {
    let _t = REQUEST_ID.set(id);
    let mut log = Vec::new();
    for step in ["fetching user", "processing payment", "completed"] {
        sleep(Duration::from_millis(2)).await;
        log.push(format!("{step} for {}", REQUEST_ID.get().unwrap()));
    }
    log
}

#[test]
fn interleaved_requests_each_see_only_their_own_id() {
    let rt = rt(2);
    let (a, b) = rt.block_on(async {
        let a = spawn(handle_request("req-123"));
        let b = spawn(handle_request("req-456"));
        (a.await.unwrap(), b.await.unwrap())
    });
    assert!(a.iter().all(|l| l.ends_with("req-123")), "{a:?}");
    assert!(b.iter().all(|l| l.ends_with("req-456")), "{b:?}");
    assert_eq!(a.len(), 3);
}

#[test]
fn alpha_and_beta_read_their_own_names() {
    let rt = rt(2);
    let got = rt.block_on(async {
        let tasks: Vec<_> = ["Alpha", "Beta"]
            .into_iter()
            .map(|name| {
                spawn(async move {
                    let _t = REQUEST_ID.set(name);
                    sleep(Duration::from_millis(1)).await;
                    format!("Task {name} reads: {}", REQUEST_ID.get().unwrap())
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert_eq!(got, ["Task Alpha reads: Alpha", "Task Beta reads: Beta"]);
}

/// Records the request id visible when it is dropped.
struct DropProbe(Arc<std::sync::Mutex<Vec<&'static str>>>);

impl Drop for DropProbe {
    fn drop(&mut self) {
        self.0.lock().unwrap().push(REQUEST_ID.get().unwrap());
    }
}

#[test]
fn future_dropped_on_abort_sees_its_own_context() {
    let rt = rt(2);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    rt.block_on(async {
        let _t = REQUEST_ID.set("spawner");
        let probe = DropProbe(seen.clone());
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        let task = spawn(async move {
            let _probe = probe;
            let _t = REQUEST_ID.set("victim");
            let _ = tx.send(());
            std::future::pending::<()>().await;
        });
        rx.await.unwrap();
        let _t2 = REQUEST_ID.set("aborter");
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
    });
    assert_eq!(*seen.lock().unwrap(), ["victim"]);
}

#[test]
fn future_dropped_at_shutdown_sees_its_own_context() {
    let rt = rt(2);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let started = Arc::new(AtomicUsize::new(0));
    let n = if cfg!(miri) { 2 } else { 20 };
    let handles: Vec<_> = rt.block_on(async {
        (0..n)
            .map(|i| {
                let probe = DropProbe(seen.clone());
                let started = started.clone();
                let id: &'static str = if i % 2 == 0 { "even" } else { "odd" };
                let _t = REQUEST_ID.set(id);
                spawn(async move {
                    let _probe = probe;
                    let _t = REQUEST_ID.set(id);
                    started.fetch_add(1, Ordering::SeqCst);
                    std::future::pending::<()>().await;
                })
            })
            .collect()
    });
    // Some tasks may never have been polled; all of them are dropped inside
    // their own context (spawned with the same id set) either way.
    let _t = REQUEST_ID.set("dropper");
    drop(rt);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), n);
    assert_eq!(seen.iter().filter(|s| **s == "even").count(), n / 2);
    assert_eq!(seen.iter().filter(|s| **s == "odd").count(), n / 2);
    for h in handles {
        assert!(h.is_finished());
        let err = futures::executor::block_on(h).unwrap_err();
        assert!(err.is_cancelled());
    }
}

#[test]
fn migrating_tasks_read_only_their_own_values() {
    if cfg!(miri) {
        return;
    }
    let rt = rt(2);
    let n = 64;
    let rounds = 50;
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..n).map(|_| async_channel::unbounded::<u64>()).unzip();
    let (first_tx, first_rx) = std::sync::mpsc::channel::<()>();
    // Phase 1: a task spawns the children into its worker's queue and then
    // blocks that worker until every child has been polled once: the other
    // worker has to steal them.
    let children = rt.block_on(async move {
        spawn(async move {
            let children: Vec<_> = receivers
                .into_iter()
                .enumerate()
                .map(|(i, rx)| {
                    let first_tx = first_tx.clone();
                    spawn(async move {
                        let _t = COUNTER.set(i as u64);
                        first_tx.send(()).unwrap();
                        let mut bad = 0;
                        // Phase 2: woken from a foreign thread (through the
                        // injector), so any worker may poll the task.
                        while let Ok(_round) = rx.recv().await {
                            if COUNTER.get() != Some(i as u64) {
                                bad += 1;
                            }
                            yield_now().await;
                            if COUNTER.get() != Some(i as u64) {
                                bad += 1;
                            }
                        }
                        bad
                    })
                })
                .collect();
            for _ in 0..n {
                first_rx.recv().unwrap();
            }
            children
        })
        .await
        .unwrap()
    });
    assert!(rt.metrics().steals > 0, "{:?}", rt.metrics());
    let feeder = std::thread::spawn(move || {
        for round in 0..rounds {
            for tx in &senders {
                tx.send_blocking(round).unwrap();
            }
            std::thread::yield_now();
        }
    });
    let bad = rt.block_on(async move {
        let mut bad = 0;
        for t in children {
            bad += t.await.unwrap();
        }
        bad
    });
    feeder.join().unwrap();
    assert_eq!(bad, 0);
    let m = rt.metrics();
    assert!(m.migrations > 0, "{m:?}");
    assert_eq!(COUNTER.get(), None);
}

#[test]
fn copy_context_inside_a_task_is_the_tasks() {
    let rt = rt(1);
    let ctx = rt.block_on(rt.spawn(async {
        let _ = REQUEST_ID.set("in-task");
        copy_context()
    }));
    assert_eq!(ctx.unwrap().get(&REQUEST_ID), Some("in-task"));
}

#[test]
fn workers_and_blocking_threads_are_sealed_and_tasks_set_freely() {
    let (tx, rx) = std::sync::mpsc::channel();
    let rt = Builder::new()
        .worker_threads(2)
        .on_thread_start(move || {
            // The hook runs sealed: a set in the worker's own context panics.
            let refused = std::panic::catch_unwind(|| drop(COUNTER.set(1))).is_err();
            tx.send(refused).unwrap();
        })
        .build()
        .unwrap();
    assert!(rx.iter().take(2).all(|refused| refused));
    let (worker, blocking, in_task, in_blocking) = rt.block_on(async {
        let worker = spawn(async { baton_context::is_thread_sealed() })
            .await
            .unwrap();
        let blocking = baton_executor::spawn_blocking(baton_context::is_thread_sealed)
            .await
            .unwrap();
        let in_task = spawn(async {
            let _t = COUNTER.set(2);
            yield_now().await;
            COUNTER.get()
        })
        .await
        .unwrap();
        let in_blocking = baton_executor::spawn_blocking(|| {
            let _t = COUNTER.set(3);
            COUNTER.get()
        })
        .await
        .unwrap();
        (worker, blocking, in_task, in_blocking)
    });
    assert!(worker, "a worker thread is sealed");
    assert!(blocking, "a blocking-pool thread is sealed");
    assert_eq!((in_task, in_blocking), (Some(2), Some(3)));
    // The thread that calls block_on is the caller's: left unsealed.
    assert!(!baton_context::is_thread_sealed());
}
