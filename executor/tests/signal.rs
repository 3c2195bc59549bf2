//! `signal::ctrl_c` and `signal::terminate`, with real signals raised in
//! this process once the futures are known to be registered (polled once):
//! no sleeps.
//!
//! Every test takes `SERIAL`: a signal raised by one test would resolve the
//! listeners of another running beside it.
#![cfg(all(target_os = "linux", not(baton_loom), not(miri)))]

use std::panic::catch_unwind;
use std::pin::pin;
use std::sync::{Mutex, MutexGuard};

use baton_context::ContextVar;
use baton_executor::{Builder, Runtime, signal, spawn};
use futures::poll;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::low_level::raise;

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn runtime() -> Runtime {
    Builder::new().worker_threads(2).build().unwrap()
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn ctrl_c_resolves_on_sigint() {
    let _serial = serial();
    runtime().block_on(async {
        let mut ctrl_c = pin!(signal::ctrl_c());
        // The first poll registers it; nothing has arrived yet.
        assert!(poll!(ctrl_c.as_mut()).is_pending());
        raise(SIGINT).unwrap();
        ctrl_c.await.unwrap();
    });
}

static TASK: ContextVar<&str> = ContextVar::new("task");

#[test]
fn terminate_wakes_a_parked_task_on_sigterm_from_another_thread() {
    let _serial = serial();
    let rt = runtime();
    rt.block_on(async {
        let (registered, is_registered) = futures::channel::oneshot::channel();
        let waiter = spawn(async move {
            let _token = TASK.set("waiter");
            let mut terminate = pin!(signal::terminate());
            assert!(poll!(terminate.as_mut()).is_pending());
            registered.send(()).unwrap();
            // Parked here until the reactor sees the pipe's byte.
            let result = terminate.await;
            assert_eq!(TASK.get(), Some("waiter"));
            result
        });
        is_registered.await.unwrap();
        // Delivered on a plain thread, far from the task and the workers.
        std::thread::spawn(|| raise(SIGTERM).unwrap())
            .join()
            .unwrap();
        waiter.await.unwrap().unwrap();
        assert_eq!(TASK.get(), None);
    });
}

#[test]
fn every_waiting_future_resolves_and_only_on_later_signals_of_its_kind() {
    let _serial = serial();
    runtime().block_on(async {
        // A broadcast: both resolve on one signal.
        let mut first = pin!(signal::ctrl_c());
        let mut second = pin!(signal::ctrl_c());
        assert!(poll!(first.as_mut()).is_pending());
        assert!(poll!(second.as_mut()).is_pending());
        raise(SIGINT).unwrap();
        first.await.unwrap();
        second.await.unwrap();

        // A future made after that signal waits for the next one, and a
        // SIGTERM does not resolve a ctrl_c.
        let mut later = pin!(signal::ctrl_c());
        let mut terminate = pin!(signal::terminate());
        assert!(poll!(later.as_mut()).is_pending());
        assert!(poll!(terminate.as_mut()).is_pending());
        raise(SIGTERM).unwrap();
        terminate.await.unwrap();
        // The handler wrote to `terminate`'s pipe only: `later`'s is empty.
        assert!(poll!(later.as_mut()).is_pending());
        raise(SIGINT).unwrap();
        later.await.unwrap();
    });
    // No future waits now, and the handlers stay installed: the signals no
    // longer terminate the process (the documented replacement of the
    // default action).
    raise(SIGINT).unwrap();
    raise(SIGTERM).unwrap();
}

#[test]
fn a_dropped_future_closes_its_pipe() {
    let _serial = serial();
    let rt = runtime();
    rt.block_on(async {
        // Registered, then dropped unresolved: the handler lets go of its
        // pipe's write end, and both ends are closed. (The other tests that
        // open fds wait for `SERIAL`.)
        let before = open_fds();
        {
            let mut dropped = pin!(signal::ctrl_c());
            assert!(poll!(dropped.as_mut()).is_pending());
            assert_eq!(open_fds(), before + 2);
        }
        assert_eq!(open_fds(), before);
        let mut kept = pin!(signal::ctrl_c());
        assert!(poll!(kept.as_mut()).is_pending());
        raise(SIGINT).unwrap();
        kept.await.unwrap();
    });
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn waiting_for_a_signal_outside_a_runtime_panics() {
    let _serial = serial();
    let p = catch_unwind(|| futures::executor::block_on(signal::ctrl_c())).unwrap_err();
    assert!(panic_message(p).contains("baton runtime"));
}

#[test]
fn the_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    send(&signal::ctrl_c());
    send(&signal::terminate());
}
