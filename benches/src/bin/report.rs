//! The side-by-side benchmark report: runs the executor, bridge and context
//! groups with the systems interleaved round by round in one process, plus a
//! worker-count sweep and a bound-var sweep, and writes `BENCHMARKS.md` and
//! PNG plots (`docs/bench/`) under `--out` (default: the workspace root).
//!
//! ```text
//! cargo run --release -p baton-benches --bin report            # full (~2-3 min on 2 cores)
//! cargo run --release -p baton-benches --bin report -- --quick # CI smoke (~30 s)
//! cargo run --release -p baton-benches --bin report -- --only context --rounds 30
//! cargo run --release -p baton-benches --bin report -- --only io  # network, timers (~2 min)
//! ```
//!
//! The `io` group runs only when named in `--only` (e.g. `--only
//! executor,bridge,context,workers,vars,io` for everything): it starts
//! server and client processes by re-executing this binary with
//! `__netbench` first (see `baton_benches::net`), and its baton socket rows
//! need the `baton-net` feature.

#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use baton_benches::net::cli::{CHILD_ARG, main_with};
use baton_benches::net::io_group::{IoSettings, io_group};
use baton_benches::net::run::Exe;
use baton_benches::report::groups::{self, SWEEP_COUNTS};
use baton_benches::report::measure::{self, Settings};
use baton_benches::report::table::{Group, Workload, full, headline};
use baton_benches::report::{cpu_model, load_average, plot};
use baton_benches::workloads::executor as w;
use clap::Parser;
use serde_json::Value;

const GROUPS: [&str; 7] = [
    "executor", "bridge", "context", "workers", "vars", "io", "spans",
];

/// Side-by-side benchmark report: baton vs tokio, async-executor, rayon and
/// CPython, interleaved round by round; writes BENCHMARKS.md and PNG plots.
#[derive(Parser, Debug)]
#[command(name = "report")]
struct Args {
    /// Few rounds and short batches (CI smoke, ~30 s).
    #[arg(long)]
    quick: bool,
    /// Rounds per workload (default 20; --quick 5); each round runs one batch of every system.
    #[arg(long)]
    rounds: Option<usize>,
    /// Target duration of one batch, in milliseconds (default 40; --quick 5).
    #[arg(long)]
    batch_ms: Option<u64>,
    /// Largest worker count of the scaling sweep (default: the CPU count).
    #[arg(long)]
    workers_max: Option<usize>,
    /// Output directory: BENCHMARKS.md there, plots in DIR/docs/bench/
    /// (default: the workspace root).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run only these groups (repeat or comma-separate): executor, bridge,
    /// context, workers, vars, io, spans (io runs only when named here;
    /// spans runs last: it leaves the span mirror installed).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// io: measured seconds per network cell (default 3; --quick 1).
    #[arg(long)]
    io_duration: Option<f64>,
    /// io: connections of the idle-connections cell (default 10000; --quick 2000).
    #[arg(long)]
    io_idle_connections: Option<usize>,
    /// io: rounds of the network cells (default 1).
    #[arg(long)]
    io_rounds: Option<usize>,
}

fn cpython(quick: bool) -> Result<Value, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/context_ops.py");
    let sweep: Vec<String> = SWEEP_COUNTS.iter().map(|n| n.to_string()).collect();
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .arg("--json")
        .arg("--sweep")
        .arg(sweep.join(","));
    if quick {
        cmd.args(["--repeat", "5", "--number", "20000"]);
    }
    let out = cmd
        .output()
        .map_err(|e| format!("python3 could not be run ({e})"))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("bad JSON from the script: {e}"))
}

fn stat<'a>(wl: &'a Workload, system: &str) -> Option<&'a baton_benches::report::measure::Stats> {
    wl.stats.iter().find(|s| s.system == system)
}

fn main() -> ExitCode {
    let mut argv = std::env::args_os().skip(1);
    if argv.next().is_some_and(|a| a == CHILD_ARG) {
        // A server or client process of the io group.
        return match Exe::current(&[CHILD_ARG]) {
            Ok(exe) => main_with(argv, exe),
            Err(e) => {
                eprintln!("report: cannot find its own executable: {e}");
                ExitCode::FAILURE
            }
        };
    }
    report();
    ExitCode::SUCCESS
}

fn report() {
    let args = Args::parse();
    let started = Instant::now();
    let only: Vec<String> = args.only.iter().map(|s| s.trim().to_lowercase()).collect();
    for o in &only {
        assert!(
            GROUPS.contains(&o.as_str()),
            "--only {o}: expected one of {GROUPS:?}"
        );
    }
    let want = |g: &str| (only.is_empty() && g != "io") || only.iter().any(|o| o == g);
    let settings = Settings {
        rounds: args.rounds.unwrap_or(if args.quick { 5 } else { 20 }),
        batch: Duration::from_millis(args.batch_ms.unwrap_or(if args.quick { 5 } else { 40 })),
    };
    let cores = num_cpus::get();
    let workers = baton_benches::workers();
    let workers_max = args.workers_max.unwrap_or(cores).max(1);
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."));
    let plot_dir = out_dir.join("docs/bench");
    std::fs::create_dir_all(&plot_dir).expect("create the plot directory");
    plot::init_font();

    let load_start = load_average();
    let cpu = cpu_model();
    eprintln!(
        "report: {cpu}, {cores} CPUs, {workers} workers, {} rounds, {:?} batches",
        settings.rounds, settings.batch
    );

    let mut groups_out: Vec<Group> = Vec::new();
    let mut plots: Vec<(String, String)> = Vec::new();
    let mut notes: Vec<String> = Vec::new();

    let py = if want("context") || want("vars") {
        eprintln!("report: CPython (benches/python/context_ops.py --json)");
        match cpython(args.quick) {
            Ok(v) => Some(v),
            Err(e) => {
                notes.push(format!("CPython skipped: {e}."));
                eprintln!("report: CPython skipped: {e}");
                None
            }
        }
    } else {
        None
    };
    let py_impl = py
        .as_ref()
        .and_then(|v| v.get("implementation"))
        .and_then(Value::as_str)
        .unwrap_or("CPython")
        .to_string();

    let mut ratio_labels = Vec::new();
    let mut ratio_baton = Vec::new();
    let mut ratio_ae = Vec::new();

    if want("executor") {
        eprintln!("report: executor");
        let wls = groups::executor(settings, workers);
        for wl in &wls {
            if let (Some(b), Some(t)) = (stat(wl, "baton"), stat(wl, "tokio")) {
                ratio_labels.push(wl.name.clone());
                ratio_baton.push(b.median / t.median);
                ratio_ae.push(stat(wl, "async-executor").map_or(f64::NAN, |a| a.median / t.median));
            }
        }
        groups_out.push(Group {
            id: "executor".into(),
            title: format!("Executor workloads ({workers} workers each)"),
            intro: format!(
                "tokio's `rt_multi_threaded` workloads and smol's `web_server` / `channels`, \
                 on baton, tokio's multi-thread runtime and async-executor run by {workers} threads. \
                 The three runtimes exist at once (idle ones park) and run interleaved. \
                 Time per iteration: one iteration is one whole workload \
                 (e.g. {} tasks spawned and joined in `spawn_many_*`, {} tasks × {} yields in `yield_many`).",
                w::NUM_SPAWN,
                w::YIELD_TASKS,
                w::NUM_YIELD
            ),
            workloads: wls,
            extra: String::new(),
        });
    }
    if want("bridge") {
        eprintln!("report: bridge");
        let wls = groups::bridge(settings, workers);
        for wl in &wls {
            if let (Some(b), Some(t)) = (
                stat(wl, "baton run_blocking"),
                stat(wl, "tokio spawn_blocking"),
            ) {
                ratio_labels.push(format!("bridge: {}", wl.name));
                ratio_baton.push(b.median / t.median);
                ratio_ae.push(f64::NAN);
            }
        }
        groups_out.push(Group {
            id: "bridge".into(),
            title: "Bridge: offloading to rayon, `.in_context()`".into(),
            intro: "Offloads awaited from `futures::executor::block_on` on the report thread: \
                    baton `run_blocking` (inside a context with one variable bound, which each job copies) \
                    vs tokio `spawn_blocking` (tokio's default blocking pool) vs bare `rayon::spawn` + oneshot \
                    (no context). `par_sum_10m`: `(0..10M).into_par_iter().map(f).sum()` with and without \
                    `.in_context()` (the ratio is `.in_context()`'s overhead)."
                .into(),
            workloads: wls,
            extra: String::new(),
        });
    }
    if !ratio_labels.is_empty() {
        let file = "ratio_to_tokio.png";
        let r = plot::ratio_bars(
            &plot_dir.join(file),
            &format!("Median time ÷ tokio's median ({workers} workers; < 1: faster than tokio)"),
            "ratio to tokio (median ÷ median)",
            &ratio_labels,
            &[
                ("baton ÷ tokio".into(), ratio_baton),
                ("async-executor ÷ tokio".into(), ratio_ae),
            ],
        );
        match r {
            Ok(()) => plots.push((file.into(), "Ratio to tokio per workload".into())),
            Err(e) => notes.push(format!("plot {file} failed: {e}")),
        }
    }
    if want("context") {
        eprintln!("report: context");
        let wls = groups::context(settings, py.as_ref());
        let rmw = measure::atomic_rmw_ns();
        groups_out.push(Group {
            id: "context".into(),
            title: "Context operations".into(),
            intro: format!(
                "baton vs tokio `task_local!` vs a naive `Arc<HashMap>` copy-on-write context \
                 (a lower bound, not a competitor: no panic safety, no entered-flag check), interleaved; \
                 each batch runs inside its context (`ctx.run`). The CPython rows ({py_impl}) come from \
                 `benches/python/context_ops.py --json` run before the Rust rounds (timeit, best of its repeats, \
                 minus the empty loop — in CPython's favour), so they are not interleaved: median = min = max = \
                 the best repeat. tokio rows do not depend on the bound-var count.\n\n\
                 One uncontended atomic read-modify-write (`fetch_add`) takes {rmw:.1} ns on this machine, \
                 and baton's fast paths take none. `copy_context` lends the thread's current bindings instead \
                 of counting a reference to them, and a copy dropped on its own thread is taken back with plain \
                 arithmetic (biased reference counting, `context/src/lease.rs`; a copy that outlives a write \
                 or a `run` boundary pays the atomics then, as `set + reset after copy` shows). Entering a \
                 `Context` takes one compare-and-swap on the entered flag, which a `Sync` context needs since \
                 two threads may hold it (the `entered by two threads` row is the same context after another \
                 thread ran it). A `ContextCell` (not `Sync`: a task's context) is always entered with a plain \
                 load and store, and so is an attached future's context when the future holds its only handle \
                 (`attach: poll`, `sole handle`)."
            ),
            workloads: wls,
            extra: String::new(),
        });
    }
    if want("workers") {
        eprintln!("report: workers sweep 1..={workers_max}");
        let sweep = groups::workers_sweep(settings, workers_max);
        let mut panels = Vec::new();
        for (k, (label, per_iter_ops)) in [
            (
                "yield_many (yields/s)",
                (w::YIELD_TASKS * w::NUM_YIELD) as f64,
            ),
            ("spawn_many_local (tasks/s)", w::NUM_SPAWN as f64),
        ]
        .into_iter()
        .enumerate()
        {
            let mut series = Vec::new();
            for sys in ["baton", "tokio", "async-executor"] {
                let pts = sweep
                    .iter()
                    .filter_map(|(n, wls)| {
                        stat(&wls[k], sys).map(|s| (*n as f64, per_iter_ops / s.median * 1e3))
                    })
                    .collect();
                series.push((sys.to_string(), pts));
            }
            panels.push(plot::Panel {
                title: label.into(),
                x_desc: "workers".into(),
                y_desc: "million ops per second (median)".into(),
                log_x: false,
                log_y: false,
                series,
            });
        }
        let file = "throughput_vs_workers.png";
        match plot::line_panels(&plot_dir.join(file), &panels) {
            Ok(()) => plots.push((file.into(), "Executor throughput vs workers".into())),
            Err(e) => notes.push(format!("plot {file} failed: {e}")),
        }
        let mut extra = String::new();
        let _ = writeln!(extra, "Throughput (million ops/s from the median):\n");
        let _ = writeln!(
            extra,
            "| workers | workload | baton | tokio | async-executor |"
        );
        let _ = writeln!(extra, "|---:|---|---:|---:|---:|");
        for (n, wls) in &sweep {
            for (k, ops) in [
                (0, (w::YIELD_TASKS * w::NUM_YIELD) as f64),
                (1, w::NUM_SPAWN as f64),
            ] {
                let f = |sys: &str| {
                    stat(&wls[k], sys)
                        .map_or("—".into(), |s| format!("{:.2}", ops / s.median * 1e3))
                };
                let name = if k == 0 {
                    "yield_many"
                } else {
                    "spawn_many_local"
                };
                let _ = writeln!(
                    extra,
                    "| {n} | {name} | {} | {} | {} |",
                    f("baton"),
                    f("tokio"),
                    f("async-executor")
                );
            }
        }
        groups_out.push(Group {
            id: "workers".into(),
            title: format!("Scaling: executor throughput vs workers (1..={workers_max})"),
            intro:
                "For each worker count, three fresh runtimes with that many workers, interleaved."
                    .into(),
            workloads: sweep.into_iter().flat_map(|(_, v)| v).collect(),
            extra,
        });
    }
    if want("vars") {
        eprintln!("report: vars sweep");
        let sweep = groups::vars_sweep(settings, py.as_ref());
        let cp = "CPython contextvars (timeit best)";
        let mut panels = Vec::new();
        for (k, title) in [(0, "get"), (1, "set + reset")] {
            let series = [
                ("baton", "baton"),
                ("naive Arc<HashMap>", "naive Arc<HashMap>"),
                (cp, "CPython"),
            ]
            .iter()
            .map(|(sys, label)| {
                let pts: Vec<(f64, f64)> = sweep
                    .iter()
                    .filter_map(|(n, wls)| stat(&wls[k], sys).map(|s| (*n as f64, s.median)))
                    .collect();
                (label.to_string(), pts)
            })
            .filter(|(_, p)| !p.is_empty())
            .collect();
            panels.push(plot::Panel {
                title: format!("{title}: cost vs bound vars"),
                x_desc: "bound vars (log)".into(),
                y_desc: "ns per op (log)".into(),
                log_x: true,
                log_y: true,
                series,
            });
        }
        let file = "context_cost_vs_vars.png";
        match plot::line_panels(&plot_dir.join(file), &panels) {
            Ok(()) => plots.push((file.into(), "Context get / set cost vs bound vars".into())),
            Err(e) => notes.push(format!("plot {file} failed: {e}")),
        }
        groups_out.push(Group {
            id: "vars".into(),
            title: "Scaling: context get / set+reset vs bound vars (1 → 1,000)".into(),
            intro: "The probed variable is the first one bound. baton and the naive context interleaved; \
                    CPython from the script (not interleaved)."
                .into(),
            workloads: sweep.into_iter().flat_map(|(_, v)| v).collect(),
            extra: String::new(),
        });
    }
    let mut io_headline = String::new();
    if want("io") {
        eprintln!("report: io (network cells, timers, idle CPU)");
        let exe = Exe::current(&[CHILD_ARG]).expect("the report's own executable");
        let io = IoSettings::new(
            args.quick,
            args.io_duration
                .map(|s| Duration::from_secs_f64(s.clamp(0.1, 3600.0))),
            args.io_idle_connections,
            args.io_rounds,
        );
        let g = io_group(&exe, &io, |what| eprintln!("  io/{what}"));
        notes.extend(g.notes);
        if !g.ratios.is_empty() {
            let file = "io_ratio_to_tokio.png";
            let labels: Vec<String> = g.ratios.iter().map(|r| r.0.clone()).collect();
            let r = plot::ratio_bars(
                &plot_dir.join(file),
                "I/O: cost ÷ tokio's (< 1: cheaper than tokio)",
                "ratio to tokio (median ÷ median)",
                &labels,
                &[
                    (
                        "baton ÷ tokio".into(),
                        g.ratios.iter().map(|r| r.1).collect(),
                    ),
                    (
                        "smol ÷ tokio".into(),
                        g.ratios.iter().map(|r| r.2).collect(),
                    ),
                ],
            );
            match r {
                Ok(()) => plots.push((file.into(), "I/O costs, ratio to tokio".into())),
                Err(e) => notes.push(format!("plot {file} failed: {e}")),
            }
        }
        io_headline = g.headline;
        groups_out.push(g.group);
    }

    if want("spans") {
        // Last: the span mirror it installs stays for the process.
        eprintln!("report: spans");
        let wls = groups::spans(settings, workers);
        groups_out.push(Group {
            id: "spans".into(),
            title: format!("Spans that follow the work ({workers} workers)"),
            intro: format!(
                "baton's `tracing` mirror, which carries the span current at a spawn into the task, \
                 against the hand-written way, `.instrument(span.clone())` on each spawned future \
                 (`benches/src/workloads/spans.rs`). Both poll every task inside the span; a \
                 `tracing-subscriber` registry is the global subscriber. One iteration: {} tasks \
                 spawned and awaited, from `block_on` in the first row and from a task in the \
                 second (each compared with `.instrument` spawning from the same place: a worker \
                 spawns to its own queue). Here \"baton\" is the first system of each row, \
                 `follow`; the target is ≤ 1.1× `.instrument(span)`.",
                baton_benches::workloads::spans::TASKS
            ),
            workloads: wls,
            extra: String::new(),
        });
    }

    let load_end = load_average();
    let elapsed = started.elapsed();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let command = if argv.is_empty() {
        "cargo run --release -p baton-benches --bin report".to_string()
    } else {
        format!(
            "cargo run --release -p baton-benches --bin report -- {}",
            argv.join(" ")
        )
    };

    let mut md = String::new();
    let _ = writeln!(md, "# baton benchmarks\n");
    let _ = writeln!(
        md,
        "Generated by `benches/src/bin/report.rs`. Every workload checks its own result; \
         systems run interleaved round by round in one process (round r: one batch of each system), \
         and each figure is the time per iteration over the rounds: median, and min – max across rounds. \
         `baton ÷ X` is baton's median over X's (< 1: baton is faster).\n"
    );
    let _ = writeln!(md, "## Machine and run\n");
    let _ = writeln!(md, "* CPU: {cpu}");
    let _ = writeln!(
        md,
        "* cores (logical CPUs): {cores}; runtime workers: {workers}; worker sweep: 1..={workers_max}"
    );
    let _ = writeln!(
        md,
        "* load average (1/5/15 min) at start: {load_start}; at end: {load_end}"
    );
    let _ = writeln!(md, "* command: `{command}`");
    let _ = writeln!(
        md,
        "* settings: {} rounds, batches of ~{} ms (at least one iteration); took {:.0} s",
        settings.rounds,
        settings.batch.as_millis(),
        elapsed.as_secs_f64()
    );
    if cores <= 2 || workers_max <= 2 {
        let _ = writeln!(
            md,
            "\n**Only {} cores were measured** ({cores} CPUs on this machine, worker sweep up to {workers_max}): \
             nothing here says how baton scales beyond that. The machine was shared with other work; \
             compare ratios within this run, not absolute figures.",
            workers_max.min(cores)
        );
    }
    for n in &notes {
        let _ = writeln!(md, "\n*Note:* {n}");
    }
    let _ = writeln!(md, "\n## Headlines\n");
    for g in &groups_out {
        if g.id == "workers" || g.id == "vars" {
            continue;
        }
        let h = if g.id == "io" {
            io_headline.clone()
        } else {
            headline(g)
        };
        let _ = writeln!(md, "### {}\n\n{}", g.title, h);
    }
    if !plots.is_empty() {
        let _ = writeln!(md, "## Plots\n");
        for (file, title) in &plots {
            let _ = writeln!(md, "**{title}**\n\n![{title}](docs/bench/{file})\n");
        }
    }
    let _ = writeln!(md, "## Full tables\n");
    for g in &groups_out {
        let _ = writeln!(md, "### {}\n\n{}\n\n{}", g.title, g.intro, full(g));
        if !g.extra.is_empty() {
            let _ = writeln!(md, "{}", g.extra);
        }
    }
    let path = out_dir.join("BENCHMARKS.md");
    std::fs::write(&path, md).expect("write BENCHMARKS.md");
    eprintln!(
        "report: wrote {} and {} plot(s) in {:.0} s",
        path.display(),
        plots.len(),
        elapsed.as_secs_f64()
    );
}
