//! Executor workloads side by side: baton vs tokio's multi-thread runtime vs
//! async-executor run by N threads, with the same number of workers
//! (`BATON_BENCH_WORKERS`, default one per CPU).
//!
//! ```text
//! cargo bench -p baton-benches --bench executor
//! cargo bench -p baton-benches --bench executor -- yield_many   # one group
//! cargo bench -p baton-benches --bench executor -- tokio_interop  # baton::tokio's cost
//! ```
//!
//! One criterion group per workload, one benchmark per runtime in it
//! (`<workload>/<runtime>`). The workloads live in
//! `baton_benches::workloads::executor` and check their own results.

#![forbid(unsafe_code)]
// `criterion_group!` defines an undocumented `pub fn`.
#![allow(missing_docs)]

use baton_benches::runtimes::{AsyncExecutor, Baton, BenchRuntime, Tokio, TokioBaton, TokioPadded};
use baton_benches::workers;
use baton_benches::workloads::context::TOKIO_U64;
use baton_benches::workloads::executor::{self as w, BusyLoad};
use baton_context::ContextVar;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, criterion_group, criterion_main};

/// Benchmarks `workload` on a fresh `R` with `workers` threads, as
/// `<group>/<R::NAME>`; the runtime is dropped afterwards so that only one
/// runtime's threads exist at a time.
fn on<R: BenchRuntime>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    id: &str,
    workers: usize,
    workload: impl Fn(&R),
) {
    let rt = R::with_workers(workers);
    workload(&rt); // warm up the runtime and check the result once
    g.bench_function(id, |b| b.iter(|| workload(&rt)));
}

macro_rules! side_by_side {
    ($c:expr, $group:expr, $workload:expr) => {{
        let workers = workers();
        let mut g = $c.benchmark_group($group);
        on::<Baton>(&mut g, Baton::NAME, workers, $workload);
        on::<Tokio>(&mut g, Tokio::NAME, workers, $workload);
        on::<AsyncExecutor>(&mut g, AsyncExecutor::NAME, workers, $workload);
        g.finish();
    }};
}

fn spawn_many_local(c: &mut Criterion) {
    side_by_side!(c, "spawn_many_local", w::spawn_many_local);
}

/// What `baton::tokio` costs: `spawn_many_local` on one tokio runtime
/// with plain `tokio::spawn`, with `baton::tokio::spawn`, and with plain
/// `tokio::spawn` of futures made 8 bytes larger (the control: a context
/// in a tokio task is one word, and tokio's task cells are 128-byte aligned).
fn tokio_interop(c: &mut Criterion) {
    let tokio = Tokio::with_workers(workers());
    let baton = TokioBaton::sharing(&tokio);
    let padded = TokioPadded::sharing(&tokio);
    let mut g = c.benchmark_group("tokio_interop_spawn_many_local");
    w::spawn_many_local(&baton);
    g.bench_function(Tokio::NAME, |b| b.iter(|| w::spawn_many_local(&tokio)));
    g.bench_function(TokioBaton::NAME, |b| b.iter(|| w::spawn_many_local(&baton)));
    g.bench_function(TokioPadded::NAME, |b| {
        b.iter(|| w::spawn_many_local(&padded))
    });
    g.finish();
}

fn spawn_many_remote_idle(c: &mut Criterion) {
    side_by_side!(c, "spawn_many_remote_idle", w::spawn_many_remote);
}

fn busy<R: BenchRuntime>(g: &mut BenchmarkGroup<'_, WallTime>, workers: usize) {
    let rt = R::with_workers(workers);
    let load = BusyLoad::start(&rt, workers);
    w::spawn_many_remote(&rt);
    g.bench_function(R::NAME, |b| b.iter(|| w::spawn_many_remote(&rt)));
    let rounds = load.stop(&rt);
    assert!(rounds > 0, "{}: the busy load never ran", R::NAME);
}

fn spawn_many_remote_busy(c: &mut Criterion) {
    let workers = workers();
    let mut g = c.benchmark_group("spawn_many_remote_busy");
    busy::<Baton>(&mut g, workers);
    busy::<Tokio>(&mut g, workers);
    busy::<AsyncExecutor>(&mut g, workers);
    g.finish();
}

fn yield_many(c: &mut Criterion) {
    side_by_side!(c, "yield_many", w::yield_many);
}

/// The variable every task binds in `yield_many_context/baton/one_var`.
static REQUEST: ContextVar<u64> = ContextVar::new("request");

/// The cost of carrying context: every task binds one variable (and reads
/// it back after its 1,000 yields) vs plain `yield_many`.
fn yield_many_context(c: &mut Criterion) {
    let workers = workers();
    let mut g = c.benchmark_group("yield_many_context");
    {
        let rt = Baton::with_workers(workers);
        g.bench_function(BenchmarkId::new("baton", "none"), |b| {
            b.iter(|| w::yield_many(&rt))
        });
        let with_var = |rt: &Baton| {
            w::yield_many_wrapped(
                rt,
                |i, fut| async move {
                    let _token = REQUEST.set(i as u64);
                    fut.await
                },
                |i| assert_eq!(REQUEST.get(), Some(i as u64)),
            )
        };
        with_var(&rt);
        g.bench_function(BenchmarkId::new("baton", "one_var"), |b| {
            b.iter(|| with_var(&rt))
        });
    }
    {
        let rt = Tokio::with_workers(workers);
        g.bench_function(BenchmarkId::new("tokio", "none"), |b| {
            b.iter(|| w::yield_many(&rt))
        });
        let with_local = |rt: &Tokio| {
            w::yield_many_wrapped(
                rt,
                |i, fut| TOKIO_U64.scope(i as u64, fut),
                |i| assert_eq!(TOKIO_U64.get(), i as u64),
            )
        };
        with_local(&rt);
        g.bench_function(BenchmarkId::new("tokio", "task_local"), |b| {
            b.iter(|| with_local(&rt))
        });
    }
    g.finish();
}

fn ping_pong(c: &mut Criterion) {
    side_by_side!(c, "ping_pong", w::ping_pong);
}

fn chained_spawn(c: &mut Criterion) {
    side_by_side!(c, "chained_spawn", w::chained_spawn);
}

fn web_server(c: &mut Criterion) {
    side_by_side!(c, "web_server", |rt| {
        w::web_server(rt);
    });
}

fn channels(c: &mut Criterion) {
    side_by_side!(c, "channels", w::channels);
}

criterion_group!(
    benches,
    spawn_many_local,
    tokio_interop,
    spawn_many_remote_idle,
    spawn_many_remote_busy,
    yield_many,
    yield_many_context,
    ping_pong,
    chained_spawn,
    web_server,
    channels
);
criterion_main!(benches);
