//! A work-stealing async runtime whose tasks carry their own
//! [`baton_context`] context across threads.
//!
//! Every task runs in its own context (Python `contextvars` semantics, PEP
//! 567): [`spawn`] gives the task a copy of the spawner's context taken at
//! spawn time, every poll enters that context on whichever worker runs it
//! (and restores the worker's own afterwards), and the future is dropped
//! inside it. [`Runtime::block_on`] runs its future in a copy of the
//! caller's context.
//!
//! ```
//! use std::time::Duration;
//! use baton_context::ContextVar;
//! use baton_executor::{Runtime, sleep, spawn};
//!
//! static REQUEST_ID: ContextVar<&str> = ContextVar::with_default("request_id", "none");
//!
//! async fn handle(id: &'static str) -> String {
//!     let _t = REQUEST_ID.set(id);
//!     sleep(Duration::from_millis(1)).await; // other requests run meanwhile
//!     format!("done {}", REQUEST_ID.get().unwrap())
//! }
//!
//! let rt = Runtime::new();
//! let (a, b) = rt.block_on(async {
//!     let a = spawn(handle("req-123"));
//!     let b = spawn(handle("req-456"));
//!     (a.await.unwrap(), b.await.unwrap())
//! });
//! assert_eq!((a.as_str(), b.as_str()), ("done req-123", "done req-456"));
//! ```
//!
//! # How it is built
//!
//! * `task/` — the task core: one allocation per task (header, scheduler
//!   handle, embedded context, future or output); the state machine is
//!   written out in `task/mod.rs`; `harness.rs` polls inside the context
//!   with `catch_unwind`; `list.rs` owns every live task; `join.rs` is
//!   [`JoinHandle`]/[`JoinError`]. It knows no scheduler: it calls back
//!   through its `Schedule` trait (statically dispatched), and its loom
//!   models drive it with a fake one.
//! * `scheduler/` — per-worker crossbeam-deque queues, a global injector,
//!   a LIFO slot per worker that idle workers rescue stranded tasks from
//!   (`lifo.rs`), stealing, the parking protocol and its `Park` seam
//!   (`scheduler/README.md`); `Shared` implements `Schedule`.
//! * `driver.rs` — the runtime's reactor and timers, driven by a parked
//!   worker (it sleeps in epoll until the earliest deadline); no reactor
//!   thread, no timer thread.
//! * `io/` — the reactor (mio, edge-triggered): a readiness word and two
//!   lock-free waker slots per source, `PollEvented`.
//! * `net/` — [`net::TcpListener`], [`net::TcpStream`] and the other
//!   sockets, with `futures_io`'s traits.
//! * `time/` — deadlines in a heap per worker, cancelled in O(1) with no
//!   lock: [`sleep`], [`sleep_until`], [`timeout`].
//! * `blocking/` — the elastic pool of [`spawn_blocking`]: threads started
//!   on demand up to [`Builder::max_blocking_threads`], retired when idle;
//!   each closure is a task of the task core (with the pool as a second
//!   `Schedule`), so it runs in a copy of the caller's context with the
//!   task's panic capture, `JoinHandle` and abort.
//! * [`TaskGroup`] (`group.rs`), [`Metrics`], [`Runtime`], [`Builder`],
//!   [`Handle`], [`yield_now`].
//! * Every primitive (atomics, cells, mutexes, condition variables,
//!   thread-locals, threads) comes from the `baton-sync` facade:
//!   std/parking_lot normally, loom's under `--cfg baton_loom`. Under that
//!   cfg the run queues are a `Mutex<VecDeque>` stand-in
//!   (`scheduler/queue.rs`; crossbeam-deque cannot run under loom, and the
//!   cfg is baton's own, so crossbeam builds as usual), so the loom models
//!   check the scheduler protocol and task state machine, not crossbeam.
//!   The task `Arc`s and the clock (`std::time::Instant`) stay on `std`:
//!   loom models use no timers. There is no epoll under loom: the driver's
//!   core is a condition variable there (`driver.rs`), and `net/` is left
//!   out.
//!
//! # Testing hooks
//!
//! For the loom models (hidden from the docs): `Builder::start_workers(false)`
//! builds a runtime without threads; `Runtime::run_worker_until_idle(i)` runs
//! worker `i` on the calling thread until no task is found (never parks);
//! `Runtime::run_worker(i)` runs it until shutdown, parking when idle;
//! `Runtime::begin_shutdown()` asks workers to return; dropping the runtime
//! completes the shutdown (cancelling every task inside its context).

mod block_on;
mod blocking;
mod builder;
mod coop;
mod current;
mod driver;
mod group;
mod handle;
mod io;
mod metrics;
#[cfg(not(baton_loom))]
pub mod net;
mod runtime;
mod scheduler;
#[cfg(all(unix, not(baton_loom)))]
pub mod signal;
mod spawn;
mod task;
mod time;
mod yield_now;

pub use blocking::spawn_blocking;
pub use builder::Builder;
pub use group::TaskGroup;
pub use handle::Handle;
pub use metrics::Metrics;
pub use runtime::Runtime;
pub use spawn::{spawn, spawn_with_context};
pub use task::{JoinError, JoinHandle};
pub use time::{Elapsed, Sleep, Timeout, sleep, sleep_until, timeout};
pub use yield_now::{YieldNow, yield_now};
