//! Model 8: a negative control.
//!
//! The same leak check, applied to the design Python's `threading.local()`
//! users had before contextvars: a plain thread-local "current request id"
//! shared by every task that runs on a thread. Two workers take tasks from a
//! shared queue; each task sets its request id, yields (goes back to the
//! queue), and reads its id again. With the naive design loom finds the
//! interleaving where another task ran on the same thread in between and
//! overwrote the id — so the check can fail. With baton's contexts the same
//! scheduler passes.
#![cfg(baton_loom)]

use std::cell::Cell;
use std::collections::VecDeque;

use baton_context::{Context, ContextVar};
use loom::sync::{Arc, Mutex};
use loom::thread;

/// One step of a request: step 0 sets the id, step 1 checks it.
struct Task {
    id: u32,
    step: u8,
    ctx: Context,
}

/// The first leak any explored interleaving found. Recorded rather than
/// panicked on inside the model (unwinding through loom's objects aborts),
/// and raised once `loom::model` returns.
/// One per test: the test harness runs tests concurrently.
type LeakRecord = std::sync::Mutex<Option<String>>;
static NAIVE_LEAK: LeakRecord = LeakRecord::new(None);
static BATON_LEAK: LeakRecord = LeakRecord::new(None);

fn check(record: &LeakRecord, seen: Option<u32>, task: &Task) {
    if seen != Some(task.id) {
        record.lock().unwrap().get_or_insert_with(|| {
            format!("request {} saw request {}'s id", task.id, seen.unwrap_or(0))
        });
    }
}

fn raise_leaks(record: &LeakRecord) {
    if let Some(leak) = record.lock().unwrap().take() {
        panic!("{leak}");
    }
}

/// Two workers drain the queue; `run_step` runs one step of a task. Each
/// worker thread owns one `Cell`: its thread-local storage (a loom
/// `thread_local!` cannot be used in a model that is expected to panic, as
/// its destructor then runs outside the model).
fn run_two_workers(run_step: fn(&Task, &Cell<u32>)) {
    let queue = Arc::new(Mutex::new(VecDeque::from([
        Task {
            id: 1,
            step: 0,
            ctx: Context::new(),
        },
        Task {
            id: 2,
            step: 0,
            ctx: Context::new(),
        },
    ])));
    let worker = {
        let queue = queue.clone();
        move || {
            let thread_local = Cell::new(0);
            loop {
                let Some(mut task) = queue.lock().unwrap().pop_front() else {
                    return;
                };
                run_step(&task, &thread_local);
                if task.step == 0 {
                    task.step = 1;
                    queue.lock().unwrap().push_back(task);
                }
            }
        }
    };
    let other = thread::spawn(worker.clone());
    worker();
    other.join().unwrap();
}

#[test]
#[should_panic(expected = "request 1 saw request 2's id")]
fn a_plain_thread_local_leaks_between_tasks() {
    loom::model(|| {
        run_two_workers(|task, naive_request_id| {
            if task.step == 0 {
                naive_request_id.set(task.id);
            } else {
                check(&NAIVE_LEAK, Some(naive_request_id.get()), task);
            }
        });
    });
    raise_leaks(&NAIVE_LEAK);
}

static REQUEST_ID: ContextVar<u32> = ContextVar::new("request_id");

#[test]
fn a_context_var_in_each_tasks_context_does_not_leak() {
    loom::model(|| {
        run_two_workers(|task, _| {
            task.ctx.run(|| {
                if task.step == 0 {
                    let _ = REQUEST_ID.set(task.id);
                } else {
                    check(&BATON_LEAK, REQUEST_ID.get(), task);
                }
            });
            // The worker's own context is clean after every step.
            assert_eq!(REQUEST_ID.get(), None);
        });
    });
    raise_leaks(&BATON_LEAK);
}
