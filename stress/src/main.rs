//! `baton-stress`: the project's main command, a leak hunter.
//!
//! It simulates the API gateway of the design's story: each request is a
//! task that binds a unique request id and user in two `ContextVar`s, then
//! runs a seeded random mix of operations — `yield_now`, short `sleep`s,
//! children (which must see the parent's values at spawn time, set their
//! own, and never disturb the parent or their siblings), `run_blocking`
//! offloads to rayon (the closure must see the request's values; the pool
//! thread must be clean afterwards, which bare probe jobs check),
//! `ctx.run` on a copy, and set/reset with tokens — re-reading its values
//! after every await. Every read is an *observation* compared with what the
//! semantics (S1–S9) allow; a mismatch is a *leak*.
//!
//! ```text
//! cargo run --release -p baton-stress                         # ~1 min, 100k in flight, >1M requests
//! cargo run --release -p baton-stress -- --faults             # 1% panic/abort/timeout/rayon-panic each
//! cargo run --release -p baton-stress -- --mode thread-local  # the baseline: must find leaks (exit 1)
//! cargo run --release -p baton-stress -- --mode http --faults # over HTTP: baton::http::serve and a client process
//! cargo run --release -p baton-stress -- --mode http-thread-local  # its baseline (exit 1)
//! ```
//!
//! Exit status 0 means no leak, no lost task, no other failure, and the
//! runtime and the pool still worked afterwards; 1 means something was
//! found (with `--expect-leaks`, 0 means leaks *were* found and nothing
//! else went wrong); 2 means bad flags.
//!
//! Modules: `cli` (flags), `driver` (spawning and accounting), `request`
//! and `ops` (the simulated request), `vars` and `baseline` (context vs
//! thread-local storage), `checks` (observations and counters), `faults`,
//! `probe` (pool-thread checks), `sanity`, `memory`, `latency`, `report`,
//! `rng`; `http` (`--mode http`, `--mode http-thread-local` and the client
//! process they start).

#![forbid(unsafe_code)]

mod baseline;
mod checks;
mod cli;
mod driver;
mod faults;
mod http;
mod latency;
mod memory;
mod ops;
mod probe;
mod report;
mod request;
mod rng;
mod sanity;
mod vars;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use baton_executor::Builder;
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};

use crate::checks::{Checker, Stats, Who};
use crate::cli::{Cli, RunMode};
use crate::driver::Plan;
use crate::report::Report;
use crate::request::Shared;
use crate::vars::{Mode, Snapshot};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(addr) = cli.http_client {
        return http::client_main(&cli, addr);
    }
    let mode = match cli.mode {
        RunMode::Context => Mode::Context,
        RunMode::ThreadLocal => Mode::ThreadLocal,
        RunMode::Http => return http::run(&cli, Mode::Context),
        RunMode::HttpThreadLocal => return http::run(&cli, Mode::ThreadLocal),
    };
    let faults = cli.fault_rates();
    if let Err(e) = faults.validate() {
        eprintln!("baton-stress: {e}");
        return ExitCode::from(2);
    }
    if cli.concurrency == 0 {
        eprintln!("baton-stress: --concurrency must be at least 1");
        return ExitCode::from(2);
    }
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    let workers = cli.workers.unwrap_or(cpus).max(1);
    let rayon_threads = cli.rayon_threads.unwrap_or(cpus).max(1);

    if let Err(e) = rayon::ThreadPoolBuilder::new()
        .num_threads(rayon_threads)
        .thread_name(|i| format!("stress-rayon-{i}"))
        .build_global()
    {
        eprintln!("baton-stress: cannot build the rayon pool: {e}");
        return ExitCode::FAILURE;
    }
    let rt = match Builder::new()
        .worker_threads(workers)
        .thread_name("stress-worker")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("baton-stress: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };

    let sh: &'static Shared = Box::leak(Box::new(Shared {
        mode,
        seed: cli.seed,
        stats: Stats::new(cli.show.max(1)),
        probe_every: cli.probe_every,
    }));
    faults::install_quiet_hook(&sh.stats);

    let (requests, duration) = cli.bounds();
    let plan = Plan {
        requests,
        concurrency: cli.concurrency,
        duration,
        faults,
        settle: Duration::from_secs(30),
    };
    let bar = if cli.no_progress || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let bar = match duration {
            Some(d) if requests == u64::MAX => ProgressBar::new(d.as_millis() as u64),
            _ => ProgressBar::new(requests),
        };
        bar.set_style(
            ProgressStyle::with_template("{elapsed_precise} [{bar:20}] {percent:>3}% {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar
    };

    let baseline_rss = memory::rss().unwrap_or_default().current;
    let result = rt.block_on(driver::drive(sh, &plan, &bar));
    bar.finish_and_clear();
    let metrics = rt.metrics();
    let peak_rss = memory::rss().unwrap_or_default().peak;

    // After block_on, the main thread's context is as before: empty (S7).
    {
        let mut chk = Checker::new(&sh.stats, Who::Driver);
        chk.snapshot(
            "main thread after block_on",
            Snapshot::EMPTY,
            sh.mode.read(),
        );
    }
    let runtime_sanity = sanity::runtime_ok(&rt, sh, u64::from(u32::MAX) + result.spawned + 1);
    let pool_sanity = sanity::pool_ok(sh);

    let stats = &sh.stats;
    let latencies = &result.latencies;
    let ms = |us: u64| us as f64 / 1000.0;
    let wall = result.elapsed.as_secs_f64().max(1e-9);
    let children = stats.children_spawned.load(Relaxed);
    let children_lost = children.saturating_sub(stats.children_finished.load(Relaxed));
    let requests_lost = result.spawned.saturating_sub(result.outcomes.total());
    let peak_in_flight = stats.peak_live.load(Relaxed);
    let mut report = Report {
        mode,
        seed: cli.seed,
        workers,
        rayon_threads,
        concurrency: cli.concurrency,
        faults,
        requests: result.spawned,
        completed: result.outcomes.completed,
        panicked: result.outcomes.panicked,
        cancelled: result.outcomes.cancelled,
        timed_out: result.outcomes.timed_out,
        children,
        tasks_lost: requests_lost + children_lost,
        runtime_unfinished: if result.settled {
            0
        } else {
            metrics.spawned.saturating_sub(metrics.completed)
        },
        rayon_jobs: stats.jobs_run.load(Relaxed),
        rayon_panics_caught: stats.rayon_panics_caught.load(Relaxed),
        pool_probes: stats.probes.load(Relaxed),
        observations: stats.observations.load(Relaxed),
        leaks: stats.leaks.load(Relaxed),
        failures: stats.failures.load(Relaxed),
        samples: stats.samples(),
        peak_in_flight,
        wall_s: wall,
        requests_per_s: result.outcomes.total() as f64 / wall,
        polls_per_s: metrics.polls as f64 / wall,
        latency_p50_ms: ms(latencies.quantile(0.50)),
        latency_p99_ms: ms(latencies.quantile(0.99)),
        latency_max_ms: ms(latencies.max()),
        polls: metrics.polls,
        steals: metrics.steals,
        migrations: metrics.migrations,
        runtime_spawned: metrics.spawned,
        baseline_rss_mib: baseline_rss as f64 / (1 << 20) as f64,
        peak_rss_mib: peak_rss as f64 / (1 << 20) as f64,
        bytes_per_in_flight_request: if peak_in_flight == 0 {
            0.0
        } else {
            peak_rss.saturating_sub(baseline_rss) as f64 / peak_in_flight as f64
        },
        runtime_sanity,
        pool_sanity,
        pass: false,
        expect_leaks: cli.expect_leaks,
    };
    report.judge();

    let summary = if cli.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => json + "\n",
            Err(e) => format!("{{\"error\": \"cannot write JSON: {e}\"}}\n"),
        }
    } else {
        report.table(cli.show)
    };
    // A closed pipe (`| head`) is not worth a panic.
    let _ = std::io::stdout().lock().write_all(summary.as_bytes());
    // Tasks left behind (none, normally) are dropped with the runtime.
    rt.shutdown_timeout(Duration::from_secs(5));
    if report.pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
