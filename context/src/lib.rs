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
//! A pool thread can be *sealed* ([`seal_thread`]): then a `set` in its own
//! base context, where it would leak into every later job on the thread,
//! panics and names the fix; code in a context of its own is unaffected.
//!
//! # Where user code runs
//!
//! Values are user types, so their `Drop` and `Clone` run inside this crate,
//! as do default functions and the futures an [`Attached`] polls. Any of them
//! may panic, or re-enter: enter a context, set a variable, copy the context.
//! Every such point, and what holds there:
//!
//! | point | runs in | a panic | re-entering |
//! |---|---|---|---|
//! | `reset`: the replaced value's drop | the current context, after the write | propagates from `reset`; the reset is done | works |
//! | `Token` drop (the old value) | wherever the token is dropped | the caller's | works |
//! | entering (`run`, `try_run`, a poll): the caller's published writes replace its cell's old bindings, which are dropped | the caller's context, before anything is claimed | propagates from `run`; the context was never entered | works; what it sets stays in the caller's context |
//! | leaving: the run's writes replace the context's old bindings, which are dropped | the context being left, before the switch back | resumed from `run` once the caller's context is restored (dropped if the run itself is unwinding) | works; what it sets lands in the context being left |
//! | the last `Context` handle's drop | the dropper's context | the dropper's | works |
//! | thread exit: the thread's own bindings are dropped | an empty context; writes there go nowhere | reported by the panic hook, then dropped (a panic out of a thread-local destructor would abort) | works |
//! | `Clone` inside `VAR.get()` / `get_or` | the current context, which is being read | propagates | setting a variable, entering or copying a context panics ("modified while it was being read"); nothing is claimed |
//! | `Clone` in [`Context::get`], `with`'s closure | the caller's context, outside any borrow | propagates | works |
//! | `with_default_fn`'s function | the caller's context | propagates | works |
//! | an [`Attached`] or [`PackedAttached`] future's poll and drop | the attached context | propagates; the context is given up | works |
//! | a [`Mirror`]'s `enter` (any entry, when mirrors are installed) | the context entered, before the run | propagates from `run`; the run never starts; the hooks entered before it exit; the context is left | works; hooks do not nest (no hook runs for contexts a hook enters) |
//! | a [`Mirror`]'s `exit` | the context being left, after the run | resumed from `run` after the context is left (dropped if the run is unwinding) | works, as above |
//! | a [`Mirror`]'s `capture` (a copy being made) | the new copy, entered for it, hooks suspended | propagates from the copy; the copy is dropped | works, as above |
//! | a [`Mirror`]'s `is_current` (a copy being made, before `capture`) | the caller's context (whose bindings the copy has) or the new copy, being read, hooks suspended | propagates from the copy; the copy is dropped | setting a variable, entering or copying a context panics ("modified while it was being read"); nothing is claimed |
//! | a [`Mirror`]'s `is_current` on the bindings an earlier copy of the same run captured into (a copy being made) | the caller's context, not being read, hooks suspended | propagates from the copy; the copy is dropped | works; hooks do not nest |
//! | the end of a run whose copies shared a capture: the values the run kept for them are dropped (also when a copy captures something else) | the context being left, after the exit hooks (or the caller's), hooks suspended | resumed from `run` after the context is left, as an exit hook's (propagates from the copy) | works, as above |
//! | a `set` refused by a sealed thread ([`seal_thread`]): the value's drop | the thread's base context, before `set` panics | reported by the panic hook, then dropped; `set`'s own panic propagates | works; a `set` there is refused too |
//!
//! Nothing user code does at any of these points leaves the thread's
//! current-context slot half switched or a context claimed without the
//! guard that gives it back. `tests/soundness.rs` has a panicking and a
//! re-entrant test for each point (`tests/mirror.rs` for the hooks) (and the executor's and the bridge's
//! `tests/soundness.rs` for tasks, blocking jobs and fork-join closures).
//!
//! # How it is built
//!
//! In layers, each file importing only the layers below it:
//!
//! 1. **The map** — `map.rs`: the persistent map (a HAMT, like CPython's
//!    `hamt.c`) that holds a context's bindings: copy is a pointer copy,
//!    writes copy a path.
//! 2. **The lease** — `lease.rs`: how `copy_context()` lends the current
//!    bindings to the copy instead of counting a reference (biased reference
//!    counting), and each thread's ledger of the loans it made, so that a
//!    copy made and dropped on one thread costs no atomic operation. It
//!    never reaches the thread's current context.
//! 3. **The cell** — `cell.rs`: where a context's bindings live between
//!    runs (`ContextCell`, and `SharedCell` behind a handle), claimed and
//!    published through `CellPtr`; `packed.rs`: `PackedCell`, a cell in
//!    one word for other runtimes' tasks; `state.rs`: the entry word and the
//!    readers/writer protocol; `handle.rs`: the reference-counted, recycled
//!    allocation behind a `Context`.
//! 4. **The thread** — `current.rs`: each thread's current context, entering
//!    and leaving, the exit cleanup.
//! 5. **The API** — `context.rs`, `var.rs`, `token.rs`, `attach.rs`,
//!    `seal.rs`, `error.rs`; `mirror.rs`: [`Mirror`], values mirrored into
//!    third-party thread-locals (`span.rs`: `tracing`'s current span, feature
//!    `tracing`; `otel.rs`: OpenTelemetry's current context, feature
//!    `opentelemetry`).
//!
//! `hook.rs` (a leaf, below the thread layer) keeps the installed mirrors,
//! type-erased, and runs them around a run (`current::run_mirrored`, taken
//! out of line only when a mirror is installed). `id.rs` hands out unique
//! identities. Every primitive comes from the
//! `baton-sync` facade: under `--cfg baton_loom`, the atomics, the cells and
//! the thread-locals come from loom, so the models in `loom-tests/` check
//! this code itself. Two things deliberately stay on `std` under loom,
//! because they are data, not protocol: the reference counts of the
//! persistent map's nodes (an ordinary `std::sync::Arc`), and the counters
//! that hand out unique ids. (A `Context` handle's count is protocol — it
//! decides whether a context may be entered without a compare-and-swap — and
//! comes from the facade.)

mod attach;
mod cell;
mod context;
mod current;
mod error;
mod handle;
mod hook;
mod id;
mod lease;
mod map;
mod mirror;
#[cfg(feature = "opentelemetry")]
mod otel;
mod packed;
mod seal;
#[cfg(feature = "tracing")]
mod span;
mod state;
mod token;
mod var;

pub use attach::{Attached, PackedAttached};
pub use cell::ContextCell;
pub use context::{Context, Iter, copy_context};
pub use error::ContextError;
pub use mirror::{Mirror, install_mirror};
pub use packed::PackedCell;
pub use seal::{is_thread_sealed, seal_thread};
pub use token::Token;
pub use var::ContextVar;
