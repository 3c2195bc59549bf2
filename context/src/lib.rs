//! Python's `contextvars` (PEP 567) for Rust.
//!
//! A [`ContextVar`] is read and set in the *current context* of the calling
//! thread. [`copy_context`] takes an O(1) copy of it; [`Context::run`] runs a
//! closure inside a context; [`Context::attach`] runs a future inside one. An
//! executor that enters each task's own context around every poll (such as
//! `baton-executor`) gives every task its own values, exactly like asyncio.
//!
//! ```
//! use baton_context::{copy_context, Context, ContextVar};
//!
//! static REQUEST_ID: ContextVar<&str> = ContextVar::with_default("request_id", "none");
//!
//! fn log(msg: &str) -> String {
//!     format!("[{}] {msg}", REQUEST_ID.get().unwrap())
//! }
//!
//! let a = Context::new();
//! let b = Context::new();
//! a.run(|| { let _ = REQUEST_ID.set("req-123"); });
//! b.run(|| { let _ = REQUEST_ID.set("req-456"); });
//! assert_eq!(a.run(|| log("fetching")), "[req-123] fetching");
//! assert_eq!(b.run(|| log("fetching")), "[req-456] fetching");
//! assert_eq!(log("idle"), "[none] idle");
//! ```
//!
//! # The rules (S1–S5 of the design contract)
//!
//! * **S1** Every thread has a current context; a new thread starts in a fresh,
//!   empty one.
//! * **S2** `VAR.set(v)` changes the current context only; `VAR.get()` reads the
//!   current context, then the variable's default, else `None`.
//! * **S3** `copy_context()` and [`Context::copy`] are O(1); later changes to
//!   the copy or the original are invisible to the other.
//! * **S4** `ctx.run(f)` enters `ctx` for the duration of `f`, storing `f`'s
//!   changes in `ctx` and restoring the thread's previous context on exit,
//!   normal or panic. A context is entered by at most one thread at a time and
//!   never recursively ([`ContextError::AlreadyEntered`]).
//! * **S5** `VAR.reset(token)` restores the binding from before the matching
//!   `set`, failing with [`ContextError::WrongVar`] or
//!   [`ContextError::WrongContext`] for a token of another variable or
//!   context.
//!
//! # How it is built
//!
//! * `map.rs` — the persistent map (a HAMT, like CPython's `hamt.c`) that
//!   holds a context's bindings: copy is a pointer copy, writes copy a path.
//! * `current.rs` — the per-thread current context, and entering/leaving.
//! * `state.rs` — the entry word (entered flag, shared flag, identity) and
//!   the lock-free protocol for reading a shared context from other threads.
//! * `lease.rs` — how `copy_context()` lends the current bindings to the
//!   copy instead of counting a reference (biased reference counting), so
//!   that a copy made and dropped on one thread costs no atomic operation.
//! * `bias.rs` — how a `Context` entered over and over by one thread is
//!   entered without an atomic operation (biased entering, revoked with a
//!   process-wide barrier when another thread wants in).
//! * `handle.rs` — the allocation behind a `Context` handle: reference
//!   counted, recycled through a per-thread free list.
//! * `context.rs`, `var.rs`, `token.rs`, `attach.rs`, `error.rs` — the public
//!   types; `id.rs` — unique identities; `sync.rs` — the std/loom facade.
//!
//! Under `--cfg loom`, the atomics, the map cell and the thread-local come
//! from loom, so the models in `loom-tests/` check this code itself.

#![warn(missing_docs)]

mod attach;
mod bias;
mod context;
mod current;
mod error;
mod handle;
mod id;
mod lease;
mod map;
mod state;
mod sync;
mod token;
mod var;

pub use attach::Attached;
pub use context::{Context, ContextCell, Iter, copy_context};
pub use error::ContextError;
pub use token::Token;
pub use var::ContextVar;
