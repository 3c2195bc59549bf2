//! Offloading blocking work: baton's `run_blocking` vs tokio's
//! `spawn_blocking` vs a bare `rayon::spawn` + oneshot (no context); and the
//! cost of `.in_context()` on a rayon `par_iter().map().sum()`.
//!
//! ```text
//! cargo bench -p baton-benches --bench bridge
//! ```
//!
//! Groups: `offload_round_trip` (one offload, awaited), `offload_10k`
//! (10,000 concurrent offloads, awaited together), `par_sum_10m`
//! (10 million items). Every offload is awaited from
//! `futures::executor::block_on` on the benchmark thread; the baton offloads
//! run inside a context with one variable bound, which each job copies.

#![forbid(unsafe_code)]
// `criterion_group!` defines an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;

use baton_benches::workers;
use baton_benches::workloads::bridge::{
    FACTOR, PAR_ITEMS, baton_offload, job, many, par_expected, par_sum_in_context,
    par_sum_in_context_reading, par_sum_plain, rayon_offload, round_trip, tokio_offload,
};
use baton_context::Context;
use criterion::{Criterion, criterion_group, criterion_main};

/// A context with `FACTOR` bound to 1, for the baton side.
fn baton_context() -> Context {
    let ctx = Context::new();
    ctx.run(|| {
        let _ = FACTOR.set(1);
    });
    ctx
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers())
        .build()
        .expect("tokio runtime")
}

fn offload_round_trip(c: &mut Criterion) {
    let mut g = c.benchmark_group("offload_round_trip");
    let ctx = baton_context();
    g.bench_function("baton_run_blocking", |b| {
        ctx.run(|| {
            let mut i = 0u64;
            b.iter(|| {
                i += 1;
                round_trip(i, |i| baton_offload(move || job(black_box(i))));
            })
        })
    });
    // The same from the thread's own, empty context: the context's size
    // should not matter (copying it is O(1)).
    let mut i = 0u64;
    g.bench_function("baton_run_blocking_empty_ctx", |b| {
        b.iter(|| {
            i += 1;
            round_trip(i, |i| baton_offload(move || job(black_box(i))));
        })
    });
    {
        let rt = tokio_runtime();
        let h = rt.handle().clone();
        let mut i = 0u64;
        g.bench_function("tokio_spawn_blocking", |b| {
            b.iter(|| {
                i += 1;
                round_trip(i, |i| tokio_offload(&h, move || job(black_box(i))));
            })
        });
    }
    let mut i = 0u64;
    g.bench_function("rayon_spawn_oneshot", |b| {
        b.iter(|| {
            i += 1;
            round_trip(i, |i| rayon_offload(move || job(black_box(i))));
        })
    });
    g.finish();
}

fn offload_10k(c: &mut Criterion) {
    let mut g = c.benchmark_group("offload_10k");
    let ctx = baton_context();
    g.bench_function("baton_run_blocking", |b| {
        ctx.run(|| b.iter(|| many(|i| baton_offload(move || job(i)))))
    });
    {
        let rt = tokio_runtime();
        let h = rt.handle().clone();
        g.bench_function("tokio_spawn_blocking", |b| {
            b.iter(|| many(|i| tokio_offload(&h, move || job(i))))
        });
    }
    g.bench_function("rayon_spawn_oneshot", |b| {
        b.iter(|| many(|i| rayon_offload(move || job(i))))
    });
    g.finish();
}

fn par_sum_10m(c: &mut Criterion) {
    let mut g = c.benchmark_group("par_sum_10m");
    let expected = par_expected(PAR_ITEMS);
    g.bench_function("rayon", |b| {
        b.iter(|| assert_eq!(par_sum_plain(black_box(PAR_ITEMS)), expected))
    });
    g.bench_function("baton_in_context", |b| {
        b.iter(|| assert_eq!(par_sum_in_context(black_box(PAR_ITEMS)), expected))
    });
    let ctx = baton_context();
    g.bench_function("baton_in_context_reading_var", |b| {
        ctx.run(|| {
            b.iter(|| assert_eq!(par_sum_in_context_reading(black_box(PAR_ITEMS)), expected))
        })
    });
    g.finish();
}

criterion_group!(benches, offload_round_trip, offload_10k, par_sum_10m);
criterion_main!(benches);
