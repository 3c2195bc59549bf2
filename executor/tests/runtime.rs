//! The runtime: scale, misuse, shutdown, metrics, builder.
#![cfg(not(baton_loom))]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use baton_executor::{Builder, Handle, Runtime, spawn, yield_now};

fn runtime(workers: usize) -> Runtime {
    Builder::new().worker_threads(workers).build().unwrap()
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn hundred_thousand_concurrent_tasks_complete() {
    let rt = runtime(2);
    let n = if cfg!(miri) { 50 } else { 100_000 };
    let done = Arc::new(AtomicUsize::new(0));
    let (gate_tx, gate_rx) = async_channel::bounded::<()>(1);
    let d = done.clone();
    rt.block_on(async move {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let gate = gate_rx.clone();
                let d = d.clone();
                spawn(async move {
                    // All tasks are alive at once, waiting on the gate.
                    let _ = gate.recv().await;
                    d.fetch_add(1, Ordering::Relaxed);
                })
            })
            .collect();
        drop(gate_tx); // closes the channel: every waiter wakes
        for t in tasks {
            t.await.unwrap();
        }
    });
    assert_eq!(done.load(Ordering::Relaxed), n);
    let m = rt.metrics();
    assert_eq!(m.spawned, n as u64);
    assert_eq!(m.completed, n as u64);
}

#[test]
fn spawn_outside_a_runtime_names_the_fix() {
    let err = catch_unwind(|| drop(spawn(async {}))).unwrap_err();
    let msg = panic_message(err);
    assert!(
        msg.contains("must be called from inside a baton runtime"),
        "{msg}"
    );
    assert!(msg.contains("Runtime::block_on / Handle::spawn"), "{msg}");
    assert!(catch_unwind(|| Handle::current()).is_err());
    assert!(Handle::try_current().is_none());
}

#[test]
fn block_on_inside_block_on_panics_and_the_runtime_stays_usable() {
    let rt = runtime(1);
    let other = runtime(1);
    let err = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async { other.block_on(async {}) });
    }))
    .unwrap_err();
    assert!(panic_message(err).contains("inside another block_on"));
    // Same runtime, nested.
    let err = catch_unwind(AssertUnwindSafe(|| {
        rt.block_on(async { rt.block_on(async { 1 }) })
    }))
    .unwrap_err();
    assert!(panic_message(err).contains("inside another block_on"));
    assert_eq!(rt.block_on(async { spawn(async { 2 }).await.unwrap() }), 2);
    assert_eq!(other.block_on(async { 3 }), 3);
}

#[test]
fn block_on_on_a_worker_panics_and_the_runtime_stays_usable() {
    let rt = Arc::new(runtime(2));
    let other = Arc::new(Runtime::new());
    let (rt2, other2) = (rt.clone(), other.clone());
    let err = rt
        .block_on(async move {
            spawn(async move {
                other2.block_on(async {});
            })
            .await
        })
        .unwrap_err();
    assert!(err.is_panic());
    assert!(panic_message(err.into_panic()).contains("worker thread"));
    let err = rt
        .block_on(async move { spawn(async move { rt2.block_on(async {}) }).await })
        .unwrap_err();
    assert!(panic_message(err.into_panic()).contains("worker thread"));
    assert_eq!(rt.block_on(spawn_and_join()), 10);
}

async fn spawn_and_join() -> usize {
    let tasks: Vec<_> = (0..10).map(|_| spawn(async { 1 })).collect();
    let mut sum = 0;
    for t in tasks {
        sum += t.await.unwrap();
    }
    sum
}

#[test]
fn spawn_from_block_on_and_from_tasks_and_handles() {
    let rt = runtime(2);
    let handle = rt.handle();
    let from_thread = std::thread::spawn(move || handle.spawn(async { 7 }))
        .join()
        .unwrap();
    let r = rt.block_on(async move {
        let nested = spawn(async { spawn(async { 5 }).await.unwrap() + 1 });
        let current = Handle::current().spawn(async { 1 });
        nested.await.unwrap() + current.await.unwrap() + from_thread.await.unwrap()
    });
    assert_eq!(r, 14);
}

#[test]
fn tasks_spawned_after_shutdown_are_cancelled() {
    let rt = runtime(1);
    let handle = rt.handle();
    drop(rt);
    let h = handle.spawn(async { 1 });
    assert!(h.is_finished());
    assert!(futures::executor::block_on(h).unwrap_err().is_cancelled());
}

#[test]
fn shutdown_cancels_pending_tasks() {
    let rt = runtime(2);
    let handles: Vec<_> = (0..10)
        .map(|_| rt.spawn(std::future::pending::<()>()))
        .collect();
    rt.shutdown_timeout(Duration::from_secs(10));
    for h in handles {
        assert!(futures::executor::block_on(h).unwrap_err().is_cancelled());
    }
}

#[test]
fn dropping_the_runtime_inside_one_of_its_tasks_does_not_deadlock() {
    let rt = runtime(2);
    let handle = rt.handle();
    let (tx, rx) = std::sync::mpsc::channel();
    let task = handle.spawn(async move {
        drop(rt);
        tx.send(()).unwrap();
    });
    rx.recv().unwrap();
    drop(task);
}

#[test]
fn builder_names_threads_and_runs_callbacks() {
    let starts = Arc::new(AtomicUsize::new(0));
    let stops = Arc::new(AtomicUsize::new(0));
    let (s1, s2) = (starts.clone(), stops.clone());
    let rt = Builder::new()
        .worker_threads(3)
        .thread_name("custom-name")
        .on_thread_start(move || {
            s1.fetch_add(1, Ordering::SeqCst);
        })
        .on_thread_stop(move || {
            s2.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    let name = rt.block_on(rt.spawn(async { std::thread::current().name().map(str::to_owned) }));
    assert_eq!(name.unwrap().as_deref(), Some("custom-name"));
    assert_eq!(rt.metrics().workers, 3);
    drop(rt);
    assert_eq!(starts.load(Ordering::SeqCst), 3);
    assert_eq!(stops.load(Ordering::SeqCst), 3);
}

#[test]
fn metrics_count_work() {
    let rt = runtime(2);
    rt.block_on(async {
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                spawn(async {
                    for _ in 0..5 {
                        yield_now().await;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    });
    let m = rt.metrics();
    assert_eq!(m.workers, 2);
    assert_eq!(m.spawned, 20);
    assert_eq!(m.completed, 20);
    assert!(m.polls >= 20 * 6, "{m:?}");
    let dbg = format!("{m:?}");
    for field in [
        "workers",
        "spawned",
        "completed",
        "polls",
        "steals",
        "migrations",
    ] {
        assert!(dbg.contains(field), "{dbg}");
    }
}

#[test]
fn an_always_ready_task_does_not_starve_others() {
    // One worker: a task that yields forever must let a second one run.
    let rt = runtime(1);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let spinner = rt.spawn(async move {
        while !s.load(Ordering::SeqCst) {
            yield_now().await;
        }
    });
    rt.block_on(async {
        spawn(async {}).await.unwrap();
    });
    stop.store(true, Ordering::SeqCst);
    rt.block_on(spinner).unwrap();
}

#[test]
fn manual_workers_run_until_idle() {
    let rt = Builder::new()
        .worker_threads(2)
        .start_workers(false)
        .build()
        .unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..10)
        .map(|_| {
            let d = done.clone();
            rt.spawn(async move {
                yield_now().await;
                d.fetch_add(1, Ordering::SeqCst);
            })
        })
        .collect();
    rt.run_worker_until_idle(0);
    assert_eq!(done.load(Ordering::SeqCst), 10);
    for h in handles {
        assert!(h.is_finished());
    }
    rt.run_worker_until_idle(1);
}

/// A task that blocks its worker's thread right after waking or spawning
/// another leaves that task in the worker's LIFO slot: another worker must
/// rescue it, or the two would wait on each other for ever. (Blocking in a
/// task is a mistake, but it must not hang the runtime.)
#[test]
fn a_task_left_behind_a_blocked_worker_is_rescued() {
    if cfg!(miri) {
        return;
    }
    let rt = runtime(2);
    for round in 0..20 {
        let ran = rt.block_on(async move {
            let (ran_tx, ran_rx) = std::sync::mpsc::channel::<()>();
            if round % 2 == 0 {
                // Woken: `waiting` is parked on a channel the blocker sends on.
                let (go_tx, go_rx) = async_channel::bounded::<()>(1);
                let waiting = spawn(async move {
                    let _ = go_rx.recv().await;
                    ran_tx.send(()).unwrap();
                });
                let blocker = spawn(async move {
                    go_tx.send(()).await.unwrap();
                    ran_rx.recv_timeout(Duration::from_secs(30)).is_ok()
                });
                let ran = blocker.await.unwrap();
                waiting.await.unwrap();
                ran
            } else {
                // Spawned: the child is what the blocker waits for.
                let blocker = spawn(async move {
                    let child = spawn(async move { ran_tx.send(()).unwrap() });
                    let ran = ran_rx.recv_timeout(Duration::from_secs(30)).is_ok();
                    (ran, child)
                });
                let (ran, child) = blocker.await.unwrap();
                child.await.unwrap();
                ran
            }
        });
        assert!(ran, "round {round}: the stranded task was never run");
    }
}

#[test]
fn a_runtime_needs_no_assert_unwind_safe() {
    fn unwind_safe<T: std::panic::UnwindSafe + std::panic::RefUnwindSafe>(_: &T) {}
    let rt = Runtime::new();
    unwind_safe(&rt);
    unwind_safe(&rt.handle());
    let caught = catch_unwind(|| rt.block_on(async { panic!("inside block_on") }));
    assert!(caught.is_err());
    assert_eq!(rt.block_on(async { 1 + 1 }), 2);
}
