//! The driver: the `block_on` future that spawns requests (keeping up to
//! `concurrency` of them in flight), collects every `JoinHandle`, and
//! accounts for each outcome.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::task::Poll;
use std::time::{Duration, Instant};

use baton_executor::{Handle, JoinError, JoinHandle, sleep, spawn, yield_now};
use futures::channel::oneshot;
use futures::stream::{FuturesUnordered, Stream};
use indicatif::ProgressBar;

use crate::checks::{Checker, Who};
use crate::faults::{Fate, FaultRates, Outcome, is_injected, payload_str};
use crate::latency::Histogram;
use crate::probe;
use crate::request::{Finish, LiveToken, Shared, request};
use crate::rng::Rng;
use crate::vars::Snapshot;

/// What the driver needs to know.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// Requests to spawn (`u64::MAX`: as many as `duration` allows).
    pub requests: u64,
    /// Most requests in flight (spawned, not yet collected).
    pub concurrency: usize,
    /// Stop spawning after this long (then drain).
    pub duration: Option<Duration>,
    /// Fault injection.
    pub faults: FaultRates,
    /// How long to wait for detached children after the last request.
    pub settle: Duration,
}

/// Counts of request outcomes.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Outcomes {
    /// Returned normally.
    pub completed: u64,
    /// Panicked.
    pub panicked: u64,
    /// Cancelled (aborted).
    pub cancelled: u64,
    /// Their `timeout` elapsed.
    pub timed_out: u64,
    /// Outcomes that contradict the injected fault.
    pub unexpected: u64,
}

impl Outcomes {
    /// All outcomes.
    pub(crate) fn total(&self) -> u64 {
        self.completed + self.panicked + self.cancelled + self.timed_out
    }
}

/// What the driver measured.
#[derive(Debug)]
pub(crate) struct DriveResult {
    /// Requests spawned.
    pub spawned: u64,
    /// Their outcomes.
    pub outcomes: Outcomes,
    /// Latencies of completed requests, in microseconds.
    pub latencies: Histogram,
    /// From the first spawn to the last outcome.
    pub elapsed: Duration,
    /// Whether every task of the runtime (children included) finished
    /// within the settle time.
    pub settled: bool,
}

/// How a request's handle is held: directly, or by the task that aborts it.
enum Pending {
    Direct(JoinHandle<Finish>),
    Killer(JoinHandle<Result<Finish, JoinError>>),
}

/// Awaits a request's outcome.
async fn collect(id: u64, fate: Fate, pending: Pending) -> (u64, Fate, Result<Finish, JoinError>) {
    let result = match pending {
        Pending::Direct(handle) => handle.await,
        Pending::Killer(killer) => killer.await.and_then(|inner| inner),
    };
    (id, fate, result)
}

/// Aborts `handle` right away (`early`) or once the request says it is
/// asleep, and returns what its handle then reports.
async fn killer(
    handle: JoinHandle<Finish>,
    early: bool,
    reached: oneshot::Receiver<()>,
) -> Result<Finish, JoinError> {
    if early {
        yield_now().await;
    } else {
        // Err: the request was dropped before reaching its sleep (it
        // panicked, say); abort anyway and report what the handle says.
        let _ = reached.await;
    }
    handle.abort();
    handle.await
}

const PROBE_TICK: Duration = Duration::from_millis(20);

/// Runs the whole workload; call inside `block_on`.
pub(crate) async fn drive(sh: &'static Shared, plan: &Plan, bar: &ProgressBar) -> DriveResult {
    let start = Instant::now();
    let mut rng = Rng::new(sh.seed);
    let mut pending = FuturesUnordered::new();
    let mut outcomes = Outcomes::default();
    let mut latencies = Histogram::default();
    let mut spawned = 0u64;
    let mut stopped = false;
    let mut tick = sleep(PROBE_TICK);
    let mut own = Checker::new(&sh.stats, Who::Driver);

    loop {
        // Refill up to the concurrency.
        while !stopped && spawned < plan.requests && pending.len() < plan.concurrency {
            spawned += 1;
            let id = spawned;
            let fate = plan.faults.draw(&mut rng);
            let live = LiveToken::new(&sh.stats);
            let now = Instant::now();
            let entry = match fate {
                Fate::Abort { early } => {
                    let (tx, rx) = oneshot::channel();
                    let handle = spawn(request(sh, id, fate, now, live, Some(tx)));
                    Pending::Killer(spawn(killer(handle, early, rx)))
                }
                _ => Pending::Direct(spawn(request(sh, id, fate, now, live, None))),
            };
            pending.push(collect(id, fate, entry));
            if spawned % 4096 == 0 && plan.duration.is_some_and(|d| start.elapsed() >= d) {
                stopped = true;
            }
        }
        if !stopped && plan.duration.is_some_and(|d| start.elapsed() >= d) {
            stopped = true;
        }
        if pending.is_empty() && (stopped || spawned >= plan.requests) {
            break;
        }

        // Wait for outcomes (taking every one that is ready) or the tick.
        let mut ticked = false;
        poll_fn(|cx| {
            let mut got = 0;
            while got < 8192 {
                match Pin::new(&mut pending).poll_next(cx) {
                    Poll::Ready(Some((id, fate, result))) => {
                        got += 1;
                        account(sh, id, fate, result, &mut outcomes, &mut latencies);
                    }
                    Poll::Ready(None) | Poll::Pending => break,
                }
            }
            if Pin::new(&mut tick).poll(cx).is_ready() {
                ticked = true;
            }
            if got > 0 || ticked {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;

        if ticked {
            tick.reset(Instant::now() + PROBE_TICK);
            probe::broadcast(sh);
            // The driver itself runs in a copy of main's (empty) context.
            own.snapshot("the driver's own context", Snapshot::EMPTY, sh.mode.read());
            progress(bar, plan, start, &outcomes, sh);
        }
    }
    let elapsed = start.elapsed();
    progress(bar, plan, start, &outcomes, sh);

    // Children whose parent was aborted or timed out run on, detached:
    // wait until every task of the runtime has finished.
    let handle = Handle::current();
    let deadline = Instant::now() + plan.settle;
    let settled = loop {
        let m = handle.metrics();
        let children_done =
            sh.stats.children_finished.load(Relaxed) == sh.stats.children_spawned.load(Relaxed);
        if m.spawned == m.completed && children_done {
            break true;
        }
        if Instant::now() >= deadline {
            break false;
        }
        sleep(Duration::from_millis(2)).await;
    };

    DriveResult {
        spawned,
        outcomes,
        latencies,
        elapsed,
        settled,
    }
}

/// Moves the progress bar: by requests finished when the run is bounded by
/// `--requests`, by time when it is bounded by `--duration`.
fn progress(bar: &ProgressBar, plan: &Plan, start: Instant, outcomes: &Outcomes, sh: &Shared) {
    match plan.duration {
        Some(d) if plan.requests == u64::MAX => {
            bar.set_position(start.elapsed().min(d).as_millis() as u64);
            bar.set_message(format!(
                "{} requests, in flight {:>6}, leaks {}",
                outcomes.total(),
                sh.stats.live.load(Relaxed),
                sh.stats.leaks.load(Relaxed)
            ));
        }
        _ => {
            bar.set_position(outcomes.total());
            bar.set_message(format!(
                "{}/{} requests, in flight {:>6}, leaks {}",
                outcomes.total(),
                plan.requests,
                sh.stats.live.load(Relaxed),
                sh.stats.leaks.load(Relaxed)
            ));
        }
    }
}

/// Classifies one outcome and checks it against the request's fate.
fn account(
    sh: &'static Shared,
    id: u64,
    fate: Fate,
    result: Result<Finish, JoinError>,
    outcomes: &mut Outcomes,
    latencies: &mut Histogram,
) {
    let outcome = match result {
        Ok(finish) if finish.timed_out => {
            outcomes.timed_out += 1;
            Outcome::TimedOut
        }
        Ok(finish) => {
            outcomes.completed += 1;
            latencies.record(finish.latency_us);
            Outcome::Completed
        }
        Err(e) if e.is_panic() => {
            outcomes.panicked += 1;
            let payload = e.into_panic();
            if !is_injected(&*payload) {
                let msg = payload_str(&*payload)
                    .unwrap_or("(not a string)")
                    .to_owned();
                sh.stats
                    .fail(|| format!("request {id} panicked for real: {msg}"));
            }
            Outcome::Panicked
        }
        Err(e) => {
            if !e.is_cancelled() {
                sh.stats
                    .fail(|| format!("request {id}: JoinError neither panic nor cancelled: {e}"));
            }
            outcomes.cancelled += 1;
            Outcome::Cancelled
        }
    };
    if outcome != fate.expected() {
        outcomes.unexpected += 1;
        sh.stats.fail(|| {
            format!(
                "request {id} was fated {fate:?} but ended {outcome:?} (expected {:?})",
                fate.expected()
            )
        });
    }
}
