//! Observations and leak accounting.
//!
//! Every time the workload reads the request-scoped variables it compares
//! them with what the semantics (S1–S9 of the design contract) say it must
//! see: that comparison is one *observation* per variable. A mismatch is a
//! *leak*: a value set somewhere became visible where it must not be (or a
//! value that must be visible was lost). Leaks are counted and the first few
//! are described.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::vars::{Snapshot, Var};

/// Who made an observation, for leak descriptions.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Who {
    /// A request task.
    Request(u64),
    /// Child `n` of a request.
    Child(u64, u64),
    /// The child of child `n` of a request.
    Grandchild(u64, u64),
    /// The rayon closure of a request's `run_blocking`.
    Job(u64),
    /// A bare rayon job checking that a pool thread is clean between jobs.
    PoolProbe,
    /// The driver (the `block_on` future) or the main thread.
    Driver,
}

impl fmt::Display for Who {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Who::Request(id) => write!(f, "request {id}"),
            Who::Child(id, n) => write!(f, "child {n} of request {id}"),
            Who::Grandchild(id, n) => write!(f, "grandchild (via child {n}) of request {id}"),
            Who::Job(id) => write!(f, "rayon job of request {id}"),
            Who::PoolProbe => f.write_str("probe on a rayon thread"),
            Who::Driver => f.write_str("driver"),
        }
    }
}

/// Problems among the first this many that may be described.
const SAMPLE_WINDOW: u64 = 100_000;

/// Counters shared by the whole run.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Observations checked.
    pub observations: AtomicU64,
    /// Observations that did not match.
    pub leaks: AtomicU64,
    /// Other failures: a token that would not reset, a child that failed,
    /// a request whose outcome contradicts its injected fault, ...
    pub failures: AtomicU64,
    /// Children spawned by requests.
    pub children_spawned: AtomicU64,
    /// Children whose future was dropped (finished, panicked or cancelled).
    pub children_finished: AtomicU64,
    /// `run_blocking` closures that ran on the pool.
    pub jobs_run: AtomicU64,
    /// Panics injected in rayon closures and caught in their request.
    pub rayon_panics_caught: AtomicU64,
    /// Bare rayon jobs that checked a pool thread was clean.
    pub probes: AtomicU64,
    /// Requests spawned and not yet dropped (in flight).
    pub live: AtomicU64,
    /// Highest `live` seen.
    pub peak_live: AtomicU64,
    /// Injected panics that the panic hook kept quiet.
    pub quiet_panics: AtomicU64,
    samples: Mutex<Vec<(&'static str, String)>>,
    max_samples: AtomicU64,
}

impl Stats {
    /// Counters that keep the first `max_samples` problem descriptions.
    pub(crate) fn new(max_samples: usize) -> Stats {
        let stats = Stats::default();
        stats.max_samples.store(max_samples as u64, Relaxed);
        stats
    }

    /// Records a leak observed at `site`, described by `describe` (called
    /// only for the first few).
    pub(crate) fn leak(&self, site: &'static str, describe: impl FnOnce() -> String) {
        let before = self.leaks.fetch_add(1, Relaxed);
        self.sample(before, site, describe);
    }

    /// Records a failure that is not a leak.
    pub(crate) fn fail(&self, describe: impl FnOnce() -> String) {
        let before = self.failures.fetch_add(1, Relaxed);
        self.sample(before, "", || format!("FAILURE: {}", describe()));
    }

    /// Keeps up to `max_samples` leak descriptions, one per distinct site
    /// (so that a flood of one kind does not hide the others), and up to
    /// `max_samples` failure descriptions (`site` empty), among the first
    /// problems found.
    fn sample(&self, before: u64, site: &'static str, describe: impl FnOnce() -> String) {
        let max = self.max_samples.load(Relaxed) as usize;
        if before >= SAMPLE_WINDOW {
            return;
        }
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let same_kind = samples
            .iter()
            .filter(|(s, _)| s.is_empty() == site.is_empty())
            .count();
        if same_kind < max && (site.is_empty() || samples.iter().all(|(s, _)| *s != site)) {
            samples.push((site, describe()));
        }
    }

    /// The problem descriptions kept so far.
    pub(crate) fn samples(&self) -> Vec<String> {
        let samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        samples.iter().map(|(_, d)| d.clone()).collect()
    }

    /// Counts one more live request and updates the peak.
    pub(crate) fn enter_live(&self) {
        let now = self.live.fetch_add(1, Relaxed) + 1;
        self.peak_live.fetch_max(now, Relaxed);
    }
}

/// Counts observations locally and adds them to [`Stats`] when dropped
/// (also when the owning future is aborted or unwinds), so that hundreds of
/// thousands of tasks do not all hit one shared counter per read.
pub(crate) struct Checker {
    stats: &'static Stats,
    who: Who,
    observed: u64,
}

impl Checker {
    /// A checker for `who`'s observations.
    pub(crate) fn new(stats: &'static Stats, who: Who) -> Checker {
        Checker {
            stats,
            who,
            observed: 0,
        }
    }

    /// One observation of `var`: `got` must equal `expected`.
    pub(crate) fn value(
        &mut self,
        site: &'static str,
        var: Var,
        expected: Option<u64>,
        got: Option<u64>,
    ) {
        self.observed += 1;
        if expected != got {
            let who = self.who;
            self.stats.leak(site, || {
                format!(
                    "{who}: {site}: {} expected {} but saw {}",
                    var.name(),
                    show(expected),
                    show(got)
                )
            });
        }
    }

    /// Observes all three variables.
    pub(crate) fn snapshot(&mut self, site: &'static str, expected: Snapshot, got: Snapshot) {
        for var in [Var::Id, Var::User, Var::Step] {
            self.value(site, var, expected.get(var), got.get(var));
        }
    }

    /// One observation of a yes/no property (e.g. "the pool thread's context
    /// is empty").
    pub(crate) fn holds(&mut self, site: &'static str, ok: bool) {
        self.observed += 1;
        if !ok {
            let who = self.who;
            self.stats.leak(site, || format!("{who}: {site}"));
        }
    }

    /// Records a failure that is not a leak.
    pub(crate) fn fail(&self, describe: impl FnOnce() -> String) {
        let who = self.who;
        self.stats.fail(|| format!("{who}: {}", describe()));
    }
}

impl Drop for Checker {
    fn drop(&mut self) {
        self.stats.observations.fetch_add(self.observed, Relaxed);
    }
}

fn show(v: Option<u64>) -> String {
    match v {
        Some(v) => v.to_string(),
        None => "(unset)".to_owned(),
    }
}
