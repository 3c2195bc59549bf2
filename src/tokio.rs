//! Living in the tokio world (feature `tokio`): baton's contexts on tokio's
//! runtime, and tokio-only libraries inside baton's.
//!
//! Most of Rust's service libraries — reqwest, sqlx, tonic, the AWS SDK,
//! `axum::serve` — need tokio. This module covers both directions:
//!
//! * **Your service runs on tokio.** tokio knows nothing of baton's
//!   contexts: [`Context::attach`](crate::Context::attach) carries one into
//!   a future, and [`spawn`] and [`spawn_blocking`] here are tokio's, each
//!   in a copy of the spawner's context, as [`baton::spawn`](crate::spawn)
//!   does. A plain `tokio::spawn` carries nothing — and a `set` in such a
//!   bare task writes into the worker thread's own context, which every
//!   later task on that thread then sees. Build the runtime with [`seal`]
//!   and that mistake panics, naming the fix, instead of leaking.
//! * **Your service runs on baton and calls tokio-only code.** Inside a
//!   baton task such code panics with "there is no reactor running".
//!   [`compat`] runs it, entering a tokio runtime around each poll; it is
//!   still polled by the baton task, in the task's context.
//! * **Sockets.** baton's `TcpStream` and `UnixStream` implement
//!   `tokio::io::{AsyncRead, AsyncWrite}`, so code written against tokio's
//!   I/O traits runs on them.
//!
//! ```
//! use baton::ContextVar;
//!
//! static REQUEST_ID: ContextVar<u64> = ContextVar::new("request_id");
//!
//! let mut builder = tokio::runtime::Builder::new_multi_thread();
//! builder.worker_threads(2).enable_all();
//! let rt = baton::tokio::seal(&mut builder).build().unwrap();
//!
//! // The main future runs on this thread: give it a context of its own.
//! rt.block_on(baton::copy_context().attach(async {
//!     let _token = REQUEST_ID.set(7);
//!     let wrapped = baton::tokio::spawn(async { REQUEST_ID.get() });
//!     assert_eq!(wrapped.await.unwrap(), Some(7));
//!     // A bare tokio::spawn carries nothing, and may not set either.
//!     let bare = tokio::spawn(async { REQUEST_ID.get() });
//!     assert_eq!(bare.await.unwrap(), None);
//!     let leak = tokio::spawn(async { REQUEST_ID.set(8); });
//!     assert!(leak.await.unwrap_err().is_panic());
//! }));
//! ```
//!
//! Sealing other threads: tokio keeps **one** `on_thread_start` hook, so
//! if you install your own, call [`baton::seal_thread()`](crate::seal_thread)
//! from it rather than calling [`seal`]. For a rayon pool:
//! `rayon::ThreadPoolBuilder::new().start_handler(|_| baton::seal_thread())`.
//! `#[tokio::main]` cannot take a hook; build the runtime by hand as above.
//! A current-thread runtime runs its tasks on the thread that calls
//! `block_on`, which no hook reaches: call `baton::seal_thread()` on it, and
//! run the main future in a context of its own (`copy_context().attach(..)`),
//! as above.

use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::sync::OnceLock;
use std::task::{Context as TaskContext, Poll};

use ::tokio::runtime::{Builder, Handle, Runtime};
use ::tokio::task::JoinHandle;

use crate::{ContextCell, PackedCell};

/// `tokio::spawn`, in a copy of the current baton context: what
/// [`baton::spawn`](crate::spawn) does on baton's runtime.
///
/// The copy is taken now, in O(1) and without allocating; every poll of
/// the task, and its drop, runs inside it, as with
/// `tokio::spawn(copy_context().attach(future))`
/// ([`Context::attach`](crate::Context::attach)). What the task sets stays
/// in its copy.
///
/// The copy lives in the task, in one word (a [`PackedCell`]): tokio's
/// task cells are 128-byte aligned, and for a small future a second word
/// could cost a larger allocation. A task whose context only reads what it
/// was copied with allocates nothing more than `tokio::spawn`; the first
/// `set` inside the task moves its context into a 16-byte box.
///
/// ```
/// use baton::ContextVar;
///
/// static TENANT: ContextVar<&str> = ContextVar::new("tenant");
///
/// let rt = tokio::runtime::Runtime::new().unwrap();
/// rt.block_on(baton::copy_context().attach(async {
///     let _token = TENANT.set("acme");
///     let child = baton::tokio::spawn(async {
///         let seen = TENANT.get();
///         let _ = TENANT.set("changed"); // in the child's copy only
///         seen
///     });
///     assert_eq!(child.await.unwrap(), Some("acme"));
///     assert_eq!(TENANT.get(), Some("acme"));
/// }));
/// ```
///
/// # Panics
///
/// As `tokio::spawn`: outside a tokio runtime.
#[track_caller]
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    ::tokio::spawn(PackedCell::copy_current().attach(future))
}

/// `tokio::task::spawn_blocking`, with `f` run inside a copy of the current
/// baton context, taken now: what
/// [`baton::spawn_blocking`](crate::spawn_blocking) does on baton's runtime.
///
/// ```
/// use baton::ContextVar;
///
/// static TENANT: ContextVar<&str> = ContextVar::new("tenant");
///
/// let rt = tokio::runtime::Runtime::new().unwrap();
/// rt.block_on(baton::copy_context().attach(async {
///     let _token = TENANT.set("acme");
///     let seen = baton::tokio::spawn_blocking(|| TENANT.get()).await.unwrap();
///     assert_eq!(seen, Some("acme"));
/// }));
/// ```
///
/// # Panics
///
/// As `tokio::task::spawn_blocking`: outside a tokio runtime.
#[track_caller]
pub fn spawn_blocking<F, R>(f: F) -> JoinHandle<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let cell = ContextCell::copy_current();
    ::tokio::task::spawn_blocking(move || cell.run(f))
}

/// Seals every thread the runtime starts, workers and blocking threads: it
/// installs [`baton::seal_thread`](crate::seal_thread) as the builder's
/// `on_thread_start` hook, and returns the builder.
///
/// On a sealed thread a `ContextVar::set` in the thread's own context —
/// code run by a bare `tokio::spawn`, with no context of its own — panics
/// with a message that names the fix ([`spawn`], or
/// [`Context::attach`](crate::Context::attach)), instead of leaking the
/// value to every later task on that thread. Tasks started with [`spawn`]
/// or wrapped with `attach` are unaffected.
///
/// tokio keeps one start hook: a later `on_thread_start` replaces this one.
/// To keep a hook of your own, call `baton::seal_thread()` from it instead.
///
/// ```
/// use baton::ContextVar;
///
/// static USER: ContextVar<&str> = ContextVar::new("user");
///
/// let mut builder = tokio::runtime::Builder::new_multi_thread();
/// let rt = baton::tokio::seal(builder.enable_all()).build().unwrap();
/// let leak = rt.spawn(async { USER.set("alice"); });
/// let message = rt.block_on(leak).unwrap_err().into_panic();
/// let message = message.downcast_ref::<String>().unwrap();
/// assert!(message.contains("baton::tokio::spawn"));
/// ```
pub fn seal(builder: &mut Builder) -> &mut Builder {
    builder.on_thread_start(crate::seal_thread)
}

/// Runs a future that needs tokio's reactor or timers — a reqwest, sqlx,
/// tonic or AWS SDK call — inside a baton task.
///
/// Each poll of `future` (and its drop) runs with a tokio runtime entered:
/// the runtime current where `compat` is called if there is one, else a
/// background runtime that baton starts on first use (one worker thread,
/// which drives tokio's I/O and timers, sealed as by [`seal`]). The future
/// is still polled by the task that awaits it, so it runs in that task's
/// baton context: what it reads and sets is the task's. Tasks it starts
/// with `tokio::spawn` run on the tokio runtime, without the context
/// (use [`spawn`] to carry it).
///
/// Only the polls are inside the runtime, not the call that makes the
/// future: `compat(tokio::time::sleep(d))` still panics, as `sleep`
/// looks for the runtime when it is called. Make such a future inside an
/// `async` block — `compat(async { tokio::time::sleep(d).await })` — or
/// call an `async fn`, which does nothing until polled.
///
/// ```
/// use std::time::Duration;
/// use baton::{ContextVar, Runtime};
///
/// static REQUEST_ID: ContextVar<u64> = ContextVar::new("request_id");
///
/// Runtime::new().block_on(async {
///     let _token = REQUEST_ID.set(42);
///     // tokio's timer: without `compat`, "there is no reactor running".
///     let id = baton::tokio::compat(async {
///         tokio::time::sleep(Duration::from_millis(1)).await;
///         REQUEST_ID.get()
///     })
///     .await;
///     assert_eq!(id, Some(42));
/// });
/// ```
pub fn compat<F: Future>(future: F) -> impl Future<Output = F::Output> {
    let handle = Handle::try_current().unwrap_or_else(|_| background().clone());
    compat_with(handle, future)
}

/// [`compat`] with a given tokio runtime: each poll of `future`, and its
/// drop, runs with `handle` entered.
///
/// The runtime must drive its own I/O and timers while `future` waits: a
/// multi-thread runtime does; a current-thread one only inside its
/// `block_on`.
///
/// ```
/// use std::time::Duration;
/// use baton::Runtime;
///
/// let tokio_rt = tokio::runtime::Runtime::new().unwrap();
/// let handle = tokio_rt.handle().clone();
/// Runtime::new().block_on(async move {
///     baton::tokio::compat_with(handle, async {
///         tokio::time::sleep(Duration::from_millis(1)).await
///     })
///     .await;
/// });
/// ```
pub async fn compat_with<F: Future>(handle: Handle, future: F) -> F::Output {
    let future = pin!(Some(future));
    let mut entered = Entered { handle, future };
    poll_fn(move |cx| entered.poll(cx)).await
}

/// The future of [`compat_with`], pinned in its async block: polled and
/// dropped with the runtime entered.
struct Entered<'a, F> {
    handle: Handle,
    /// `None` once it has completed (it was dropped then, entered).
    future: Pin<&'a mut Option<F>>,
}

impl<F: Future> Entered<'_, F> {
    fn poll(&mut self, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let _entered = self.handle.enter();
        let future = self
            .future
            .as_mut()
            .as_pin_mut()
            .expect("baton: `compat` polled after completion");
        let poll = future.poll(cx);
        if poll.is_ready() {
            self.future.set(None);
        }
        poll
    }
}

impl<F> Drop for Entered<'_, F> {
    fn drop(&mut self) {
        // A future dropped before it completes may still need the runtime
        // (to deregister a socket, to hand a pooled connection back).
        if self.future.is_some() {
            let _entered = self.handle.enter();
            self.future.set(None);
        }
    }
}

/// The background runtime of [`compat`], started on first use.
fn background() -> &'static Handle {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let mut builder = Builder::new_multi_thread();
            builder
                .worker_threads(1)
                .thread_name("baton-tokio")
                .enable_io()
                .enable_time();
            seal(&mut builder)
                .build()
                .expect("baton: cannot start the background tokio runtime")
        })
        .handle()
}

#[cfg(test)]
mod tests {
    use std::mem::size_of_val;

    /// The context costs a task one word: a future holding one `Arc` (16
    /// bytes) still fits the 24 bytes tokio's smallest task cell leaves it.
    #[test]
    fn a_task_carries_its_context_in_one_word() {
        let ran = std::sync::Arc::new(());
        let future = async move {
            drop(ran);
        };
        let plain = size_of_val(&future);
        let wrapped = crate::PackedCell::new().attach(future);
        assert_eq!(size_of_val(&wrapped), plain + size_of::<usize>());
        assert!(size_of_val(&wrapped) <= 24, "{}", size_of_val(&wrapped));
    }
}
