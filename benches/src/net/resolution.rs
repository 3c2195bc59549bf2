//! Timer resolution (`netbench resolution`, in-process): how long a 1 ms
//! sleep really takes. One task sleeps [`PERIOD`] N times in a row; each
//! sample is the time from just before the sleep future is created to just
//! after it completes, so it includes the runtime's rounding of the
//! deadline, how precisely its driver wakes, and the wake-up of the task.
//! Reported as p50 / p99 / max over the samples, and p50 ÷ tokio's p50.
//!
//! * baton: `baton_executor::sleep(PERIOD)`;
//! * tokio: `tokio::time::sleep(PERIOD)` (multi-thread runtime);
//! * smol: `async_io::Timer::after(PERIOD)` on an async-executor run by N
//!   threads, each in `async_io::block_on` as `smol::block_on` does (so an
//!   idle worker drives the async-io reactor), like the smol server.
//!
//! Every runtime has the same number of workers (2 by default). Two loads:
//!
//! * [`Load::Idle`] — the sleeping task is the only one;
//! * [`Load::Busy`] — one background task per worker runs the runtime's
//!   `yield_now` in a loop while the sleeper samples, so that every worker is
//!   busy and the timer must be noticed between polls. The background tasks
//!   stop when the sleeper is done, or after a time bound
//!   ([`busy_limit`]) whatever happens; a round whose load stopped by that
//!   bound is counted ([`ResolutionResult::load_cut_short`]).
//!
//! The samples are taken in rounds, systems interleaved in each round, and
//! pooled; the first [`WARMUP`] sleeps of each round are not counted.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_executor::Executor;

use crate::report::measure::Stats;
use crate::runtimes::{Baton, BenchRuntime, Spawner, Tokio};

use super::System;

/// The sleep every sample measures.
pub const PERIOD: Duration = Duration::from_millis(1);

/// Sleeps at the start of each round that are not counted.
pub const WARMUP: usize = 5;

/// How long the sleeper waits for the background tasks to start before it
/// samples anyway.
const START_LIMIT: Duration = Duration::from_secs(2);

/// The background tasks of a round of `samples` sleeps stop after this long
/// whatever happens: 20 ms per sleep plus 5 s.
pub fn busy_limit(samples: usize) -> Duration {
    Duration::from_secs(5)
        + Duration::from_millis(20).saturating_mul(u32::try_from(samples).unwrap_or(u32::MAX))
}

/// What else runs while the task sleeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Load {
    /// Nothing: the sleeping task is alone on the runtime.
    Idle,
    /// One task per worker runs `yield_now` in a loop.
    Busy,
}

impl Load {
    /// Both, in table order.
    pub const ALL: [Load; 2] = [Load::Idle, Load::Busy];

    /// Its name on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Load::Idle => "idle",
            Load::Busy => "busy",
        }
    }
}

impl std::fmt::Display for Load {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Load {
    type Err = String;

    fn from_str(s: &str) -> Result<Load, String> {
        Load::ALL
            .into_iter()
            .find(|l| l.name() == s.trim().to_lowercase())
            .ok_or_else(|| format!("unknown load {s:?} (expected idle or busy)"))
    }
}

/// What `resolution` measures.
#[derive(Clone, Debug)]
pub struct ResolutionConfig {
    /// The systems (all three have timers).
    pub systems: Vec<System>,
    /// The loads, each measured on every system.
    pub loads: Vec<Load>,
    /// Worker threads of every runtime (and background tasks of
    /// [`Load::Busy`]).
    pub workers: usize,
    /// Counted sleeps per system and load, over all rounds.
    pub samples: usize,
    /// Rounds the samples are split into (systems interleaved in each).
    pub rounds: usize,
}

impl Default for ResolutionConfig {
    fn default() -> Self {
        ResolutionConfig {
            systems: System::ALL.to_vec(),
            loads: Load::ALL.to_vec(),
            workers: 2,
            samples: 500,
            rounds: 5,
        }
    }
}

/// One row: a system under a load.
#[derive(Clone, Debug)]
pub struct ResolutionResult {
    /// The system.
    pub system: System,
    /// The load.
    pub load: Load,
    /// Every counted sample (ms), sorted.
    pub samples_ms: Vec<f64>,
    /// The median sample of each round (ms), in round order.
    pub round_p50_ms: Vec<f64>,
    /// Background `yield_now`s per second while the sleeper sampled (all
    /// background tasks together; NaN under [`Load::Idle`]): shows that the
    /// load ran.
    pub background_yields_per_s: f64,
    /// Rounds whose background tasks stopped at their time bound before the
    /// sleeper was done (its later samples ran without the load).
    pub load_cut_short: usize,
}

impl ResolutionResult {
    /// The `q`-th percentile (0–100) of the samples, in ms.
    pub fn percentile_ms(&self, q: f64) -> f64 {
        percentile(&self.samples_ms, q)
    }

    /// The median of the samples (ms).
    pub fn p50_ms(&self) -> f64 {
        self.percentile_ms(50.0)
    }

    /// The 99th percentile of the samples (ms).
    pub fn p99_ms(&self) -> f64 {
        self.percentile_ms(99.0)
    }

    /// The slowest sample (ms; NaN when there is none).
    pub fn max_ms(&self) -> f64 {
        self.samples_ms.last().copied().unwrap_or(f64::NAN)
    }

    /// The fastest sample (ms; NaN when there is none).
    pub fn min_ms(&self) -> f64 {
        self.samples_ms.first().copied().unwrap_or(f64::NAN)
    }

    /// The per-round medians as report [`Stats`] (ns): median, min – max
    /// over the rounds, like every other row of the report.
    pub fn round_stats(&self) -> Stats {
        let per_round = self.samples_ms.len() / self.round_p50_ms.len().max(1);
        Stats::from_samples(
            self.system.name(),
            self.round_p50_ms.iter().map(|ms| ms * 1e6).collect(),
            per_round as u64,
        )
    }
}

/// The `q`-th percentile (0–100) of `sorted` (ascending) by the nearest-rank
/// method: the smallest sample with at least `q` % of the samples at or
/// below it (the first for `q` = 0, the last for `q` = 100). NaN when empty.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let q = q.clamp(0.0, 100.0);
    let rank = (q * sorted.len() as f64 / 100.0).ceil() as usize;
    sorted[rank.saturating_sub(1).min(sorted.len() - 1)]
}

/// A sleep future of one system.
type SleepFut = Pin<Box<dyn Future<Output = ()> + Send>>;

fn sleep_of(system: System) -> fn(Duration) -> SleepFut {
    match system {
        System::Baton => |d| Box::pin(baton_executor::sleep(d)),
        System::Tokio => |d| Box::pin(tokio::time::sleep(d)),
        System::Smol => |d| {
            Box::pin(async move {
                async_io::Timer::after(d).await;
            })
        },
    }
}

/// What one round's sleeper measured.
struct Sampled {
    /// The counted samples (ms).
    ms: Vec<f64>,
    /// From the first to the last sleep.
    window: Duration,
}

/// The sleeping task: waits (yielding, up to [`START_LIMIT`]) until
/// `started` reaches `wait_for`, then sleeps `WARMUP + samples` times.
async fn sleeper<S: Spawner>(
    sleep: fn(Duration) -> SleepFut,
    samples: usize,
    started: Arc<AtomicUsize>,
    wait_for: usize,
) -> Sampled {
    let t = Instant::now();
    while started.load(Ordering::Acquire) < wait_for && t.elapsed() < START_LIMIT {
        S::yield_now().await;
    }
    let mut ms = Vec::with_capacity(samples);
    let first = Instant::now();
    for i in 0..WARMUP + samples {
        let t = Instant::now();
        sleep(PERIOD).await;
        let e = t.elapsed();
        if i >= WARMUP {
            ms.push(e.as_secs_f64() * 1e3);
        }
    }
    Sampled {
        ms,
        window: first.elapsed(),
    }
}

/// A background task: `yield_now` in a loop until `stop` or `limit`;
/// returns its yields and whether the limit stopped it.
async fn busy<S: Spawner>(
    started: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    limit: Duration,
) -> (u64, bool) {
    started.fetch_add(1, Ordering::AcqRel);
    let t = Instant::now();
    let mut yields = 0u64;
    loop {
        if stop.load(Ordering::Acquire) {
            return (yields, false);
        }
        // Reading the clock every 64 yields keeps the loop mostly yields.
        if yields % 64 == 0 && t.elapsed() > limit {
            return (yields, true);
        }
        S::yield_now().await;
        yields += 1;
    }
}

/// One round's figures of a system under a load.
struct Round {
    ms: Vec<f64>,
    yields_per_s: f64,
    cut_short: bool,
}

/// One round: `samples` counted sleeps on `rt`, with one background task
/// per worker under [`Load::Busy`].
fn round<R: BenchRuntime>(
    rt: &R,
    system: System,
    load: Load,
    workers: usize,
    samples: usize,
) -> Round {
    let sp = rt.spawner();
    let started = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let background = match load {
        Load::Idle => 0,
        Load::Busy => workers,
    };
    let limit = busy_limit(samples + WARMUP);
    let bg: Vec<_> = (0..background)
        .map(|_| sp.spawn(busy::<R::Spawner>(started.clone(), stop.clone(), limit)))
        .collect();
    let s = rt.block_on(sp.spawn(sleeper::<R::Spawner>(
        sleep_of(system),
        samples,
        started,
        background,
    )));
    stop.store(true, Ordering::Release);
    let mut yields = 0;
    let mut cut_short = false;
    for h in bg {
        let (n, cut) = rt.block_on(h);
        yields += n;
        cut_short |= cut;
    }
    Round {
        ms: s.ms,
        yields_per_s: if background == 0 {
            f64::NAN
        } else {
            yields as f64 / s.window.as_secs_f64().max(1e-9)
        },
        cut_short,
    }
}

/// smol as its users run it: one async-executor run by N threads, each in
/// `async_io::block_on` (an idle one drives the async-io reactor).
struct SmolIo {
    ex: Arc<Executor<'static>>,
    stop: Option<async_channel::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl BenchRuntime for SmolIo {
    const NAME: &'static str = "smol";
    type Spawner = Arc<Executor<'static>>;

    fn with_workers(workers: usize) -> Self {
        let ex = Arc::new(Executor::new());
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let threads = (0..workers)
            .map(|i| {
                let ex = ex.clone();
                let stopped = stopped.clone();
                std::thread::Builder::new()
                    .name(format!("smol-{i}"))
                    .spawn(move || {
                        let _ = async_io::block_on(ex.run(stopped.recv()));
                    })
                    .expect("spawn smol thread")
            })
            .collect();
        SmolIo {
            ex,
            stop: Some(stop),
            threads,
        }
    }

    fn spawner(&self) -> Self::Spawner {
        self.ex.clone()
    }

    /// `futures_lite`'s `block_on`: the waiting thread does not drive the
    /// reactor (nor does baton's or tokio's `block_on` drive their timers),
    /// so the workers and async-io's own thread do it all.
    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        futures_lite::future::block_on(fut)
    }
}

impl Drop for SmolIo {
    fn drop(&mut self) {
        // Closing the channel ends every `ex.run(stopped.recv())`.
        drop(self.stop.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

enum AnyRt {
    Baton(Baton),
    Tokio(Tokio),
    Smol(SmolIo),
}

impl AnyRt {
    fn new(system: System, workers: usize) -> AnyRt {
        match system {
            System::Baton => AnyRt::Baton(Baton::with_workers(workers)),
            System::Tokio => AnyRt::Tokio(Tokio::with_workers(workers)),
            System::Smol => AnyRt::Smol(SmolIo::with_workers(workers)),
        }
    }

    fn round(&self, system: System, load: Load, workers: usize, samples: usize) -> Round {
        match self {
            AnyRt::Baton(rt) => round(rt, system, load, workers, samples),
            AnyRt::Tokio(rt) => round(rt, system, load, workers, samples),
            AnyRt::Smol(rt) => round(rt, system, load, workers, samples),
        }
    }
}

/// Runs the benchmark: for every load, `rounds` rounds, each running every
/// system in turn (its share of the samples). Each system's runtime lives
/// for the whole run (idle ones park).
pub fn run(cfg: &ResolutionConfig) -> Vec<ResolutionResult> {
    let workers = cfg.workers.max(1);
    let samples = cfg.samples.max(1);
    let rounds = cfg.rounds.clamp(1, samples);
    let rts: Vec<(System, AnyRt)> = cfg
        .systems
        .iter()
        .map(|&s| (s, AnyRt::new(s, workers)))
        .collect();
    let mut out = Vec::new();
    for &load in &cfg.loads {
        let mut per: Vec<Vec<Round>> = rts.iter().map(|_| Vec::new()).collect();
        for r in 0..rounds {
            let n = samples / rounds + usize::from(r < samples % rounds);
            for (k, (s, rt)) in rts.iter().enumerate() {
                per[k].push(rt.round(*s, load, workers, n));
            }
        }
        for ((s, _), rs) in rts.iter().zip(per) {
            let mut all: Vec<f64> = rs.iter().flat_map(|r| r.ms.iter().copied()).collect();
            all.sort_by(f64::total_cmp);
            let round_p50_ms = rs
                .iter()
                .map(|r| {
                    let mut v = r.ms.clone();
                    v.sort_by(f64::total_cmp);
                    percentile(&v, 50.0)
                })
                .collect();
            out.push(ResolutionResult {
                system: *s,
                load,
                samples_ms: all,
                round_p50_ms,
                background_yields_per_s: super::markdown::median(
                    rs.iter().map(|r| r.yields_per_s).collect(),
                ),
                load_cut_short: rs.iter().filter(|r| r.cut_short).count(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert_eq!(percentile(&v, 0.5), 1.0);
        assert_eq!(percentile(&v, 50.5), 51.0);
    }

    #[test]
    fn percentile_small_and_empty() {
        assert_eq!(percentile(&[7.0], 50.0), 7.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[1.0, 2.0], 50.0), 1.0);
        assert_eq!(percentile(&[1.0, 2.0], 51.0), 2.0);
        assert_eq!(percentile(&[1.0, 2.0, 3.0], 50.0), 2.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn percentile_clamps_q() {
        let v = [1.0, 2.0, 3.0];
        assert_eq!(percentile(&v, -5.0), 1.0);
        assert_eq!(percentile(&v, 250.0), 3.0);
    }

    #[test]
    fn percentile_of_500_samples() {
        // 500 samples: p50 is the 250th, p99 the 495th.
        let v: Vec<f64> = (1..=500).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 250.0);
        assert_eq!(percentile(&v, 99.0), 495.0);
    }

    #[test]
    fn load_parses() {
        assert_eq!("busy".parse::<Load>(), Ok(Load::Busy));
        assert_eq!(" Idle ".parse::<Load>(), Ok(Load::Idle));
        assert!("heavy".parse::<Load>().is_err());
    }
}
