//! [`Builder`]: configures and starts a [`Runtime`].

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::runtime::Runtime;

pub(crate) type Callback = Arc<dyn Fn() + Send + Sync + 'static>;

/// Configures a [`Runtime`].
///
/// ```
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// use std::sync::Arc;
///
/// let started = Arc::new(AtomicUsize::new(0));
/// let counter = started.clone();
/// let rt = baton_executor::Builder::new()
///     .worker_threads(2)
///     .thread_name("my-worker")
///     .on_thread_start(move || { counter.fetch_add(1, Ordering::SeqCst); })
///     .build()
///     .unwrap();
/// let name = rt.block_on(rt.spawn(async {
///     std::thread::current().name().map(str::to_owned)
/// }));
/// assert_eq!(name.unwrap().as_deref(), Some("my-worker"));
/// drop(rt);
/// assert_eq!(started.load(Ordering::SeqCst), 2);
/// ```
pub struct Builder {
    pub(crate) worker_threads: Option<usize>,
    pub(crate) thread_name: String,
    pub(crate) on_thread_start: Option<Callback>,
    pub(crate) on_thread_stop: Option<Callback>,
    pub(crate) start_workers: bool,
    pub(crate) max_blocking_threads: usize,
    pub(crate) thread_keep_alive: Duration,
}

impl Builder {
    /// A builder with the defaults: one worker per CPU, threads named
    /// `baton-worker`, at most 512 blocking threads, each kept 10 s idle.
    pub fn new() -> Builder {
        Builder {
            worker_threads: None,
            thread_name: "baton-worker".to_owned(),
            on_thread_start: None,
            on_thread_stop: None,
            start_workers: true,
            max_blocking_threads: 512,
            thread_keep_alive: Duration::from_secs(10),
        }
    }

    /// The number of worker threads (at least 1; default: the number of
    /// CPUs).
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    #[track_caller]
    pub fn worker_threads(mut self, n: usize) -> Builder {
        assert!(n > 0, "baton: worker_threads must be at least 1");
        self.worker_threads = Some(n);
        self
    }

    /// The most threads the blocking pool of
    /// [`spawn_blocking`](crate::spawn_blocking) runs at once (default 512).
    /// They are started on demand, when a job finds no idle thread; beyond
    /// the limit, jobs wait in a queue for a thread to finish its current
    /// one. Idle threads exit after [`thread_keep_alive`](Builder::thread_keep_alive).
    ///
    /// ```
    /// let rt = baton_executor::Builder::new().max_blocking_threads(2).build().unwrap();
    /// let jobs: Vec<_> = (0..4).map(|i| rt.spawn_blocking(move || i * 10)).collect();
    /// let sum: i32 = rt.block_on(async {
    ///     let mut sum = 0;
    ///     for job in jobs {
    ///         sum += job.await.unwrap();
    ///     }
    ///     sum
    /// });
    /// assert_eq!(sum, 60);
    /// assert!(rt.metrics().blocking_threads <= 2);
    /// ```
    ///
    /// # Panics
    ///
    /// If `n` is 0.
    #[track_caller]
    pub fn max_blocking_threads(mut self, n: usize) -> Builder {
        assert!(n > 0, "baton: max_blocking_threads must be at least 1");
        self.max_blocking_threads = n;
        self
    }

    /// How long a blocking-pool thread waits for a job before it exits
    /// (default 10 s).
    pub fn thread_keep_alive(mut self, duration: Duration) -> Builder {
        self.thread_keep_alive = duration;
        self
    }

    /// The name of the worker threads (the blocking pool's get
    /// `-blocking` appended).
    pub fn thread_name(mut self, name: impl Into<String>) -> Builder {
        self.thread_name = name.into();
        self
    }

    /// Runs `f` on each worker thread when it starts, before it runs tasks.
    ///
    /// The thread is sealed already
    /// ([`seal_thread`](baton_context::seal_thread)): tasks run in their own
    /// contexts, and a `ContextVar::set` in the worker's own context, `f`'s
    /// included, panics instead of leaking into what later runs there bare.
    pub fn on_thread_start(mut self, f: impl Fn() + Send + Sync + 'static) -> Builder {
        self.on_thread_start = Some(Arc::new(f));
        self
    }

    /// Runs `f` on each worker thread when it stops.
    pub fn on_thread_stop(mut self, f: impl Fn() + Send + Sync + 'static) -> Builder {
        self.on_thread_stop = Some(Arc::new(f));
        self
    }

    /// **Testing hook** (loom models): build the runtime without starting
    /// worker threads. The caller then runs the workers on threads of its
    /// own with [`Runtime::run_worker`] or [`Runtime::run_worker_until_idle`].
    #[doc(hidden)]
    pub fn start_workers(mut self, start: bool) -> Builder {
        self.start_workers = start;
        self
    }

    /// Starts the runtime.
    ///
    /// # Errors
    ///
    /// If a worker thread cannot be spawned.
    pub fn build(self) -> io::Result<Runtime> {
        Runtime::from_builder(self)
    }
}

impl Default for Builder {
    fn default() -> Self {
        Builder::new()
    }
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("worker_threads", &self.worker_threads)
            .field("thread_name", &self.thread_name)
            .field("max_blocking_threads", &self.max_blocking_threads)
            .field("thread_keep_alive", &self.thread_keep_alive)
            .finish_non_exhaustive()
    }
}
