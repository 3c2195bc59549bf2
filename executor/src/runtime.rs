//! [`Runtime`]: the worker threads, `block_on`, and shutdown.

use std::fmt;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_context::Context;

use crate::blocking::BlockingPool;
use crate::builder::Builder;
use crate::handle::Handle;
use crate::metrics::Metrics;
use crate::scheduler::Shared;
use crate::scheduler::worker::{Mode, Worker};
use crate::task::JoinHandle;
use baton_sync::{Condvar, Mutex, thread};

/// A work-stealing runtime whose tasks carry their own context.
///
/// Dropping the runtime stops the workers, drops every pending future
/// inside its own context, and joins the threads; handles of tasks killed
/// this way resolve to a cancelled [`JoinError`](crate::JoinError). Then it
/// shuts the blocking pool down: queued [`spawn_blocking`](crate::spawn_blocking)
/// jobs are cancelled the same way, and running ones are waited for.
///
/// ```
/// use baton_context::ContextVar;
///
/// static REQUEST_ID: ContextVar<&str> = ContextVar::with_default("request_id", "none");
///
/// let rt = baton_executor::Runtime::new();
/// let ids = rt.block_on(async {
///     let tasks: Vec<_> = ["req-123", "req-456"]
///         .into_iter()
///         .map(|id| {
///             baton_executor::spawn(async move {
///                 let _t = REQUEST_ID.set(id);
///                 baton_executor::yield_now().await;
///                 REQUEST_ID.get().unwrap()
///             })
///         })
///         .collect();
///     let mut ids = Vec::new();
///     for t in tasks {
///         ids.push(t.await.unwrap());
///     }
///     ids
/// });
/// assert_eq!(ids, ["req-123", "req-456"]);
/// assert_eq!(REQUEST_ID.get(), Some("none"));
/// ```
pub struct Runtime {
    handle: Handle,
    threads: Vec<thread::JoinHandle<()>>,
    exited: Arc<(Mutex<usize>, Condvar)>,
    shut_down: bool,
}

/// Counts a worker thread out, even if it panics.
struct ExitSignal(Arc<(Mutex<usize>, Condvar)>);

impl Drop for ExitSignal {
    fn drop(&mut self) {
        let (lock, cvar) = &*self.0;
        *lock.lock() += 1;
        cvar.notify_all();
    }
}

impl Runtime {
    /// A runtime with one worker thread per CPU.
    ///
    /// # Panics
    ///
    /// If the threads cannot be started (use [`Builder::build`] to get the
    /// error instead).
    pub fn new() -> Runtime {
        Builder::new()
            .build()
            .expect("baton: failed to start the runtime's worker threads")
    }

    pub(crate) fn from_builder(builder: Builder) -> io::Result<Runtime> {
        let workers = builder.worker_threads.unwrap_or_else(num_workers);
        let blocking = BlockingPool::new(
            builder.max_blocking_threads,
            builder.thread_keep_alive,
            format!("{}-blocking", builder.thread_name),
        );
        let shared = Shared::new(workers, blocking)?;
        let exited = Arc::new((Mutex::new(0), Condvar::new()));
        let mut rt = Runtime {
            handle: Handle { shared },
            threads: Vec::new(),
            exited,
            shut_down: false,
        };
        if builder.start_workers {
            for index in 0..workers {
                let shared = rt.handle.shared.clone();
                let signal = ExitSignal(rt.exited.clone());
                let on_start = builder.on_thread_start.clone();
                let on_stop = builder.on_thread_stop.clone();
                let spawned = thread::Builder::new()
                    .name(builder.thread_name.clone())
                    .spawn(move || {
                        let _signal = signal;
                        // Tasks run in their own contexts; a `set` in the
                        // worker's own would leak into whatever runs there
                        // bare later, so it panics instead (the hook too).
                        baton_context::seal_thread();
                        if let Some(f) = on_start {
                            f();
                        }
                        Worker::run(&shared, index, Mode::UntilShutdown);
                        if let Some(f) = on_stop {
                            f();
                        }
                    });
                match spawned {
                    Ok(handle) => rt.threads.push(handle),
                    // Dropping `rt` stops the threads already started.
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(rt)
    }

    /// Runs `future` to completion on the calling thread and returns its
    /// output, while the workers run spawned tasks.
    ///
    /// The future runs in a **copy of the caller's current context** (S7):
    /// it sees the caller's values, and whatever it sets stays in the copy;
    /// the caller's context is unchanged afterwards. Inside it, [`spawn`],
    /// [`yield_now`], [`sleep`] and [`timeout`] use this runtime. A panic in
    /// the future propagates to the caller.
    ///
    /// [`spawn`]: crate::spawn
    /// [`yield_now`]: crate::yield_now
    /// [`sleep`]: crate::sleep
    /// [`timeout`]: crate::timeout
    ///
    /// # Panics
    ///
    /// If called on a worker thread of any baton runtime, or inside another
    /// `block_on` (it would block a thread the runtime needs). The runtime
    /// stays usable.
    #[track_caller]
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        crate::block_on::block_on(&self.handle.shared, future)
    }

    /// Spawns `future` on this runtime, in a copy of the caller's current
    /// context. See [`spawn`](crate::spawn).
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }

    /// Spawns `future` to run in `context` itself. See
    /// [`spawn_with_context`](crate::spawn_with_context).
    pub fn spawn_with_context<F>(&self, context: Context, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn_with_context(context, future)
    }

    /// Runs the blocking closure `f` on this runtime's blocking pool, in a
    /// copy of the caller's current context. See
    /// [`spawn_blocking`](crate::spawn_blocking).
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.handle.spawn_blocking(f)
    }

    /// A clonable handle to this runtime.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// The runtime's counters.
    pub fn metrics(&self) -> Metrics {
        self.handle.metrics()
    }

    /// Shuts the runtime down, waiting at most `timeout` for the workers to
    /// finish their current polls, for tasks' shared contexts to be
    /// released and for running blocking closures to return. Tasks and
    /// closures still running after that are leaked (their threads are
    /// detached) rather than waited for.
    pub fn shutdown_timeout(mut self, timeout: Duration) {
        self.shutdown(Some(Instant::now() + timeout));
    }

    fn shutdown(&mut self, deadline: Option<Instant>) {
        if std::mem::replace(&mut self.shut_down, true) {
            return;
        }
        let shared = &self.handle.shared;
        shared.begin_shutdown();
        // A runtime dropped by one of its own tasks must not wait for the
        // worker that is running that task.
        let me = thread::current().id();
        let on_own_worker = self.threads.iter().any(|t| t.thread().id() == me);
        let expected = self.threads.len() - usize::from(on_own_worker);
        let all_exited = {
            let (lock, cvar) = &*self.exited;
            let mut exited = lock.lock();
            loop {
                if *exited >= expected {
                    break true;
                }
                match deadline {
                    Some(d) if Instant::now() >= d => break false,
                    Some(d) => cvar.wait_until(&mut exited, d),
                    None => cvar.wait(&mut exited),
                }
            }
        };
        for t in self.threads.drain(..) {
            if all_exited && t.thread().id() != me {
                let _ = t.join();
            }
        }
        shared.finish_shutdown(deadline);
    }

    /// **Testing hook** (loom models): runs worker `index` on the calling
    /// thread until no task can be found anywhere, then returns (it never
    /// parks). Only for runtimes built with `Builder::start_workers(false)`;
    /// the worker's queue is kept for the next call.
    ///
    /// # Panics
    ///
    /// If worker `index` is being run by another thread.
    #[doc(hidden)]
    pub fn run_worker_until_idle(&self, index: usize) {
        Worker::run(&self.handle.shared, index, Mode::UntilIdle);
    }

    /// **Testing hook** (loom models): runs worker `index` on the calling
    /// thread, parking when idle, until the runtime shuts down. Only for
    /// runtimes built with `Builder::start_workers(false)`; join such
    /// threads before dropping the runtime.
    #[doc(hidden)]
    pub fn run_worker(&self, index: usize) {
        Worker::run(&self.handle.shared, index, Mode::UntilShutdown);
    }

    /// **Testing hook**: asks the workers to stop (they return from
    /// [`Runtime::run_worker`]) without cancelling the tasks yet; dropping
    /// the runtime finishes the shutdown.
    #[doc(hidden)]
    pub fn begin_shutdown(&self) {
        self.handle.shared.begin_shutdown();
    }
}

// A panic never leaves a runtime half-updated where a later call could see
// it: a task's panic is caught in the task (its JoinHandle reports it), and
// every lock and counter is released or settled on unwind. So
// `catch_unwind(|| rt.block_on(..))` needs no `AssertUnwindSafe`, as with
// tokio's `Runtime`.
impl std::panic::UnwindSafe for Runtime {}
impl std::panic::RefUnwindSafe for Runtime {}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::new()
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.shutdown(None);
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("workers", &self.handle.shared.workers())
            .finish_non_exhaustive()
    }
}

fn num_workers() -> usize {
    #[cfg(baton_loom)]
    {
        2
    }
    #[cfg(not(baton_loom))]
    {
        num_cpus::get().max(1)
    }
}
