//! Where a task goes when it becomes due (the table at the top of
//! `README.md`): the runtime's [`Schedule`] implementation, and spawning.
//!
//! On a worker of this runtime, to that worker (its LIFO slot, or the back
//! of its queue for a yield); anywhere else, to the global injector.

use std::future::Future;
use std::ptr;
use std::sync::Arc;

use crate::scheduler::Shared;
use crate::scheduler::worker::{self, Worker};
use crate::task::{JoinHandle, Notified, Schedule, Task, TaskContext};
use baton_sync::Ordering;

impl Schedule for Shared {
    #[inline]
    fn schedule(&self, task: Notified) {
        self.schedule_task(task, false)
    }

    #[inline]
    fn yield_now(&self, task: Notified) {
        self.schedule_task(task, true)
    }

    fn defer(&self, task: Notified) {
        self.push_deferred(task)
    }

    fn count_completed(&self) {
        self.with_own_worker(|worker| match worker {
            Some(worker) => worker.count_completed(),
            None => {
                self.remote_completed.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    fn release(&self, task: &Task) -> Option<Task> {
        self.owned.remove(task)
    }
}

impl Shared {
    /// Spawns `future` to run in `context`.
    pub(crate) fn spawn<F, C>(self: &Arc<Self>, future: F, context: C) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
        C: TaskContext,
    {
        let (handle, task) = self.owned.bind(future, context, self.clone());
        // `None`: the runtime is shut down and the task already cancelled.
        if let Some(task) = task {
            self.with_own_worker(|worker| match worker {
                Some(worker) => worker.spawn_local(task),
                None => {
                    self.remote_spawned.fetch_add(1, Ordering::Relaxed);
                    self.schedule_remote(task);
                }
            });
        }
        handle
    }

    #[inline]
    fn schedule_task(&self, task: Notified, is_yield: bool) {
        self.with_own_worker(|worker| match worker {
            Some(worker) => worker.schedule_local(task, is_yield),
            None => self.schedule_remote(task),
        })
    }

    /// Runs `f` with the worker running on this thread if it is one of this
    /// runtime's, else with `None`.
    #[inline]
    pub(super) fn with_own_worker<R>(&self, f: impl FnOnce(Option<&Worker>) -> R) -> R {
        worker::with_current(|worker| f(worker.filter(|w| ptr::eq(&**w.shared(), self))))
    }
}
