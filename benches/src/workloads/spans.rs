//! Spans that follow the work (baton's `tracing` mirror) against the
//! hand-written way: each spawned future wrapped in `.instrument(span)`.
//!
//! All four spawn [`TASKS`] tasks that yield once and finish, and all poll
//! every task inside the span:
//!
//! * [`follow`] spawns while the span is entered (by a guard, outside any
//!   task) and lets each task's copy of the context capture it;
//! * [`follow_from_a_task`] spawns from a task that already carries the
//!   span in its context, as a request handler does: the copies inherit it;
//! * [`instrument`] spawns outside any span, each future instrumented by
//!   hand;
//! * [`instrument_from_a_task`] does the same from a task, the control for
//!   [`follow_from_a_task`]: spawns from a worker go to its own queue, where
//!   spawns from `block_on` are injected, so each `follow` is compared with
//!   the `instrument` that spawns from the same place.
//!
//! The target: `follow` ≤ 1.1 × `instrument`, and `follow_from_a_task` ≤
//! 1.1 × `instrument_from_a_task`. A `tracing-subscriber`
//! registry (no output) must be the global subscriber, as in a service:
//! [`install_subscriber`]. Once a span has been captured the mirror stays
//! installed for the rest of the process, so every later context entry
//! runs its hooks: measure anything else first, or in another process.

use baton::Runtime;
use tracing::{Instrument, Span};

/// Tasks spawned per iteration.
pub const TASKS: usize = 100;

/// Makes a `tracing-subscriber` registry the global subscriber (once).
pub fn install_subscriber() {
    let _ = tracing::subscriber::set_global_default(tracing_subscriber::registry());
}

/// A span to spawn in (call [`install_subscriber`] first).
pub fn request_span() -> Span {
    tracing::info_span!("request")
}

/// Spawns [`TASKS`] tasks from `block_on` while `span` is entered; the
/// copies capture it.
pub fn follow(rt: &Runtime, span: &Span) {
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
}

/// Spawns [`TASKS`] tasks from a task whose context carries `span`.
pub fn follow_from_a_task(rt: &Runtime, span: &Span) {
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
}

/// Spawns [`TASKS`] tasks outside any span, each `.instrument(span)`ed.
pub fn instrument(rt: &Runtime, span: &Span) {
    rt.block_on(async {
        let handles: Vec<_> = (0..TASKS)
            .map(|_| baton::spawn(async { baton::yield_now().await }.instrument(span.clone())))
            .collect();
        for handle in handles {
            handle.await.unwrap();
        }
    })
}

/// Spawns [`TASKS`] tasks, each `.instrument(span)`ed, from a task outside
/// any span (so nothing is captured): [`instrument`] from where
/// [`follow_from_a_task`] spawns.
pub fn instrument_from_a_task(rt: &Runtime, span: &Span) {
    let span = span.clone();
    let spawner = rt.spawn(async move {
        let handles: Vec<_> = (0..TASKS)
            .map(|_| baton::spawn(async { baton::yield_now().await }.instrument(span.clone())))
            .collect();
        for handle in handles {
            handle.await.unwrap();
        }
    });
    rt.block_on(spawner).unwrap()
}
