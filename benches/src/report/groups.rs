//! The groups of the report. Every system of a workload runs interleaved
//! with its peers (see [`interleave`]); every workload checks its results.

use std::cell::Cell;
use std::hint::black_box;
use std::time::Instant;

use baton_context::{Context, ContextCell, ContextVar, copy_context};
use serde_json::Value;

use super::measure::{Settings, Stats, System, interleave};
use super::table::Workload;
use crate::runtimes::{AsyncExecutor, Baton, BenchRuntime, Tokio, TokioBaton, TokioPadded};
use crate::workloads::bridge::{
    FACTOR, PAR_ITEMS, baton_offload, job, many, par_expected, par_sum_in_context,
    par_sum_in_context_reading, par_sum_plain, rayon_offload, round_trip, tokio_offload,
};
use crate::workloads::context::{
    NaiveContext, TOKIO_STR, TOKIO_U64, U64_VARS, UNBOUND, bound_context, bound_str_context, naive,
    probe_str, probe_u64,
};
use crate::workloads::executor::{self as w, BusyLoad};

fn wl(name: impl Into<String>, stats: Vec<Stats>) -> Workload {
    Workload {
        name: name.into(),
        stats,
    }
}

/// The variable every task binds in `yield_many + 1 bound var`.
static REQUEST: ContextVar<u64> = ContextVar::new("request");

/// `spawn_many_remote` under a busy load started and stopped around each
/// batch (outside the timing); counts the load's rounds into `rounds`.
fn busy<'a, R: BenchRuntime>(
    name: &str,
    rt: &'a R,
    workers: usize,
    rounds: &'a Cell<usize>,
) -> System<'a> {
    System::batched(name, move |n| {
        let load = BusyLoad::start(rt, workers);
        let t = Instant::now();
        for _ in 0..n {
            w::spawn_many_remote(rt);
        }
        let d = t.elapsed();
        rounds.set(rounds.get() + load.stop(rt));
        d
    })
}

/// Executor workloads: baton vs tokio multi-thread vs async-executor, all
/// three runtimes alive at once with `workers` threads each.
pub fn executor(s: Settings, workers: usize) -> Vec<Workload> {
    let baton = Baton::with_workers(workers);
    let tokio = Tokio::with_workers(workers);
    let ae = AsyncExecutor::with_workers(workers);
    let mut out = Vec::new();
    macro_rules! three {
        ($name:expr, $f:path) => {{
            let mut sys = vec![
                System::new("baton", || {
                    $f(&baton);
                }),
                System::new("tokio", || {
                    $f(&tokio);
                }),
                System::new("async-executor", || {
                    $f(&ae);
                }),
            ];
            eprintln!("  executor/{}", $name);
            out.push(wl($name, interleave(s, &mut sys)));
        }};
    }
    three!("spawn_many_local", w::spawn_many_local);
    {
        // What `baton::tokio` costs (target: within 5%), on tokio's own
        // runtime; `tokio+8B` is the control (see `TokioPadded`).
        eprintln!("  executor/spawn_many_local on tokio, baton::tokio::spawn");
        let tokio_baton = TokioBaton::sharing(&tokio);
        let tokio_padded = TokioPadded::sharing(&tokio);
        let mut sys = vec![
            System::new("tokio", || w::spawn_many_local(&tokio)),
            System::new("tokio+baton", || w::spawn_many_local(&tokio_baton)),
            System::new(TokioPadded::NAME, || w::spawn_many_local(&tokio_padded)),
        ];
        out.push(wl(
            "spawn_many_local on tokio: tokio::spawn vs baton::tokio::spawn",
            interleave(s, &mut sys),
        ));
    }
    three!("spawn_many_remote_idle", w::spawn_many_remote);
    {
        eprintln!("  executor/spawn_many_remote_busy");
        let r = [Cell::new(0), Cell::new(0), Cell::new(0)];
        let mut sys = vec![
            busy("baton", &baton, workers, &r[0]),
            busy("tokio", &tokio, workers, &r[1]),
            busy("async-executor", &ae, workers, &r[2]),
        ];
        out.push(wl("spawn_many_remote_busy", interleave(s, &mut sys)));
        drop(sys);
        for (c, n) in r.iter().zip(["baton", "tokio", "async-executor"]) {
            assert!(c.get() > 0, "{n}: the busy load never ran");
        }
    }
    three!("yield_many", w::yield_many);
    {
        eprintln!("  executor/yield_many + 1 bound var");
        let mut sys = vec![
            System::new("baton (ContextVar)", || {
                w::yield_many_wrapped(
                    &baton,
                    |i, fut| async move {
                        let _token = REQUEST.set(i as u64);
                        fut.await
                    },
                    |i| assert_eq!(REQUEST.get(), Some(i as u64)),
                )
            }),
            System::new("tokio (task_local!)", || {
                w::yield_many_wrapped(
                    &tokio,
                    |i, fut| TOKIO_U64.scope(i as u64, fut),
                    |i| assert_eq!(TOKIO_U64.get(), i as u64),
                )
            }),
        ];
        out.push(wl("yield_many + 1 bound var/task", interleave(s, &mut sys)));
    }
    three!("ping_pong", w::ping_pong);
    three!("chained_spawn", w::chained_spawn);
    three!("web_server", w::web_server);
    three!("channels", w::channels);
    out
}

/// Executor throughput as the number of workers grows: for each count,
/// `(workers, [yield_many, spawn_many_local])`.
pub fn workers_sweep(s: Settings, max: usize) -> Vec<(usize, Vec<Workload>)> {
    let mut out = Vec::new();
    for n in 1..=max.max(1) {
        eprintln!("  workers/{n}");
        let baton = Baton::with_workers(n);
        let tokio = Tokio::with_workers(n);
        let ae = AsyncExecutor::with_workers(n);
        let mut wls = Vec::new();
        macro_rules! three {
            ($name:expr, $f:path) => {{
                let mut sys = vec![
                    System::new("baton", || $f(&baton)),
                    System::new("tokio", || $f(&tokio)),
                    System::new("async-executor", || $f(&ae)),
                ];
                wls.push(wl(
                    format!("{}, {n} workers", $name),
                    interleave(s, &mut sys),
                ));
            }};
        }
        three!("yield_many", w::yield_many);
        three!("spawn_many_local", w::spawn_many_local);
        out.push((n, wls));
    }
    out
}

/// A context with `FACTOR` bound to 1, for the baton offloads.
fn factor_context() -> Context {
    let ctx = Context::new();
    ctx.run(|| {
        let _ = FACTOR.set(1);
    });
    ctx
}

/// Spans that follow the work vs `.instrument(span)` by hand, on one baton
/// runtime with `workers` workers (`workloads/spans.rs`). It installs a
/// global `tracing` subscriber, and with the first span captured the span
/// mirror, for the rest of the process: the report runs it last. At least
/// 200 rounds.
pub fn spans(s: Settings, workers: usize) -> Vec<Workload> {
    use crate::workloads::spans as sp;
    // An iteration is ~0.1 ms, and the two systems differ by a few
    // percent: many rounds (still only a few seconds) steady the medians.
    let s = Settings {
        rounds: s.rounds.max(200),
        ..s
    };
    sp::install_subscriber();
    let rt = baton::Builder::new()
        .worker_threads(workers)
        .build()
        .expect("baton runtime");
    let span = sp::request_span();
    let mut guard = vec![
        System::new("follow", || sp::follow(&rt, &span)),
        System::new(".instrument(span)", || sp::instrument(&rt, &span)),
    ];
    let guard = interleave(s, &mut guard);
    let mut task = vec![
        System::new("follow, from a task in the span", || {
            sp::follow_from_a_task(&rt, &span)
        }),
        System::new(".instrument(span), from a task", || {
            sp::instrument_from_a_task(&rt, &span)
        }),
    ];
    let task = interleave(s, &mut task);
    vec![
        wl(
            format!(
                "{} tasks spawned in a span entered by a guard, each yields once",
                sp::TASKS
            ),
            guard,
        ),
        wl(
            format!(
                "{} tasks spawned by a task in the span, each yields once",
                sp::TASKS
            ),
            task,
        ),
    ]
}

/// Bridge: `run_blocking` vs tokio `spawn_blocking` vs bare rayon; and
/// `.in_context()` on a parallel sum.
pub fn bridge(s: Settings, workers: usize) -> Vec<Workload> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .build()
        .expect("tokio runtime");
    let h = rt.handle().clone();
    let ctx = factor_context();
    let in_ctx = |f: &mut dyn FnMut()| ctx.run(f);
    let mut out = Vec::new();

    eprintln!("  bridge/offload_round_trip");
    let (i1, i2, i3) = (Cell::new(0u64), Cell::new(0u64), Cell::new(0u64));
    let next = |c: &Cell<u64>| {
        c.set(c.get() + 1);
        c.get()
    };
    let mut sys = vec![
        System::in_scope("baton run_blocking", in_ctx, || {
            round_trip(next(&i1), |i| baton_offload(move || job(black_box(i))))
        }),
        System::new("tokio spawn_blocking", || {
            round_trip(next(&i2), |i| tokio_offload(&h, move || job(black_box(i))))
        }),
        System::new("rayon::spawn + oneshot", || {
            round_trip(next(&i3), |i| rayon_offload(move || job(black_box(i))))
        }),
    ];
    out.push(wl("offload_round_trip", interleave(s, &mut sys)));
    drop(sys);

    eprintln!("  bridge/offload_10k");
    let mut sys = vec![
        System::in_scope("baton run_blocking", in_ctx, || {
            many(|i| baton_offload(move || job(i)))
        }),
        System::new("tokio spawn_blocking", || {
            many(|i| tokio_offload(&h, move || job(i)))
        }),
        System::new("rayon::spawn + oneshot", || {
            many(|i| rayon_offload(move || job(i)))
        }),
    ];
    out.push(wl("offload_10k", interleave(s, &mut sys)));
    drop(sys);

    eprintln!("  bridge/par_sum_10m");
    let expected = par_expected(PAR_ITEMS);
    let mut sys = vec![
        System::new("baton .in_context()", || {
            assert_eq!(par_sum_in_context(black_box(PAR_ITEMS)), expected)
        }),
        System::new("rayon (plain)", || {
            assert_eq!(par_sum_plain(black_box(PAR_ITEMS)), expected)
        }),
        System::in_scope(
            "baton .in_context(), reading a var per item",
            in_ctx,
            || assert_eq!(par_sum_in_context_reading(black_box(PAR_ITEMS)), expected),
        ),
    ];
    out.push(wl("par_sum_10m", interleave(s, &mut sys)));
    out
}

/// Runs `f` with the naive thread-local context set to `NaiveContext::bound(n)`.
fn with_naive(n: usize, f: &mut dyn FnMut()) {
    let prev = naive::enter(NaiveContext::bound(n));
    f();
    naive::enter(prev);
}

/// CPython's figure for `key` in the script's `ops` (or `sweep/op/n`).
fn cpython_stat(py: Option<&Value>, path: &[&str]) -> Option<Stats> {
    let mut v = py?;
    for p in path {
        v = v.get(p)?;
    }
    let ns = v.as_f64()?;
    let repeat = py?.get("repeat").and_then(Value::as_u64).unwrap_or(0) as usize;
    Some(Stats::external(
        "CPython contextvars (timeit best)",
        ns,
        ns,
        ns,
        repeat,
    ))
}

/// Context operations: baton vs tokio `task_local!` vs the naive COW
/// context (interleaved), plus CPython's figures from `py` (not interleaved).
pub fn context(s: Settings, py: Option<&Value>) -> Vec<Workload> {
    let mut out = Vec::new();
    let tokio_u64 = |f: &mut dyn FnMut()| TOKIO_U64.sync_scope(0, f);
    let tokio_str = |f: &mut dyn FnMut()| TOKIO_STR.sync_scope("value-0".into(), f);
    let mut push = |name: String, mut sys: Vec<System<'_>>, cp: Option<Stats>| {
        eprintln!("  context/{name}");
        let mut stats = interleave(s, &mut sys);
        stats.extend(cp);
        out.push(wl(name, stats));
    };
    for n in [1usize, 8, 64] {
        let ctx = bound_context(n);
        let run = |f: &mut dyn FnMut()| ctx.run(f);
        let var = probe_u64();
        assert_eq!(ctx.run(|| var.get()), Some(0));
        push(
            format!("get u64 ({n} bound)"),
            vec![
                System::in_scope("baton", run, || black_box(var).get()),
                System::in_scope("tokio task_local!", tokio_u64, || {
                    black_box(&TOKIO_U64).with(|v| *v)
                }),
                System::in_scope(
                    "naive Arc<HashMap>",
                    |f| with_naive(n, f),
                    || naive::get::<u64>(black_box(0)),
                ),
            ],
            cpython_stat(py, &["ops", &format!("get u64 ({n} bound)")]),
        );
        let sctx = bound_str_context(n);
        let srun = |f: &mut dyn FnMut()| sctx.run(f);
        push(
            format!("get Arc<str> ({n} bound)"),
            vec![
                System::in_scope("baton", srun, || black_box(probe_str()).get()),
                System::in_scope("tokio task_local!", tokio_str, || {
                    black_box(&TOKIO_STR).with(std::sync::Arc::clone)
                }),
                System::in_scope(
                    "naive Arc<HashMap>",
                    |f| with_naive(n, f),
                    || naive::get::<std::sync::Arc<str>>(black_box(1000)),
                ),
            ],
            cpython_stat(py, &["ops", &format!("get str ({n} bound)")]),
        );
        push(
            format!("set + reset ({n} bound)"),
            vec![
                System::in_scope("baton", run, || {
                    let token = var.set(black_box(42));
                    var.reset(token).expect("reset");
                }),
                System::new("tokio task_local! sync_scope", || {
                    TOKIO_U64.sync_scope(black_box(42), || ())
                }),
                System::in_scope(
                    "naive Arc<HashMap>",
                    |f| with_naive(n, f),
                    || {
                        let old = naive::set(0, black_box(42u64));
                        naive::reset(0, old);
                    },
                ),
            ],
            cpython_stat(py, &["ops", &format!("set+reset ({n} bound)")]),
        );
        push(
            format!("set + reset after copy ({n} bound)"),
            vec![
                System::in_scope("baton", run, || {
                    let copy = copy_context();
                    let token = var.set(black_box(42));
                    var.reset(token).expect("reset");
                    copy
                }),
                System::in_scope(
                    "naive Arc<HashMap>",
                    |f| with_naive(n, f),
                    || {
                        let copy = naive::copy();
                        let old = naive::set(0, black_box(42u64));
                        naive::reset(0, old);
                        copy
                    },
                ),
            ],
            None,
        );
        assert_eq!(ctx.run(|| var.get()), Some(0));
        push(
            format!("copy_context ({n} bound)"),
            vec![
                System::in_scope("baton", run, copy_context),
                System::in_scope("baton ContextCell", run, ContextCell::copy_current),
                System::in_scope("naive Arc<HashMap>", |f| with_naive(n, f), naive::copy),
            ],
            cpython_stat(py, &["ops", &format!("copy_context ({n} bound)")]),
        );
    }
    let ctx = bound_context(8);
    let run = |f: &mut dyn FnMut()| ctx.run(f);
    push(
        "get unbound (8 bound)".into(),
        vec![
            System::in_scope("baton", run, || black_box(&UNBOUND).get()),
            System::new("tokio task_local! (outside scope)", || {
                black_box(black_box(&TOKIO_U64).try_with(|v| *v).ok());
            }),
            System::in_scope(
                "naive Arc<HashMap>",
                |f| with_naive(8, f),
                || naive::get::<u64>(black_box(999)),
            ),
        ],
        cpython_stat(py, &["ops", "get unbound (8 bound)"]),
    );
    let mut nctx = NaiveContext::bound(8);
    // The same bindings in a `ContextCell`: not `Sync`, so entering it needs
    // no atomic read-modify-write (what a task's context is).
    let cell = ContextCell::new();
    cell.run(|| {
        for (i, var) in U64_VARS[..8].iter().enumerate() {
            let _ = var.set(i as u64);
        }
    });
    assert_eq!(cell.len(), 8);
    // The same bindings in a context that another thread has entered too:
    // a `Context` passed between threads. (While biased entering existed,
    // this was the row that showed its revoked, compare-and-swap path.)
    let passed = ctx.copy();
    for _ in 0..16 {
        passed.run(|| ());
    }
    std::thread::scope(|s| {
        s.spawn(|| passed.run(|| ()));
    });
    push(
        "ctx.run(noop) (8 bound)".into(),
        vec![
            System::new("baton", || black_box(&ctx).run(|| black_box(()))),
            System::new("baton, entered by two threads", || {
                black_box(&passed).run(|| black_box(()))
            }),
            System::new("baton ContextCell", || {
                black_box(&cell).run(|| black_box(()))
            }),
            System::new("tokio task_local! sync_scope", || {
                TOKIO_U64.sync_scope(black_box(1), || black_box(()))
            }),
            System::new("naive Arc<HashMap>", || {
                naive::run(black_box(&mut nctx), || black_box(()))
            }),
        ],
        cpython_stat(py, &["ops", "ctx.run(noop) overhead (8 bound)"]),
    );
    // One poll of an attached future that stays pending: what every poll of
    // a future wrapped by `attach` pays under another executor (tokio's),
    // beside the same poll unwrapped and inside tokio's `task_local!` scope.
    let mut sole = Box::pin(ctx.copy().attach(Pending));
    let mut shared = Box::pin(ctx.attach(Pending));
    let mut scoped = Box::pin(TOKIO_U64.scope(1, Pending));
    let mut bare = Box::pin(Pending);
    let poll = |fut: std::pin::Pin<&mut dyn std::future::Future<Output = ()>>| {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        black_box(fut.poll(&mut cx).is_pending())
    };
    push(
        "attach: poll (8 bound)".into(),
        vec![
            System::new("baton, sole handle", || {
                poll(sole.as_mut());
            }),
            System::new("baton, shared handle", || {
                poll(shared.as_mut());
            }),
            System::new("tokio task_local! scope", || {
                poll(scoped.as_mut());
            }),
            System::new("bare future", || {
                poll(bare.as_mut());
            }),
        ],
        None,
    );
    out
}

/// A future that is always pending and never registers its waker.
struct Pending;

impl std::future::Future for Pending {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, _: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        std::task::Poll::Pending
    }
}

/// Bound-var counts of the sweep.
pub const SWEEP_COUNTS: [usize; 7] = [1, 3, 10, 30, 100, 300, 1000];

/// The variables of the sweep.
static SWEEP_VARS: [ContextVar<u64>; 1000] = [const { ContextVar::new("sweep") }; 1000];

fn sweep_context(n: usize) -> Context {
    let ctx = Context::new();
    ctx.run(|| {
        for (i, v) in SWEEP_VARS[..n].iter().enumerate() {
            let _ = v.set(i as u64);
        }
    });
    assert_eq!(ctx.len(), n);
    assert_eq!(ctx.get(&SWEEP_VARS[n - 1]), Some(n as u64 - 1));
    ctx
}

/// get and set+reset as the number of bound vars grows: for each count,
/// `[get, set+reset]` (baton, naive, CPython).
pub fn vars_sweep(s: Settings, py: Option<&Value>) -> Vec<(usize, Vec<Workload>)> {
    let mut out = Vec::new();
    for n in SWEEP_COUNTS {
        eprintln!("  vars/{n}");
        let ctx = sweep_context(n);
        let run = |f: &mut dyn FnMut()| ctx.run(f);
        let var = &SWEEP_VARS[0];
        let nk = n.to_string();
        let mut sys = vec![
            System::in_scope("baton", run, || black_box(var).get()),
            System::in_scope(
                "naive Arc<HashMap>",
                |f| with_naive(n, f),
                || naive::get::<u64>(black_box(0)),
            ),
        ];
        let mut get = interleave(s, &mut sys);
        get.extend(cpython_stat(py, &["sweep", "get", &nk]));
        let mut sys = vec![
            System::in_scope("baton", run, || {
                let token = var.set(black_box(42));
                var.reset(token).expect("reset");
            }),
            System::in_scope(
                "naive Arc<HashMap>",
                |f| with_naive(n, f),
                || {
                    let old = naive::set(0, black_box(42u64));
                    naive::reset(0, old);
                },
            ),
        ];
        let mut set = interleave(s, &mut sys);
        set.extend(cpython_stat(py, &["sweep", "set+reset", &nk]));
        assert_eq!(ctx.run(|| var.get()), Some(0));
        out.push((
            n,
            vec![
                wl(format!("get ({n} bound)"), get),
                wl(format!("set + reset ({n} bound)"), set),
            ],
        ));
    }
    out
}
