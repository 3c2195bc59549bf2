//! OpenTelemetry spans that follow the work (feature `opentelemetry`): a
//! request span, and child spans started in a spawned task and in a rayon
//! job, with no `.with_context(..)` anywhere — baton's context carries
//! OpenTelemetry's. The spans are exported to stdout: every child shows the
//! request's `TraceId` and its `SpanId` as `ParentSpanId`.
//!
//! `cargo run --example otel_spans --features opentelemetry`

use opentelemetry::Context as OtelContext;
use opentelemetry::trace::{Span as _, TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry_sdk::trace::SdkTracerProvider;

fn main() {
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(opentelemetry_stdout::SpanExporter::default())
        .build();
    let tracer = provider.tracer("otel_spans");

    let request = tracer.start("request");
    let attached = OtelContext::current_with_span(request).attach();
    baton::Runtime::new().block_on(async {
        let t = tracer.clone();
        baton::spawn(async move {
            let mut db = t.start("db query (in a spawned task)");
            baton::yield_now().await;
            db.end();
        })
        .await
        .unwrap();
        let t = tracer.clone();
        baton::bridge::run_blocking(move || t.start("hashing (on rayon)").end()).await;
    });
    drop(attached);
    OtelContext::current().span().end();
    let _ = provider.shutdown();
}
