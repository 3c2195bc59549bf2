//! Shared workloads for baton's side-by-side benchmarks.
//!
//! The criterion benches under `benches/` and any report binary call the same
//! functions, so that what is measured is defined once:
//!
//! * [`runtimes`] — one adapter per async runtime (baton, tokio's
//!   multi-thread runtime, async-executor driven by N threads), behind the
//!   [`runtimes::BenchRuntime`] trait, with the same number of workers;
//! * [`workloads::executor`] — tokio's `rt_multi_threaded` and smol's
//!   `web_server` / `channels` workloads, generic over the runtime;
//! * [`workloads::bridge`] — offloads to rayon and `par_iter` sums;
//! * [`workloads::context`] — context-variable fixtures (N bound variables),
//!   tokio `task_local!` and a naive copy-on-write context for reference;
//! * [`net`] — network benchmarks (echo, HTTP through hyper, idle
//!   connections) with server and load generator in separate processes,
//!   timer create + cancel and idle CPU (the `netbench` binary).
//!
//! Every workload checks its own result (counts reached, values read back) and
//! panics otherwise, so a broken runtime cannot look fast.

#![forbid(unsafe_code)]

pub mod net;
pub mod report;
pub mod runtimes;
pub mod workloads;

/// The number of worker threads every runtime gets: `BATON_BENCH_WORKERS`
/// if set, else one per CPU.
pub fn workers() -> usize {
    std::env::var("BATON_BENCH_WORKERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(num_cpus::get)
}
