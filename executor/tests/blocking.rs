//! `spawn_blocking`: the context copy, the elastic pool, panics, abort,
//! where it may be called, and shutdown.
#![cfg(not(baton_loom))]

use std::panic::catch_unwind;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, mpsc};
use std::time::{Duration, Instant};

use baton_context::ContextVar;
use baton_executor::{Builder, Handle, Runtime, spawn, spawn_blocking};

static VAR: ContextVar<u32> = ContextVar::new("var");

fn runtime(workers: usize) -> Runtime {
    Builder::new().worker_threads(workers).build().unwrap()
}

/// A pool that never retires a thread during a test, so that thread
/// identities can be compared.
fn one_thread_pool() -> Runtime {
    Builder::new()
        .worker_threads(1)
        .max_blocking_threads(1)
        .thread_keep_alive(Duration::from_secs(3600))
        .build()
        .unwrap()
}

/// Sends on its channel when dropped.
struct SendOnDrop(mpsc::Sender<()>);

impl Drop for SendOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

/// Reports `VAR` as its destructor sees it.
struct ReportVarOnDrop(mpsc::Sender<Option<u32>>);

impl Drop for ReportVarOnDrop {
    fn drop(&mut self) {
        let _ = self.0.send(VAR.get());
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn closure_runs_in_a_copy_of_the_callers_context() {
    let rt = runtime(2);
    rt.block_on(async {
        let _t = VAR.set(1);
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let job = spawn_blocking(move || {
            go_rx.recv().unwrap();
            let seen = VAR.get();
            let _t = VAR.set(2);
            assert_eq!(VAR.get(), Some(2));
            seen
        });
        // Set after the call: the copy was taken at the call.
        let _t2 = VAR.set(3);
        go_tx.send(()).unwrap();
        assert_eq!(job.await.unwrap(), Some(1));
        // What the closure set stayed in its copy.
        assert_eq!(VAR.get(), Some(3));
    });
}

#[test]
fn pool_thread_keeps_its_own_context_between_closures() {
    // One thread, so both closures run on it.
    let rt = one_thread_pool();
    let first = rt.block_on(async {
        let _t = VAR.set(1);
        spawn_blocking(|| {
            // Not reset: the value stays in the closure's copy.
            std::mem::forget(VAR.set(5));
            std::thread::current().id()
        })
        .await
        .unwrap()
    });
    let (second, seen) = rt
        .block_on(async { spawn_blocking(|| (std::thread::current().id(), VAR.get())).await })
        .unwrap();
    assert_eq!(first, second);
    assert_eq!(seen, None);
}

#[test]
fn sixteen_closures_run_at_once() {
    // Each waits until all 16 are in: only 16 threads at once get there.
    let rt = runtime(2);
    let barrier = Arc::new(Barrier::new(16));
    let sum: usize = rt.block_on(async {
        let jobs: Vec<_> = (0..16)
            .map(|i| {
                let barrier = barrier.clone();
                spawn_blocking(move || {
                    barrier.wait();
                    i
                })
            })
            .collect();
        let mut sum = 0;
        for job in jobs {
            sum += job.await.unwrap();
        }
        sum
    });
    assert_eq!(sum, (0..16).sum());
}

#[test]
fn at_the_limit_jobs_wait_in_the_queue() {
    let rt = Builder::new()
        .worker_threads(2)
        .max_blocking_threads(2)
        .build()
        .unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let results = rt.block_on(async {
        let jobs: Vec<_> = (0..4)
            .map(|i| {
                let (running, most) = (running.clone(), most.clone());
                spawn_blocking(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(now, Ordering::SeqCst);
                    running.fetch_sub(1, Ordering::SeqCst);
                    i
                })
            })
            .collect();
        let mut results = Vec::new();
        for job in jobs {
            results.push(job.await.unwrap());
        }
        results
    });
    assert_eq!(results, [0, 1, 2, 3]);
    assert!(most.load(Ordering::SeqCst) <= 2);
    assert!(rt.metrics().blocking_threads <= 2);
}

#[test]
fn a_panicking_closure_gives_a_panic_error_and_the_thread_survives() {
    let rt = one_thread_pool();
    rt.block_on(async {
        let before = spawn_blocking(|| std::thread::current().id())
            .await
            .unwrap();
        let err = spawn_blocking(|| -> u32 { panic!("boom") })
            .await
            .unwrap_err();
        assert!(err.is_panic());
        assert_eq!(panic_message(err.into_panic()), "boom");
        let after = spawn_blocking(|| std::thread::current().id())
            .await
            .unwrap();
        assert_eq!(before, after);
    });
}

#[test]
fn abort_before_start_cancels_the_job() {
    let rt = one_thread_pool();
    let ran = Arc::new(AtomicBool::new(false));
    let (release_tx, release_rx) = mpsc::channel::<()>();
    // What the unrun closure's captures see when they are dropped.
    let (dropped_tx, dropped_rx) = mpsc::channel::<Option<u32>>();
    rt.block_on(async {
        // The only thread is busy until released, so the second job waits.
        let first = spawn_blocking(move || release_rx.recv().unwrap());
        let _t = VAR.set(6);
        let r = ran.clone();
        let probe = ReportVarOnDrop(dropped_tx);
        let second = spawn_blocking(move || {
            let _probe = probe;
            r.store(true, Ordering::SeqCst)
        });
        second.abort();
        release_tx.send(()).unwrap();
        first.await.unwrap();
        assert!(second.await.unwrap_err().is_cancelled());
    });
    assert!(!ran.load(Ordering::SeqCst));
    // Dropped unrun, inside the closure's copy of the context.
    assert_eq!(dropped_rx.recv().unwrap(), Some(6));
}

#[test]
fn abort_while_running_has_no_effect() {
    let rt = runtime(1);
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    rt.block_on(async {
        let job = spawn_blocking(move || {
            started_tx.send(()).unwrap();
            release_rx.recv().unwrap();
            42
        });
        started_rx.recv().unwrap();
        job.abort();
        release_tx.send(()).unwrap();
        assert_eq!(job.await.unwrap(), 42);
    });
}

#[test]
fn spawn_blocking_inside_a_task() {
    let rt = runtime(2);
    let n = rt.block_on(async {
        spawn(async {
            let _t = VAR.set(9);
            spawn_blocking(|| VAR.get()).await.unwrap()
        })
        .await
        .unwrap()
    });
    assert_eq!(n, Some(9));
}

#[test]
fn handle_and_runtime_spawn_blocking_from_any_thread() {
    let rt = runtime(1);
    let handle = rt.handle();
    let job = std::thread::spawn(move || handle.spawn_blocking(|| 1))
        .join()
        .unwrap();
    let other = rt.spawn_blocking(|| 2);
    assert_eq!(futures::executor::block_on(job).unwrap(), 1);
    assert_eq!(futures::executor::block_on(other).unwrap(), 2);
}

#[test]
fn blocking_threads_are_named_after_the_workers() {
    let rt = Builder::new()
        .worker_threads(1)
        .thread_name("svc")
        .build()
        .unwrap();
    let name = rt
        .block_on(rt.spawn_blocking(|| std::thread::current().name().map(str::to_owned)))
        .unwrap();
    assert_eq!(name.as_deref(), Some("svc-blocking"));
}

#[test]
fn outside_a_runtime_it_panics_with_a_message() {
    let p = catch_unwind(|| spawn_blocking(|| ())).unwrap_err();
    let msg = panic_message(p);
    assert!(
        msg.contains("spawn_blocking must be called from inside a baton runtime"),
        "{msg}"
    );
}

#[test]
#[should_panic(expected = "max_blocking_threads must be at least 1")]
fn zero_max_blocking_threads_panics() {
    let _ = Builder::new().max_blocking_threads(0);
}

#[test]
fn a_closure_can_spawn_blocking_and_spawn_again() {
    let rt = runtime(1);
    let n = rt
        .block_on(rt.spawn_blocking(|| {
            let _t = VAR.set(4);
            let inner = spawn_blocking(|| VAR.get().unwrap() * 10);
            let task = spawn(async { VAR.get().unwrap() + 1 });
            assert!(Handle::try_current().is_some());
            futures::executor::block_on(inner).unwrap() + futures::executor::block_on(task).unwrap()
        }))
        .unwrap();
    assert_eq!(n, 45);
}

#[test]
fn a_closure_may_block_on_another_runtime() {
    let rt = runtime(1);
    let other = Arc::new(runtime(1));
    let o = other.clone();
    let n = rt
        .block_on(
            rt.spawn_blocking(move || o.block_on(async { spawn(async { 5 }).await.unwrap() })),
        )
        .unwrap();
    assert_eq!(n, 5);
}

#[test]
fn dropping_the_runtime_waits_for_a_running_closure() {
    let (release_tx, release_rx) = mpsc::channel::<()>();
    // The worker stops during the drop, before the pool is shut down: only
    // then is the closure let go.
    let rt = Builder::new()
        .worker_threads(1)
        .on_thread_stop(move || release_tx.send(()).unwrap())
        .build()
        .unwrap();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let job = rt.spawn_blocking(move || {
        started_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        d.store(true, Ordering::SeqCst);
        1
    });
    started_rx.recv().unwrap();
    drop(rt);
    assert!(done.load(Ordering::SeqCst));
    assert_eq!(futures::executor::block_on(job).unwrap(), 1);
}

#[test]
fn shutdown_cancels_queued_jobs_and_refuses_new_ones() {
    let rt = one_thread_pool();
    let handle = rt.handle();
    // The running job is let go when the queued one's closure is dropped:
    // by the shutdown, which cancels it (it cannot run before: one thread).
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let guard = SendOnDrop(release_tx);
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let ran = Arc::new(AtomicBool::new(false));
    let first = rt.spawn_blocking(move || {
        started_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        1
    });
    let r = ran.clone();
    let queued = rt.spawn_blocking(move || {
        let _guard = guard;
        r.store(true, Ordering::SeqCst)
    });
    started_rx.recv().unwrap();
    drop(rt);
    assert_eq!(futures::executor::block_on(first).unwrap(), 1);
    assert!(
        futures::executor::block_on(queued)
            .unwrap_err()
            .is_cancelled()
    );
    assert!(!ran.load(Ordering::SeqCst));
    let late = handle.spawn_blocking(|| 2);
    assert!(
        futures::executor::block_on(late)
            .unwrap_err()
            .is_cancelled()
    );
}

#[test]
fn shutdown_timeout_does_not_wait_past_its_deadline() {
    let rt = runtime(1);
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let job = rt.spawn_blocking(move || {
        started_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        3
    });
    started_rx.recv().unwrap();
    // Returns although the closure still runs (it is released only after).
    rt.shutdown_timeout(Duration::from_millis(10));
    release_tx.send(()).unwrap();
    assert_eq!(futures::executor::block_on(job).unwrap(), 3);
}

#[test]
fn a_closure_may_drop_its_runtime() {
    let rt = runtime(1);
    let handle = rt.handle();
    let (rt_tx, rt_rx) = mpsc::channel::<Runtime>();
    let job = handle.spawn_blocking(move || {
        drop(rt_rx.recv().unwrap());
        8
    });
    rt_tx.send(rt).unwrap();
    assert_eq!(futures::executor::block_on(job).unwrap(), 8);
}

#[test]
fn idle_threads_retire() {
    let rt = Builder::new()
        .worker_threads(1)
        .thread_keep_alive(Duration::from_millis(1))
        .build()
        .unwrap();
    rt.block_on(rt.spawn_blocking(|| ())).unwrap();
    // Liveness only: the thread leaves soon after 1 ms idle; the bound is
    // generous, not a timing claim.
    let give_up = Instant::now() + Duration::from_secs(30);
    while rt.metrics().blocking_threads > 0 {
        assert!(Instant::now() < give_up, "the idle thread never retired");
        std::thread::sleep(Duration::from_millis(1));
    }
    // The pool grows again on demand.
    assert_eq!(rt.block_on(rt.spawn_blocking(|| 1)).unwrap(), 1);
}

#[test]
fn metrics_count_blocking_threads_and_queue() {
    let rt = one_thread_pool();
    let (started_tx, started_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let first = rt.spawn_blocking(move || {
        started_tx.send(()).unwrap();
        release_rx.recv().unwrap();
    });
    let second = rt.spawn_blocking(|| ());
    started_rx.recv().unwrap();
    let m = rt.metrics();
    assert_eq!(m.blocking_threads, 1);
    assert_eq!(m.idle_blocking_threads, 0);
    assert_eq!(m.blocking_queue_depth, 1);
    release_tx.send(()).unwrap();
    rt.block_on(async {
        first.await.unwrap();
        second.await.unwrap();
    });
    assert_eq!(rt.metrics().blocking_queue_depth, 0);
}

#[test]
fn a_retiring_thread_never_strands_a_job() {
    // One thread that retires at once when idle: each job races the
    // retirement of the thread that ran the one before.
    let rt = Builder::new()
        .worker_threads(1)
        .max_blocking_threads(1)
        .thread_keep_alive(Duration::ZERO)
        .build()
        .unwrap();
    let n = if cfg!(miri) { 10 } else { 2000 };
    for i in 0..n {
        let job = rt.spawn_blocking(move || i);
        // A stranded job would hang: fail instead (not a timing claim).
        let out = rt.block_on(baton_executor::timeout(Duration::from_secs(60), job));
        assert_eq!(out.expect("a job was stranded").unwrap(), i);
    }
}

/// A closure still waiting on the runtime's timer when the runtime is
/// dropped does not hang the drop: shutdown wakes the sleep, whose next
/// poll panics (the timer can never fire), and the drop returns.
#[test]
fn a_closure_waiting_on_a_timer_at_shutdown_does_not_hang_the_drop() {
    let rt = runtime(1);
    let (started_tx, started_rx) = mpsc::channel();
    let job = rt.spawn_blocking(move || {
        futures::executor::block_on(async {
            let mut sleep = std::pin::pin!(baton_executor::sleep(Duration::from_secs(3600)));
            // Registered with the runtime's timers on this first poll.
            assert!(futures::poll!(sleep.as_mut()).is_pending());
            started_tx.send(()).unwrap();
            sleep.await;
        })
    });
    started_rx.recv().unwrap();
    drop(rt);
    let err = futures::executor::block_on(job).unwrap_err();
    assert!(err.is_panic());
    assert!(panic_message(err.into_panic()).contains("after its runtime shut down"));
}
