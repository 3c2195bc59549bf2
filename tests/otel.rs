//! OpenTelemetry's current context follows the work (feature
//! `opentelemetry`): spans started in spawned tasks, blocking closures and
//! rayon jobs are children of the span active where the work was created.
#![cfg(all(feature = "opentelemetry", feature = "rayon"))]

use opentelemetry::trace::{Span as _, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context as OtelContext, trace::SpanId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};

use baton::bridge::{join, run_blocking};
use baton::{Runtime, spawn, spawn_blocking};

#[test]
fn spans_started_in_offloaded_work_are_children_of_the_creators_span() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let tracer = provider.tracer("baton-test");
    let rt = Runtime::new();

    let request = tracer.start("request");
    let request_id = request.span_context().span_id();
    let trace_id = request.span_context().trace_id();
    let attached = OtelContext::current_with_span(request).attach();
    rt.block_on(async {
        let t = tracer.clone();
        spawn(async move {
            baton::yield_now().await;
            t.start("in a task").end();
        })
        .await
        .unwrap();
        let t = tracer.clone();
        spawn_blocking(move || t.start("in spawn_blocking").end())
            .await
            .unwrap();
        let t = tracer.clone();
        run_blocking(move || {
            t.start("in run_blocking").end();
            join(|| t.start("in join a").end(), || t.start("in join b").end());
        })
        .await;
    });
    drop(attached);
    // Outside the span: a task's span is a root.
    let t = tracer.clone();
    rt.block_on(async move {
        spawn(async move { t.start("no parent").end() })
            .await
            .unwrap()
    });
    OtelContext::current().span().end();
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let parent_of = |name: &str| {
        let span = spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("{name}"));
        (span.parent_span_id, span.span_context.trace_id())
    };
    for name in [
        "in a task",
        "in spawn_blocking",
        "in run_blocking",
        "in join a",
        "in join b",
    ] {
        assert_eq!(parent_of(name), (request_id, trace_id), "{name}");
    }
    assert_eq!(parent_of("no parent").0, SpanId::INVALID);
}
