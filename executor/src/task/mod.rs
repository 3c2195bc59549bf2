//! Tasks: one allocation each, an atomic state word, and the rules for who
//! may touch what. This module is the task *core*: it knows nothing of the
//! scheduler that runs its tasks, only the [`Schedule`] trait that a
//! scheduler implements (`schedule.rs`), as tokio's `runtime/task` does.
//!
//! # Files, bottom up
//!
//! ```text
//! state.rs     the state word and its transitions
//! raw.rs       Header (type-erased, fields private), Vtable, RawTask
//! schedule.rs  the Schedule trait; Notified and Task, the references a
//!              scheduler holds
//! join.rs      JoinHandle, JoinError
//! cell.rs      the typed allocation: Head<S> (header + scheduler), the
//!              context, the stage; TaskContext
//! waker.rs     the waker vtable, one per scheduler type
//! harness.rs   poll, cancel, complete, shutdown: the vtable's functions
//! list.rs      OwnedTasks: every live task of a scheduler, for shutdown
//! ```
//!
//! Each file imports only files above it in this list (and `sync`, `coop`,
//! the context crate); nothing here imports `scheduler/`. The scheduler
//! sees only what this file re-exports: it spawns through
//! [`OwnedTasks::bind`], holds [`Notified`] (queues) and [`RawTask`] (the
//! LIFO slot's atomic), runs a task with [`Notified::run`], and is called
//! back through its [`Schedule`] implementation.
//!
//! # Layout
//!
//! A task is one `Box<Cell<F, C, S>>` (`cell.rs`):
//!
//! ```text
//! Header     state word (flags · refcount · last worker) · vtable ·
//!            owned-list links · join waker                  (48 bytes)
//! scheduler  Arc<S>: where wakers send the task              (8 bytes)
//! context    ContextCell (spawn: a copy of the spawner's context, inline,
//!            no allocation) or Context (spawn_with_context: a shared handle)
//! stage      union { future, output }: no discriminant, the state word says
//!            which member is live (see "The stage slot" below)
//! ```
//!
//! The header and the scheduler handle form `Head<S>`, the 56 bytes that
//! do not depend on the future (a waker, which knows only `S`, finds the
//! scheduler at the same offset in every task). So a task is those 56
//! bytes, its context, and the larger of its future and its
//! `Result<Output, JoinError>`: with a 64-byte future and a small output,
//! 56 + `size_of::<ContextCell>()` + 64 bytes (a unit test in
//! `tests/mod.rs` checks this and prints the total; `ContextCell` is two
//! words). `cargo run --release -p baton-benches --bin task_memory`
//! measures the resident memory per idle task beside tokio and
//! async-executor.
//!
//! Everything else refers to the task through a [`RawTask`] (a pointer to
//! the header) that owns one *reference*: a [`Notified`] (in a run queue or
//! a LIFO slot), a `Waker`, the `JoinHandle`, and the owned list's [`Task`].
//!
//! # No dynamic dispatch on the hot path
//!
//! The vtable's functions (`harness.rs`) and the waker's (`waker.rs`) are
//! generic over the scheduler type `S`, so a wake calls `S::schedule`, and
//! a poll `S::yield_now`, `S::count_completed` and `S::release`, directly.
//! Polling itself goes through the vtable (it needs the future's type), as
//! it always has; only `JoinHandle::abort`, which does not know `S`, reaches
//! `S::schedule` through the vtable.
//!
//! # The state word (`state.rs`)
//!
//! ```text
//! RUNNING        someone has claimed the task: it is polling the future or
//!                dropping it. Exclusive.
//! COMPLETE       the future is gone and the output (or JoinError) was stored
//!                in its place (its owner may have taken or dropped it
//!                since: see "The stage slot"). Never unset.
//! NOTIFIED       the task is due. When it is set while the task is idle,
//!                whoever set it made a `Notified` and pushed it to a queue;
//!                when it is set while RUNNING, the runner re-queues the task
//!                after the poll. So at most one `Notified` exists at a time,
//!                and a wake while running re-schedules exactly once.
//! CANCELLED      abort() or shutdown asked for the future to be dropped.
//! JOIN_INTEREST  the JoinHandle exists. Cleared when it is dropped.
//! JOIN_WAKER     the join-waker field holds the JoinHandle's waker and is
//!                the runtime's to read (see below).
//! refcount       bits 6..48: number of references.
//! last worker    bits 48..64: the worker that last claimed RUNNING through
//!                `transition_to_running` (`NO_WORKER` = u16::MAX before).
//! ```
//!
//! The word is a `u64` on every target. A new task starts with
//! `NOTIFIED | JOIN_INTEREST`, no last worker and three references: the
//! JoinHandle, the owned list and the `Notified` that the spawn pushes. The
//! count cannot carry into the worker bits: making a reference panics once
//! the count reaches 2^40, half its field (`REF_COUNT_LIMIT` in `state.rs`).
//!
//! # Who may touch which field, and when
//!
//! * **The future** (the stage slot's `running` member, live until it is
//!   dropped on the way to COMPLETE) is touched only by the holder of
//!   RUNNING: the worker that turned a `Notified` into RUNNING
//!   (`transition_to_running`: NOTIFIED -> RUNNING, refused if RUNNING or
//!   COMPLETE — then the `Notified`'s reference is just dropped), or the
//!   runtime shutting down (`transition_to_shutdown` claims RUNNING only if
//!   the task is idle). The holder polls the future inside the task's
//!   context (`ContextCell::try_run`: a plain load and store in and out; a
//!   shared `Context` costs one CAS in and a release store out), with
//!   `catch_unwind`, and drops it inside the context too; once dropped
//!   (even by a panicking destructor) it is never touched again, and the
//!   holder goes straight on to store the output and set COMPLETE.
//! * **After a `Pending` poll** the runner calls `transition_to_idle`: if
//!   CANCELLED was set meanwhile it keeps RUNNING and cancels; if NOTIFIED was
//!   set meanwhile (a wake during the poll) its reference becomes a new
//!   `Notified` handed to [`Schedule::yield_now`] (the runtime's scheduler
//!   pushes it to the back of the local queue) — this is how `yield_now`
//!   works, and why an always-ready task cannot starve the queue; otherwise
//!   it drops its reference.
//! * **Context busy.** A task spawned with a shared `Context` may find that
//!   context entered on another thread. Then the runner undoes RUNNING
//!   (`transition_running_to_notified`) and hands the `Notified` to
//!   [`Schedule::defer`] (the runtime's scheduler keeps a deferred list,
//!   retried later with a back-off, never a hot spin). Cancelling is deferred the same way, so the future is still
//!   dropped inside its context.
//! * **The output** (the stage slot's `finished` member): the runner writes
//!   it into the slot the future left, before setting COMPLETE
//!   (`transition_to_complete`, AcqRel). From then on it belongs to the
//!   JoinHandle if JOIN_INTEREST was set at that moment, else to the runner,
//!   which drops it at once. The handle takes it out when polled and
//!   remembers that in a flag of its own (`output_taken`: no other party
//!   needs to know, so it costs no atomic operation); a poll after that
//!   panics rather than read the slot again. A handle dropped *after*
//!   COMPLETE drops the output itself unless it took it
//!   (`transition_to_join_handle_dropped` tells it). So the output is moved
//!   out or dropped exactly once, by whoever owns it, and always before its
//!   owner gives up its reference.
//! * **The stage slot** is a union with no discriminant, so which member is
//!   live follows from the state word: while no one holds RUNNING, the
//!   future is live iff the task is not COMPLETE, and the output is live
//!   iff COMPLETE, JOIN_INTEREST and not taken by the handle (in between, only the
//!   RUNNING holder, or the output's owner while it drops it, knows). The
//!   union drops nothing itself. `dealloc` (refcount zero, so JOIN_INTEREST
//!   is clear and nobody holds RUNNING) drops the future if the task is not
//!   COMPLETE, and otherwise finds the slot empty. A task is freed before
//!   COMPLETE only when the runtime shut down under a running task
//!   (`shutdown_timeout`, or a runtime dropped by its own task): shutdown
//!   found it RUNNING and dropped the owned list's reference, then the
//!   runner could not enter the task's shared context to drop the future,
//!   and the closed deferred list dropped its `Notified`. That future is
//!   dropped by `dealloc`, outside its context.
//! * **The join waker** follows the JOIN_WAKER bit. Unset (and not COMPLETE):
//!   only the JoinHandle may touch the field; it writes its waker there and
//!   then sets the bit with a CAS that fails if the task completed meanwhile
//!   (then it takes the waker back and reads the output). Set: the field is
//!   read-only; the runner reads it after COMPLETE to wake the handle, then
//!   clears the bit (`unset_waker_after_complete`) and, if the handle has
//!   gone away meanwhile, drops the waker. To replace its waker, the handle
//!   first clears the bit with a CAS that fails on COMPLETE.
//! * **Wakes** (`waker.rs`): `transition_to_notified_by_ref/val`. Idle and not
//!   NOTIFIED: set NOTIFIED, make a reference, hand a `Notified` to
//!   [`Schedule::schedule`]. RUNNING: set NOTIFIED only. NOTIFIED or
//!   COMPLETE: nothing.
//! * **abort()**: sets CANCELLED (and NOTIFIED); if the task was idle it also
//!   schedules it (through the vtable's `schedule`), so a worker claims
//!   RUNNING and drops the future. If it is running, the runner sees
//!   CANCELLED when its poll returns.
//! * **The owned list** (`list.rs`) holds one reference (a [`Task`]) from
//!   spawn until the task completes; the completer asks its scheduler to
//!   release it ([`Schedule::release`], which unlinks it under the shard
//!   lock) and drops both its own and the list's reference in one atomic
//!   operation. At shutdown the list unlinks every remaining task and
//!   cancels it. The links are touched only by `list.rs`, under the shard
//!   lock, and they also say whether the task is linked: an unlinked task's
//!   are `Pointers::UNLINKED` (`prev` holds a dangling marker address no
//!   task can have).
//! * **The last worker** (top 16 bits of the state word) is written only by
//!   the CAS of `transition_to_running` that claims RUNNING, which also
//!   returns the previous value for the migration metric (`Notified::run`
//!   hands it to the worker); every other transition leaves it alone. Worker
//!   indices from 65534 on are stored as 65534, so moves among those workers
//!   are not counted as migrations (the metric is approximate beyond 65534
//!   workers). Claims by shutdown (`transition_to_shutdown`) do not record
//!   a worker.
//! * **Freeing**: whoever drops the last reference frees the allocation
//!   (`dealloc`), after which nothing may touch it. Every RUNNING holder owns
//!   a reference, so a task is never freed under its runner.
//!
//! # Checked by
//!
//! `tests/` drives the real task code with a fake [`Schedule`] that only
//! records what it is handed: the unit tests (run under Miri too) and, with
//! `--cfg baton_loom`, the loom models in `tests/loom.rs` (a wake racing the end
//! of a poll, abort racing completion, a `JoinHandle` drop racing
//! completion). The loom models in `loom-tests/` check the same protocol
//! through the whole runtime.

mod cell;
mod harness;
mod join;
mod list;
mod raw;
mod schedule;
mod state;
mod waker;

#[cfg(test)]
mod tests;

pub(crate) use cell::TaskContext;
pub use join::{JoinError, JoinHandle};
pub(crate) use list::OwnedTasks;
pub(crate) use raw::RawTask;
pub(crate) use schedule::{Notified, Schedule, Task};
pub(crate) use state::{NO_WORKER, worker_id};
