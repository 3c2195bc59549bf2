//! Spawned tasks inherit the spawner's values, taken at spawn time.
//!
//! Run with `cargo run --example spawn_inherits`.

// Python, from "Context Variables with contextvars":
//
//     import asyncio
//     from contextvars import ContextVar
//     request_id = ContextVar("request_id", default=None)
//     async def log_request():
//         # This runs in the task's context
//         print(f"Logging request: {request_id.get()}")
//     async def handle_request(req_id):
//         request_id.set(req_id)
//         # Creating a task inherits the context
//         task = asyncio.create_task(log_request())
//         await task
//     async def main():
//         await asyncio.gather(
//             handle_request("req-1"),
//             handle_request("req-2"),
//         )
//     asyncio.run(main())
//     # Output:
//     # Logging request: req-1
//     # Logging request: req-2

use std::io::{self, Write};

use baton::{ContextVar, Runtime, TaskGroup, spawn, yield_now};

static REQUEST_ID: ContextVar<&str> = ContextVar::new("request_id");

async fn log_request() -> String {
    // This runs in the task's context.
    yield_now().await; // and may resume on another worker: still its own
    format!("Logging request: {}", REQUEST_ID.get().unwrap_or("None"))
}

async fn handle_request(req_id: &'static str) -> String {
    let _token = REQUEST_ID.set(req_id);
    // Creating a task inherits the context.
    let task = spawn(log_request());
    task.await.unwrap()
}

/// The copy is taken at spawn time: later changes, on either side, are not
/// shared.
async fn copy_at_spawn_time() -> Vec<String> {
    let _token = REQUEST_ID.set("req-3");
    let child = spawn(async {
        yield_now().await;
        let seen = REQUEST_ID.get().unwrap_or("None");
        let _token = REQUEST_ID.set("req-3-changed-by-child");
        format!("The child sees: {seen}")
    });
    let _token = REQUEST_ID.set("req-3-changed-by-parent");
    let child_line = child.await.unwrap();
    vec![
        child_line,
        format!("The parent sees: {}", REQUEST_ID.get().unwrap()),
    ]
}

/// Runs the program and writes what it prints to `out`.
pub(crate) fn run(out: &mut impl Write) -> io::Result<()> {
    let rt = Runtime::new();
    let lines = rt.block_on(async {
        // asyncio.gather: each coroutine in its own task. A TaskGroup gives
        // the results back in spawn order.
        let mut group = TaskGroup::new();
        group.spawn(handle_request("req-1"));
        group.spawn(handle_request("req-2"));
        let mut lines = group.join_all().await.unwrap();
        lines.extend(spawn(copy_at_spawn_time()).await.unwrap());
        // Nothing a task set came back to the caller's context.
        lines.push(format!("main sees: {}", REQUEST_ID.get().unwrap_or("None")));
        lines
    });
    for line in lines {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn main() -> io::Result<()> {
    run(&mut io::stdout().lock())
}
