//! [`Handle`]: a clonable reference to a runtime.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use baton_context::{Context, ContextCell};

use crate::current;
use crate::metrics::Metrics;
use crate::scheduler::Shared;
use crate::task::JoinHandle;

/// A clonable, `Send + Sync` reference to a [`Runtime`](crate::Runtime), to
/// spawn tasks on it from anywhere (other threads included).
///
/// A handle does not keep the runtime running: once the `Runtime` is
/// dropped, tasks spawned through a handle are cancelled at once (their
/// `JoinHandle` resolves to a cancelled [`JoinError`](crate::JoinError)).
///
/// ```
/// let rt = baton_executor::Runtime::new();
/// let handle = rt.handle();
/// let task = std::thread::spawn(move || handle.spawn(async { 1 + 1 }))
///     .join()
///     .unwrap();
/// assert_eq!(rt.block_on(task).unwrap(), 2);
/// ```
#[derive(Clone)]
pub struct Handle {
    pub(crate) shared: Arc<Shared>,
}

impl Handle {
    /// The handle of the runtime the caller runs in (a task, a `block_on`,
    /// or a closure given to [`spawn_blocking`](crate::spawn_blocking)).
    ///
    /// # Panics
    ///
    /// Outside a baton runtime; see [`Handle::try_current`].
    #[track_caller]
    pub fn current() -> Handle {
        match Handle::try_current() {
            Some(handle) => handle,
            None => panic!("baton: Handle::current() {}", current::OUTSIDE),
        }
    }

    /// The handle of the runtime the caller runs in, if any.
    pub fn try_current() -> Option<Handle> {
        current::with_shared(|s| {
            s.map(|shared| Handle {
                shared: shared.clone(),
            })
        })
    }

    /// Spawns `future` on this runtime, in a copy of the caller's current
    /// context (S6). See [`spawn`](crate::spawn).
    pub fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.shared.spawn(future, ContextCell::copy_current())
    }

    /// Spawns `future` to run in `context` itself. See
    /// [`spawn_with_context`](crate::spawn_with_context).
    pub fn spawn_with_context<F>(&self, context: Context, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.shared.spawn(future, context)
    }

    /// Runs the blocking closure `f` on this runtime's blocking pool, in a
    /// copy of the caller's current context; callable from any thread. See
    /// [`spawn_blocking`](crate::spawn_blocking).
    ///
    /// ```
    /// let rt = baton_executor::Runtime::new();
    /// let handle = rt.handle();
    /// let job = std::thread::spawn(move || handle.spawn_blocking(|| 6 * 7))
    ///     .join()
    ///     .unwrap();
    /// assert_eq!(rt.block_on(job).unwrap(), 42);
    /// ```
    pub fn spawn_blocking<F, R>(&self, f: F) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        self.shared.blocking().spawn(f, self.shared.clone())
    }

    /// The runtime's counters.
    pub fn metrics(&self) -> Metrics {
        let mut metrics = self.shared.metrics();
        self.shared.blocking().metrics(&mut metrics);
        metrics
    }
}

// As for `Runtime` (see there).
impl std::panic::UnwindSafe for Handle {}
impl std::panic::RefUnwindSafe for Handle {}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handle")
            .field("workers", &self.shared.workers())
            .finish()
    }
}
