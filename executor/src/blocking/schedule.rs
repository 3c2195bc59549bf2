//! The blocking pool's [`Schedule`] implementation: every due task goes to
//! the pool's queue.
//!
//! A blocking task completes in its first poll, so in practice only the
//! spawn queues it: it is never woken, never yields, and its context (a
//! `ContextCell` of its own) is never entered elsewhere, so never deferred;
//! an `abort` finds it queued (NOTIFIED: the thread that takes it cancels
//! it), running (no effect) or complete. The other methods are still
//! correct: they queue the task like a spawn.

use crate::blocking::pool::Pool;
use crate::task::{Notified, Schedule, Task};

impl Schedule for Pool {
    fn schedule(&self, task: Notified) {
        self.push(task);
    }

    fn yield_now(&self, task: Notified) {
        self.push(task);
    }

    fn defer(&self, task: Notified) {
        self.push(task);
    }

    fn count_completed(&self) {
        // Blocking jobs are not counted among the runtime's tasks (the
        // `spawned` and `completed` metrics).
    }

    fn release(&self, task: &Task) -> Option<Task> {
        self.owned().remove(task)
    }
}
