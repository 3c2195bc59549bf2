//! The summary: one [`Report`], printed as a table or as JSON.

use std::fmt::Write as _;

use serde::Serialize;

use crate::faults::FaultRates;
use crate::vars::Mode;

/// Everything the run measured.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    /// Where request-scoped values lived.
    pub mode: Mode,
    /// The seed.
    pub seed: u64,
    /// Async worker threads.
    pub workers: usize,
    /// rayon pool threads.
    pub rayon_threads: usize,
    /// Most requests allowed in flight.
    pub concurrency: usize,
    /// Injected fault rates.
    pub faults: FaultRates,

    /// Requests spawned.
    pub requests: u64,
    /// ... that completed.
    pub completed: u64,
    /// ... that panicked.
    pub panicked: u64,
    /// ... that were cancelled.
    pub cancelled: u64,
    /// ... whose timeout elapsed.
    pub timed_out: u64,
    /// Children spawned by requests.
    pub children: u64,
    /// Requests and children spawned but never accounted for.
    pub tasks_lost: u64,
    /// Tasks the runtime counts as spawned but not completed after the run.
    pub runtime_unfinished: u64,

    /// rayon closures run through `run_blocking`.
    pub rayon_jobs: u64,
    /// Injected rayon panics caught at the await.
    pub rayon_panics_caught: u64,
    /// Bare probe jobs on pool threads.
    pub pool_probes: u64,

    /// Observations checked.
    pub observations: u64,
    /// Observations that did not match: must be 0.
    pub leaks: u64,
    /// Other failures (bad outcome for a fault, failed reset, ...): must be 0.
    pub failures: u64,
    /// The first few leak/failure descriptions.
    pub samples: Vec<String>,

    /// Most requests in flight at once.
    pub peak_in_flight: u64,
    /// Seconds from the first spawn to the last outcome.
    pub wall_s: f64,
    /// Finished requests per second.
    pub requests_per_s: f64,
    /// Task polls per second.
    pub polls_per_s: f64,
    /// Completed-request latency from spawn to return, milliseconds.
    pub latency_p50_ms: f64,
    /// 99th percentile.
    pub latency_p99_ms: f64,
    /// Maximum.
    pub latency_max_ms: f64,

    /// `rt.metrics()`: task polls.
    pub polls: u64,
    /// `rt.metrics()`: steal operations.
    pub steals: u64,
    /// `rt.metrics()`: polls on another worker than the previous one.
    pub migrations: u64,
    /// `rt.metrics()`: tasks spawned (requests, children, abort helpers).
    pub runtime_spawned: u64,

    /// Resident memory before the first request, MiB.
    pub baseline_rss_mib: f64,
    /// Peak resident memory, MiB.
    pub peak_rss_mib: f64,
    /// (peak - baseline) / peak in flight, bytes.
    pub bytes_per_in_flight_request: f64,

    /// A final request on the runtime completed.
    pub runtime_sanity: bool,
    /// Final jobs on the pool (a normal one and a panicking one) behaved.
    pub pool_sanity: bool,
    /// Whether the run passed (see the exit status).
    pub pass: bool,
    /// What the verdict was measured against.
    pub expect_leaks: bool,
}

impl Report {
    /// Whether nothing went wrong apart from leaks.
    pub(crate) fn sound(&self) -> bool {
        self.tasks_lost == 0
            && self.runtime_unfinished == 0
            && self.failures == 0
            && self.runtime_sanity
            && self.pool_sanity
    }

    /// Sets [`Report::pass`]: no leak (or, expecting leaks, some leak) and
    /// nothing else wrong.
    pub(crate) fn judge(&mut self) {
        let leaks_ok = if self.expect_leaks {
            self.leaks > 0
        } else {
            self.leaks == 0
        };
        self.pass = leaks_ok && self.sound();
    }

    /// The summary table.
    pub(crate) fn table(&self, show: usize) -> String {
        let mut t = String::new();
        let must0 = |n: u64| {
            if n == 0 {
                group(n)
            } else {
                format!("{}   <-- must be 0", group(n))
            }
        };
        let mode = match self.mode {
            Mode::Context => "context (baton ContextVars)",
            Mode::ThreadLocal => "thread-local (baseline: the threading.local mistake)",
        };
        let _ = writeln!(t, "baton-stress: {mode}");
        let _ = writeln!(
            t,
            "  seed {}, {} workers, {} rayon threads, concurrency {}, faults: panic {} abort {} timeout {} rayon-panic {}",
            self.seed,
            self.workers,
            self.rayon_threads,
            group(self.concurrency as u64),
            self.faults.panic,
            self.faults.abort,
            self.faults.timeout,
            self.faults.rayon_panic
        );
        let mut row = |k: &str, v: String| {
            let _ = writeln!(t, "  {k:<33} {v}");
        };
        row("requests", group(self.requests));
        row(
            "  completed/panicked/aborted/t.o.",
            format!(
                "{} / {} / {} / {}",
                group(self.completed),
                group(self.panicked),
                group(self.cancelled),
                group(self.timed_out)
            ),
        );
        row("children spawned", group(self.children));
        row(
            "rayon jobs / probes",
            format!(
                "{} / {} (injected panics caught: {})",
                group(self.rayon_jobs),
                group(self.pool_probes),
                group(self.rayon_panics_caught)
            ),
        );
        row("observations checked", group(self.observations));
        if self.expect_leaks {
            row("LEAKS", format!("{}   (expected > 0)", group(self.leaks)));
        } else {
            row("LEAKS", must0(self.leaks));
        }
        row("TASKS LOST", must0(self.tasks_lost));
        row("runtime tasks unfinished", must0(self.runtime_unfinished));
        row("other failures", must0(self.failures));
        row("peak in flight", group(self.peak_in_flight));
        row("wall time", format!("{:.1} s", self.wall_s));
        row(
            "throughput",
            format!(
                "{} requests/s, {} polls/s",
                group(self.requests_per_s as u64),
                group(self.polls_per_s as u64)
            ),
        );
        row(
            "latency p50/p99/max (spawn->end)",
            format!(
                "{:.1} / {:.1} / {:.1} ms",
                self.latency_p50_ms, self.latency_p99_ms, self.latency_max_ms
            ),
        );
        row(
            "polls / steals / migrations",
            format!(
                "{} / {} / {}",
                group(self.polls),
                group(self.steals),
                group(self.migrations)
            ),
        );
        row(
            "peak RSS (baseline)",
            format!(
                "{:.0} MiB ({:.0} MiB)",
                self.peak_rss_mib, self.baseline_rss_mib
            ),
        );
        row(
            "memory per in-flight request",
            format!("{:.0} bytes", self.bytes_per_in_flight_request),
        );
        row(
            "sanity after the run",
            format!(
                "runtime {}, pool {}",
                ok(self.runtime_sanity),
                ok(self.pool_sanity)
            ),
        );
        let verdict = match (self.pass, self.expect_leaks) {
            (true, false) => "PASS (no leak, nothing lost)",
            (true, true) => "PASS (leaks found, as expected of this baseline)",
            (false, false) => "FAIL",
            (false, true) => "FAIL (expected leaks)",
        };
        row("verdict", verdict.to_owned());
        if !self.samples.is_empty() {
            let _ = writeln!(t, "  first problems:");
            for s in self.samples.iter().take(show) {
                let _ = writeln!(t, "    - {s}");
            }
        }
        t
    }
}

fn ok(b: bool) -> &'static str {
    if b { "ok" } else { "FAILED" }
}

/// `1234567` as `1,234,567`.
pub(crate) fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(1_234_567), "1,234,567");
    }
}
