//! Context-variable operations: baton vs tokio `task_local!` vs a naive
//! copy-on-write `Arc<HashMap>` context (and, via `benches/python/context_ops.py`,
//! vs CPython's `contextvars`).
//!
//! ```text
//! cargo bench -p baton-benches --bench context_ops
//! python3 benches/python/context_ops.py        # CPython side + the table
//! ```
//!
//! Groups (criterion ids are `<group>/<system>/<bound vars>`):
//! `get_u64`, `get_arc_str`, `get_unbound`, `set_reset`, `set_reset_after_copy`,
//! `copy_context`, `run_noop`, `attach_poll`, `set_reset_sealed` (the same
//! as `set_reset`, on a sealed thread).

#![forbid(unsafe_code)]
// `criterion_group!` defines an undocumented `pub fn`.
#![allow(missing_docs)]

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Waker};

use baton_benches::workloads::context::{
    BOUND_COUNTS, NaiveContext, TOKIO_STR, TOKIO_U64, UNBOUND, bound_context, bound_str_context,
    naive, probe_str, probe_u64,
};
use baton_context::{ContextCell, copy_context};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

/// Runs `f` with the naive thread-local context set to `NaiveContext::bound(n)`.
fn with_naive<R>(n: usize, f: impl FnOnce() -> R) -> R {
    let prev = naive::enter(NaiveContext::bound(n));
    let r = f();
    naive::enter(prev);
    r
}

fn get(c: &mut Criterion) {
    let mut g = c.benchmark_group("get_u64");
    for n in BOUND_COUNTS {
        let ctx = bound_context(n);
        g.bench_function(BenchmarkId::new("baton", n), |b| {
            ctx.run(|| {
                let var = probe_u64();
                assert_eq!(var.get(), Some(0));
                b.iter(|| black_box(var).get());
            })
        });
        g.bench_function(BenchmarkId::new("naive_cow", n), |b| {
            with_naive(n, || {
                assert_eq!(naive::get::<u64>(0), Some(0));
                b.iter(|| naive::get::<u64>(black_box(0)));
            })
        });
    }
    g.bench_function("tokio_task_local", |b| {
        TOKIO_U64.sync_scope(0, || {
            assert_eq!(TOKIO_U64.get(), 0);
            b.iter(|| black_box(&TOKIO_U64).with(|v| *v));
        })
    });
    g.finish();

    let mut g = c.benchmark_group("get_arc_str");
    for n in BOUND_COUNTS {
        let ctx = bound_str_context(n);
        g.bench_function(BenchmarkId::new("baton", n), |b| {
            ctx.run(|| {
                let var = probe_str();
                assert_eq!(var.get().as_deref(), Some("value-0"));
                b.iter(|| black_box(var).get());
            })
        });
        g.bench_function(BenchmarkId::new("naive_cow", n), |b| {
            with_naive(n, || {
                assert_eq!(naive::get::<Arc<str>>(1000).as_deref(), Some("value-0"));
                b.iter(|| naive::get::<Arc<str>>(black_box(1000)));
            })
        });
    }
    g.bench_function("tokio_task_local", |b| {
        TOKIO_STR.sync_scope(Arc::from("value-0"), || {
            b.iter(|| black_box(&TOKIO_STR).with(Arc::clone));
        })
    });
    g.finish();

    let mut g = c.benchmark_group("get_unbound");
    let ctx = bound_context(8);
    g.bench_function(BenchmarkId::new("baton", 8), |b| {
        ctx.run(|| {
            assert_eq!(UNBOUND.get(), None);
            b.iter(|| black_box(&UNBOUND).get());
        })
    });
    g.bench_function(BenchmarkId::new("naive_cow", 8), |b| {
        with_naive(8, || {
            assert_eq!(naive::get::<u64>(999), None);
            b.iter(|| naive::get::<u64>(black_box(999)));
        })
    });
    g.bench_function("tokio_task_local", |b| {
        assert!(TOKIO_U64.try_with(|v| *v).is_err());
        b.iter(|| black_box(&TOKIO_U64).try_with(|v| *v).ok());
    });
    g.finish();
}

fn set_reset(c: &mut Criterion) {
    let mut g = c.benchmark_group("set_reset");
    for n in BOUND_COUNTS {
        let ctx = bound_context(n);
        g.bench_function(BenchmarkId::new("baton", n), |b| {
            ctx.run(|| {
                let var = probe_u64();
                b.iter(|| {
                    let token = var.set(black_box(42));
                    var.reset(token).expect("reset");
                });
                assert_eq!(var.get(), Some(0));
            })
        });
        g.bench_function(BenchmarkId::new("naive_cow", n), |b| {
            with_naive(n, || {
                b.iter(|| {
                    let old = naive::set(0, black_box(42u64));
                    naive::reset(0, old);
                });
                assert_eq!(naive::get::<u64>(0), Some(0));
            })
        });
    }
    g.bench_function("tokio_task_local", |b| {
        b.iter(|| TOKIO_U64.sync_scope(black_box(42), || ()));
    });
    g.finish();

    // The pattern of a task that sets a variable in the context it was
    // spawned with: the map is shared with the copy, so a copy-on-write map
    // clones it whole, a persistent map copies one path.
    let mut g = c.benchmark_group("set_reset_after_copy");
    for n in BOUND_COUNTS {
        let ctx = bound_context(n);
        g.bench_function(BenchmarkId::new("baton", n), |b| {
            ctx.run(|| {
                let var = probe_u64();
                b.iter(|| {
                    let copy = copy_context();
                    let token = var.set(black_box(42));
                    var.reset(token).expect("reset");
                    copy
                });
                assert_eq!(var.get(), Some(0));
            })
        });
        g.bench_function(BenchmarkId::new("naive_cow", n), |b| {
            with_naive(n, || {
                b.iter(|| {
                    let copy = naive::copy();
                    let old = naive::set(0, black_box(42u64));
                    naive::reset(0, old);
                    copy
                });
                assert_eq!(naive::get::<u64>(0), Some(0));
            })
        });
    }
    g.finish();
}

fn copy(c: &mut Criterion) {
    let mut g = c.benchmark_group("copy_context");
    for n in BOUND_COUNTS {
        let ctx = bound_context(n);
        g.bench_function(BenchmarkId::new("baton", n), |b| {
            ctx.run(|| {
                assert_eq!(copy_context().len(), n);
                b.iter(copy_context);
            })
        });
        g.bench_function(BenchmarkId::new("baton_cell", n), |b| {
            ctx.run(|| {
                assert_eq!(ContextCell::copy_current().len(), n);
                b.iter(ContextCell::copy_current);
            })
        });
        g.bench_function(BenchmarkId::new("naive_cow", n), |b| {
            with_naive(n, || {
                assert_eq!(naive::copy().len(), 2 * n);
                b.iter(naive::copy);
            })
        });
    }
    g.finish();
}

fn run_noop(c: &mut Criterion) {
    let mut g = c.benchmark_group("run_noop");
    let ctx = bound_context(8);
    g.bench_function(BenchmarkId::new("baton", 8), |b| {
        assert_eq!(ctx.run(|| probe_u64().get()), Some(0));
        b.iter(|| black_box(&ctx).run(|| black_box(())));
    });
    let cell = bound_context(8).run(ContextCell::copy_current);
    g.bench_function(BenchmarkId::new("baton_cell", 8), |b| {
        b.iter(|| black_box(&cell).run(|| black_box(())));
    });
    let mut nctx = NaiveContext::bound(8);
    g.bench_function(BenchmarkId::new("naive_cow", 8), |b| {
        b.iter(|| naive::run(black_box(&mut nctx), || black_box(())));
    });
    g.bench_function("tokio_task_local", |b| {
        // The closest tokio operation: bind a task-local around a closure.
        b.iter(|| TOKIO_U64.sync_scope(black_box(1), || black_box(())));
    });
    g.finish();
}

/// A future that is always pending and never registers its waker.
struct Pending;

impl Future for Pending {
    type Output = ();
    fn poll(self: std::pin::Pin<&mut Self>, _cx: &mut TaskContext<'_>) -> Poll<()> {
        Poll::Pending
    }
}

fn attach_poll(c: &mut Criterion) {
    let mut g = c.benchmark_group("attach_poll");
    let waker = Waker::noop();
    let mut cx = TaskContext::from_waker(waker);
    let ctx = bound_context(8);

    g.bench_function("bare_pending", |b| {
        let mut fut = pin!(Pending);
        b.iter(|| black_box(fut.as_mut().poll(&mut cx)));
    });
    g.bench_function("baton_pending", |b| {
        let mut fut = pin!(ctx.attach(Pending));
        b.iter(|| black_box(fut.as_mut().poll(&mut cx)));
    });
    g.bench_function("tokio_task_local_pending", |b| {
        let mut fut = pin!(TOKIO_U64.scope(1, Pending));
        b.iter(|| black_box(fut.as_mut().poll(&mut cx)));
    });
    // attach + one poll of a ready future + drop (inside the context).
    g.bench_function("baton_ready_once", |b| {
        b.iter(|| {
            let fut = pin!(ctx.attach(async { probe_u64().get() }));
            match fut.poll(&mut cx) {
                Poll::Ready(v) => v,
                Poll::Pending => unreachable!(),
            }
        });
    });
    g.finish();
}

/// `set_reset/baton` on a sealed thread (`seal_thread`), inside a context,
/// as a task on one of baton's workers sets: the seal's check must cost
/// nothing there either. Last, because it seals the benchmark thread.
fn set_reset_sealed(c: &mut Criterion) {
    baton_context::seal_thread();
    let mut g = c.benchmark_group("set_reset_sealed");
    for n in BOUND_COUNTS {
        let ctx = bound_context(n);
        g.bench_function(BenchmarkId::new("baton", n), |b| {
            ctx.run(|| {
                let var = probe_u64();
                b.iter(|| {
                    let token = var.set(black_box(42));
                    var.reset(token).expect("reset");
                });
                assert_eq!(var.get(), Some(0));
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    get,
    set_reset,
    copy,
    run_noop,
    attach_poll,
    set_reset_sealed
);
criterion_main!(benches);
