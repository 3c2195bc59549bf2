//! The global-variable problem, and its fix with a `ContextVar`.
//!
//! Run with `cargo run --example global_problem`.

// Python, from "Context Variables with contextvars" (the problem):
//
//     import asyncio
//     # This doesn't work as expected
//     request_id = None
//     async def handle_request(req_id):
//         global request_id
//         request_id = req_id
//         await fetch_user_data()
//         await process_payment()
//         print(f"Request {request_id} completed")
//     async def fetch_user_data():
//         # Which request is this?
//         print(f"Fetching data for {request_id}")
//         await asyncio.sleep(0.1)
//     async def process_payment():
//         print(f"Processing payment for {request_id}")
//         await asyncio.sleep(0.1)
//     async def main():
//         await handle_request("req-123")
//         await handle_request("req-456")
//     asyncio.run(main())
//
// "The global variable gets overwritten when tasks interleave, producing
// incorrect output." (As written, `main` awaits one request after the other,
// so nothing interleaves; below the two requests run concurrently, as in a
// server, and the wrong output appears.)
//
// The fix:
//
//     request_id = ContextVar("request_id", default="none")
//     async def fetch_data():
//         # Each task sees its own value
//         print(f"Fetching data for {request_id.get()}")
//         await asyncio.sleep(0.1)
//     async def handle_request(req_id):
//         # Set the value for this context
//         token = request_id.set(req_id)
//         try:
//             await fetch_data()
//             await fetch_data()
//         finally:
//             # Restore the previous value
//             request_id.reset(token)
//     async def main():
//         # Each request runs in its own context
//         await asyncio.gather(
//             handle_request("req-123"),
//             handle_request("req-456"),
//         )
//     asyncio.run(main())
//     # Output:
//     # Fetching data for req-123
//     # Fetching data for req-456
//
// And from "How does Python's contextvars module maintain distinct logical
// execution contexts ...":
//
//     request_id = contextvars.ContextVar('request_id', default='unknown')
//     async def process_task(task_name):
//         # Set value for this specific task context
//         token = request_id.set(task_name)
//         try:
//             await asyncio.sleep(0.01) # Yield control, other tasks may run
//             current = request_id.get()
//             print(f"Task {task_name} reads: {current}")
//         finally:
//             request_id.reset(token) # Restore previous context
//     async def main():
//         # Run two tasks concurrently on the same thread
//         await asyncio.gather(process_task('Alpha'), process_task('Beta'))
//     asyncio.run(main())

use std::cell::RefCell;
use std::io::{self, Write};
use std::sync::Mutex;
use std::time::Duration;

use baton::{ContextVar, Runtime, TaskGroup, copy_context, sleep, yield_now};

/// What the program prints, in order. The requests of parts 1 and 2 run
/// inside one task (one `block_on`), so they share it by reference.
type Console = RefCell<Vec<String>>;

fn say(console: &Console, line: String) {
    console.borrow_mut().push(line);
}

// ---- 1. The problem: one global shared by every request -------------------

/// `request_id = None`, a process-wide global.
static GLOBAL_REQUEST_ID: Mutex<&str> = Mutex::new("None");

fn global_request_id() -> &'static str {
    *GLOBAL_REQUEST_ID.lock().unwrap()
}

async fn handle_request_global(req_id: &'static str, console: &Console) {
    *GLOBAL_REQUEST_ID.lock().unwrap() = req_id;
    fetch_user_data(console).await;
    process_payment(console).await;
    say(
        console,
        format!("Request {} completed", global_request_id()),
    );
}

async fn fetch_user_data(console: &Console) {
    // Which request is this?
    say(
        console,
        format!("Fetching data for {}", global_request_id()),
    );
    // `asyncio.sleep`: hand the thread to the other request. `yield_now`
    // does it deterministically, so the wrong output is always the same.
    yield_now().await;
}

async fn process_payment(console: &Console) {
    say(
        console,
        format!("Processing payment for {}", global_request_id()),
    );
    yield_now().await;
}

// ---- 2. The fix: a ContextVar ----------------------------------------------

static REQUEST_ID: ContextVar<&str> = ContextVar::with_default("request_id", "none");

async fn fetch_data(console: &Console) {
    // Each request sees its own value.
    say(
        console,
        format!("Fetching data for {}", REQUEST_ID.get().unwrap()),
    );
    yield_now().await;
}

async fn handle_request(req_id: &'static str, console: &Console) {
    // Set the value for this context.
    let token = REQUEST_ID.set(req_id);
    fetch_data(console).await;
    fetch_data(console).await;
    // Restore the previous value.
    REQUEST_ID.reset(token).unwrap();
}

// ---- 3. The same, with tasks on several worker threads ----------------------

async fn process_task(task_name: &'static str) -> String {
    // Set the value for this task's context.
    let token = REQUEST_ID.set(task_name);
    // Yield: other tasks run, possibly on this thread, and this task may
    // resume on another worker.
    sleep(Duration::from_millis(5)).await;
    let current = REQUEST_ID.get().unwrap();
    REQUEST_ID.reset(token).unwrap();
    format!("Task {task_name} reads: {current}")
}

/// Runs the three parts and writes what they print to `out`.
pub(crate) fn run(out: &mut impl Write) -> io::Result<()> {
    let rt = Runtime::new();

    writeln!(out, "-- a global, two interleaved requests:")?;
    let console = Console::default();
    rt.block_on(async {
        // Both requests in one task on one thread, taking turns at every
        // await, as coroutines do on asyncio's event loop.
        futures::join!(
            handle_request_global("req-123", &console),
            handle_request_global("req-456", &console),
        );
    });
    for line in console.take() {
        writeln!(out, "{line}")?;
    }

    writeln!(out, "-- a ContextVar, the same interleaving:")?;
    rt.block_on(async {
        // `asyncio.gather` wraps each coroutine in a task with its own copy
        // of the context; `copy_context().attach(..)` does exactly that for
        // futures joined in one task.
        futures::join!(
            copy_context().attach(handle_request("req-123", &console)),
            copy_context().attach(handle_request("req-456", &console)),
        );
    });
    for line in console.take() {
        writeln!(out, "{line}")?;
    }

    writeln!(
        out,
        "-- a ContextVar, tasks on {} workers:",
        rt.metrics().workers
    )?;
    let lines = rt.block_on(async {
        let mut tasks = TaskGroup::new();
        tasks.spawn(process_task("Alpha"));
        tasks.spawn(process_task("Beta"));
        tasks.join_all().await.unwrap()
    });
    for line in lines {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn main() -> io::Result<()> {
    run(&mut io::stdout().lock())
}
