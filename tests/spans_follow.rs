//! Spans follow the work (feature `tracing`): the span current when work is
//! created is the current span while it runs — in spawned tasks, blocking
//! closures, rayon jobs and fork-join — through the context's span mirror.
//! Its own test binary: it installs a global subscriber.
#![cfg(all(feature = "tracing", feature = "rayon"))]

use std::sync::Mutex;

use rayon::iter::{IntoParallelIterator, ParallelIterator};
use tracing::{Subscriber, info, info_span};
use tracing_subscriber::layer::{Context as LayerContext, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

use baton::bridge::{ParallelIteratorExt, join, run_blocking};
use baton::{Runtime, spawn, spawn_blocking};

/// Each event's message and the names of its spans, innermost first.
static SEEN: Mutex<Vec<(String, Vec<String>)>> = Mutex::new(Vec::new());

struct Scopes;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Scopes {
    fn on_event(&self, event: &tracing::Event<'_>, ctx: LayerContext<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{v:?}");
                }
            }
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        let spans = ctx
            .event_scope(event)
            .map(|scope| scope.map(|span| span.name().to_owned()).collect())
            .unwrap_or_default();
        SEEN.lock().unwrap().push((message.0, spans));
    }
}

fn spans_of(message: &str) -> Vec<Vec<String>> {
    SEEN.lock()
        .unwrap()
        .iter()
        .filter(|(m, _)| m == message)
        .map(|(_, spans)| spans.clone())
        .collect()
}

#[test]
fn the_span_current_at_creation_is_current_where_the_work_runs() {
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(Scopes)).unwrap();
    let rt = Runtime::new();
    let request = info_span!("request");
    let _entered = request.enter();
    rt.block_on(async {
        let handle = {
            let inner = info_span!("inner");
            let _inner = inner.enter();
            spawn(async {
                baton::yield_now().await; // polled again, maybe elsewhere
                info!("in a spawned task");
            })
        };
        handle.await.unwrap();
        spawn_blocking(|| info!("in spawn_blocking")).await.unwrap();
        run_blocking(|| {
            info!("in run_blocking");
            join(|| info!("in join a"), || info!("in join b"));
            (0..4)
                .into_par_iter()
                .in_context()
                .for_each(|_| info!("in in_context"));
        })
        .await;
    });
    drop(_entered);
    // Outside every span: spawned work has none either.
    rt.block_on(async { spawn(async { info!("no span") }).await.unwrap() });

    let request_only = || vec!["request".to_owned()];
    assert_eq!(
        spans_of("in a spawned task"),
        [vec!["inner".to_owned(), "request".to_owned()]]
    );
    assert_eq!(spans_of("in spawn_blocking"), [request_only()]);
    assert_eq!(spans_of("in run_blocking"), [request_only()]);
    assert_eq!(spans_of("in join a"), [request_only()]);
    assert_eq!(spans_of("in join b"), [request_only()]);
    assert_eq!(spans_of("in in_context"), vec![request_only(); 4]);
    assert_eq!(spans_of("no span"), [Vec::<String>::new()]);
}
