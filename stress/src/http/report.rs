//! The summary of an HTTP run: one [`HttpReport`], printed as a table or
//! as JSON, and its verdict.

use std::fmt::Write as _;

use serde::Serialize;

use crate::http::faults::{FaultTally, HttpFaultRates};
use crate::report::group;

/// Everything an HTTP run measured.
#[derive(Debug, Default, Serialize)]
pub(crate) struct HttpReport {
    /// `http` or `http-thread-local`.
    pub mode: &'static str,
    /// The seed of every request's identity and every fault draw.
    pub seed: u64,
    /// The server's async worker threads.
    pub workers: usize,
    /// The server's rayon threads.
    pub rayon_threads: usize,
    /// The client's keep-alive connections.
    pub connections: u64,
    /// The client's tokio threads.
    pub client_threads: usize,
    /// Fault rates (per request).
    pub faults: HttpFaultRates,
    /// The server's `header_read_timeout`, seconds.
    pub header_read_timeout_s: f64,

    /// Requests sent on the keep-alive connections.
    pub requests: u64,
    /// ... answered with exactly the values sent.
    pub requests_ok: u64,
    /// Answered requests per second of load.
    pub requests_per_s: f64,
    /// Latency (sent to response read by the client), milliseconds.
    pub latency_p50_ms: f64,
    /// 99th percentile.
    pub latency_p99_ms: f64,
    /// Maximum.
    pub latency_max_ms: f64,
    /// Seconds of load (first request to the last answer).
    pub load_s: f64,
    /// Requests sent on a connection the client kept up, never answered.
    pub lost: u64,
    /// Answers that were not 200 with an echo.
    pub bad_answers: u64,
    /// Load connections that could not connect.
    pub connect_errors: u64,
    /// Times the server closed an idle keep-alive connection between two
    /// requests (not an error; the client reconnects).
    pub closed_between_requests: u64,
    /// Whether the client finished everything in time.
    pub client_drained: bool,
    /// Why the client process gave no report, if it did not.
    pub client_error: Option<String>,

    /// Handlers started (requests with valid headers).
    pub handlers: u64,
    /// ... that answered.
    pub handlers_completed: u64,
    /// ... dropped before answering (their client vanished).
    pub handlers_cancelled: u64,
    /// ... neither: never dropped. Must be 0.
    pub handlers_unaccounted: u64,
    /// Children spawned by handlers.
    pub children: u64,
    /// ... whose future was never dropped. Must be 0.
    pub children_unfinished: u64,
    /// Closures offloaded to rayon.
    pub rayon_jobs: u64,
    /// Log lines written.
    pub log_lines: u64,
    /// ... checked.
    pub log_lines_checked: u64,
    /// Server-side observations (handlers, jobs, children, log lines).
    pub observations: u64,
    /// Leaks seen by the handlers, their jobs and children.
    pub leaks_server: u64,
    /// Log lines stamped with another request's values (or none).
    pub leaks_log: u64,
    /// Responses naming another request's values (or none).
    pub leaks_client: u64,
    /// All of them.
    pub leaks: u64,
    /// Other failures (a request the handler could not read, a child that
    /// failed).
    pub failures: u64,
    /// What the faults did.
    pub fault_counts: FaultTally,

    /// Runtime tasks spawned and not completed after the shutdown, beyond
    /// those before the server started. Must be 0.
    pub runtime_unfinished: u64,
    /// Open file descriptors before the server started.
    pub fds_before: u64,
    /// ... after it shut down. Must not be more.
    pub fds_after: u64,
    /// Why `serve` failed or did not shut down, if it did.
    pub serve_error: Option<String>,
    /// The first problems, described.
    pub samples: Vec<String>,
    /// The verdict.
    pub pass: bool,
    /// What the verdict was measured against.
    pub expect_leaks: bool,
}

impl HttpReport {
    /// The descriptions of whatever is wrong apart from leaks.
    pub(crate) fn unsound(&self) -> Vec<String> {
        let mut wrong = Vec::new();
        let mut check = |ok: bool, what: String| {
            if !ok {
                wrong.push(what);
            }
        };
        check(self.requests > 0, "no request was sent".into());
        check(self.lost == 0, format!("{} requests lost", self.lost));
        check(
            self.bad_answers == 0,
            format!("{} bad answers", self.bad_answers),
        );
        check(
            self.connect_errors == 0 && self.fault_counts.connect_errors == 0,
            format!(
                "{} connections refused",
                self.connect_errors + self.fault_counts.connect_errors
            ),
        );
        check(
            self.client_drained,
            "the client did not drain in time".into(),
        );
        if let Some(e) = &self.client_error {
            check(false, format!("client: {e}"));
        }
        check(
            self.handlers_unaccounted == 0,
            format!("{} handlers never dropped", self.handlers_unaccounted),
        );
        check(
            self.children_unfinished == 0,
            format!("{} children never dropped", self.children_unfinished),
        );
        check(
            self.log_lines_checked == self.log_lines,
            "some log lines were not checked".into(),
        );
        check(self.failures == 0, format!("{} failures", self.failures));
        check(
            self.fault_counts.malformed_wrong() == 0,
            format!(
                "{} malformed requests not answered 400",
                self.fault_counts.malformed_wrong()
            ),
        );
        check(
            self.fault_counts.slowloris_open() == 0,
            format!(
                "{} slowloris connections left open",
                self.fault_counts.slowloris_open()
            ),
        );
        check(
            self.fault_counts.silent_open() == 0,
            format!(
                "{} silent connections left open",
                self.fault_counts.silent_open()
            ),
        );
        check(
            self.runtime_unfinished == 0,
            format!("{} runtime tasks left behind", self.runtime_unfinished),
        );
        check(
            self.fds_after <= self.fds_before,
            format!(
                "file descriptors: {} before, {} after",
                self.fds_before, self.fds_after
            ),
        );
        if let Some(e) = &self.serve_error {
            check(false, format!("serve: {e}"));
        }
        wrong
    }

    /// Sets [`HttpReport::pass`]: no leak (or, expecting leaks, some leak)
    /// and nothing else wrong.
    pub(crate) fn judge(&mut self) {
        let leaks_ok = if self.expect_leaks {
            self.leaks > 0
        } else {
            self.leaks == 0
        };
        self.pass = leaks_ok && self.unsound().is_empty();
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
        let what = if self.mode == "http" {
            "http (baton::http::serve, baton ContextVars)"
        } else {
            "http-thread-local (baseline: the request id in a thread-local)"
        };
        let _ = writeln!(t, "baton-stress: {what}");
        let f = &self.faults;
        let _ = writeln!(
            t,
            "  seed {}, {} workers, {} rayon threads; client: {} connections, {} threads; \
             faults: vanish-request {} vanish-response {} malformed {} slowloris {} silent {}",
            self.seed,
            self.workers,
            self.rayon_threads,
            group(self.connections),
            self.client_threads,
            f.vanish_request,
            f.vanish_response,
            f.malformed,
            f.slowloris,
            f.silent
        );
        let mut row = |k: &str, v: String| {
            let _ = writeln!(t, "  {k:<33} {v}");
        };
        row(
            "requests sent / answered ok",
            format!("{} / {}", group(self.requests), group(self.requests_ok)),
        );
        row(
            "handlers done/dropped early",
            format!(
                "{} / {} (of {})",
                group(self.handlers_completed),
                group(self.handlers_cancelled),
                group(self.handlers)
            ),
        );
        row(
            "children / rayon jobs",
            format!("{} / {}", group(self.children), group(self.rayon_jobs)),
        );
        row(
            "log lines checked",
            format!(
                "{} of {}",
                group(self.log_lines_checked),
                group(self.log_lines)
            ),
        );
        row("server observations", group(self.observations));
        let leaks = format!(
            "{} (server {}, log lines {}, responses {})",
            group(self.leaks),
            group(self.leaks_server),
            group(self.leaks_log),
            group(self.leaks_client)
        );
        if self.expect_leaks {
            row("LEAKS", format!("{leaks}   (expected > 0)"));
        } else if self.leaks == 0 {
            row("LEAKS", leaks);
        } else {
            row("LEAKS", format!("{leaks}   <-- must be 0"));
        }
        row("LOST REQUESTS", must0(self.lost));
        row("bad answers", must0(self.bad_answers));
        row("other failures", must0(self.failures));
        let fc = &self.fault_counts;
        row(
            "vanished mid-request/-response",
            format!(
                "{} / {}",
                group(fc.vanish_mid_request),
                group(fc.vanish_mid_response)
            ),
        );
        row(
            "malformed (answered 400)",
            format!(
                "{} ({})",
                group(fc.malformed),
                group(fc.malformed_answered_400)
            ),
        );
        row(
            "slowloris (closed by the server)",
            format!(
                "{} ({}, within {:.1} s; header_read_timeout {:.0} s)",
                group(fc.slowloris),
                group(fc.slowloris_closed),
                fc.slowloris_longest_s,
                self.header_read_timeout_s
            ),
        );
        if fc.silent > 0 {
            row(
                "silent (closed by the server)",
                format!("{} ({})", group(fc.silent), group(fc.silent_closed)),
            );
        }
        row("faults skipped (slots busy)", group(fc.skipped));
        row(
            "throughput",
            format!(
                "{} requests/s over {:.1} s",
                group(self.requests_per_s as u64),
                self.load_s
            ),
        );
        row(
            "latency p50/p99/max",
            format!(
                "{:.2} / {:.2} / {:.2} ms",
                self.latency_p50_ms, self.latency_p99_ms, self.latency_max_ms
            ),
        );
        row("runtime tasks left behind", must0(self.runtime_unfinished));
        row(
            "open files before/after",
            format!("{} / {}", self.fds_before, self.fds_after),
        );
        let verdict = match (self.pass, self.expect_leaks) {
            (true, false) => "PASS (no leak, nothing lost)".to_owned(),
            (true, true) => "PASS (leaks found, as expected of this baseline)".to_owned(),
            (false, expect) => {
                let mut why = self.unsound();
                if expect && self.leaks == 0 {
                    why.insert(0, "expected leaks, found none".into());
                }
                if !expect && self.leaks > 0 {
                    why.insert(0, format!("{} leaks", group(self.leaks)));
                }
                format!("FAIL ({})", why.join("; "))
            }
        };
        row("verdict", verdict);
        if !self.samples.is_empty() {
            let _ = writeln!(t, "  first problems:");
            for s in self.samples.iter().take(show) {
                let _ = writeln!(t, "    - {s}");
            }
        }
        t
    }
}
