//! Interleaved timing: every system of a workload runs one batch per round,
//! round after round, so that a slow phase of the machine hits all of them.

use std::hint::black_box;
use std::time::{Duration, Instant};

/// One batch of a system: runs `n` iterations and returns the time they took
/// (a system may exclude its own set-up from the figure).
pub type Batch<'a> = Box<dyn FnMut(u64) -> Duration + 'a>;

/// A named system of a workload.
pub struct System<'a> {
    /// The label in the tables and plots.
    pub name: String,
    /// One batch of `n` iterations.
    pub run: Batch<'a>,
}

impl<'a> System<'a> {
    /// A system whose iteration is `f()` (timed as a whole batch).
    pub fn new(name: impl Into<String>, mut f: impl FnMut() + 'a) -> Self {
        System::batched(name, move |n| {
            let t = Instant::now();
            for _ in 0..n {
                f();
            }
            t.elapsed()
        })
    }

    /// A system timing its own batches (for set-up outside the timing, or a
    /// loop inside one `Context::run`).
    pub fn batched(name: impl Into<String>, f: impl FnMut(u64) -> Duration + 'a) -> Self {
        System {
            name: name.into(),
            run: Box::new(f),
        }
    }

    /// A system whose iteration is `f()`, its result passed through
    /// `black_box`, the whole batch inside `wrap` (e.g. `ctx.run`).
    pub fn in_scope<R>(
        name: impl Into<String>,
        wrap: impl Fn(&mut dyn FnMut()) + 'a,
        mut f: impl FnMut() -> R + 'a,
    ) -> Self {
        System::batched(name, move |n| {
            let mut elapsed = Duration::ZERO;
            wrap(&mut || {
                let t = Instant::now();
                for _ in 0..n {
                    black_box(f());
                }
                elapsed = t.elapsed();
            });
            elapsed
        })
    }
}

/// How long and how often to measure.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// Rounds; each round runs one batch of every system.
    pub rounds: usize,
    /// The target duration of one batch (a batch is at least one iteration).
    pub batch: Duration,
}

/// The per-iteration times of one system over the rounds, in ns.
#[derive(Clone, Debug)]
pub struct Stats {
    /// The system's label.
    pub system: String,
    /// Median per-iteration time over the rounds (ns).
    pub median: f64,
    /// Fastest round (ns per iteration).
    pub min: f64,
    /// Slowest round (ns per iteration).
    pub max: f64,
    /// Rounds measured.
    pub rounds: usize,
    /// Iterations per batch.
    pub iters: u64,
}

impl Stats {
    /// Summarises per-round samples (ns per iteration).
    pub fn from_samples(system: &str, mut samples: Vec<f64>, iters: u64) -> Stats {
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        assert!(n > 0, "no samples for {system}");
        let median = if n % 2 == 1 {
            samples[n / 2]
        } else {
            (samples[n / 2 - 1] + samples[n / 2]) / 2.0
        };
        Stats {
            system: system.to_string(),
            median,
            min: samples[0],
            max: samples[n - 1],
            rounds: n,
            iters,
        }
    }

    /// A single external figure (e.g. CPython's timeit best), not interleaved.
    pub fn external(system: &str, median: f64, min: f64, max: f64, rounds: usize) -> Stats {
        Stats {
            system: system.to_string(),
            median,
            min,
            max,
            rounds,
            iters: 0,
        }
    }
}

/// Iterations per batch for `run` so that a batch takes about `target`;
/// the first call is also the warm-up (and each workload checks its result).
fn calibrate(run: &mut Batch<'_>, target: Duration) -> u64 {
    let mut n = 1u64;
    loop {
        let d = run(n);
        if d >= target / 4 || n >= 1 << 32 {
            let per = d.as_secs_f64() / n as f64;
            let want = (target.as_secs_f64() / per.max(1e-12)).round();
            return (want as u64).clamp(1, 1 << 34);
        }
        n = n.saturating_mul(if d < target / 64 { 16 } else { 4 });
    }
}

/// Measures `systems` interleaved: calibrate each, then for every round run
/// one batch of each in order. Returns one [`Stats`] per system, in order.
pub fn interleave(settings: Settings, systems: &mut [System<'_>]) -> Vec<Stats> {
    let iters: Vec<u64> = systems
        .iter_mut()
        .map(|s| calibrate(&mut s.run, settings.batch))
        .collect();
    let mut samples = vec![Vec::with_capacity(settings.rounds); systems.len()];
    for _ in 0..settings.rounds.max(1) {
        for (i, s) in systems.iter_mut().enumerate() {
            let d = (s.run)(iters[i]);
            samples[i].push(d.as_nanos() as f64 / iters[i] as f64);
        }
    }
    systems
        .iter()
        .zip(samples)
        .zip(&iters)
        .map(|((s, v), &n)| Stats::from_samples(&s.name, v, n))
        .collect()
}

/// The cost of one uncontended atomic read-modify-write (`fetch_add`) on
/// this machine, in ns: the median of 11 batches. Reference-counted sharing
/// pays it per clone and per drop, so it sets the floor of `copy_context`
/// (two of them) and of entering a `Sync` context (one).
pub fn atomic_rmw_ns() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    const N: u32 = 2_000_000;
    let counter = AtomicU64::new(0);
    let mut batches: Vec<f64> = (0..11)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..N {
                black_box(&counter).fetch_add(1, Ordering::Relaxed);
            }
            t.elapsed().as_secs_f64() * 1e9 / f64::from(N)
        })
        .collect();
    batches.sort_by(f64::total_cmp);
    batches[batches.len() / 2]
}
