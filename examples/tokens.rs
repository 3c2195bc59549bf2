//! `get` / `set` / `reset` with tokens and defaults; a temporary override
//! restored by a token; and what happens when a token is forgotten.
//!
//! Run with `cargo run --example tokens`.

// Python, from "Context Variables with contextvars":
//
//     from contextvars import ContextVar
//     user_context = ContextVar("user_context", default={"guest": True})
//     # Get the default
//     print(user_context.get()) # {'guest': True}
//     # Set a new value
//     token = user_context.set({"user": "alice", "guest": False})
//     print(user_context.get()) # {'user': 'alice', 'guest': False}
//     # Reset back to default
//     user_context.reset(token)
//     print(user_context.get()) # {'guest': True}
//
// "The token-based reset is useful for temporary overrides:"
//
//     async def with_admin_privileges():
//         token = user_context.set({"user": "admin", "role": "admin"})
//         try:
//             await do_admin_stuff()
//         finally:
//             user_context.reset(token)
//
// And, from "How does Python's contextvars module maintain distinct logical
// execution contexts ...": "What happens if you forget to reset a ContextVar
// token? [...] the variable retains its value beyond the intended scope [...]
// subsequent tasks on that thread may inherit stale values if the context
// isn't properly restored."

use std::fmt;
use std::io::{self, Write};

use baton::{Context, ContextError, ContextVar, Runtime, yield_now};

/// A value of a Python dict, as the program uses them.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Py {
    /// `True` / `False`.
    Bool(bool),
    /// A string.
    Str(&'static str),
}

/// A small Python dict: keys in insertion order, printed as Python does.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Dict(Vec<(&'static str, Py)>);

impl fmt::Display for Dict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (key, value)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            match value {
                Py::Bool(b) => write!(f, "'{key}': {}", if *b { "True" } else { "False" })?,
                Py::Str(s) => write!(f, "'{key}': '{s}'")?,
            }
        }
        f.write_str("}")
    }
}

/// `ContextVar("user_context", default={"guest": True})`: a default no
/// `const` can build, so it comes from a function.
static USER_CONTEXT: ContextVar<Dict> =
    ContextVar::with_default_fn("user_context", || Dict(vec![("guest", Py::Bool(true))]));

fn user() -> Dict {
    USER_CONTEXT.get().expect("the var has a default")
}

async fn do_admin_stuff() -> Result<String, String> {
    yield_now().await; // some awaiting, as admin
    Ok(format!("doing admin stuff as {}", user()))
}

async fn with_admin_privileges() -> Result<String, String> {
    let token = USER_CONTEXT.set(Dict(vec![
        ("user", Py::Str("admin")),
        ("role", Py::Str("admin")),
    ]));
    // try: ... finally: reset(token). Rust's errors are values: keep the
    // result, reset, then hand the result on.
    let result = do_admin_stuff().await;
    USER_CONTEXT.reset(token).unwrap();
    result
}

/// A request handler that sets the user and forgets to reset it.
fn leaky_handler(name: &'static str) {
    let _forgotten = USER_CONTEXT.set(Dict(vec![("user", Py::Str(name))]));
}

/// The same handler, done right: `scope` sets, runs and resets (on panic too).
fn careful_handler(name: &'static str) -> String {
    USER_CONTEXT.scope(Dict(vec![("user", Py::Str(name))]), || {
        format!("handling as {}", user())
    })
}

/// Runs the program and writes what it prints to `out`.
pub(crate) fn run(out: &mut impl Write) -> io::Result<()> {
    // Get the default.
    writeln!(out, "{}", user())?;
    // Set a new value.
    let token = USER_CONTEXT.set(Dict(vec![
        ("user", Py::Str("alice")),
        ("guest", Py::Bool(false)),
    ]));
    writeln!(out, "{}", user())?;
    // The token remembers what was there before: nothing (Token.MISSING).
    match token.old_value() {
        None => writeln!(out, "token.old_value: MISSING")?,
        Some(old) => writeln!(out, "token.old_value: {old}")?,
    }
    // Reset back to default.
    USER_CONTEXT.reset(token).unwrap();
    writeln!(out, "{}", user())?;

    // A temporary override, restored by its token.
    let rt = Runtime::new();
    let lines = rt.block_on(async {
        let before = format!("before: {}", user());
        let during = with_admin_privileges().await.unwrap();
        let after = format!("after: {}", user());
        [before, during, after]
    });
    for line in lines {
        writeln!(out, "{line}")?;
    }

    // A token only resets in the context it was made in.
    let ctx = Context::new();
    let token = ctx.run(|| USER_CONTEXT.set(Dict(vec![("user", Py::Str("bob"))])));
    let err: ContextError = USER_CONTEXT.reset(token).unwrap_err();
    writeln!(out, "reset outside its context: {err}")?;

    // Forgetting to reset: a long-lived context (a worker's, a connection's)
    // keeps the value, and the next request run in it inherits it.
    let connection = Context::new();
    connection.run(|| leaky_handler("alice"));
    let next = connection.run(user);
    writeln!(out, "after a leaky handler, the next request sees: {next}")?;
    let connection = Context::new();
    let during = connection.run(|| careful_handler("alice"));
    let next = connection.run(user);
    writeln!(out, "{during}; after it, the next request sees: {next}")?;
    Ok(())
}

fn main() -> io::Result<()> {
    run(&mut io::stdout().lock())
}
