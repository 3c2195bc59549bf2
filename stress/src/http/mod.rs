//! `--mode http` and its baseline `--mode http-thread-local`: the leak hunt
//! over real HTTP.
//!
//! This process runs the gateway (`server.rs`) on a baton runtime with
//! `baton::http::serve` on loopback, and starts a second process — this
//! binary again, with the hidden `--http-client` flag — that drives it with
//! many keep-alive connections and faults (`client.rs`, `faults.rs`,
//! `process.rs`). Each request carries a unique id, user and `traceparent`
//! (`protocol.rs`); the handler checks them at every step (`check.rs`),
//! every log line is checked (`log.rs`), and the client checks every
//! response. After the run, the server is shut down gracefully and must
//! leave no task behind and no file open (`limits.rs`); `report.rs` prints
//! the verdict.

mod check;
pub(crate) mod client;
pub(crate) mod faults;
mod limits;
mod log;
mod process;
mod protocol;
mod report;
mod server;

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use baton::net::TcpListener;

use crate::checks::Stats;
use crate::cli::{Cli, DEFAULT_DURATION};
use crate::http::client::{ClientConfig, ClientReport, DRAIN_LIMIT};
use crate::http::log::{LogChecker, LogSink};
use crate::http::process::ClientProcess;
use crate::http::report::HttpReport;
use crate::http::server::{Counters, Gateway, HEADER_READ_TIMEOUT};
use crate::vars::Mode;

/// Open files each process keeps for itself besides its connections.
const FD_MARGIN: u64 = 256;
/// How long, after the client has exited, the server may take to shut
/// down, its tasks to finish and its files to close.
const SETTLE_LIMIT: Duration = Duration::from_secs(10);
/// How much longer than its own bounds the client process may take before
/// it is killed.
const CLIENT_GRACE: Duration = Duration::from_secs(30);

/// Runs the client process (`--http-client ADDR`): prints its report as
/// JSON on stdout.
pub(crate) fn client_main(cli: &Cli, addr: SocketAddr) -> ExitCode {
    let cfg = match client_config(cli, addr) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("baton-stress client: {e}");
            return ExitCode::from(2);
        }
    };
    client::main(cfg)
}

/// The client's configuration from the flags (checked).
fn client_config(cli: &Cli, addr: SocketAddr) -> Result<ClientConfig, String> {
    let faults = cli.http_fault_rates();
    faults.validate()?;
    if cli.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    let (requests, duration) = cli.bounds();
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    Ok(ClientConfig {
        addr,
        connections: cli.connections,
        duration: duration.unwrap_or(DEFAULT_DURATION),
        requests,
        seed: cli.seed,
        threads: cli.client_threads.unwrap_or((cpus / 2).max(1)).max(1),
        faults,
    })
}

/// What the load did, seen from the server's side.
struct Outcome {
    client: Result<ClientReport, String>,
    serve: Result<(), String>,
}

/// Runs `--mode http` (`mode` [`Mode::Context`]) or its baseline
/// (`--mode http-thread-local`, [`Mode::ThreadLocal`]).
pub(crate) fn run(cli: &Cli, mode: Mode) -> ExitCode {
    let unspecified: SocketAddr = ([127, 0, 0, 1], 0).into();
    let cfg = match client_config(cli, unspecified) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("baton-stress: {e}");
            return ExitCode::from(2);
        }
    };
    let nofile = limits::raise_nofile_limit().unwrap_or_else(|e| {
        eprintln!("baton-stress: cannot raise the open-file limit: {e}");
        1024
    });
    let per_process =
        cfg.connections as u64 + (faults::FAULT_SLOTS + faults::SLOWLORIS_SLOTS) as u64 + FD_MARGIN;
    if per_process > nofile {
        eprintln!(
            "baton-stress: --connections {} needs about {per_process} open files per process; \
             the limit is {nofile}",
            cfg.connections
        );
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
    let rt = match baton::Builder::new()
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

    let show = cli.show.max(1);
    let stats: &'static Stats = Box::leak(Box::new(Stats::new(show)));
    let log_stats: &'static Stats = Box::leak(Box::new(Stats::new(show)));
    let sink: &'static LogSink = Box::leak(Box::new(LogSink::new(mode)));
    let gateway: &'static Gateway = Box::leak(Box::new(Gateway {
        mode,
        stats,
        log: sink,
        counters: Counters::default(),
    }));
    let log_checker = match LogChecker::start(sink, log_stats) {
        Ok(checker) => checker,
        Err(e) => {
            eprintln!("baton-stress: cannot start the log checker: {e}");
            return ExitCode::FAILURE;
        }
    };

    let fds_before = limits::open_fds().unwrap_or(0);
    let before = rt.metrics();
    let tasks_before = before.spawned.saturating_sub(before.completed);
    let outcome = rt.block_on(serve_and_load(gateway, cfg.clone()));

    // The server has shut down: its tasks must all finish and its files
    // close (a child of a cancelled handler may still be finishing).
    let settle_end = Instant::now() + SETTLE_LIMIT;
    let tasks_left = loop {
        let m = rt.metrics();
        let left = m
            .spawned
            .saturating_sub(m.completed)
            .saturating_sub(tasks_before);
        if left == 0 || Instant::now() >= settle_end {
            break left;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let fds_after = loop {
        let now = limits::open_fds().unwrap_or(0);
        if now <= fds_before || Instant::now() >= settle_end {
            break now;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let log_lines_checked = log_checker.finish();

    let report = report(
        cli,
        mode,
        &cfg,
        (workers, rayon_threads),
        gateway,
        log_stats,
        outcome,
        (tasks_left, fds_before, fds_after, log_lines_checked),
    );
    let summary = if cli.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => json + "\n",
            Err(e) => format!("{{\"error\": \"cannot write JSON: {e}\"}}\n"),
        }
    } else {
        report.table(usize::MAX)
    };
    let _ = std::io::stdout().lock().write_all(summary.as_bytes());
    rt.shutdown_timeout(Duration::from_secs(5));
    if report.pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Binds, serves, runs the client process to its end, then shuts the server
/// down gracefully.
async fn serve_and_load(gateway: &'static Gateway, mut cfg: ClientConfig) -> Outcome {
    let listener = match TcpListener::bind("127.0.0.1:0").await {
        Ok(listener) => listener,
        Err(e) => {
            return Outcome {
                client: Err("no server to run against".into()),
                serve: Err(format!("cannot bind: {e}")),
            };
        }
    };
    let addr = match listener.local_addr() {
        Ok(addr) => addr,
        Err(e) => {
            return Outcome {
                client: Err("no server to run against".into()),
                serve: Err(format!("no local address: {e}")),
            };
        }
    };
    cfg.addr = addr;
    let (stop, stopped) = futures::channel::oneshot::channel::<()>();
    let server = baton::spawn(server::serve(gateway, listener, async move {
        let _ = stopped.await;
    }));

    let deadline = Instant::now() + cfg.duration + DRAIN_LIMIT + CLIENT_GRACE;
    let client = match ClientProcess::start(&cfg, addr) {
        Ok(process) => match baton::spawn_blocking(move || process.finish(deadline)).await {
            Ok(result) => result,
            Err(e) => Err(format!("the thread waiting for the client failed: {e}")),
        },
        Err(e) => Err(e),
    };

    let _ = stop.send(());
    let serve = match baton::timeout(SETTLE_LIMIT, server).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(format!("serve failed: {e}")),
        Ok(Err(e)) => Err(format!("the serve task failed: {e}")),
        Err(_) => Err(format!(
            "no graceful shutdown within {SETTLE_LIMIT:?} of the client's exit"
        )),
    };
    Outcome { client, serve }
}

/// Puts the numbers together and judges them.
#[allow(clippy::too_many_arguments)]
fn report(
    cli: &Cli,
    mode: Mode,
    cfg: &ClientConfig,
    (workers, rayon_threads): (usize, usize),
    gw: &'static Gateway,
    log_stats: &'static Stats,
    outcome: Outcome,
    (tasks_left, fds_before, fds_after, log_lines_checked): (u64, u64, u64, u64),
) -> HttpReport {
    let c = &gw.counters;
    let (client, client_error) = match outcome.client {
        Ok(report) => (report, None),
        Err(e) => (ClientReport::default(), Some(e)),
    };
    let started = c.started.load(Relaxed);
    let completed = c.completed.load(Relaxed);
    let cancelled = c.cancelled.load(Relaxed);
    let children = c.children_spawned.load(Relaxed);
    let leaks_server = gw.stats.leaks.load(Relaxed);
    let leaks_log = log_stats.leaks.load(Relaxed);
    let show = cli.show.max(1);
    let samples: Vec<String> = gw
        .stats
        .samples()
        .into_iter()
        .take(show)
        .chain(log_stats.samples().into_iter().take(show.min(3)))
        .chain(client.samples.iter().take(show.min(3)).cloned())
        .collect();
    let mut report = HttpReport {
        mode: match mode {
            Mode::Context => "http",
            Mode::ThreadLocal => "http-thread-local",
        },
        seed: cfg.seed,
        workers,
        rayon_threads,
        connections: cfg.connections as u64,
        client_threads: cfg.threads,
        faults: cfg.faults,
        header_read_timeout_s: HEADER_READ_TIMEOUT.as_secs_f64(),
        requests: client.sent,
        requests_ok: client.ok,
        requests_per_s: if client.elapsed_s > 0.0 {
            (client.ok + client.leaks + client.bad_answers) as f64 / client.elapsed_s
        } else {
            0.0
        },
        latency_p50_ms: client.p50_us as f64 / 1000.0,
        latency_p99_ms: client.p99_us as f64 / 1000.0,
        latency_max_ms: client.max_us as f64 / 1000.0,
        load_s: client.elapsed_s,
        lost: client.lost,
        bad_answers: client.bad_answers,
        connect_errors: client.connect_errors,
        closed_between_requests: client.closed_between_requests,
        client_drained: client_error.is_none() && client.drained,
        client_error,
        handlers: started,
        handlers_completed: completed,
        handlers_cancelled: cancelled,
        handlers_unaccounted: started.saturating_sub(completed + cancelled),
        children,
        children_unfinished: children.saturating_sub(c.children_finished.load(Relaxed)),
        rayon_jobs: c.jobs.load(Relaxed),
        log_lines: gw.log.written(),
        log_lines_checked,
        observations: gw.stats.observations.load(Relaxed) + log_stats.observations.load(Relaxed),
        leaks_server,
        leaks_log,
        leaks_client: client.leaks,
        leaks: leaks_server + leaks_log + client.leaks,
        failures: gw.stats.failures.load(Relaxed) + log_stats.failures.load(Relaxed),
        fault_counts: client.faults,
        runtime_unfinished: tasks_left,
        fds_before,
        fds_after,
        serve_error: outcome.serve.err(),
        samples,
        pass: false,
        expect_leaks: cli.expect_leaks,
    };
    report.judge();
    report
}
