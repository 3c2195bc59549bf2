//! `#[baton::main]`: an `async fn main` on a baton runtime of its own, as
//! Python's `asyncio.run(main())`.
//!
//! Run with `cargo run --example macros`.

// Python:
//
//     import asyncio
//     from contextvars import ContextVar
//     request_id = ContextVar("request_id", default="none")
//     async def handle(req_id):
//         request_id.set(req_id)
//         await asyncio.sleep(0.001)  # the other request runs meanwhile
//         return f"{req_id}: handled as {request_id.get()}"
//     async def main():
//         for line in await asyncio.gather(handle("req-1"), handle("req-2")):
//             print(line)
//         print(f"main sees: {request_id.get()}")
//     asyncio.run(main())

use std::io::{self, Write};
use std::time::Duration;

use baton::{ContextVar, Handle, TaskGroup, sleep};

static REQUEST_ID: ContextVar<&str> = ContextVar::with_default("request_id", "none");

async fn handle(req_id: &'static str) -> String {
    let _token = REQUEST_ID.set(req_id);
    sleep(Duration::from_millis(1)).await; // the other request runs meanwhile
    format!("{req_id}: handled as {}", REQUEST_ID.get().unwrap())
}

/// Runs the program on the current runtime and writes what it prints to
/// `out`.
pub(crate) async fn run(out: &mut impl Write) -> io::Result<()> {
    // asyncio.gather: each request in its own task, results in spawn order.
    let mut group = TaskGroup::new();
    group.spawn(handle("req-1"));
    group.spawn(handle("req-2"));
    for line in group.join_all().await.unwrap() {
        writeln!(out, "{line}")?;
    }
    // Nothing a task set came back to main's context.
    writeln!(out, "main sees: {}", REQUEST_ID.get().unwrap())?;
    writeln!(out, "workers: {}", Handle::current().metrics().workers)
}

// A plain `fn main() -> io::Result<()>` that starts a runtime of two
// workers and blocks on this body.
#[baton::main(worker_threads = 2)]
async fn main() -> io::Result<()> {
    run(&mut io::stdout().lock()).await
}
