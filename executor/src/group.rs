//! [`TaskGroup`]: structured concurrency, like Python's `asyncio.TaskGroup`
//! and tokio's `JoinSet`.

use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::{Context as TaskCx, Poll};

use baton_context::Context;
use futures_util::stream::{FuturesUnordered, Stream};

use crate::handle::Handle;
use crate::task::{JoinError, JoinHandle};

/// A set of tasks that are awaited together and never outlive the group.
///
/// This is baton's `asyncio.TaskGroup` / tokio `JoinSet`: spawn tasks into
/// it (each in a copy of the spawner's context, like [`spawn`](crate::spawn)),
/// then take their results as they finish with
/// [`join_next`](TaskGroup::join_next), or all at once, in spawn order, with
/// [`join_all`](TaskGroup::join_all) — which, like `asyncio.TaskGroup`,
/// cancels the remaining tasks at the first failure. Dropping the group
/// aborts every task still in it.
///
/// ```
/// use baton_executor::TaskGroup;
///
/// let rt = baton_executor::Runtime::new();
/// let sum = rt.block_on(async {
///     let mut group = TaskGroup::new();
///     for i in 1..=4u64 {
///         group.spawn(async move { i * 10 });
///     }
///     let mut sum = 0;
///     while let Some(result) = group.join_next().await {
///         sum += result.unwrap();
///     }
///     sum
/// });
/// assert_eq!(sum, 100);
/// ```
pub struct TaskGroup<T> {
    tasks: FuturesUnordered<Indexed<T>>,
    next_index: usize,
}

struct Indexed<T> {
    index: usize,
    handle: JoinHandle<T>,
}

impl<T> Future for Indexed<T> {
    type Output = (usize, Result<T, JoinError>);

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<Self::Output> {
        let index = self.index;
        Pin::new(&mut self.handle).poll(cx).map(|r| (index, r))
    }
}

impl<T: Send + 'static> TaskGroup<T> {
    /// An empty group.
    pub fn new() -> TaskGroup<T> {
        TaskGroup {
            tasks: FuturesUnordered::new(),
            next_index: 0,
        }
    }

    fn push(&mut self, handle: JoinHandle<T>) {
        let index = self.next_index;
        self.next_index += 1;
        self.tasks.push(Indexed { index, handle });
    }

    /// Spawns `future` into the group on the current runtime, in a copy of
    /// the caller's context.
    ///
    /// # Panics
    ///
    /// Outside a baton runtime (see [`spawn_on`](TaskGroup::spawn_on)).
    #[track_caller]
    pub fn spawn<F>(&mut self, future: F)
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.push(crate::spawn(future));
    }

    /// Spawns `future` into the group on the runtime of `handle`.
    pub fn spawn_on<F>(&mut self, future: F, handle: &Handle)
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.push(handle.spawn(future));
    }

    /// Spawns `future` into the group, to run in `context` itself (see
    /// [`spawn_with_context`](crate::spawn_with_context)).
    #[track_caller]
    pub fn spawn_with_context<F>(&mut self, context: Context, future: F)
    where
        F: Future<Output = T> + Send + 'static,
    {
        self.push(crate::spawn_with_context(context, future));
    }

    /// Number of tasks in the group whose result has not been taken yet.
    pub fn len(&self) -> usize {
        self.tasks.len()
    }

    /// Whether the group holds no task.
    pub fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Waits for the next task to finish and returns its result; `None` if
    /// the group is empty.
    pub async fn join_next(&mut self) -> Option<Result<T, JoinError>> {
        poll_fn(|cx| self.poll_join_next(cx)).await
    }

    /// Polls for the next finished task (the poll form of
    /// [`join_next`](TaskGroup::join_next)).
    pub fn poll_join_next(&mut self, cx: &mut TaskCx<'_>) -> Poll<Option<Result<T, JoinError>>> {
        Pin::new(&mut self.tasks)
            .poll_next(cx)
            .map(|next| next.map(|(_, r)| r))
    }

    /// Waits for every task and returns their outputs in spawn order.
    ///
    /// # Errors
    ///
    /// The first failure (panic or cancellation) in completion order; the
    /// tasks still running are then aborted (as `asyncio.TaskGroup` does).
    pub async fn join_all(mut self) -> Result<Vec<T>, JoinError> {
        let mut results: Vec<Option<T>> = Vec::new();
        results.resize_with(self.next_index, || None);
        while let Some((index, result)) =
            poll_fn(|cx| Pin::new(&mut self.tasks).poll_next(cx)).await
        {
            match result {
                Ok(value) => results[index] = Some(value),
                Err(err) => {
                    self.abort_all();
                    return Err(err);
                }
            }
        }
        Ok(results.into_iter().flatten().collect())
    }

    /// Aborts every task in the group (their results become cancellation
    /// errors, unless they already finished).
    pub fn abort_all(&mut self) {
        for task in self.tasks.iter() {
            task.handle.abort();
        }
    }

    /// Aborts every task and waits until all have stopped.
    pub async fn shutdown(&mut self) {
        self.abort_all();
        while self.join_next().await.is_some() {}
    }
}

impl<T: Send + 'static> Default for TaskGroup<T> {
    fn default() -> Self {
        TaskGroup::new()
    }
}

impl<T> Drop for TaskGroup<T> {
    fn drop(&mut self) {
        for task in self.tasks.iter() {
            task.handle.abort();
        }
    }
}

impl<T> fmt::Debug for TaskGroup<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskGroup")
            .field("len", &self.tasks.len())
            .finish()
    }
}
