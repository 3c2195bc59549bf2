//! One adapter per async runtime, so that every executor workload is written
//! once and run on each runtime with the same number of worker threads.
//!
//! * [`Tokio`] — `tokio::runtime::Builder::new_multi_thread().worker_threads(n)`;
//! * [`AsyncExecutor`] — one `async_executor::Executor` run by `n` threads
//!   (`future::block_on(ex.run(..))` on each, as async-executor's own benches
//!   do); `block_on` is `futures_lite::future::block_on` on the caller;
//! * [`Baton`] — `baton_executor::Builder::new().worker_threads(n)`.
//! * [`TokioBaton`] — tokio spawning with `baton::tokio::spawn`: the cost
//!   of carrying baton's contexts on tokio; [`TokioPadded`], its control
//!   (plain `tokio::spawn`, each future 8 bytes larger).
//!
//! "From outside" (a thread that is not a worker) a workload spawns through
//! [`Spawner::spawn`]; from inside a task through [`Spawner::spawn_inside`],
//! which uses each runtime's own "spawn onto the current runtime" path where
//! it has one (`tokio::spawn`, `baton_executor::spawn`).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::JoinHandle;

/// An async runtime with a fixed number of worker threads.
pub trait BenchRuntime: Sized + 'static {
    /// Its name in benchmark ids and tables.
    const NAME: &'static str;
    /// A cheap, clonable handle that spawns onto this runtime.
    type Spawner: Spawner;

    /// Starts the runtime with `workers` worker threads.
    fn with_workers(workers: usize) -> Self;

    /// A handle that spawns onto this runtime, from any thread.
    fn spawner(&self) -> Self::Spawner;

    /// Runs `fut` to completion on the calling thread (not a worker).
    fn block_on<F: Future>(&self, fut: F) -> F::Output;
}

/// Spawns onto one runtime; see the module docs.
pub trait Spawner: Clone + Send + Sync + 'static {
    /// A spawned task: a future of its output (a task that panicked or was
    /// cancelled makes this future panic — benchmarks want no failures).
    type Task<T: Send + 'static>: Future<Output = T> + Send + 'static;

    /// Spawns `fut` from any thread.
    fn spawn<F>(&self, fut: F) -> Self::Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static;

    /// Spawns `fut` from inside a task of this runtime. Defaults to
    /// [`spawn`](Spawner::spawn).
    fn spawn_inside<F>(&self, fut: F) -> Self::Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.spawn(fut)
    }

    /// Lets `task` run on without anyone awaiting it.
    fn detach<T: Send + 'static>(task: Self::Task<T>);

    /// The runtime's own `yield_now`.
    fn yield_now() -> impl Future<Output = ()> + Send;
}

// ---------------------------------------------------------------------------
// tokio

/// tokio's multi-thread runtime.
pub struct Tokio {
    rt: tokio::runtime::Runtime,
}

impl Tokio {
    /// The tokio runtime itself.
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.rt
    }
}

impl BenchRuntime for Tokio {
    const NAME: &'static str = "tokio";
    type Spawner = tokio::runtime::Handle;

    fn with_workers(workers: usize) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
            .expect("tokio runtime");
        Tokio { rt }
    }

    fn spawner(&self) -> Self::Spawner {
        self.rt.handle().clone()
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }
}

/// A tokio `JoinHandle` that unwraps its result.
pub struct TokioTask<T>(tokio::task::JoinHandle<T>);

impl<T> Future for TokioTask<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.expect("tokio task failed"))
    }
}

impl Spawner for tokio::runtime::Handle {
    type Task<T: Send + 'static> = TokioTask<T>;

    fn spawn<F>(&self, fut: F) -> TokioTask<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        TokioTask(tokio::runtime::Handle::spawn(self, fut))
    }

    fn spawn_inside<F>(&self, fut: F) -> TokioTask<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        TokioTask(tokio::spawn(fut))
    }

    fn detach<T: Send + 'static>(task: TokioTask<T>) {
        drop(task);
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        tokio::task::yield_now()
    }
}

// ---------------------------------------------------------------------------
// tokio with baton's contexts

/// tokio's multi-thread runtime with every task spawned in a copy of the
/// spawner's baton context (`baton::tokio::spawn` from inside a task,
/// `handle.spawn(copy_context().attach(fut))` from outside): what
/// `baton::tokio` costs over plain tokio.
///
/// [`TokioBaton::sharing`] spawns onto a [`Tokio`]'s own runtime, so that
/// the two are compared on one runtime: of two runtimes run in turn, the
/// second finds its threads parked and pays to wake them, which weighs more
/// than what is measured. `with_workers` starts a runtime of its own,
/// sealed (`baton::tokio::seal`; sealing costs a spawn nothing).
pub struct TokioBaton {
    handle: tokio::runtime::Handle,
    _own: Option<tokio::runtime::Runtime>,
}

impl TokioBaton {
    /// Spawns onto `tokio`'s runtime.
    pub fn sharing(tokio: &Tokio) -> TokioBaton {
        TokioBaton {
            handle: tokio.rt.handle().clone(),
            _own: None,
        }
    }
}

impl BenchRuntime for TokioBaton {
    const NAME: &'static str = "tokio+baton";
    type Spawner = TokioBatonSpawner;

    fn with_workers(workers: usize) -> Self {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(workers).enable_all();
        let rt = baton::tokio::seal(&mut builder)
            .build()
            .expect("tokio runtime");
        TokioBaton {
            handle: rt.handle().clone(),
            _own: Some(rt),
        }
    }

    fn spawner(&self) -> Self::Spawner {
        TokioBatonSpawner(self.handle.clone())
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.handle.block_on(baton::copy_context().attach(fut))
    }
}

/// Spawns onto a [`TokioBaton`] runtime, each task in a copy of the
/// spawner's baton context.
#[derive(Clone)]
pub struct TokioBatonSpawner(tokio::runtime::Handle);

impl Spawner for TokioBatonSpawner {
    type Task<T: Send + 'static> = TokioTask<T>;

    fn spawn<F>(&self, fut: F) -> TokioTask<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        TokioTask(self.0.spawn(baton::copy_context().attach(fut)))
    }

    fn spawn_inside<F>(&self, fut: F) -> TokioTask<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        TokioTask(baton::tokio::spawn(fut))
    }

    fn detach<T: Send + 'static>(task: TokioTask<T>) {
        drop(task);
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        tokio::task::yield_now()
    }
}

/// The control for [`TokioBaton`]: plain `tokio::spawn` on a [`Tokio`]'s
/// runtime, every future made 8 bytes larger and nothing else. tokio's
/// task cells are 128-byte aligned, so a few bytes more in a small future
/// can cost a size class; whatever `TokioPadded` costs over [`Tokio`] is
/// that, not baton (a baton context in a tokio task is one word).
pub struct TokioPadded {
    handle: tokio::runtime::Handle,
}

impl TokioPadded {
    /// Spawns onto `tokio`'s runtime.
    pub fn sharing(tokio: &Tokio) -> TokioPadded {
        TokioPadded {
            handle: tokio.rt.handle().clone(),
        }
    }
}

impl BenchRuntime for TokioPadded {
    const NAME: &'static str = "tokio+8B";
    type Spawner = TokioPaddedSpawner;

    fn with_workers(workers: usize) -> Self {
        // Leaked: a control that owns its runtime is only for one-off runs.
        let tokio: &'static Tokio = Box::leak(Box::new(Tokio::with_workers(workers)));
        TokioPadded::sharing(tokio)
    }

    fn spawner(&self) -> Self::Spawner {
        TokioPaddedSpawner(self.handle.clone())
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.handle.block_on(fut)
    }
}

pin_project_lite::pin_project! {
    /// A future and 8 bytes that nothing reads (see [`TokioPadded`]).
    pub struct Padded<F> {
        pad: [u64; 1],
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for Padded<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        std::hint::black_box(this.pad);
        this.future.poll(cx)
    }
}

/// Spawns onto a [`TokioPadded`] runtime.
#[derive(Clone)]
pub struct TokioPaddedSpawner(tokio::runtime::Handle);

impl Spawner for TokioPaddedSpawner {
    type Task<T: Send + 'static> = TokioTask<T>;

    fn spawn<F>(&self, future: F) -> TokioTask<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        TokioTask(self.0.spawn(Padded {
            pad: [0; 1],
            future,
        }))
    }

    fn spawn_inside<F>(&self, future: F) -> TokioTask<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        TokioTask(tokio::spawn(Padded {
            pad: [0; 1],
            future,
        }))
    }

    fn detach<T: Send + 'static>(task: TokioTask<T>) {
        drop(task);
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        tokio::task::yield_now()
    }
}

// ---------------------------------------------------------------------------
// async-executor

/// An `async_executor::Executor` run by N threads.
pub struct AsyncExecutor {
    ex: Arc<async_executor::Executor<'static>>,
    stop: Option<async_channel::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl BenchRuntime for AsyncExecutor {
    const NAME: &'static str = "async-executor";
    type Spawner = Arc<async_executor::Executor<'static>>;

    fn with_workers(workers: usize) -> Self {
        let ex = Arc::new(async_executor::Executor::new());
        let (stop, stopped) = async_channel::bounded::<()>(1);
        let threads = (0..workers)
            .map(|i| {
                let ex = ex.clone();
                let stopped = stopped.clone();
                std::thread::Builder::new()
                    .name(format!("async-executor-{i}"))
                    .spawn(move || {
                        let _ = futures_lite::future::block_on(ex.run(stopped.recv()));
                    })
                    .expect("spawn async-executor thread")
            })
            .collect();
        AsyncExecutor {
            ex,
            stop: Some(stop),
            threads,
        }
    }

    fn spawner(&self) -> Self::Spawner {
        self.ex.clone()
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        futures_lite::future::block_on(fut)
    }
}

impl Drop for AsyncExecutor {
    fn drop(&mut self) {
        // Closing the channel ends every `ex.run(stopped.recv())`.
        drop(self.stop.take());
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Spawner for Arc<async_executor::Executor<'static>> {
    type Task<T: Send + 'static> = async_executor::Task<T>;

    fn spawn<F>(&self, fut: F) -> async_executor::Task<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        async_executor::Executor::spawn(self, fut)
    }

    fn detach<T: Send + 'static>(task: async_executor::Task<T>) {
        task.detach();
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        futures_lite::future::yield_now()
    }
}

// ---------------------------------------------------------------------------
// baton

/// baton's runtime.
pub struct Baton {
    rt: baton_executor::Runtime,
}

impl Baton {
    /// The baton runtime itself.
    pub fn runtime(&self) -> &baton_executor::Runtime {
        &self.rt
    }
}

impl BenchRuntime for Baton {
    const NAME: &'static str = "baton";
    type Spawner = baton_executor::Handle;

    fn with_workers(workers: usize) -> Self {
        let rt = baton_executor::Builder::new()
            .worker_threads(workers)
            .build()
            .expect("baton runtime");
        Baton { rt }
    }

    fn spawner(&self) -> Self::Spawner {
        self.rt.handle()
    }

    fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.rt.block_on(fut)
    }
}

/// A baton `JoinHandle` that unwraps its result.
pub struct BatonTask<T>(baton_executor::JoinHandle<T>);

impl<T> Future for BatonTask<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        Pin::new(&mut self.0)
            .poll(cx)
            .map(|r| r.expect("baton task failed"))
    }
}

impl Spawner for baton_executor::Handle {
    type Task<T: Send + 'static> = BatonTask<T>;

    fn spawn<F>(&self, fut: F) -> BatonTask<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        BatonTask(baton_executor::Handle::spawn(self, fut))
    }

    fn spawn_inside<F>(&self, fut: F) -> BatonTask<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        BatonTask(baton_executor::spawn(fut))
    }

    fn detach<T: Send + 'static>(task: BatonTask<T>) {
        drop(task);
    }

    fn yield_now() -> impl Future<Output = ()> + Send {
        baton_executor::yield_now()
    }
}
