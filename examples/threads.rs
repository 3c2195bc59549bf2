//! Threads start with the default; an explicit `copy_context().run` carries
//! values into a thread.
//!
//! Run with `cargo run --example threads`.

// Python, from "Context Variables with contextvars":
//
//     import threading
//     from contextvars import ContextVar
//     import asyncio
//     thread_local_var = ContextVar("thread_local_var", default="default")
//     def thread_worker():
//         print(f"Thread {threading.current_thread().name}: {thread_local_var.get()}")
//     async def async_worker():
//         thread_local_var.set("async value")
//         print(f"Async task: {thread_local_var.get()}")
//     async def main():
//         # Run in async context
//         await async_worker()
//         # Run in thread
//         thread = threading.Thread(target=thread_worker)
//         thread.start()
//         thread.join()
//     asyncio.run(main())
//     # Output:
//     # Async task: async value
//     # Thread Thread-1: default
//
// And, from "How does Python's contextvars module maintain distinct logical
// execution contexts ...": "To propagate values to threads, you must
// explicitly capture the context using contextvars.copy_context() and run the
// function within it via context.run()":
//
//     ctx = contextvars.copy_context()
//     thread = threading.Thread(target=ctx.run, args=(thread_worker,))

use std::io::{self, Write};
use std::thread;

use baton::{ContextVar, Runtime, copy_context};

static THREAD_LOCAL_VAR: ContextVar<&str> = ContextVar::with_default("thread_local_var", "default");

fn thread_worker() -> String {
    let me = thread::current();
    format!(
        "Thread {}: {}",
        me.name().unwrap_or("?"),
        THREAD_LOCAL_VAR.get().unwrap()
    )
}

async fn async_worker() -> String {
    let _token = THREAD_LOCAL_VAR.set("async value");
    format!("Async task: {}", THREAD_LOCAL_VAR.get().unwrap())
}

fn start(name: &str, f: impl FnOnce() -> String + Send + 'static) -> String {
    thread::Builder::new()
        .name(name.to_string())
        .spawn(f)
        .expect("spawn a thread")
        .join()
        .expect("the thread panicked")
}

/// Runs the program and writes what it prints to `out`.
pub(crate) fn run(out: &mut impl Write) -> io::Result<()> {
    let lines = Runtime::new().block_on(async {
        // Run in async context (awaited directly, so its set stays in
        // main's context, as in Python).
        let mut lines = vec![async_worker().await];
        // Run in a thread: a new thread starts in an empty context.
        lines.push(start("Thread-1", thread_worker));
        // Run in a thread, inside a copy of main's context.
        let ctx = copy_context();
        lines.push(start("Thread-2", move || ctx.run(thread_worker)));
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
