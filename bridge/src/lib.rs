//! Offload blocking and parallel work to [rayon] inside an explicit copy of
//! the baton context (semantics **S8** of the design contract).
//!
//! [`baton_context`] gives every async task its own values of
//! [`ContextVar`](baton_context::ContextVar)s, like Python's `contextvars`.
//! Blocking work should not run on the async workers, and rayon's threads
//! know nothing of contexts; this crate carries the context across:
//!
//! * [`run_blocking(f)`](run_blocking) runs `f` on rayon's global pool inside
//!   a copy of the context current at the call — Python's
//!   `asyncio.to_thread(f)` — and returns a [`BlockingTask`] future of its
//!   result. [`run_blocking_in`] does the same on a pool of your own.
//! * [`RunBlocking`] gives [`Context`](baton_context::Context)
//!   `ctx.run_blocking(f)` and `ctx.run_blocking_in(&pool, f)`, which enter
//!   `ctx` itself, so that `f`'s writes land in it.
//! * [`join`], [`scope`], [`install`] and [`spawn`] are rayon's fork-join
//!   entry points with each closure in its own copy of the context current
//!   where the work was created; [`ParallelIteratorExt::in_context`] does the
//!   same for the closures of a parallel iterator.
//!
//! ```
//! use baton_bridge::{run_blocking, RunBlocking};
//! use baton_context::{Context, ContextVar};
//!
//! static TENANT: ContextVar<&str> = ContextVar::with_default("tenant", "-");
//!
//! futures::executor::block_on(async {
//!     let _token = TENANT.set("acme");
//!
//!     // A copy: the job sees "acme"; what it sets stays in the copy.
//!     let seen = run_blocking(|| {
//!         let seen = TENANT.get();
//!         let _ = TENANT.set("changed");
//!         seen
//!     })
//!     .await;
//!     assert_eq!(seen, Some("acme"));
//!     assert_eq!(TENANT.get(), Some("acme"));
//!
//!     // A given context: the job's writes land in it.
//!     let ctx = Context::new();
//!     ctx.run_blocking(|| { let _ = TENANT.set("globex"); }).await;
//!     assert_eq!(ctx.get(&TENANT), Some("globex"));
//! });
//! ```
//!
//! # The rules (S8)
//!
//! * `run_blocking(f)` runs `f` on a rayon worker inside a copy of the
//!   context current when `run_blocking` was called; `ctx.run_blocking(f)`
//!   enters `ctx` itself. If `ctx` is entered elsewhere when the job starts,
//!   `f` is not called and the await panics with an `AlreadyEntered` message
//!   — it never waits for the context.
//! * Before and after every job — normal return or panic — the rayon
//!   thread's own context is exactly what it was.
//! * A panic in `f` is caught on the pool thread (the pool keeps working) and
//!   resumed where the [`BlockingTask`] is awaited.
//! * The returned future only needs a `Waker`: it works on baton's runtime,
//!   on tokio, or in `futures::executor::block_on`.
//! * Dropping the future before the job starts skips the job; dropping it
//!   later discards the result on the pool thread, inside the job's context.
//!
//! # Re-entrancy: why every job restores the thread's context itself
//!
//! rayon's wait loops are re-entrant. A thread that waits inside
//! `rayon::join` or `rayon::scope` for a half that another thread stole does
//! not block: it runs other jobs meanwhile — a different offload with a
//! different context, a piece of another parallel iterator — on top of the
//! waiting job's stack. A design that set a thread-local "current context"
//! when a job starts and cleared it when it ends would, after such a wait,
//! leave the waiting job in the context of whatever ran during the wait (or
//! in none). rustc's own fork of rayon has to restore its thread-local
//! compiler context after every wait for this reason.
//!
//! Here every job — an offload, each half of a [`join`], each [`Scope::spawn`]
//! and each piece of an [`in_context`](ParallelIteratorExt::in_context)
//! iterator — runs inside `Context::run`/`ContextCell::run`, which save the
//! thread's current context on entry and restore it exactly on exit, normal
//! or panic. Entering nests with stack discipline, so a job that runs inside
//! another job's wait restores the waiting job's context when it returns, and
//! the waiting job continues exactly where it was. No bookkeeping outside the
//! call stack is needed.
//!
//! # Where user code runs
//!
//! Closures, their captures and results, and the values they set are user
//! types, so their code runs inside this crate. Any of them may panic, or
//! re-enter: enter a context, set a variable, copy the context. Every such
//! point, and what holds there:
//!
//! | point | runs in | a panic | re-entering |
//! |---|---|---|---|
//! | an offloaded closure (`run_blocking`, `run_blocking_in`, `ctx.run_blocking(_in)`) | the job's copy, or `ctx` | resumed at the await | works; lands in the job's context |
//! | leaving the job's context: the bindings the closure replaced are dropped | the job's context | resumed at the await; the closure's result is dropped inside the job's context | works; lands in the job's context |
//! | a skipped job's closure (its task dropped before it ran), a result nobody awaits (its task dropped while it ran) | the job's context — a scratch context if `ctx` is entered elsewhere by then | discarded (the panic hook reports it) | works; lands there |
//! | `ctx.run_blocking(f)` with `ctx` entered elsewhere: `f` dropped uncalled | a scratch context | discarded; the await panics with "already entered" | works; lands there |
//! | the closures of [`join`], [`scope`], [`Scope::spawn`], [`install`], [`spawn`] and of [`in_context`](ParallelIteratorExt::in_context) iterators (`map`, `fold`, `reduce`, ...) | their own copy | propagates to the caller of the operation (for [`spawn`], to the pool's panic handler), once every closure is done and the thread is back in its context | works; lands in that copy |
//! | a result that rayon drops because another closure panicked (the other half of a `join`, `scope`'s own result, a piece of a parallel iterator) | the copy it was made in (a scratch context for an iterator's pieces) | discarded; the first panic propagates | works; lands there |
//! | a private copy, dropped when its work is done: the bindings the closures set | the copy itself (a `ContextCell` drops its bindings inside itself); a scratch context for an iterator piece's `Context` copy | like the closure's (discarded for an offload, whose task has its outcome by then) | works; what it sets goes nowhere |
//!
//! Nothing user code does at any of these points reaches a pool thread's
//! own context or the caller's, leaves a context claimed, or aborts the
//! process; the pool keeps working. `tests/soundness.rs` has a panicking and
//! a re-entrant test for each point. (rayon's own rules still apply: a panic
//! escaping a plain rayon job — or [`spawn`] — goes to the pool's panic
//! handler, which aborts by default.)
//!
//! # Going back to the async runtime
//!
//! A job can hand work back to a baton runtime through a `baton::Handle`
//! captured before the offload: `handle.spawn(fut)` inside `f` copies the
//! job's context into the new task, as every spawn does. This crate does not
//! depend on the executor (the bridge works under any executor); the facade
//! crate `baton` tests that path.
//!
//! # Cost
//!
//! An offload makes one allocation of its own (the hand-off: outcome slot,
//! waker slot and one atomic state word, see `handoff.rs`) besides rayon's
//! box for the job, which holds the closure and the context copy inline —
//! the same count as `rayon::spawn` plus a oneshot channel. Copying the
//! context is O(1) and does not allocate; the hand-off takes no locks.
//! When a job or a fork-join closure is done, its copy drops its bindings
//! inside itself (see "Where user code runs"); an iterator piece's copy is
//! dropped in a scratch context: one more enter and leave of an empty
//! context, which allocates nothing. The
//! benchmarks under `benches/` compare it with tokio's `spawn_blocking` and
//! a bare `rayon::spawn` plus oneshot.
//!
//! # Checking it
//!
//! The hand-off is pool-agnostic: [`BlockingJob`] is a job plus the
//! completion end of its future, and `run_blocking` is
//! `rayon::spawn(move || job.run())`. Under `--cfg baton_loom` its atomics,
//! cells and reference counts come from loom (through the `baton-sync`
//! facade), and the models in `loom-tests/` run jobs on loom threads standing
//! in for rayon's. rayon itself is not modelled: under that cfg it still
//! builds and runs as usual, but only the hand-off between a job and the
//! future that awaits it is checked.
//!
//! `unsafe` lives in `handoff.rs` and in one reference cast in `scope.rs`;
//! both modules' tests run under Miri:
//!
//! ```text
//! cargo +nightly miri test -p baton-bridge --lib handoff
//! MIRIFLAGS="-Zmiri-tree-borrows -Zmiri-ignore-leaks" \
//!     cargo +nightly miri test -p baton-bridge --lib scope
//! ```
//!
//! The second needs a real rayon pool: crossbeam-epoch (under rayon's
//! deques) is only accepted by Miri's Tree Borrows model, and rayon's
//! threads and epoch collector outlive the test, which Miri counts as leaks.
//! The compiler holds that line: `unsafe_code` is denied crate-wide and
//! allowed on those two modules only.

#![deny(unsafe_code)]

mod contain;
#[allow(unsafe_code)]
mod handoff;
mod install;
mod iter;
mod job;
mod join;
mod offload;
#[allow(unsafe_code)]
mod scope;

pub use handoff::BlockingTask;
pub use install::{install, spawn};
pub use iter::{InContext, ParallelIteratorExt};
pub use job::BlockingJob;
pub use join::join;
pub use offload::{RunBlocking, run_blocking, run_blocking_in};
pub use scope::{Scope, scope};
