//! Memory per idle task: spawns 100,000 tasks whose future is 64 bytes and
//! pending forever, on each runtime, and reports the growth of the resident
//! set per task.
//!
//! ```text
//! cargo run --release -p baton-benches --bin task_memory            # all runtimes
//! cargo run --release -p baton-benches --bin task_memory -- tokio   # one
//! ```
//!
//! Each runtime is measured in a child process of its own (this binary
//! re-executes itself with the runtime's name), so that one runtime's freed
//! memory cannot be reused by the next. The resident set (`VmRSS` in
//! `/proc/self/status`) is read after the runtime has started and run one
//! task, and again once every idle task has been polled once; the tasks'
//! join handles are dropped (detached) right after spawning. Linux only.

#![forbid(unsafe_code)]

use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use baton_benches::runtimes::{AsyncExecutor, Baton, BenchRuntime, Spawner, Tokio};
use baton_benches::workers;
use baton_benches::workloads::executor::Idle64;

const TASKS: usize = 100_000;

static POLLED: AtomicUsize = AtomicUsize::new(0);

/// The resident set in bytes, from `/proc/self/status`.
fn rss_bytes() -> usize {
    let status =
        std::fs::read_to_string("/proc/self/status").expect("/proc/self/status (Linux only)");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("VmRSS in /proc/self/status");
    let kb: usize = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .expect("VmRSS value");
    kb * 1024
}

fn measure<R: BenchRuntime>() -> f64 {
    let rt = R::with_workers(workers());
    let sp = rt.spawner();
    // Start everything up (threads, queues, thread-locals) before the baseline.
    rt.block_on(sp.spawn(async {}));
    std::thread::sleep(Duration::from_millis(50));
    let before = rss_bytes();
    for _ in 0..TASKS {
        R::Spawner::detach(sp.spawn(Idle64::new(&POLLED)));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while POLLED.load(Relaxed) < TASKS {
        assert!(
            Instant::now() < deadline,
            "{}: idle tasks were never polled",
            R::NAME
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(50));
    let after = rss_bytes();
    let per_task = after.saturating_sub(before) as f64 / TASKS as f64;
    // Exit without tearing the runtime down: only the measurement matters.
    std::mem::forget(rt);
    per_task
}

fn run_one(name: &str) -> Option<f64> {
    Some(match name {
        n if n == Baton::NAME => measure::<Baton>(),
        n if n == Tokio::NAME => measure::<Tokio>(),
        n if n == AsyncExecutor::NAME => measure::<AsyncExecutor>(),
        _ => return None,
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(name) = args.first() {
        match run_one(name) {
            Some(per_task) => println!("{per_task:.1}"),
            None => {
                eprintln!("unknown runtime {name:?}");
                std::process::exit(2);
            }
        }
        return;
    }
    let exe = std::env::current_exe().expect("current_exe");
    println!(
        "# memory per idle task: {TASKS} tasks, 64-byte future, {} workers",
        workers()
    );
    println!("| runtime | bytes per task |");
    println!("|---|---:|");
    for name in [Baton::NAME, Tokio::NAME, AsyncExecutor::NAME] {
        let out = Command::new(&exe).arg(name).output().expect("run child");
        let text = String::from_utf8_lossy(&out.stdout);
        if out.status.success() {
            println!("| {name} | {} |", text.trim());
        } else {
            println!(
                "| {name} | failed: {} |",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
    }
}
