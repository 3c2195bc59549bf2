//! **Python's `contextvars` for async Rust.** Request-scoped values — a
//! request id, the authenticated user, a trace id — that follow each task
//! across threads, into the tasks it spawns and into the blocking work it
//! offloads to rayon, and never leak into anyone else's.
//!
//! baton is three things behind this one crate:
//!
//! * [`ContextVar`], [`Token`], [`Context`] and [`copy_context`]: PEP 567,
//!   over a persistent map, so that copying a context is O(1);
//! * a work-stealing async [`Runtime`] whose tasks each carry their own
//!   [`Context`] from worker to worker: [`spawn`] gives the new task a copy of
//!   the spawner's context, as `asyncio.create_task` does;
//! * [`bridge`] (feature `rayon`): [`run_blocking`](bridge::run_blocking) and
//!   fork-join on rayon, each closure inside an explicit copy of the context.
//!
//! ```
//! use std::time::Duration;
//! use baton::{ContextVar, Runtime, sleep, spawn};
//!
//! static REQUEST_ID: ContextVar<String> =
//!     ContextVar::with_default_fn("request_id", || "none".to_string());
//!
//! async fn fetch_data() -> String {
//!     sleep(Duration::from_millis(1)).await; // other requests run meanwhile
//!     // No argument: the id comes from the task's context.
//!     format!("Fetching data for {}", REQUEST_ID.get().unwrap())
//! }
//!
//! async fn handle_request(req_id: &str) -> Vec<String> {
//!     let token = REQUEST_ID.set(req_id.to_string());
//!     let lines = vec![fetch_data().await, fetch_data().await];
//!     REQUEST_ID.reset(token).unwrap();
//!     lines
//! }
//!
//! let rt = Runtime::new();
//! let (a, b) = rt.block_on(async {
//!     // asyncio.gather(handle_request("req-123"), handle_request("req-456"))
//!     let a = spawn(handle_request("req-123"));
//!     let b = spawn(handle_request("req-456"));
//!     (a.await.unwrap(), b.await.unwrap())
//! });
//! assert_eq!(a, ["Fetching data for req-123", "Fetching data for req-123"]);
//! assert_eq!(b, ["Fetching data for req-456", "Fetching data for req-456"]);
//! ```
//!
//! # Coming from Python's `contextvars`
//!
//! The model is the same; the spelling is Rust's. A `ContextVar` is usually a
//! `static`, as it is usually a module-level global in Python.
//!
//! | Python | baton |
//! |---|---|
//! | `request_id = ContextVar("request_id")` | `static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");` |
//! | `ContextVar("n", default=0)` | [`ContextVar::with_default`]`("n", 0)`, or [`ContextVar::with_default_fn`]`("m", HashMap::new)` for a default no `const` can build |
//! | `var.get()` | [`VAR.get()`](ContextVar::get) → `Option<T>`: `None` where Python raises `LookupError` |
//! | `var.get(default)` | [`VAR.get_or(default)`](ContextVar::get_or) (the argument wins over the var's default, as in Python) |
//! | `token = var.set(value)` | [`let token = VAR.set(value);`](ContextVar::set) |
//! | `var.reset(token)` | [`VAR.reset(token)?`](ContextVar::reset): consumes the token, so it cannot be reused |
//! | `token.old_value`, `Token.MISSING` | [`token.old_value()`](Token::old_value) → `Option<&T>`, `None` for `MISSING` |
//! | `token = var.set(v)` / `try:` … `finally: var.reset(token)` | [`VAR.scope(v, \|\| ...)`](ContextVar::scope) (resets on panic too) |
//! | `contextvars.Context()` | [`Context::new()`] |
//! | `copy_context()` | [`copy_context()`]: O(1) |
//! | `ctx.run(f, *args)` | [`ctx.run(\|\| f(args))`](Context::run); [`try_run`](Context::try_run) returns the error instead of panicking |
//! | `ctx[var]`, `var in ctx`, `len(ctx)`, `iter(ctx)` | [`ctx.get(&VAR)`](Context::get), [`ctx.contains(&VAR)`](Context::contains), [`ctx.len()`](Context::len), [`ctx.iter()`](Context::iter) |
//! | `asyncio.run(main())` | [`Runtime::new().block_on(main())`](Runtime::block_on) (in a copy of the caller's context), or [`#[baton::main]`](macro@main) on `async fn main` |
//! | `asyncio.create_task(coro)` | [`spawn(fut)`](spawn) → [`JoinHandle`] (a copy of the current context, taken now) |
//! | `asyncio.create_task(coro, context=ctx)` | [`spawn_with_context(ctx, fut)`](spawn_with_context) (`ctx` itself: writes land in it) |
//! | `asyncio.gather(a(), b())` | spawn both and await the handles, or a [`TaskGroup`] |
//! | `async with asyncio.TaskGroup() as tg` | [`TaskGroup`] |
//! | `await asyncio.sleep(s)`, `asyncio.wait_for(aw, s)` | [`sleep(d).await`](sleep), [`timeout(d, fut).await`](timeout) |
//! | `await asyncio.to_thread(f)` | [`bridge::run_blocking(f).await`](bridge::run_blocking) (a copy of the context, on rayon), or [`spawn_blocking(f).await`](spawn_blocking) for blocking I/O (a copy of the context, on the runtime's elastic thread pool) |
//! | `loop.run_in_executor(pool, f)` | a bare `rayon::spawn`: propagates **nothing**, exactly like Python; use [`bridge::run_blocking_in(&pool, f)`](bridge::run_blocking_in) |
//! | `loop.run_in_executor(pool, ctx.run, f)` | [`ctx.run_blocking_in(&pool, f)`](bridge::RunBlocking::run_blocking_in) (`ctx` itself) |
//! | `threading.Thread(target=f)` | `std::thread::spawn(f)`: starts in an empty context, as in Python; carry values with `let ctx = copy_context(); move \|\| ctx.run(f)` |
//!
//! Differences worth knowing:
//!
//! * **Joined futures share their task's context.** `futures::join!(a, b)`
//!   polls `a` and `b` inside one task, like two coroutines awaited in one
//!   asyncio task: a `set` in one is seen by the other. `asyncio.gather`
//!   wraps each coroutine in a *task*, so the baton equivalent is to
//!   [`spawn`] each, or to give each its own context with
//!   [`copy_context()`](copy_context)`.`[`attach(fut)`](Context::attach).
//! * **Values are typed and shared, not owned by the context.** `T` must be
//!   `Send + Sync + 'static`; `get` clones, so keep large values in an `Arc`
//!   (or read them in place with [`ContextVar::with`]).
//! * **One thread at a time.** As in Python, entering a context that is
//!   already entered (on any thread, or recursively) is an error,
//!   [`ContextError::AlreadyEntered`]. Tasks that share a context through
//!   [`spawn_with_context`] simply wait for their turn.
//!
//! # Coming from tokio's `task_local!`
//!
//! tokio's task-locals are values scoped to one future:
//! `KEY.scope(value, fut)`. baton's variables live in a context that the
//! runtime carries for you. What changes:
//!
//! * **Inheritance by spawn.** `tokio::spawn` starts the new task without
//!   the caller's task-locals: each must be scoped again, by hand, at every
//!   spawn. [`baton::spawn`](spawn) copies the whole context (in O(1)), so a
//!   request id set in a handler is seen by every task the handler spawns,
//!   and by the tasks they spawn.
//! * **Into blocking work.** `spawn_blocking` and rayon see no task-locals.
//!   [`baton::spawn_blocking`](spawn_blocking) (the runtime's pool, for
//!   blocking I/O) and [`bridge::run_blocking`] (rayon, for CPU work) run
//!   their closure in a copy of the caller's context; [`bridge::join`], [`bridge::scope`] and
//!   [`in_context`](bridge::ParallelIteratorExt::in_context) do the same for
//!   every closure of a fork-join or a parallel iterator, on whichever rayon
//!   thread it runs.
//! * **Set anywhere, reset with a token.** A task-local can only be given a
//!   value for the extent of a `scope`; a [`ContextVar`] can be
//!   [`set`](ContextVar::set) at any point of a task (middleware style) and
//!   [`reset`](ContextVar::reset) later with its [`Token`], which may be held
//!   across `.await`.
//! * **Reading outside is not an error.** `KEY.with` panics outside a scope;
//!   [`ContextVar::get`] falls back to the variable's default, then `None`.
//! * **Under other executors.** baton's contexts need baton's runtime to be
//!   entered around each poll — or [`Context::attach`], which does it for one
//!   future under any executor (tokio included). The bridge's futures only
//!   need a waker.
//!
//! # Living in the tokio world
//!
//! With the feature `tokio`, `baton::tokio` goes both ways. On tokio's
//! runtime, `baton::tokio::spawn` and `spawn_blocking` are tokio's, each in
//! a copy of the context, and `baton::tokio::seal(&mut builder)` makes a
//! forgotten wrap loud: on a sealed thread a `set` in the thread's own
//! context (a bare `tokio::spawn`) panics and names the fix, instead of
//! leaking into every later task on that thread ([`seal_thread`] does the
//! same for any thread; baton's own workers and blocking threads are
//! sealed). On baton's runtime, `baton::tokio::compat(fut)` runs a
//! tokio-only future (reqwest, sqlx, tonic, the AWS SDK) inside a baton
//! task, in its context.
//!
//! ```
//! use baton::bridge::run_blocking;
//! use baton::{ContextVar, Runtime, spawn};
//!
//! static TENANT: ContextVar<&str> = ContextVar::new("tenant");
//!
//! let seen = Runtime::new().block_on(async {
//!     let _token = TENANT.set("acme");
//!     // Nothing to re-scope: a child, its child and its blocking work all
//!     // start from the values current where they were created.
//!     spawn(async {
//!         let grandchild = spawn(async { TENANT.get() }).await.unwrap();
//!         let blocking = run_blocking(|| TENANT.get()).await;
//!         (grandchild, blocking)
//!     })
//!     .await
//!     .unwrap()
//! });
//! assert_eq!(seen, (Some("acme"), Some("acme")));
//! ```
//!
//! # What baton guarantees
//!
//! The design contract calls these S1–S9. `ARCHITECTURE.md` (at the root of
//! the repository) names, for each, the tests and loom models that fail if
//! it is broken; a test checks that every name it cites exists.
//!
//! * **S1 — threads start empty.** Every OS thread has a current context; a
//!   new thread starts in a fresh, empty one: `std::thread::spawn` carries
//!   nothing over, exactly like Python.
//! * **S2 — set and get touch the current context only.** `set` changes the
//!   binding in the current context; `get` reads it, else the var's default,
//!   else `None`; `get_or(d)` prefers `d` to the var's default.
//! * **S3 — copies are O(1) and independent.** `copy_context()` shares the
//!   persistent map (a HAMT, like CPython's `hamt.c`); a later change to the
//!   copy or to the original is invisible to the other.
//! * **S4 — `run` enters and restores exactly.** `ctx.run(f)` makes `ctx`
//!   current for `f`, keeps `f`'s changes in `ctx`, and restores the
//!   caller's context on return or panic. A context is entered by one thread
//!   at a time and never recursively ([`ContextError::AlreadyEntered`]).
//!   User code that panics or re-enters while a context is entered or left
//!   (a value's destructor, a `Clone`) leaves the thread in its own context
//!   and no context claimed.
//! * **S5 — reset restores, and refuses foreign tokens.** `reset(token)`
//!   restores the binding from before the matching `set` (or removes it),
//!   and fails with [`ContextError::WrongVar`] / [`ContextError::WrongContext`]
//!   for a token of another variable or another context. A token is
//!   consumed by `reset`: reusing it does not compile (see below).
//! * **S6 — every task runs in its own context, on any worker.** `spawn`
//!   copies the spawner's context at spawn time; every poll enters it on
//!   whichever worker runs the task and leaves that worker's context exactly
//!   as it was; the future is dropped inside it too (completion, abort,
//!   shutdown), and so are an output nobody awaits and the task's context.
//!   `spawn_with_context(ctx, ..)` uses `ctx` itself.
//! * **S7 — `block_on` isolates its caller.** `rt.block_on(fut)` runs `fut` in
//!   a copy of the caller's context; the caller's context is unchanged after.
//! * **S8 — blocking work runs in an explicit copy.** `run_blocking(f)` runs
//!   `f` on rayon inside a copy of the context current at the call
//!   (`ctx.run_blocking(f)`: `ctx` itself); the rayon thread's own context is
//!   exactly restored after the job, even when rayon runs other jobs on it
//!   while one waits; a panic in `f` resumes at the `.await`; the future
//!   works under any executor. Work handed back to the runtime from inside
//!   `f` (through a captured [`Handle`]) inherits `f`'s context.
//! * **S9 — isolation.** From S1–S8: no value set in one task, context or
//!   thread is observable in another except through a copy or an explicit
//!   shared context. The leak hunter, `cargo run --release -p baton-stress`,
//!   measures it at scale, and its `--mode thread-local` baseline must find
//!   leaks, so the check is not vacuous.
//!
//! A token cannot be reset twice — this does not compile:
//!
//! ```compile_fail,E0382
//! static USER: baton::ContextVar<&str> = baton::ContextVar::new("user");
//!
//! let token = USER.set("alice");
//! USER.reset(token).unwrap();
//! USER.reset(token).unwrap(); // error[E0382]: use of moved value: `token`
//! ```
//!
//! # Examples
//!
//! Each example ports a Python program of the reference documents (quoted at
//! its top) and is checked by `tests/examples.rs` (`logging`: by
//! `tests/tracing.rs`):
//!
//! | `cargo run --example ...` | the situation |
//! |---|---|
//! | `global_problem` | a shared global is overwritten by interleaved requests (the wrong output, deterministically), and the fix with a `ContextVar` |
//! | `tokens` | `get`/`set`/`reset` with defaults and tokens; a temporary admin override restored by a token |
//! | `copy_context` | `copy_context()` and `ctx.run`: the child sees the parent's values; its writes stay in the copy |
//! | `spawn_inherits` | spawned tasks inherit the values of the spawner, taken at spawn time |
//! | `threads` | a new thread starts with the default; `copy_context().run` carries values into it |
//! | `api_gateway` | request-id middleware and an authentication context, read deep in the call chain; the `threading.local` bug it replaces |
//! | `rayon_offload` | `run_blocking` carries the context to rayon; a bare `rayon::spawn` sees nothing (the `run_in_executor` pitfall) |
//! | `logging` | every `tracing` and `log` line carries its task's trace id ([`tracing::ContextFields`], [`log::ContextLogger`]) |
//! | `macros` | `#[baton::main]`: `async fn main` on a runtime of its own; requests in their own tasks and contexts |
//!
//! # Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `macros` | yes | `#[baton::main]` and `#[baton::test]`: an `async fn` run on a runtime of its own (each test its own) |
//! | `rayon` | yes | [`bridge`]: offload and fork-join on rayon inside a copy of the context |
//! | `tracing` | yes | [`tracing`]: a `tracing-subscriber` event formatter that appends chosen `ContextVar`s to every event |
//! | `log` | yes | [`log`]: a `log::Log` adapter that appends chosen `ContextVar`s to every record |
//! | `tokio` | no | `baton::tokio`: tokio's `spawn` and `spawn_blocking` in a copy of the context, `seal` for tokio's threads, `compat` for tokio-only futures (reqwest, sqlx, tonic) inside baton tasks; `tokio::io` traits for baton's sockets |
//!
//! # Crates
//!
//! This crate re-exports `baton-context` (variables and contexts),
//! `baton-executor` (the runtime) and `baton-macros` (`main`, `test`) at its
//! root, and `baton-bridge` as [`bridge`]. The layers point one way: the executor and the bridge depend
//! on the context crate, not on each other, so the bridge works under any
//! executor.

#![forbid(unsafe_code)]

// Variables and contexts (baton-context).
pub use baton_context::{
    Attached, Context, ContextCell, ContextError, ContextVar, Iter, PackedAttached, PackedCell,
    Token, copy_context, is_thread_sealed, seal_thread,
};

// The runtime (baton-executor).
pub use baton_executor::{
    Builder, Elapsed, Handle, JoinError, JoinHandle, Metrics, Runtime, Sleep, TaskGroup, Timeout,
    YieldNow, sleep, sleep_until, spawn, spawn_blocking, spawn_with_context, timeout, yield_now,
};

// `#[baton::main]`, `#[baton::test]` (baton-macros).
#[cfg(feature = "macros")]
pub use baton_macros::{main, test};

/// Not public API: what `#[baton::main]` and `#[baton::test]` expand to.
/// The macros name nothing else of this crate.
#[cfg(feature = "macros")]
#[doc(hidden)]
pub mod __private {
    use std::future::Future;

    /// Builds a runtime (`worker_threads` of them, or one per CPU), blocks
    /// on `future` and drops the runtime.
    #[track_caller]
    pub fn block_on<F: Future>(worker_threads: Option<usize>, future: F) -> F::Output {
        let mut builder = crate::Builder::new();
        if let Some(n) = worker_threads {
            builder = builder.worker_threads(n);
        }
        builder
            .build()
            .expect("baton: failed to start the runtime's worker threads")
            .block_on(future)
    }
}

#[cfg(feature = "net")]
pub mod net {
    //! Sockets on baton's own reactor (feature `net`, on by default):
    //! [`TcpListener`], [`TcpStream`] and the others, with `futures_io`'s
    //! `AsyncRead`/`AsyncWrite`.
    //!
    //! The reactor is driven by the runtime's own workers when they have
    //! nothing to run: there is no I/O thread. A task waiting on a socket
    //! migrates like any other and reads and writes in its own context.
    //!
    //! ```
    //! use futures::{AsyncReadExt, AsyncWriteExt};
    //! use baton::net::{TcpListener, TcpStream};
    //! use baton::{ContextVar, Runtime, spawn};
    //!
    //! static CONN: ContextVar<u32> = ContextVar::new("conn");
    //!
    //! let rt = Runtime::new();
    //! rt.block_on(async {
    //!     let listener = TcpListener::bind("127.0.0.1:0").await?;
    //!     let addr = listener.local_addr()?;
    //!     let server = spawn(async move {
    //!         let (mut socket, _) = listener.accept().await?;
    //!         let _t = CONN.set(1); // this connection's task only
    //!         let mut line = [0; 4];
    //!         socket.read_exact(&mut line).await?;
    //!         assert_eq!(CONN.get(), Some(1)); // still ours after the await
    //!         socket.write_all(&line).await
    //!     });
    //!     let mut client = TcpStream::connect(addr).await?;
    //!     client.write_all(b"ping").await?;
    //!     let mut reply = [0; 4];
    //!     client.read_exact(&mut reply).await?;
    //!     assert_eq!(&reply, b"ping");
    //!     assert_eq!(CONN.get(), None); // never set here
    //!     server.await.unwrap()
    //! })
    //! .unwrap();
    //! ```

    pub use baton_executor::net::*;
}

#[cfg(feature = "http")]
pub mod http {
    //! HTTP services (feature `http`): [`serve`] runs hyper 1 on baton's
    //! sockets with **one context per request** — each request's handler
    //! runs in a fresh copy of its connection task's context, with the W3C
    //! trace headers extracted into it, so nothing a handler sets reaches
    //! the next request on the same keep-alive connection.
    //! [`ContextLayer`] does the same for servers baton does not run;
    //! [`Executor`] and [`Timer`] are hyper's runtime traits on baton.

    pub use baton_http::{BoxError, ContextLayer, ContextService, Executor, Serve, Timer, serve};
}

#[cfg(feature = "http")]
pub use baton_http::trace;

#[cfg(all(feature = "net", unix))]
pub mod signal {
    //! Waiting for a signal (feature `net`, Unix): [`ctrl_c`] (SIGINT) and
    //! [`terminate`] (SIGTERM), e.g. to shut a server down gracefully.
    //!
    //! ```no_run
    //! # let rt = baton::Runtime::new();
    //! rt.block_on(async {
    //!     // serve until Ctrl-C or `kill`
    //!     futures::future::select(
    //!         std::pin::pin!(baton::signal::ctrl_c()),
    //!         std::pin::pin!(baton::signal::terminate()),
    //!     )
    //!     .await;
    //! });
    //! ```

    pub use baton_executor::signal::*;
}

#[cfg(feature = "tokio")]
pub mod tokio;

#[cfg(any(feature = "tracing", feature = "log"))]
mod fields;

#[cfg(feature = "log")]
pub mod log;
#[cfg(feature = "tracing")]
pub mod tracing;

#[cfg(feature = "rayon")]
pub mod bridge {
    //! Offload blocking and parallel work to rayon inside an explicit copy of the
    //! context (semantics S8; feature `rayon`, on by default).
    //!
    //! Everything in `baton-bridge`, re-exported:
    //!
    //! * [`run_blocking(f)`](run_blocking) — Python's `asyncio.to_thread(f)`:
    //!   runs `f` on rayon's global pool in a copy of the current context and
    //!   returns a future of its result ([`run_blocking_in`] for a pool of your
    //!   own). The future needs only a waker: it works on baton's runtime, on
    //!   tokio, anywhere.
    //! * [`RunBlocking`] — `ctx.run_blocking(f)` and `ctx.run_blocking_in(&pool, f)`
    //!   enter `ctx` itself, so that `f`'s writes land in it.
    //! * [`join`], [`scope`], [`install`], [`spawn`] and
    //!   [`ParallelIteratorExt::in_context`] — rayon's fork-join entry points with
    //!   every closure in a copy of the context current where the work was
    //!   created, on whichever rayon thread it runs.
    //!
    //! ```
    //! use baton::bridge::{RunBlocking, run_blocking};
    //! use baton::{Context, ContextVar, Runtime};
    //!
    //! static TENANT: ContextVar<&str> = ContextVar::with_default("tenant", "-");
    //!
    //! Runtime::new().block_on(async {
    //!     let _token = TENANT.set("acme");
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
    //!     // A bare rayon job propagates nothing (like `run_in_executor`).
    //!     let (tx, rx) = std::sync::mpsc::channel();
    //!     rayon::spawn(move || tx.send(TENANT.get()).unwrap());
    //!     assert_eq!(rx.recv().unwrap(), Some("-"));
    //!
    //!     // A given context: the job's writes land in it.
    //!     let ctx = Context::new();
    //!     ctx.run_blocking(|| { let _ = TENANT.set("globex"); }).await;
    //!     assert_eq!(ctx.get(&TENANT), Some("globex"));
    //! });
    //! ```
    //!
    //! # Going back to the runtime
    //!
    //! Code inside `run_blocking` is on a rayon thread, not in a baton runtime:
    //! [`spawn`](crate::spawn) panics there. Capture a [`Handle`](crate::Handle)
    //! before offloading; `handle.spawn(fut)` inside the closure gives the new
    //! task a copy of the closure's context, as every spawn does.
    //!
    //! ```
    //! use baton::bridge::run_blocking;
    //! use baton::{ContextVar, Handle, Runtime};
    //!
    //! static STEP: ContextVar<&str> = ContextVar::new("step");
    //!
    //! let rt = Runtime::new();
    //! let seen = rt.block_on(async {
    //!     let _token = STEP.set("async");
    //!     let handle = Handle::current();
    //!     let task = run_blocking(move || {
    //!         let _ = STEP.set("blocking"); // in the job's copy
    //!         handle.spawn(async { STEP.get() })
    //!     })
    //!     .await;
    //!     task.await.unwrap()
    //! });
    //! assert_eq!(seen, Some("blocking"));
    //! ```

    pub use baton_bridge::*;
}
