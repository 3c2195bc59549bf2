//! Tasks: one allocation each, an atomic state word, and the rules for who
//! may touch what.
//!
//! # Layout
//!
//! A task is one `Box<Cell<F, C>>` (`raw.rs`):
//!
//! ```text
//! Header   state word · vtable · owned-list links and flag · last worker ·
//!          runtime (Arc) · join waker                       (64 bytes)
//! context  ContextCell (spawn: a copy of the spawner's context, inline,
//!          no allocation) or Context (spawn_with_context: a shared handle)
//! stage    Running(future) | Finished(output) | Consumed
//! ```
//!
//! With a 64-byte future the whole task is 184 bytes (a unit test checks
//! it); async-executor's is about 230 and tokio's about 500.
//!
//! Everything else refers to the task through a `NonNull<Header>` that owns
//! one *reference*: a `Notified` (in a run queue), a `Waker`, the
//! `JoinHandle`, and the runtime's owned-tasks list.
//!
//! # The state word (`state.rs`)
//!
//! ```text
//! RUNNING        someone has claimed the task: it is polling the future or
//!                dropping it. Exclusive.
//! COMPLETE       the future is gone and the output (or JoinError) is stored.
//!                Never unset.
//! NOTIFIED       the task is due. When it is set while the task is idle,
//!                whoever set it made a `Notified` and pushed it to a queue;
//!                when it is set while RUNNING, the runner re-queues the task
//!                after the poll. So at most one `Notified` exists at a time,
//!                and a wake while running re-schedules exactly once.
//! CANCELLED      abort() or shutdown asked for the future to be dropped.
//! JOIN_INTEREST  the JoinHandle exists. Cleared when it is dropped.
//! JOIN_WAKER     the join-waker field holds the JoinHandle's waker and is
//!                the runtime's to read (see below).
//! refcount       bits 6.. : number of references.
//! ```
//!
//! A new task starts with `NOTIFIED | JOIN_INTEREST` and three references:
//! the JoinHandle, the owned list and the `Notified` that the spawn pushes.
//!
//! # Who may touch which field, and when
//!
//! * **The future** (`stage` while `Running`) is touched only by the holder of
//!   RUNNING: the worker that turned a `Notified` into RUNNING
//!   (`transition_to_running`: NOTIFIED -> RUNNING, refused if RUNNING or
//!   COMPLETE — then the `Notified`'s reference is just dropped), or the
//!   runtime shutting down (`transition_to_shutdown` claims RUNNING only if
//!   the task is idle). The holder polls the future inside the task's
//!   context (`ContextCell::try_run`: one CAS in, one atomic `and` out), with
//!   `catch_unwind`, and drops it inside the context too.
//! * **After a `Pending` poll** the runner calls `transition_to_idle`: if
//!   CANCELLED was set meanwhile it keeps RUNNING and cancels; if NOTIFIED was
//!   set meanwhile (a wake during the poll) its reference becomes a new
//!   `Notified` pushed to the back of the local queue — this is how
//!   `yield_now` works, and why an always-ready task cannot starve the queue;
//!   otherwise it drops its reference.
//! * **Context busy.** A task spawned with a shared `Context` may find that
//!   context entered on another thread. Then the runner undoes RUNNING
//!   (`transition_running_to_notified`) and parks the `Notified` on the
//!   scheduler's deferred list, retried later with a back-off (never a hot
//!   spin). Cancelling is deferred the same way, so the future is still
//!   dropped inside its context.
//! * **The output** (`stage` once `Finished`): the runner stores it before
//!   setting COMPLETE (`transition_to_complete`, AcqRel). From then on it
//!   belongs to the JoinHandle if JOIN_INTEREST was set at that moment, else
//!   to the runner, which drops it at once. A handle dropped *after*
//!   COMPLETE drops the output itself (`transition_to_join_handle_dropped`
//!   tells it). So the output is dropped exactly once, by whoever owns it.
//! * **The join waker** follows the JOIN_WAKER bit. Unset (and not COMPLETE):
//!   only the JoinHandle may touch the field; it writes its waker there and
//!   then sets the bit with a CAS that fails if the task completed meanwhile
//!   (then it takes the waker back and reads the output). Set: the field is
//!   read-only; the runner reads it after COMPLETE to wake the handle, then
//!   clears the bit (`unset_waker_after_complete`) and, if the handle has
//!   gone away meanwhile, drops the waker. To replace its waker, the handle
//!   first clears the bit with a CAS that fails on COMPLETE.
//! * **Wakes** (`waker.rs`): `transition_to_notified_by_ref/val`. Idle and not
//!   NOTIFIED: set NOTIFIED, make a reference, push a `Notified`. RUNNING: set
//!   NOTIFIED only. NOTIFIED or COMPLETE: nothing.
//! * **abort()**: sets CANCELLED (and NOTIFIED); if the task was idle it also
//!   schedules it, so a worker claims RUNNING and drops the future. If it is
//!   running, the runner sees CANCELLED when its poll returns.
//! * **The owned list** (`scheduler/owned.rs`) holds one reference from spawn
//!   until the task completes; the completer unlinks it (under the shard
//!   lock) and drops both its own and the list's reference. At shutdown the
//!   runtime unlinks every remaining task and cancels it.
//! * **`last_worker`** is read and written only by the RUNNING holder (the
//!   migration metric).
//! * **Freeing**: whoever drops the last reference frees the allocation
//!   (`dealloc`), after which nothing may touch it. Every RUNNING holder owns
//!   a reference, so a task is never freed under its runner.
//!
//! The loom models in `loom-tests/` check this protocol through the real
//! code (wake during RUNNING, abort and handle drop racing completion).

pub(crate) mod harness;
pub(crate) mod join;
pub(crate) mod raw;
pub(crate) mod state;
pub(crate) mod waker;

pub use join::{JoinError, JoinHandle};
pub(crate) use raw::{Cell, Header, Notified};
