//! Timer create + cancel (`netbench timers`, in-process): the per-operation
//! cost of making a timeout (or sleep) future with a one-hour deadline,
//! polling it once so that it registers with the runtime's timers, and
//! dropping it — the usual fate of a request timeout. Measured from one task
//! (one worker busy) and from one task per worker at once (every worker
//! busy); the goal is a flat cost.
//!
//! * baton: `baton_executor::timeout(d, pending())` / `sleep(d)`;
//! * tokio: `tokio::time::timeout(d, pending())` / `sleep(d)`, the task
//!   wrapped in `tokio::task::unconstrained` (otherwise tokio's cooperative
//!   budget makes every poll after the 128th return `Pending` without
//!   registering anything);
//! * smol: `pending().or(async { async_io::Timer::after(d).await })` /
//!   `Timer::after(d)` on async-executor.
//!
//! Each runtime has the same number of workers. The tasks meet at a
//! spinning gate before timing (each holds its worker), so that they run at
//! once; the report counts the distinct threads they ran on.

use std::future::{Future, pending};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::Poll;
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use futures_lite::FutureExt as _;

use crate::report::measure::Stats;
use crate::runtimes::{AsyncExecutor, Baton, BenchRuntime, Spawner, Tokio};

use super::System;

/// The deadline of every timer: never reached.
pub const DEADLINE: Duration = Duration::from_secs(3600);

/// What is created and cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerOp {
    /// `timeout(DEADLINE, pending())`.
    Timeout,
    /// `sleep(DEADLINE)`.
    Sleep,
}

impl TimerOp {
    /// Both, in table order.
    pub const ALL: [TimerOp; 2] = [TimerOp::Timeout, TimerOp::Sleep];

    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            TimerOp::Timeout => "timeout",
            TimerOp::Sleep => "sleep",
        }
    }
}

/// What `timers` measures.
#[derive(Clone, Debug)]
pub struct TimerConfig {
    /// The systems (all three have timers).
    pub systems: Vec<System>,
    /// Worker threads of every runtime; the concurrent case runs this many
    /// tasks.
    pub workers: usize,
    /// Create + cancel operations per task per round.
    pub ops: u64,
    /// Rounds (systems interleaved in each).
    pub rounds: usize,
}

impl Default for TimerConfig {
    fn default() -> Self {
        TimerConfig {
            systems: System::ALL.to_vec(),
            workers: 2,
            ops: 100_000,
            rounds: 10,
        }
    }
}

/// One row: a system, an operation, a number of concurrent tasks.
#[derive(Clone, Debug)]
pub struct TimerResult {
    /// The system.
    pub system: System,
    /// The operation.
    pub op: TimerOp,
    /// Tasks timing at once (1, or one per worker).
    pub tasks: usize,
    /// ns per operation per task (the mean over the tasks of a round), over
    /// the rounds.
    pub stats: Stats,
    /// The fewest distinct threads the tasks of a round ran on.
    pub threads: usize,
    /// Rounds in which the tasks did not all meet at the start gate within
    /// 2 s (a task was not started while another held its worker): those
    /// rounds did not run concurrently.
    pub apart: usize,
}

/// A gate the tasks spin at until all have arrived (or 2 s have passed).
struct Gate {
    n: usize,
    arrived: AtomicUsize,
}

impl Gate {
    /// Whether every task arrived in time.
    fn wait(&self) -> bool {
        self.arrived.fetch_add(1, Ordering::AcqRel);
        let deadline = Instant::now() + GATE_LIMIT;
        while self.arrived.load(Ordering::Acquire) < self.n {
            if Instant::now() > deadline {
                return false;
            }
            std::hint::spin_loop();
        }
        true
    }
}

/// How long a task waits at the gate for the others.
const GATE_LIMIT: Duration = Duration::from_secs(2);

/// Polls `fut` once (it must be pending: it registers) and drops it.
async fn poll_once_and_drop<F: Future>(fut: F) {
    let mut fut = pin!(fut);
    std::future::poll_fn(|cx| {
        assert!(
            fut.as_mut().poll(cx).is_pending(),
            "a timer with a one-hour deadline completed"
        );
        Poll::Ready(())
    })
    .await;
}

/// `ops` create + poll + drop of `make()`'s future, timed after the gate.
async fn timed<F: Future>(gate: Arc<Gate>, ops: u64, make: impl Fn() -> F) -> Timed {
    let together = gate.wait();
    let thread = std::thread::current().id();
    let t = Instant::now();
    for _ in 0..ops {
        poll_once_and_drop(make()).await;
    }
    Timed {
        elapsed: t.elapsed(),
        thread,
        together,
    }
}

/// One task's figures.
struct Timed {
    elapsed: Duration,
    thread: ThreadId,
    /// Every task had arrived at the gate.
    together: bool,
}

/// The task body of `system` for `op`.
fn body(
    system: System,
    op: TimerOp,
    gate: Arc<Gate>,
    ops: u64,
) -> std::pin::Pin<Box<dyn Future<Output = Timed> + Send>> {
    match (system, op) {
        (System::Baton, TimerOp::Timeout) => Box::pin(timed(gate, ops, || {
            baton_executor::timeout(DEADLINE, pending::<()>())
        })),
        (System::Baton, TimerOp::Sleep) => {
            Box::pin(timed(gate, ops, || baton_executor::sleep(DEADLINE)))
        }
        (System::Tokio, TimerOp::Timeout) => {
            Box::pin(tokio::task::unconstrained(timed(gate, ops, || {
                tokio::time::timeout(DEADLINE, pending::<()>())
            })))
        }
        (System::Tokio, TimerOp::Sleep) => {
            Box::pin(tokio::task::unconstrained(timed(gate, ops, || {
                tokio::time::sleep(DEADLINE)
            })))
        }
        (System::Smol, TimerOp::Timeout) => Box::pin(timed(gate, ops, || {
            pending::<()>().or(async {
                async_io::Timer::after(DEADLINE).await;
            })
        })),
        (System::Smol, TimerOp::Sleep) => {
            Box::pin(timed(gate, ops, || async_io::Timer::after(DEADLINE)))
        }
    }
}

/// One run: `tasks` tasks at once; returns the mean ns per op per task, the
/// distinct threads used and whether the tasks met at the gate.
fn once<R: BenchRuntime>(
    rt: &R,
    system: System,
    op: TimerOp,
    tasks: usize,
    ops: u64,
) -> (f64, usize, bool) {
    let gate = Arc::new(Gate {
        n: tasks,
        arrived: AtomicUsize::new(0),
    });
    let sp = rt.spawner();
    let handles: Vec<_> = (0..tasks)
        .map(|_| sp.spawn(body(system, op, gate.clone(), ops)))
        .collect();
    let mut threads = Vec::new();
    let mut total = 0.0;
    let mut together = true;
    for h in handles {
        let r = rt.block_on(h);
        total += r.elapsed.as_nanos() as f64 / ops as f64;
        together &= r.together;
        if !threads.contains(&r.thread) {
            threads.push(r.thread);
        }
    }
    (total / tasks as f64, threads.len(), together)
}

enum AnyRt {
    Baton(Baton),
    Tokio(Tokio),
    Smol(AsyncExecutor),
}

impl AnyRt {
    fn once(&self, system: System, op: TimerOp, tasks: usize, ops: u64) -> (f64, usize, bool) {
        match self {
            AnyRt::Baton(rt) => once(rt, system, op, tasks, ops),
            AnyRt::Tokio(rt) => once(rt, system, op, tasks, ops),
            AnyRt::Smol(rt) => once(rt, system, op, tasks, ops),
        }
    }
}

/// Runs the timer benchmark: for every round, every system, operation and
/// task count (1, then `workers`). Each system's runtime lives for the whole
/// run; the first call of each is a warm-up.
pub fn run(cfg: &TimerConfig) -> Vec<TimerResult> {
    let w = cfg.workers.max(1);
    let rts: Vec<(System, AnyRt)> = cfg
        .systems
        .iter()
        .map(|&s| {
            let rt = match s {
                System::Baton => AnyRt::Baton(Baton::with_workers(w)),
                System::Tokio => AnyRt::Tokio(Tokio::with_workers(w)),
                System::Smol => AnyRt::Smol(AsyncExecutor::with_workers(w)),
            };
            (s, rt)
        })
        .collect();
    let task_counts: Vec<usize> = if w == 1 { vec![1] } else { vec![1, w] };
    let mut samples = Vec::new();
    for (s, rt) in &rts {
        for op in TimerOp::ALL {
            rt.once(*s, op, w, cfg.ops / 10 + 1);
        }
    }
    for _ in 0..cfg.rounds.max(1) {
        for op in TimerOp::ALL {
            for &tasks in &task_counts {
                for (s, rt) in &rts {
                    let (ns, threads, together) = rt.once(*s, op, tasks, cfg.ops);
                    samples.push((*s, op, tasks, ns, threads, together));
                }
            }
        }
    }
    let mut out = Vec::new();
    for op in TimerOp::ALL {
        for &tasks in &task_counts {
            for (s, _) in &rts {
                let mine: Vec<_> = samples
                    .iter()
                    .filter(|x| x.0 == *s && x.1 == op && x.2 == tasks)
                    .collect();
                out.push(TimerResult {
                    system: *s,
                    op,
                    tasks,
                    stats: Stats::from_samples(
                        s.name(),
                        mine.iter().map(|x| x.3).collect(),
                        cfg.ops,
                    ),
                    threads: mine.iter().map(|x| x.4).min().unwrap_or(0),
                    apart: mine.iter().filter(|x| !x.5).count(),
                });
            }
        }
    }
    out
}
