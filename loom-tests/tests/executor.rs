//! Models 2, 3, 4, 6, 7 and 8: the executor.
//!
//! The runtime is built with `Builder::start_workers(false)` and its workers
//! are run on loom threads through the testing hooks
//! (`Runtime::run_worker_until_idle`, `Runtime::run_worker`), so loom explores
//! the real scheduler, task state machine, wake-ups, parking and shutdown.
//! Under `--cfg baton_loom` the run queues are the `Mutex<VecDeque>` stand-in (see
//! the README: crossbeam-deque itself is not modelled).
#![cfg(baton_loom)]

mod support;

use std::future::poll_fn;
use std::task::{Poll, Waker};

use baton_context::ContextVar;
use baton_executor::{Builder, Runtime, yield_now};
use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use loom::sync::{Arc, Mutex};
use loom::thread;
use support::{Violations, block_on, model, spin_until};

static ID: ContextVar<u32> = ContextVar::new("id");
/// Set in each worker thread's own context: a task must never see it, and it
/// must be intact after every poll.
static WORKER: ContextVar<usize> = ContextVar::new("worker");

fn runtime(workers: usize) -> Arc<Runtime> {
    Arc::new(
        Builder::new()
            .worker_threads(workers)
            .start_workers(false)
            .build()
            .unwrap(),
    )
}

/// Runs worker `index` until idle on a new loom thread, in a context of its
/// own, and checks that context afterwards.
fn spawn_worker(rt: &Arc<Runtime>, index: usize) -> thread::JoinHandle<()> {
    let rt = rt.clone();
    thread::spawn(move || run_worker_here(&rt, index))
}

fn run_worker_here(rt: &Runtime, index: usize) {
    let _own = WORKER.set(index);
    rt.run_worker_until_idle(index);
    assert_eq!(
        WORKER.get(),
        Some(index),
        "worker {index}'s own context changed"
    );
    assert_eq!(ID.get(), None, "a task's value leaked into worker {index}");
}

/// Model 2: two tasks on two workers set and read the same variable. Each
/// sees only its own value at every step, never the worker's; each worker's
/// own context is unchanged after every poll.
#[test]
fn two_tasks_on_two_workers_see_only_their_own_values() {
    model("two_tasks_two_workers", || {
        let rt = runtime(2);
        let handles: Vec<_> = (1..=2u32)
            .map(|id| {
                rt.spawn(async move {
                    assert_eq!(WORKER.get(), None);
                    let _token = ID.set(id);
                    yield_now().await;
                    assert_eq!(WORKER.get(), None);
                    ID.get()
                })
            })
            .collect();
        let other = spawn_worker(&rt, 1);
        run_worker_here(&rt, 0);
        other.join().unwrap();
        run_worker_here(&rt, 0);
        for (id, handle) in (1..=2u32).zip(handles) {
            assert!(handle.is_finished());
            assert_eq!(block_on(handle).unwrap(), Some(id));
        }
    });
}

/// Model 3: a task woken from another thread while it is running
/// (NOTIFIED during RUNNING) is polled again exactly once, possibly on the
/// other worker, still sees its own values, and leaves nothing behind.
#[test]
fn woken_while_running_is_polled_again_exactly_once() {
    model("notified_while_running", || {
        let rt = runtime(2);
        let slot: Arc<Mutex<Option<Waker>>> = Arc::new(Mutex::new(None));
        let polls = Arc::new(AtomicUsize::new(0));
        let spawner = ID.set(5);
        let handle = rt.spawn({
            let slot = slot.clone();
            let polls = polls.clone();
            poll_fn(move |cx| {
                assert_eq!(ID.get(), Some(5));
                assert_eq!(WORKER.get(), None);
                match polls.fetch_add(1, Ordering::SeqCst) {
                    0 => {
                        // Hand the waker out while still running.
                        *slot.lock().unwrap() = Some(cx.waker().clone());
                        Poll::Pending
                    }
                    _ => Poll::Ready(ID.get()),
                }
            })
        });
        ID.reset(spawner).unwrap();
        let waker_thread = {
            let slot = slot.clone();
            thread::spawn(move || {
                let waker = loop {
                    if let Some(waker) = slot.lock().unwrap().take() {
                        break waker;
                    }
                    thread::yield_now();
                };
                waker.wake();
            })
        };
        let other = spawn_worker(&rt, 1);
        run_worker_here(&rt, 0);
        waker_thread.join().unwrap();
        other.join().unwrap();
        run_worker_here(&rt, 0);
        assert_eq!(block_on(handle).unwrap(), Some(5));
        assert_eq!(polls.load(Ordering::SeqCst), 2);
    });
}

/// Counts its drops, and checks that it is dropped inside the context its
/// task was spawned with (ID = 7), not the dropper's (ID = 8).
struct DropProbe {
    drops: Arc<AtomicUsize>,
}

static DROPPED_OUTSIDE: Violations = Violations::new();

impl Drop for DropProbe {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
        let seen = ID.get();
        DROPPED_OUTSIDE.check(seen == Some(7), || {
            format!("future dropped in the wrong context: {seen:?}")
        });
    }
}

/// The task's output: counts its drops.
struct Output(Arc<AtomicUsize>);

impl Drop for Output {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Model 4a: `abort` races completion. The handle yields the output or a
/// cancellation; the output is dropped exactly once; the future is dropped
/// exactly once, inside its own context.
#[test]
fn abort_races_completion() {
    model("abort_races_completion", || {
        let rt = runtime(1);
        let future_drops = Arc::new(AtomicUsize::new(0));
        let output_drops = Arc::new(AtomicUsize::new(0));
        let spawner = ID.set(7);
        let handle = rt.spawn({
            let probe = DropProbe {
                drops: future_drops.clone(),
            };
            let output_drops = output_drops.clone();
            async move {
                let _probe = probe;
                Output(output_drops)
            }
        });
        ID.reset(spawner).unwrap();
        let _dropper = ID.set(8);
        let worker = spawn_worker(&rt, 0);
        handle.abort();
        let result = block_on(handle);
        worker.join().unwrap();
        match result {
            Ok(output) => drop(output),
            Err(e) => assert!(e.is_cancelled()),
        }
        drop(rt);
        assert_eq!(future_drops.load(Ordering::SeqCst), 1);
        assert!(output_drops.load(Ordering::SeqCst) <= 1);
    });
    DROPPED_OUTSIDE.raise();
}

/// Model 4b: dropping the `JoinHandle` races completion: the output is
/// dropped exactly once, by whoever owns it last.
#[test]
fn dropping_the_handle_races_completion() {
    model("detach_races_completion", || {
        let rt = runtime(1);
        let output_drops = Arc::new(AtomicUsize::new(0));
        let handle = rt.spawn({
            let output_drops = output_drops.clone();
            async move { Output(output_drops) }
        });
        let worker = spawn_worker(&rt, 0);
        drop(handle);
        worker.join().unwrap();
        assert_eq!(output_drops.load(Ordering::SeqCst), 1);
    });
}

/// Model 6: the run queue and the parking protocol. A worker parks when it
/// finds nothing; tasks are pushed from outside meanwhile. No task is lost
/// (every handle resolves, so the worker was woken) and none runs twice.
#[test]
fn tasks_pushed_while_a_worker_parks_are_not_lost() {
    model("push_while_parking", || {
        let rt = runtime(1);
        let worker = {
            let rt = rt.clone();
            thread::spawn(move || rt.run_worker(0))
        };
        let runs = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
        let handles: Vec<_> = (0..2)
            .map(|i| {
                let runs = runs.clone();
                rt.spawn(async move {
                    runs[i].fetch_add(1, Ordering::SeqCst);
                })
            })
            .collect();
        for handle in handles {
            block_on(handle).unwrap();
        }
        rt.begin_shutdown();
        worker.join().unwrap();
        assert_eq!(runs[0].load(Ordering::SeqCst), 1);
        assert_eq!(runs[1].load(Ordering::SeqCst), 1);
    });
}

/// Model 8: two workers park, one in the driver (its wake-up is the
/// reactor's eventfd; under loom, the driver's stand-in token) and one on
/// its condition variable, whichever gets there first; a task is pushed
/// from outside meanwhile, and then shutdown races both sleepers. The task
/// runs exactly once, and both workers return.
#[test]
fn a_push_reaches_workers_parked_in_and_beside_the_driver() {
    model("push_while_driving", || {
        let rt = runtime(2);
        let workers: Vec<_> = (0..2)
            .map(|i| {
                let rt = rt.clone();
                thread::spawn(move || rt.run_worker(i))
            })
            .collect();
        let runs = Arc::new(AtomicUsize::new(0));
        let handle = {
            let runs = runs.clone();
            rt.spawn(async move {
                runs.fetch_add(1, Ordering::SeqCst);
            })
        };
        block_on(handle).unwrap();
        rt.begin_shutdown();
        for worker in workers {
            worker.join().unwrap();
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    });
}

static RAN_AFTER_SHUTDOWN: Violations = Violations::new();

/// Model 7: shutdown races a wake-up from another thread. The pending future
/// is dropped exactly once, inside its own context, and never polled after
/// the runtime has been dropped; the late wake is harmless.
///
/// The first poll hands its waker to a new thread, which wakes it at once:
/// the wake can land anywhere from the rest of that poll onwards, racing the
/// worker's parking and `begin_shutdown`. The waker thread does not spin for
/// the waker: only the main thread spins (see `support::spin_until`; two
/// spinning threads let loom starve the worker forever).
#[test]
fn shutdown_races_a_wake_up() {
    model("shutdown_races_wake", || {
        let rt = runtime(1);
        let waker_thread: Arc<Mutex<Option<thread::JoinHandle<()>>>> = Arc::new(Mutex::new(None));
        let future_drops = Arc::new(AtomicUsize::new(0));
        let polled = Arc::new(AtomicBool::new(false));
        let shut_down = Arc::new(AtomicBool::new(false));
        let spawner = ID.set(7);
        let _detached = rt.spawn({
            let probe = DropProbe {
                drops: future_drops.clone(),
            };
            let waker_thread = waker_thread.clone();
            let polled = polled.clone();
            let shut_down = shut_down.clone();
            poll_fn(move |cx| {
                let _ = &probe;
                RAN_AFTER_SHUTDOWN.check(!shut_down.load(Ordering::SeqCst), || {
                    "polled after shutdown".into()
                });
                let mut waker_thread = waker_thread.lock().unwrap();
                if waker_thread.is_none() {
                    let waker = cx.waker().clone();
                    *waker_thread = Some(thread::spawn(move || waker.wake()));
                }
                polled.store(true, Ordering::SeqCst);
                Poll::<()>::Pending
            })
        });
        ID.reset(spawner).unwrap();
        let _dropper = ID.set(8);
        let worker = {
            let rt = rt.clone();
            thread::spawn(move || rt.run_worker(0))
        };
        // Let the task be polled once, then shut down while the wake races.
        spin_until(|| polled.load(Ordering::SeqCst));
        rt.begin_shutdown();
        worker.join().unwrap();
        // The last handle: dropping it finishes the shutdown, dropping the
        // pending future.
        drop(rt);
        shut_down.store(true, Ordering::SeqCst);
        let waker_thread = waker_thread.lock().unwrap().take();
        waker_thread.unwrap().join().unwrap();
        assert_eq!(future_drops.load(Ordering::SeqCst), 1);
    });
    DROPPED_OUTSIDE.raise();
    RAN_AFTER_SHUTDOWN.raise();
}
