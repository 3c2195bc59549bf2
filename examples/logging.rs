//! Tracing and logging: every log line carries the current trace id, also
//! from tasks that interleave and move between worker threads.
//!
//! Run with `cargo run --example logging`.

// Python, from "Context Variables with contextvars" (Tracing and Logging):
//
//     from contextvars import ContextVar
//     import logging
//     trace_id = ContextVar("trace_id", default="no-trace")
//     logger = logging.getLogger(__name__)
//     class ContextFilter(logging.Filter):
//         def filter(self, record):
//             record.trace_id = trace_id.get()
//             return True
//     # In your async code
//     async def handle_request():
//         import uuid
//         trace_id.set(str(uuid.uuid4()))
//         logger.info("Starting request")
//         await do_work()
//         logger.info("Request complete")
//
// `ContextFields` is the `ContextFilter` of `tracing` (a formatter that
// appends chosen ContextVars to every event), `ContextLogger` that of the
// `log` crate (a wrapper around any `log::Log`).

use std::io::{self, Write};
use std::time::Duration;

use baton::log::ContextLogger;
use baton::tracing::ContextFields;
use baton::{ContextVar, Runtime, TaskGroup, sleep, yield_now};
use tracing_subscriber::fmt::MakeWriter;

/// The trace id of the current request.
pub(crate) static TRACE_ID: ContextVar<String> =
    ContextVar::with_default_fn("trace_id", || "no-trace".to_string());

/// `str(uuid.uuid4())`, made reproducible: derived from the request number.
pub(crate) fn trace_id_for(n: u32) -> String {
    let x = u64::from(n)
        .wrapping_add(1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!(
        "{:08x}-{:04x}-4{:03x}",
        x >> 32,
        (x >> 16) & 0xffff,
        x & 0xfff
    )
}

async fn handle_request(n: u32) {
    let _token = TRACE_ID.set(trace_id_for(n));
    tracing::info!(request = n, "Starting request");
    do_work(n).await;
    tracing::info!(request = n, "Request complete");
}

async fn do_work(n: u32) {
    for step in 0..3 {
        // Other requests run meanwhile; this one may resume on another worker.
        sleep(Duration::from_millis(1)).await;
        tracing::debug!(request = n, step, "working");
        yield_now().await;
    }
    // A library that logs with the `log` crate gets the trace id too.
    log::info!("cache warmed for request={n}");
}

/// Serves `requests` concurrent requests on a multi-worker runtime.
pub(crate) fn serve(requests: u32) {
    tracing::info!("serving {requests} requests");
    Runtime::new().block_on(async {
        let mut group = TaskGroup::new();
        for n in 0..requests {
            group.spawn(handle_request(n));
        }
        group.join_all().await.unwrap();
    });
    tracing::info!("done");
}

/// A minimal `log` backend: one line per record, like the `tracing` lines.
struct LineLogger<W>(W);

impl<W> log::Log for LineLogger<W>
where
    W: for<'a> MakeWriter<'a> + Send + Sync,
{
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            // One write per line, so that lines from threads do not mix.
            let line = format!("{:>5} [log] {}\n", record.level(), record.args());
            let _ = self.0.make_writer().write_all(line.as_bytes());
        }
    }

    fn flush(&self) {}
}

/// Installs, for the whole process, a `tracing` subscriber and a `log`
/// logger that write to `writer`, each line ending with the trace id.
///
/// # Panics
///
/// If a subscriber or logger is already installed.
pub(crate) fn install<W>(writer: W)
where
    W: for<'a> MakeWriter<'a> + Clone + Send + Sync + 'static,
{
    let format = tracing_subscriber::fmt::format()
        .without_time()
        .with_target(false);
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .event_format(ContextFields::new().with(&TRACE_ID).format(format))
        .with_writer(writer.clone())
        .finish();
    tracing::subscriber::set_global_default(subscriber).expect("no subscriber yet");
    ContextLogger::new(LineLogger(writer))
        .with(&TRACE_ID)
        .init(log::LevelFilter::Info)
        .expect("no logger yet");
}

fn main() {
    install(io::stdout);
    serve(3);
}
