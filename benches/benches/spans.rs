//! Spans that follow the work (baton's `tracing` mirror) against the
//! hand-written way: each spawned future wrapped in `.instrument(span)`.
//!
//! ```text
//! cargo bench -p baton-benches --bench spans
//! ```
//!
//! The workloads are `baton_benches::workloads::spans` (see there); the
//! report's `spans` group runs the same four interleaved, in pairs. The
//! targets: `follow` ≤ 1.1 × `instrument`, and
//! `follow_from_a_task_in_the_span` ≤ 1.1 × `instrument_from_a_task`.

#![forbid(unsafe_code)]
// `criterion_group!` defines an undocumented `pub fn`.
#![allow(missing_docs)]

use baton_benches::workloads::spans as w;
use criterion::{Criterion, criterion_group, criterion_main};

fn spans(c: &mut Criterion) {
    w::install_subscriber();
    let rt = baton::Builder::new().worker_threads(2).build().unwrap();
    let span = w::request_span();
    let mut g = c.benchmark_group("spawn_in_span");
    g.bench_function("follow", |b| b.iter(|| w::follow(&rt, &span)));
    g.bench_function("follow_from_a_task_in_the_span", |b| {
        b.iter(|| w::follow_from_a_task(&rt, &span))
    });
    g.bench_function("instrument", |b| b.iter(|| w::instrument(&rt, &span)));
    g.bench_function("instrument_from_a_task", |b| {
        b.iter(|| w::instrument_from_a_task(&rt, &span))
    });
    g.finish();
}

criterion_group!(benches, spans);
criterion_main!(benches);
