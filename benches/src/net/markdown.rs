//! Markdown tables of the network, timer, timer-resolution and idle-CPU
//! results (for
//! `netbench` and the report's `io` group). Figures over several rounds are
//! medians; a `÷ tokio` column is the system's figure over tokio's.

use std::fmt::Write as _;

use super::resolution::{self, ResolutionConfig, ResolutionResult};
use super::run::{Cell, IdleCpu, RunConfig};
use super::timers::{TimerOp, TimerResult};
use super::{System, Workload};
use crate::report::table::fmt_ns;

/// The median of `v` (NaN when empty).
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// The median of `f` over `system`'s cells of `workload`.
pub fn cell_median(
    cells: &[Cell],
    system: System,
    workload: Workload,
    f: impl Fn(&Cell) -> f64,
) -> f64 {
    median(
        cells
            .iter()
            .filter(|c| c.system == system && c.workload == workload)
            .map(f)
            .collect(),
    )
}

fn systems_of(cells: &[Cell], workload: Workload) -> Vec<System> {
    let mut v: Vec<System> = cells
        .iter()
        .filter(|c| c.workload == workload)
        .map(|c| c.system)
        .collect();
    v.sort();
    v.dedup();
    v
}

fn count(x: f64) -> String {
    if !x.is_finite() {
        "—".into()
    } else if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e4 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.0}")
    }
}

fn vs(x: f64, tokio: f64) -> String {
    if x.is_finite() && tokio.is_finite() && tokio > 0.0 {
        format!("{:.2}×", x / tokio)
    } else {
        "—".into()
    }
}

fn bytes(x: f64) -> String {
    if !x.is_finite() {
        "—".into()
    } else if x.abs() >= 10.0 * 1024.0 {
        format!("{:.1} KiB", x / 1024.0)
    } else {
        format!("{x:.0} B")
    }
}

fn us(x: f64) -> String {
    fmt_ns(x * 1e3)
}

fn rounds(cells: &[Cell], system: System, workload: Workload) -> usize {
    cells
        .iter()
        .filter(|c| c.system == system && c.workload == workload)
        .count()
}

/// The tables of the echo, http and idle cells.
pub fn net_tables(cells: &[Cell], cfg: &RunConfig) -> String {
    let mut s = String::new();
    for workload in [Workload::Echo, Workload::Http] {
        let systems = systems_of(cells, workload);
        if systems.is_empty() {
            continue;
        }
        let (title, unit) = match workload {
            Workload::Echo => (
                format!(
                    "TCP echo: {} connections × {} B ping-pong",
                    cfg.connections,
                    super::MESSAGE_SIZE
                ),
                "messages/s",
            ),
            _ => (
                format!(
                    "HTTP/1.1 \"hello\" through hyper 1: {} keep-alive connections",
                    cfg.connections
                ),
                "requests/s",
            ),
        };
        let _ = writeln!(s, "**{title}**\n");
        let _ = writeln!(
            s,
            "| system | {unit} | ÷ tokio | server CPU per round trip | ÷ tokio | p50 | p99 | p99.9 | server cores busy | client cores busy | server threads | rounds |"
        );
        let _ = writeln!(
            s,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        let m = |sys: System, f: &dyn Fn(&Cell) -> f64| cell_median(cells, sys, workload, f);
        let t_rate = m(System::Tokio, &|c| c.rate());
        let t_cpu = m(System::Tokio, &|c| c.server_cpu_per_round_trip_us());
        for sys in systems {
            let rate = m(sys, &|c| c.rate());
            let cpu = m(sys, &|c| c.server_cpu_per_round_trip_us());
            let _ = writeln!(
                s,
                "| {sys} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.0} | {} |",
                count(rate),
                vs(rate, t_rate),
                us(cpu),
                vs(cpu, t_cpu),
                us(m(sys, &|c| c.client.latency_us[0])),
                us(m(sys, &|c| c.client.latency_us[2])),
                us(m(sys, &|c| c.client.latency_us[3])),
                m(sys, &|c| c.server_cores()),
                m(sys, &|c| c.client_cores()),
                m(sys, &|c| c.m2.threads as f64),
                rounds(cells, sys, workload),
            );
        }
        let _ = writeln!(s);
    }
    let systems = systems_of(cells, Workload::Idle);
    if !systems.is_empty() {
        let _ = writeln!(
            s,
            "**{} idle connections held open** (each pinged once, so its server task has run)\n",
            cfg.idle_connections
        );
        let _ = writeln!(
            s,
            "| system | server RSS before | with the connections | RSS per connection | ÷ tokio | server CPU while held (ms/s) | server threads | rounds |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|");
        let m = |sys: System, f: &dyn Fn(&Cell) -> f64| cell_median(cells, sys, Workload::Idle, f);
        let t_rss = m(System::Tokio, &|c| c.rss_per_connection());
        for sys in systems {
            let per = m(sys, &|c| c.rss_per_connection());
            let _ = writeln!(
                s,
                "| {sys} | {} | {} | {} | {} | {:.2} | {:.0} | {} |",
                bytes(m(sys, &|c| c.m0.rss_bytes as f64)),
                bytes(m(sys, &|c| c.m1.rss_bytes as f64)),
                bytes(per),
                vs(per, t_rss),
                m(sys, &|c| c.server_cores() * 1e3),
                m(sys, &|c| c.m1.threads as f64),
                rounds(cells, sys, Workload::Idle),
            );
        }
        let _ = writeln!(s);
    }
    if !cells.is_empty() {
        let _ = writeln!(
            s,
            "Each server runs {} workers in a process of its own; the load generator is one tokio \
             process with {} workers, the same for every system. CPU is the server process's \
             user + system time (`getrusage`) across the measured window; a round trip is one \
             message or one request. Server threads include two of the harness (stdin reader, \
             exit timer); smol's include async-io's reactor thread.\n",
            cfg.workers, cfg.client_threads
        );
    }
    s
}

/// The timer table: ns per create + poll + drop, from one task and from one
/// task per worker.
pub fn timers_table(results: &[TimerResult], workers: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "**Timer create + poll once + drop** (one-hour deadline; {workers} workers; ns per operation per task, median (min – max) over the rounds)\n"
    );
    let _ = writeln!(
        s,
        "| operation | system | 1 task | {workers} tasks at once | {workers} tasks ÷ 1 task (flat = 1) | ÷ tokio (1 task) | ÷ tokio ({workers} tasks) | threads used | rounds not concurrent |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let find = |sys: System, op: TimerOp, tasks: usize| {
        results
            .iter()
            .find(|r| r.system == sys && r.op == op && r.tasks == tasks)
    };
    let med = |r: Option<&TimerResult>| r.map_or(f64::NAN, |r| r.stats.median);
    let cell = |r: Option<&TimerResult>| {
        r.map_or("—".into(), |r| {
            format!(
                "{} ({} – {})",
                fmt_ns(r.stats.median),
                fmt_ns(r.stats.min),
                fmt_ns(r.stats.max)
            )
        })
    };
    for op in TimerOp::ALL {
        let mut systems: Vec<System> = results
            .iter()
            .filter(|r| r.op == op)
            .map(|r| r.system)
            .collect();
        systems.sort();
        systems.dedup();
        for sys in systems {
            let one = find(sys, op, 1);
            let all = find(sys, op, workers);
            let _ = writeln!(
                s,
                "| {} | {sys} | {} | {} | {} | {} | {} | {} | {} |",
                op.name(),
                cell(one),
                cell(all),
                vs(med(all), med(one)),
                vs(med(one), med(find(System::Tokio, op, 1))),
                vs(med(all), med(find(System::Tokio, op, workers))),
                all.or(one).map_or(0, |r| r.threads),
                all.map_or(0, |r| r.apart),
            );
        }
    }
    let _ = writeln!(s);
    s
}

fn ms(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3} ms")
    } else {
        "—".into()
    }
}

/// The timer-resolution table: p50 / p99 / max of a 1 ms sleep per load
/// and system, p50 ÷ tokio's p50 under the same load.
pub fn resolution_table(results: &[ResolutionResult], cfg: &ResolutionConfig) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "**Timer resolution: a {} ms sleep** ({} workers; one task sleeps {} times in a row, {} round(s), \
         systems interleaved; each sample from just before the sleep is created to just after it completes)\n",
        resolution::PERIOD.as_secs_f64() * 1e3,
        cfg.workers,
        cfg.samples,
        cfg.rounds,
    );
    let _ = writeln!(
        s,
        "| load | system | p50 | p99 | max | p50 ÷ tokio | p50 per round (min – max) | background yields/s | samples |"
    );
    let _ = writeln!(s, "|---|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut cut = Vec::new();
    for r in results {
        let tokio = results
            .iter()
            .find(|t| t.system == System::Tokio && t.load == r.load)
            .map_or(f64::NAN, ResolutionResult::p50_ms);
        let rounds = r
            .round_p50_ms
            .iter()
            .copied()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
                (lo.min(x), hi.max(x))
            });
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} – {} | {} | {} |",
            r.load,
            r.system,
            ms(r.p50_ms()),
            ms(r.p99_ms()),
            ms(r.max_ms()),
            vs(r.p50_ms(), tokio),
            ms(rounds.0),
            ms(rounds.1),
            count(r.background_yields_per_s),
            r.samples_ms.len(),
        );
        if r.load_cut_short > 0 {
            cut.push(format!(
                "{} under {} load: {} round(s)",
                r.system, r.load, r.load_cut_short
            ));
        }
    }
    let _ = writeln!(
        s,
        "\nidle: the sleeping task is alone; busy: one more task per worker runs the runtime's \
         `yield_now` in a loop meanwhile (background yields/s: theirs together, showing the load ran). \
         The first {} sleeps of each round are not counted. Percentiles are nearest-rank over every \
         counted sample.",
        resolution::WARMUP
    );
    if !cut.is_empty() {
        let _ = writeln!(
            s,
            "\n*The background load stopped at its time bound before the sleeper was done* ({}): \
             the later samples of those rounds ran without it.",
            cut.join("; ")
        );
    }
    let _ = writeln!(s);
    s
}

/// The idle-CPU table.
pub fn idle_cpu_table(results: &[IdleCpu], workers: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "**Idle runtime with a listener open** ({workers} workers, no connection; CPU of the whole server process)\n"
    );
    let _ = writeln!(
        s,
        "| system | window | CPU used | CPU per second | server threads |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|");
    for r in results {
        let _ = writeln!(
            s,
            "| {} | {:.0} s | {:.1} ms | {:.3} ms/s | {} |",
            r.system,
            r.seconds,
            r.cpu_s * 1e3,
            r.cpu_s * 1e3 / r.seconds.max(1e-9),
            r.threads
        );
    }
    let _ = writeln!(s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }
}
