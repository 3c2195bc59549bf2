//! The report's `io` group (`report --only io`): the network cells
//! ([`super::run`]), timer create + cancel ([`super::timers`]), timer
//! resolution ([`super::resolution`]) and idle CPU, as one BENCHMARKS.md
//! section.
//!
//! The time-based figures become the group's workloads (median, min – max
//! over the rounds; baton first, so the report's ratios are baton ÷ peer):
//! timer create + cancel from 1 task and from one task per worker, the p50
//! of a 1 ms sleep (per round) with the workers idle and busy, and —
//! when this build has baton's sockets (feature `baton-net`) — wall time per
//! echo message / HTTP request (1 ÷ throughput; 64 connections in flight)
//! and server CPU per message / request. Everything else (latency
//! percentiles, RSS per idle connection, idle CPU, tokio and smol alone
//! when baton's side is off) is in the group's extra tables.

use std::time::Duration;

use super::markdown::{idle_cpu_table, net_tables, resolution_table, timers_table};
use super::resolution::{self, Load, ResolutionConfig};
use super::run::{self, Cell, Exe, RunConfig};
use super::timers::{self, TimerConfig, TimerOp};
use super::{System, Workload};
use crate::report::measure::Stats;
use crate::report::table::{Group, Workload as Row};

/// How long the group measures.
#[derive(Clone, Debug)]
pub struct IoSettings {
    /// The network cells.
    pub run: RunConfig,
    /// The timer benchmark.
    pub timers: TimerConfig,
    /// The timer-resolution benchmark.
    pub resolution: ResolutionConfig,
    /// The idle-CPU window per system.
    pub idle_cpu: Duration,
}

impl IoSettings {
    /// The report's defaults (`quick`: a smoke run of ~1 min): 2 server
    /// workers for every system; each figure optional.
    pub fn new(
        quick: bool,
        duration: Option<Duration>,
        idle_connections: Option<usize>,
        rounds: Option<usize>,
    ) -> IoSettings {
        let run = RunConfig {
            duration: duration.unwrap_or(Duration::from_secs(if quick { 1 } else { 3 })),
            warmup: Duration::from_millis(if quick { 300 } else { 500 }),
            idle_connections: idle_connections.unwrap_or(if quick { 2_000 } else { 10_000 }),
            rounds: rounds.unwrap_or(1).max(1),
            ..RunConfig::default()
        };
        let timers = TimerConfig {
            workers: run.workers,
            ops: if quick { 20_000 } else { 100_000 },
            rounds: if quick { 3 } else { 10 },
            ..TimerConfig::default()
        };
        let resolution = ResolutionConfig {
            workers: run.workers,
            samples: if quick { 200 } else { 500 },
            ..ResolutionConfig::default()
        };
        IoSettings {
            run,
            timers,
            resolution,
            idle_cpu: Duration::from_secs(if quick { 2 } else { 10 }),
        }
    }
}

/// The group, and the figures of its plot.
#[derive(Clone, Debug)]
pub struct IoGroup {
    /// The section (id `io`).
    pub group: Group,
    /// Markdown for the report's headlines.
    pub headline: String,
    /// Plot bars: a label and each peer's figure ÷ tokio's (`baton`,
    /// `smol`; NaN where missing). Every figure is a cost: < 1 is cheaper.
    pub ratios: Vec<(String, f64, f64)>,
    /// Notes for the report (cells that failed, baton's side off).
    pub notes: Vec<String>,
}

fn per_round(
    cells: &[Cell],
    system: System,
    workload: Workload,
    f: impl Fn(&Cell) -> f64,
) -> Vec<f64> {
    cells
        .iter()
        .filter(|c| c.system == system && c.workload == workload)
        .map(f)
        .collect()
}

/// Runs the group: network cells, timers, idle CPU.
pub fn io_group(exe: &Exe, s: &IoSettings, mut progress: impl FnMut(&str)) -> IoGroup {
    let cfg = &s.run;
    let mut notes = Vec::new();
    if !System::Baton.has_net() {
        notes.push(
            "I/O group: baton's network rows are missing: this build lacks the `baton-net` feature \
             of baton-benches (`--features baton-net`); its timer rows are there."
                .into(),
        );
    }
    let cells = run::run(exe, cfg, &mut progress);
    let expected = cfg.systems.len() * cfg.workloads.len() * cfg.rounds;
    if cells.len() < expected {
        notes.push(format!(
            "I/O group: {} of {expected} network cells failed (see the report's stderr).",
            expected - cells.len()
        ));
    }
    progress("timers");
    let timer_results = timers::run(&s.timers);
    progress("timer resolution");
    let resolution_results = resolution::run(&s.resolution);
    let idle = run::idle_cpu(exe, &cfg.systems, s.idle_cpu, cfg.workers, &mut progress);

    let mut rows = Vec::new();
    let mut task_counts = vec![1, s.timers.workers];
    task_counts.dedup();
    for op in TimerOp::ALL {
        for &tasks in &task_counts {
            let stats: Vec<Stats> = System::ALL
                .into_iter()
                .filter_map(|sys| {
                    timer_results
                        .iter()
                        .find(|r| r.system == sys && r.op == op && r.tasks == tasks)
                        .map(|r| r.stats.clone())
                })
                .collect();
            if stats.first().is_some_and(|st| st.system == "baton") {
                rows.push(Row {
                    name: format!(
                        "{} create+cancel, {tasks} task{}",
                        op.name(),
                        if tasks == 1 { "" } else { "s" }
                    ),
                    stats,
                });
            }
        }
    }
    for load in Load::ALL {
        let stats: Vec<Stats> = System::ALL
            .into_iter()
            .filter_map(|sys| {
                resolution_results
                    .iter()
                    .find(|r| r.system == sys && r.load == load)
                    .map(|r| r.round_stats())
            })
            .collect();
        if stats.first().is_some_and(|st| st.system == "baton") {
            rows.push(Row {
                name: format!(
                    "{} ms sleep: p50, {} workers",
                    resolution::PERIOD.as_millis(),
                    load.name()
                ),
                stats,
            });
        }
    }
    if cells.iter().any(|c| c.system == System::Baton) {
        for (workload, what) in [(Workload::Echo, "message"), (Workload::Http, "request")] {
            for (metric, f) in [
                (
                    format!("{workload}: wall time per {what}"),
                    (|c: &Cell| 1e9 / c.rate()) as fn(&Cell) -> f64,
                ),
                (format!("{workload}: server CPU per {what}"), |c: &Cell| {
                    c.server_cpu_per_round_trip_us() * 1e3
                }),
            ] {
                let stats: Vec<Stats> = System::ALL
                    .into_iter()
                    .filter_map(|sys| {
                        let v = per_round(&cells, sys, workload, f);
                        let trips =
                            per_round(&cells, sys, workload, |c| c.client.round_trips as f64);
                        let trips = trips.into_iter().fold(f64::INFINITY, f64::min);
                        (!v.is_empty()).then(|| Stats::from_samples(sys.name(), v, trips as u64))
                    })
                    .collect();
                if stats.first().is_some_and(|st| st.system == "baton") {
                    rows.push(Row {
                        name: metric,
                        stats,
                    });
                }
            }
        }
    }

    let ratio = |row: &Row, sys: &str| {
        let t = row.stats.iter().find(|st| st.system == "tokio");
        let x = row.stats.iter().find(|st| st.system == sys);
        match (x, t) {
            (Some(x), Some(t)) => x.median / t.median,
            _ => f64::NAN,
        }
    };
    let mut ratios: Vec<(String, f64, f64)> = rows
        .iter()
        .map(|r| (r.name.clone(), ratio(r, "baton"), ratio(r, "smol")))
        .collect();
    let rss = |sys: System| {
        super::markdown::cell_median(&cells, sys, Workload::Idle, Cell::rss_per_connection)
    };
    let t_rss = rss(System::Tokio);
    if t_rss.is_finite() {
        ratios.push((
            "idle: RSS per connection".into(),
            rss(System::Baton) / t_rss,
            rss(System::Smol) / t_rss,
        ));
    }

    let mut extra = net_tables(&cells, cfg);
    extra.push_str(&timers_table(&timer_results, s.timers.workers));
    extra.push_str(&resolution_table(&resolution_results, &s.resolution));
    extra.push_str(&idle_cpu_table(&idle, cfg.workers));
    let group = Group {
        id: "io".into(),
        title: format!("I/O: sockets, HTTP, timers ({} workers each)", cfg.workers),
        intro: format!(
            "Loopback only. Each system's server runs in a process of its own with {w} workers \
             (baton: `baton::net`; tokio: multi-thread runtime + `tokio::net`; smol: async-executor \
             run by {w} threads in `async_io::block_on` + async-net), driven by one load-generator \
             process that is the same for all (tokio, {c} workers); `netbench run` does the same \
             from the command line. Echo: {n} connections × {m} B ping-pong; HTTP: {n} keep-alive \
             connections, `GET /` → `hello` through hyper 1 (tokio: hyper-util `TokioIo`; baton: its \
             streams' own `hyper::rt` impls, as `baton::http` uses them; smol: a small \
             `futures_io` adapter); idle: {i} connections held open. \
             {d:.1} s measured per cell after {wu:.1} s of warm-up, {r} round(s), systems \
             interleaved; server CPU from `getrusage` across the measured window. Timers \
             (in-process): a timeout / sleep future with a one-hour deadline is created, polled \
             once and dropped, from 1 task and from {tw} tasks at once (flat is the goal). Timer \
             resolution (in-process): one task sleeps {p} ms {rs} times in a row, each sample from \
             just before the sleep is created to just after it completes; the rows are the median \
             sample (p50) per round, median and min – max over {rr} rounds, with the workers idle \
             and with one more task per worker yielding in a loop (busy); p99 and max are in its \
             own table. With \
             baton's sockets, the table below also has the wall time per echo message / HTTP \
             request (1 ÷ throughput, {n} in flight) and the server's CPU per message / request. The \
             machine's other load shows in these figures: compare ratios within one run.",
            w = cfg.workers,
            c = cfg.client_threads,
            n = cfg.connections,
            m = super::MESSAGE_SIZE,
            i = cfg.idle_connections,
            d = cfg.duration.as_secs_f64(),
            wu = cfg.warmup.as_secs_f64(),
            r = cfg.rounds,
            tw = s.timers.workers,
            p = resolution::PERIOD.as_millis(),
            rs = s.resolution.samples,
            rr = s.resolution.rounds,
        ),
        workloads: rows,
        extra,
    };
    let mut headline = crate::report::table::headline(&group);
    if !System::Baton.has_net() {
        headline.push_str(
            "\n(baton's socket rows need `--features baton-net`; tokio and smol are in the full tables.)\n",
        );
    }
    IoGroup {
        group,
        headline,
        ratios,
        notes,
    }
}
