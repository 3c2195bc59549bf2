//! `copy_context()` and `ctx.run`: code in a copy sees the parent's values;
//! what it sets stays in the copy.
//!
//! Run with `cargo run --example copy_context`.

// Python, from "Context Variables with contextvars":
//
//     from contextvars import copy_context, ContextVar
//     trace_id = ContextVar("trace_id", default="")
//     async def child_task():
//         # This runs in a copy of the parent's context
//         print(f"Child sees trace_id: {trace_id.get()}")
//         await asyncio.sleep(0.1)
//     async def main():
//         trace_id.set("abc-123")
//         # Create a copy of the current context
//         ctx = copy_context()
//         # Run child tasks in that context
//         await asyncio.gather(
//             child_task(),
//         )
//     asyncio.run(main())
//
// "This is useful when spawning background tasks that should inherit the
// parent's context." (The program makes `ctx` but never uses it: `gather`
// copies the context by itself. Below, both: a spawned task, which copies,
// and `ctx.run` / `create_task(context=ctx)`, which use `ctx`.)

use std::io::{self, Write};
use std::time::Duration;

use baton::{ContextVar, Runtime, copy_context, sleep, spawn, spawn_with_context};

static TRACE_ID: ContextVar<&str> = ContextVar::with_default("trace_id", "");

fn trace_id() -> &'static str {
    TRACE_ID.get().unwrap()
}

async fn child_task() -> String {
    // This runs in a copy of the parent's context.
    let line = format!("Child sees trace_id: {}", trace_id());
    sleep(Duration::from_millis(2)).await;
    // A change here is the child's own.
    let _token = TRACE_ID.set("set-by-child-task");
    line
}

/// Runs the program and writes what it prints to `out`.
pub(crate) fn run(out: &mut impl Write) -> io::Result<()> {
    let rt = Runtime::new();
    let lines = rt.block_on(async {
        let mut lines = Vec::new();
        let _token = TRACE_ID.set("abc-123");
        // Create a copy of the current context.
        let ctx = copy_context();

        // gather(child_task()): a task, in its own copy.
        lines.push(spawn(child_task()).await.unwrap());
        lines.push(format!("After the task, parent sees: {}", trace_id()));

        // ctx.run: a function in the copy; its sets are stored in `ctx`.
        ctx.run(|| {
            lines.push(format!("In ctx.run, child sees: {}", trace_id()));
            let _token = TRACE_ID.set("set-in-ctx.run");
        });
        lines.push(format!("After ctx.run, parent sees: {}", trace_id()));
        lines.push(format!("ctx now holds: {}", ctx.get(&TRACE_ID).unwrap()));

        // create_task(coro, context=ctx): the task runs in `ctx` itself.
        let seen = spawn_with_context(ctx.clone(), async {
            let seen = trace_id();
            let _token = TRACE_ID.set("set-by-task-in-ctx");
            seen
        })
        .await
        .unwrap();
        lines.push(format!("A task in ctx sees: {seen}"));
        lines.push(format!("ctx now holds: {}", ctx.get(&TRACE_ID).unwrap()));
        lines.push(format!("Parent still sees: {}", trace_id()));
        lines
    });
    for line in lines {
        writeln!(out, "{line}")?;
    }
    // `block_on` ran in a copy of this thread's context: nothing came back.
    writeln!(out, "Outside the runtime: {:?}", trace_id())?;
    Ok(())
}

fn main() -> io::Result<()> {
    run(&mut io::stdout().lock())
}
