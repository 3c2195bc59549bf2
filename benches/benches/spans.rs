//! Spans that follow the work (baton's `tracing` mirror) against the
//! hand-written way: each spawned future wrapped in `.instrument(span)`.
//!
//! ```text
//! cargo bench -p baton-benches --bench spans
//! ```
//!
//! Both spawn 100 tasks that yield once and finish, and both poll every
//! task inside the span: `follow` spawns while the span is entered and lets
//! the context carry it; `instrument` spawns outside any span, each future
//! instrumented by hand; `follow_from_a_task_in_the_span` spawns from a
//! task that already carries the span, as a request handler does. A `tracing-subscriber` registry (no output) is the
//! global subscriber, as in a service. The target: `follow` ≤ 1.1 ×
//! `instrument`.

#![forbid(unsafe_code)]
// `criterion_group!` defines an undocumented `pub fn`.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use tracing::Instrument;

const TASKS: usize = 100;

fn spans(c: &mut Criterion) {
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
    let rt = baton::Builder::new().worker_threads(2).build().unwrap();
    let span = tracing::info_span!("request");
    let mut g = c.benchmark_group("spawn_in_span");
    g.bench_function("follow", |b| {
        b.iter(|| {
            rt.block_on(async {
                let handles: Vec<_> = {
                    let _entered = span.enter();
                    (0..TASKS)
                        .map(|_| baton::spawn(async { baton::yield_now().await }))
                        .collect()
                };
                for handle in handles {
                    handle.await.unwrap();
                }
            })
        })
    });
    // As in a service: the spawner is a task that already runs in the span
    // (its context carries it), so copies inherit it.
    g.bench_function("follow_from_a_task_in_the_span", |b| {
        b.iter(|| {
            let spawner = {
                let _entered = span.enter();
                rt.spawn(async {
                    let handles: Vec<_> = (0..TASKS)
                        .map(|_| baton::spawn(async { baton::yield_now().await }))
                        .collect();
                    for handle in handles {
                        handle.await.unwrap();
                    }
                })
            };
            rt.block_on(spawner).unwrap()
        })
    });
    g.bench_function("instrument", |b| {
        b.iter(|| {
            rt.block_on(async {
                let handles: Vec<_> = (0..TASKS)
                    .map(|_| {
                        baton::spawn(async { baton::yield_now().await }.instrument(span.clone()))
                    })
                    .collect();
                for handle in handles {
                    handle.await.unwrap();
                }
            })
        })
    });
    g.finish();
}

criterion_group!(benches, spans);
criterion_main!(benches);
