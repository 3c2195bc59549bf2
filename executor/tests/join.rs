//! JoinHandle semantics: output, panic, abort before / while / after
//! running, detach.
#![cfg(not(baton_loom))]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use baton_executor::{Builder, JoinError, Runtime, spawn, yield_now};
use futures::channel::oneshot;

fn rt(workers: usize) -> Runtime {
    Builder::new().worker_threads(workers).build().unwrap()
}

#[test]
fn returns_the_output() {
    let rt = rt(2);
    let h = rt.spawn(async { String::from("hello") });
    assert_eq!(rt.block_on(h).unwrap(), "hello");
    let (v, finished) = rt.block_on(async {
        let h = spawn(async { 41 + 1 });
        let v = (&mut { h }).await.unwrap();
        (v, true)
    });
    assert_eq!(v, 42);
    assert!(finished);
}

#[test]
fn is_finished_tracks_completion() {
    let rt = rt(1);
    let (tx, rx) = oneshot::channel::<()>();
    let h = rt.spawn(async move { rx.await.unwrap() });
    assert!(!h.is_finished());
    tx.send(()).unwrap();
    while !h.is_finished() {
        std::thread::yield_now();
    }
    rt.block_on(h).unwrap();
}

#[test]
fn panic_is_caught_and_reported() {
    let rt = rt(1);
    let err: JoinError = rt
        .block_on(rt.spawn(async { panic!("task exploded") }))
        .unwrap_err();
    assert!(err.is_panic());
    assert!(!err.is_cancelled());
    assert!(err.to_string().contains("task exploded"), "{err}");
    let payload = err.into_panic();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"task exploded"));
    // The worker survived and keeps running tasks.
    assert_eq!(rt.block_on(rt.spawn(async { 5 })).unwrap(), 5);
}

#[test]
fn panic_with_string_payload() {
    let rt = rt(1);
    let err = rt
        .block_on(rt.spawn(async { panic!("{}", String::from("dyn")) }))
        .unwrap_err();
    assert_eq!(
        err.into_panic()
            .downcast_ref::<String>()
            .map(String::as_str),
        Some("dyn")
    );
}

#[test]
fn abort_before_running() {
    // A runtime without running workers: the task cannot have started.
    let rt = Builder::new()
        .worker_threads(1)
        .start_workers(false)
        .build()
        .unwrap();
    let polled = Arc::new(AtomicBool::new(false));
    let p = polled.clone();
    let h = rt.spawn(async move { p.store(true, Ordering::SeqCst) });
    h.abort();
    rt.run_worker_until_idle(0);
    assert!(h.is_finished());
    assert!(!polled.load(Ordering::SeqCst));
    let err = futures::executor::block_on(h).unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!(err.to_string(), "task was cancelled");
}

#[test]
fn abort_while_running_takes_effect_when_the_poll_returns() {
    let rt = rt(2);
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let polls = Arc::new(AtomicUsize::new(0));
    let p = polls.clone();
    let h = rt.spawn(async move {
        p.fetch_add(1, Ordering::SeqCst);
        started_tx.send(()).unwrap();
        // Block inside the poll until the abort has been issued.
        go_rx.recv().unwrap();
        yield_now().await;
        p.fetch_add(1, Ordering::SeqCst);
    });
    started_rx.recv().unwrap();
    h.abort();
    go_tx.send(()).unwrap();
    let err = rt.block_on(h).unwrap_err();
    assert!(err.is_cancelled());
    assert_eq!(polls.load(Ordering::SeqCst), 1);
}

#[test]
fn abort_after_completion_keeps_the_output() {
    let rt = rt(1);
    let h = rt.spawn(async { 9 });
    while !h.is_finished() {
        std::thread::yield_now();
    }
    h.abort();
    assert_eq!(rt.block_on(h).unwrap(), 9);
}

#[test]
fn dropping_the_handle_detaches() {
    let rt = rt(2);
    let (tx, rx) = oneshot::channel::<()>();
    let (done_tx, done_rx) = oneshot::channel::<u32>();
    drop(rt.spawn(async move {
        rx.await.unwrap();
        done_tx.send(3).unwrap();
    }));
    tx.send(()).unwrap();
    assert_eq!(rt.block_on(done_rx).unwrap(), 3);
}

#[derive(Debug)]
struct CountDrops(Arc<AtomicUsize>);
impl Drop for CountDrops {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn output_of_a_detached_task_is_dropped_exactly_once() {
    let rt = rt(2);
    let drops = Arc::new(AtomicUsize::new(0));
    let n = if cfg!(miri) { 4 } else { 200 };
    for _ in 0..n {
        // Made outside the task and moved in: whether the task runs (its
        // output is then dropped by the runtime, as nobody awaits it) or is
        // cancelled at shutdown before running (its future is dropped, and
        // this with it), it is dropped exactly once.
        let counted = CountDrops(drops.clone());
        drop(rt.spawn(async move { counted }));
    }
    // And outputs taken through the handle are dropped by the taker.
    let d = drops.clone();
    let out = rt.block_on(rt.spawn(async move { CountDrops(d) })).unwrap();
    drop(out);
    drop(rt);
    assert_eq!(drops.load(Ordering::SeqCst), n + 1);
}

/// The future and the output share one slot with no discriminant (the task
/// state says which is live): every way a task can end drops each of them
/// exactly once.
#[test]
fn future_and_output_are_each_dropped_exactly_once_on_every_path() {
    let rt = Builder::new()
        .worker_threads(1)
        .start_workers(false)
        .build()
        .unwrap();
    let futures = Arc::new(AtomicUsize::new(0));
    let outputs = Arc::new(AtomicUsize::new(0));
    let task = |fail: bool| {
        let in_future = CountDrops(futures.clone());
        let output = CountDrops(outputs.clone());
        async move {
            let _in_future = in_future;
            yield_now().await;
            if fail {
                panic!("fails");
            }
            output
        }
    };
    let counts = || {
        (
            futures.load(Ordering::SeqCst),
            outputs.load(Ordering::SeqCst),
        )
    };

    // 1. The handle takes the output, then is dropped.
    let mut h = rt.spawn(task(false));
    rt.run_worker_until_idle(0);
    let out = futures::executor::block_on(&mut h).unwrap();
    assert_eq!(counts(), (1, 0));
    drop(h);
    assert_eq!(counts(), (1, 0));
    drop(out);
    assert_eq!(counts(), (1, 1));

    // 2. The handle is dropped after completion, output never taken.
    let h = rt.spawn(task(false));
    rt.run_worker_until_idle(0);
    assert!(h.is_finished());
    assert_eq!(counts(), (2, 1));
    drop(h);
    assert_eq!(counts(), (2, 2));

    // 3. The handle is dropped before completion: the runner drops it.
    drop(rt.spawn(task(false)));
    rt.run_worker_until_idle(0);
    assert_eq!(counts(), (3, 3));

    // 4. Aborted before its first poll: the future (which owns the output
    // value) is dropped, no output is stored.
    let h = rt.spawn(task(false));
    h.abort();
    rt.run_worker_until_idle(0);
    assert!(futures::executor::block_on(h).unwrap_err().is_cancelled());
    assert_eq!(counts(), (4, 4));

    // 5. Aborted while waiting (after a poll).
    let (tx, rx) = oneshot::channel::<()>();
    let in_future = CountDrops(futures.clone());
    let h = rt.spawn(async move {
        let _in_future = in_future;
        rx.await.unwrap();
    });
    rt.run_worker_until_idle(0);
    h.abort();
    rt.run_worker_until_idle(0);
    assert!(futures::executor::block_on(h).unwrap_err().is_cancelled());
    assert_eq!(counts(), (5, 4));
    drop(tx);

    // 6. The future panics: the JoinError is the output.
    let h = rt.spawn(task(true));
    rt.run_worker_until_idle(0);
    assert!(futures::executor::block_on(h).unwrap_err().is_panic());
    assert_eq!(counts(), (6, 5));

    // 7. Cancelled at shutdown, never polled, handle kept past it.
    let h = rt.spawn(task(false));
    drop(rt);
    assert_eq!(counts(), (7, 6));
    assert!(futures::executor::block_on(h).unwrap_err().is_cancelled());
    assert_eq!(counts(), (7, 6));
}

#[test]
fn polling_the_handle_after_it_returned_panics_and_drops_nothing_twice() {
    let rt = rt(1);
    let outputs = Arc::new(AtomicUsize::new(0));
    let o = outputs.clone();
    let mut h = rt.spawn(async move { CountDrops(o) });
    let out = rt.block_on(&mut h).unwrap();
    let again = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        futures::executor::block_on(&mut h)
    }));
    let msg = again.expect_err("a second poll must panic");
    let msg = msg.downcast_ref::<&str>().copied().unwrap_or_default();
    assert!(msg.contains("after it returned its output"), "{msg}");
    drop(h);
    assert_eq!(outputs.load(Ordering::SeqCst), 0);
    drop(out);
    assert_eq!(outputs.load(Ordering::SeqCst), 1);
}

#[test]
fn waker_of_the_handle_can_change() {
    // Poll the handle from two different executors in turn.
    let rt = rt(1);
    let (tx, rx) = oneshot::channel::<()>();
    let mut h = rt.spawn(async move {
        rx.await.unwrap();
        1
    });
    let w = futures::task::noop_waker();
    let mut cx = std::task::Context::from_waker(&w);
    assert!(std::pin::Pin::new(&mut h).poll(&mut cx).is_pending());
    tx.send(()).unwrap();
    assert_eq!(rt.block_on(h).unwrap(), 1);
}

use std::future::Future;
