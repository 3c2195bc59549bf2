//! `#[baton::test]` and `#[baton::main]` for real: each test on a runtime of
//! its own, the arguments honoured, other attributes kept. (Their misuse
//! errors: `macros/tests/compile_fail.rs`.)
#![cfg(feature = "macros")]

use std::collections::HashSet;
use std::process::Command;
use std::sync::Mutex;
use std::thread::{self, ThreadId};

use baton::{ContextVar, Handle, spawn, yield_now};

static REQUEST_ID: ContextVar<&str> = ContextVar::with_default("request_id", "none");

/// The worker threads every test of `own_runtime!` ran its tasks on.
static WORKERS_SEEN: Mutex<Vec<(&str, HashSet<ThreadId>)>> = Mutex::new(Vec::new());

/// The threads of the current runtime's workers: one task per worker,
/// each holding its worker until all have started, so none can run two.
async fn worker_threads() -> HashSet<ThreadId> {
    let workers = Handle::current().metrics().workers;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(workers));
    let tasks: Vec<_> = (0..workers)
        .map(|_| {
            let barrier = barrier.clone();
            spawn(async move {
                barrier.wait();
                thread::current().id()
            })
        })
        .collect();
    let mut threads = HashSet::new();
    for task in tasks {
        threads.insert(task.await.unwrap());
    }
    assert_eq!(threads.len(), workers);
    threads
}

/// Tests that each check that they run on a runtime no other test of the
/// group ran on: fresh counters, and worker threads no other one had.
/// Whichever order (or parallelism) the harness picks, the later ones see
/// the earlier ones' threads.
macro_rules! own_runtime {
    ($($name:ident),*) => {$(
        #[baton::test(worker_threads = 2)]
        async fn $name() {
            let metrics = Handle::current().metrics();
            assert_eq!((metrics.spawned, metrics.completed), (0, 0), "a used runtime");
            let mine = worker_threads().await;
            assert_eq!(Handle::current().metrics().spawned, 2);
            let mut seen = WORKERS_SEEN.lock().unwrap();
            for (other, theirs) in seen.iter() {
                assert!(mine.is_disjoint(theirs), "shares workers with {other}");
            }
            seen.push((stringify!($name), mine));
        }
    )*};
}

own_runtime!(own_runtime_a, own_runtime_b, own_runtime_c);

#[baton::test(worker_threads = 1)]
async fn one_worker() {
    assert_eq!(Handle::current().metrics().workers, 1);
}

#[baton::test(worker_threads = 2)]
async fn two_workers() {
    assert_eq!(Handle::current().metrics().workers, 2);
    assert_eq!(worker_threads().await.len(), 2);
}

/// More workers than this machine may have CPUs: not the default.
#[baton::test(worker_threads = 5)]
async fn five_workers() {
    assert_eq!(Handle::current().metrics().workers, 5);
}

#[baton::test]
async fn the_default_is_one_worker_per_cpu() {
    let cpus = baton::Runtime::new().metrics().workers;
    assert_eq!(Handle::current().metrics().workers, cpus);
}

#[baton::test]
#[should_panic(expected = "boom in a task")]
async fn should_panic_is_kept() {
    spawn(async { panic!("boom in a task") }).await.unwrap();
}

#[baton::test]
#[ignore = "listed as ignored: see `ignore_is_kept`"]
async fn an_ignored_test() {}

/// This test binary lists `an_ignored_test` among its ignored tests.
#[test]
fn ignore_is_kept() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--list", "--ignored"])
        .output()
        .unwrap();
    let listed = String::from_utf8(out.stdout).unwrap();
    assert!(
        listed.lines().any(|line| line == "an_ignored_test: test"),
        "{listed}"
    );
}

#[baton::test]
async fn a_test_may_return_a_result() -> Result<(), Box<dyn std::error::Error>> {
    let n: u32 = "7".parse()?;
    let doubled = spawn(async move { n * 2 }).await?;
    assert_eq!(doubled, 14);
    Ok(())
}

#[baton::test]
async fn return_leaves_the_body() {
    if REQUEST_ID.get() == Some("none") {
        return;
    }
    unreachable!("REQUEST_ID is unset in a fresh test");
}

/// The body runs in a copy of the test thread's context: empty, and what it
/// sets is its own; its tasks inherit it, wherever they run.
#[baton::test(worker_threads = 2)]
async fn context_vars_work_inside() {
    assert_eq!(REQUEST_ID.get(), Some("none"));
    let _token = REQUEST_ID.set("req-1");
    yield_now().await;
    let child = spawn(async {
        yield_now().await;
        let seen = REQUEST_ID.get();
        let _token = REQUEST_ID.set("changed by the child");
        seen
    });
    assert_eq!(child.await.unwrap(), Some("req-1"));
    assert_eq!(REQUEST_ID.get(), Some("req-1"));
}

/// What the body sets stays in its runtime's copy of the context: the
/// thread that ran it (and so the next test on that thread) sees nothing.
#[test]
fn the_body_leaves_its_thread_as_it_was() {
    #[baton::main]
    async fn sets_a_var() {
        let _ = REQUEST_ID.set("leaked?");
        assert_eq!(REQUEST_ID.get(), Some("leaked?"));
    }
    sets_a_var();
    assert_eq!(REQUEST_ID.get(), Some("none"));
}

/// `#[baton::main]` makes a plain `fn` of the same name and return type.
#[test]
fn main_blocks_on_the_body_and_returns_its_output() {
    #[baton::main(worker_threads = 3)]
    async fn main() -> Result<usize, String> {
        let workers = spawn(async { Handle::current().metrics().workers })
            .await
            .map_err(|e| e.to_string())?;
        Ok(workers)
    }
    let main: fn() -> Result<usize, String> = main;
    assert_eq!(main(), Ok(3));
    // Outside, there is no runtime any more.
    assert!(Handle::try_current().is_none());
}
