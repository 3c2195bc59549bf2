//! Offloading blocking work: `run_blocking` carries a copy of the context
//! to rayon; a bare `rayon::spawn` sees nothing (the `run_in_executor`
//! pitfall).
//!
//! Run with `cargo run --example rayon_offload`.

// From "How does Python's contextvars module maintain distinct logical
// execution contexts ...":
//
// "when using concurrent.futures.ThreadPoolExecutor or loop.run_in_executor(),
// the callable executes in a different OS thread that starts with an empty
// context by default. Candidates often assume context propagates across
// thread boundaries like thread-local storage does, but contextvars are
// specific to the logical async context. To propagate values to threads, you
// must explicitly capture the context using contextvars.copy_context() and
// run the function within it via context.run()"
//
// The document gives no program for this; in Python it reads:
//
//     request_id = ContextVar("request_id", default="unknown")
//     def resize_image():
//         return f"resizing for {request_id.get()}"
//     async def handler():
//         request_id.set("req-42")
//         loop = asyncio.get_running_loop()
//         print(await loop.run_in_executor(None, resize_image))
//         # resizing for unknown
//         print(await loop.run_in_executor(None, copy_context().run, resize_image))
//         # resizing for req-42

use std::io::{self, Write};

use baton::bridge::{ParallelIteratorExt, RunBlocking, run_blocking};
use baton::{Context, ContextVar, Runtime};
use rayon::prelude::*;

static REQUEST_ID: ContextVar<&str> = ContextVar::with_default("request_id", "unknown");

/// Blocking work: CPU-bound, must not run on the async workers.
fn resize_image() -> String {
    format!("resizing for {}", REQUEST_ID.get().unwrap())
}

/// `rayon::spawn(f)` and a channel back: what you would write without the
/// bridge.
async fn bare_rayon<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = futures::channel::oneshot::channel();
    rayon::spawn(move || {
        let _ = tx.send(f());
    });
    rx.await.expect("the job ran")
}

async fn handler() -> Vec<String> {
    let _token = REQUEST_ID.set("req-42");
    let mut lines = Vec::new();

    // The pitfall: a bare rayon job, like run_in_executor(None, f). The rayon
    // thread runs in its own context, which knows nothing of the request.
    lines.push(format!(
        "rayon::spawn:     {}",
        bare_rayon(resize_image).await
    ));

    // run_blocking: like run_in_executor(None, copy_context().run, f), or
    // asyncio.to_thread(f).
    lines.push(format!(
        "run_blocking:     {}",
        run_blocking(resize_image).await
    ));

    // The job runs in a copy: what it sets does not come back.
    run_blocking(|| {
        let _token = REQUEST_ID.set("changed-in-the-job");
    })
    .await;
    lines.push(format!("after the job:    {}", REQUEST_ID.get().unwrap()));

    // ctx.run_blocking: the job runs in `ctx` itself, and its sets land there.
    let ctx = Context::new();
    ctx.run_blocking(|| {
        let _token = REQUEST_ID.set("req-43");
    })
    .await;
    lines.push(format!(
        "ctx after its job: {}",
        ctx.get(&REQUEST_ID).unwrap()
    ));

    // Parallel iterators: each closure runs on some rayon thread. Bare, they
    // see nothing; after `.in_context()`, they all see the request's values.
    let bare: Vec<_> = bare_rayon(|| {
        (0..4)
            .into_par_iter()
            .map(|i| format!("{i}:{}", REQUEST_ID.get().unwrap()))
            .collect()
    })
    .await;
    lines.push(format!("par_iter:            {}", bare.join(" ")));
    let carried: Vec<_> = run_blocking(|| {
        (0..4)
            .into_par_iter()
            .in_context()
            .map(|i| format!("{i}:{}", REQUEST_ID.get().unwrap()))
            .collect()
    })
    .await;
    lines.push(format!("par_iter.in_context: {}", carried.join(" ")));
    lines
}

/// Runs the program and writes what it prints to `out`.
pub(crate) fn run(out: &mut impl Write) -> io::Result<()> {
    for line in Runtime::new().block_on(handler()) {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn main() -> io::Result<()> {
    run(&mut io::stdout().lock())
}
