//! The owned-tasks list: every live task of a scheduler, so that shutdown
//! can find and cancel the ones no queue holds (those waiting on a waker).
//!
//! An intrusive doubly linked list through the task headers, split into
//! shards (each behind its own mutex, on its own cache line) chosen by the
//! task's address, so spawning and completing on different workers rarely
//! contend. The list holds one task reference (a [`Task`]) from
//! [`OwnedTasks::bind`] until [`OwnedTasks::remove`] (the completer, through
//! [`Schedule::release`]) or shutdown takes it out. Whether a task is linked
//! is read from its links alone: an unlinked task's are `Pointers::UNLINKED`
//! (a marker in `prev`; see `raw.rs`). Once [`OwnedTasks::close_and_shutdown_all`]
//! has run, `bind` refuses new tasks and cancels them at once.
//!
//! [`Schedule::release`]: crate::task::Schedule::release

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use crossbeam_utils::CachePadded;

use crate::task::cell::TaskContext;
use crate::task::harness;
use crate::task::join::JoinHandle;
use crate::task::raw::{Pointers, RawTask};
use crate::task::schedule::{Notified, Schedule, Task};
use baton_sync::Mutex;

struct Shard {
    head: Option<RawTask>,
    closed: bool,
}

// SAFETY: the raw pointers are task references, usable from any thread.
unsafe impl Send for Shard {}

/// The tasks a scheduler owns (see the module docs).
pub(crate) struct OwnedTasks {
    shards: Box<[CachePadded<Mutex<Shard>>]>,
    mask: usize,
}

impl OwnedTasks {
    /// A list for a scheduler of `workers` threads (more threads, more
    /// shards).
    pub(crate) fn new(workers: usize) -> Self {
        let n = (workers * 4).next_power_of_two().clamp(4, 64);
        OwnedTasks {
            shards: (0..n)
                .map(|_| {
                    CachePadded::new(Mutex::new(Shard {
                        head: None,
                        closed: false,
                    }))
                })
                .collect(),
            mask: n - 1,
        }
    }

    /// Makes a task of `future`, run in `context` and scheduled on
    /// `scheduler`, and links it. Returns its `JoinHandle` and the
    /// `Notified` to schedule it with first; `None` if the list is closed,
    /// in which case the task was cancelled at once (its handle resolves to
    /// a cancellation error).
    pub(crate) fn bind<F, C, S>(
        &self,
        future: F,
        context: C,
        scheduler: Arc<S>,
    ) -> (JoinHandle<F::Output>, Option<Notified>)
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
        C: TaskContext,
        S: Schedule,
    {
        let raw = harness::allocate(future, context, scheduler);
        // SAFETY: a new task has three references: the handle's, the
        // list's and the Notified's.
        let (handle, task, notified) = unsafe {
            (
                JoinHandle::from_raw(raw),
                Task::from_raw(raw),
                Notified::from_raw(raw),
            )
        };
        match self.insert(task) {
            Ok(()) => (handle, Some(notified)),
            Err(task) => {
                drop(notified);
                task.shutdown(None);
                (handle, None)
            }
        }
    }

    fn shard(&self, task: RawTask) -> &Mutex<Shard> {
        let addr = task.as_ptr() as usize;
        // Allocations are at least 16-byte aligned: mix higher bits in.
        &self.shards[((addr >> 4) ^ (addr >> 12)) & self.mask]
    }

    /// Links `task`, taking over its reference; gives it back if the list
    /// is closed.
    fn insert(&self, task: Task) -> Result<(), Task> {
        let raw = task.raw();
        let mut shard = self.shard(raw).lock();
        if shard.closed {
            return Err(task);
        }
        // SAFETY: the shard lock guards the links of every task in it, and
        // `task` is not linked yet (fresh), so no other lock guards its own;
        // the tasks are alive (the list holds a reference to each).
        unsafe {
            raw.header().owned().with_mut(|p| {
                debug_assert!(!(*p).is_linked());
                (*p).prev = None;
                (*p).next = shard.head;
            });
            if let Some(head) = shard.head {
                head.header().owned().with_mut(|p| (*p).prev = Some(raw));
            }
        }
        shard.head = Some(raw);
        let _ = task.into_raw();
        Ok(())
    }

    /// Unlinks `task` if it is still linked, and returns the list's
    /// reference to it; `None` if it was not linked (shutdown took it).
    pub(crate) fn remove(&self, task: &Task) -> Option<Task> {
        let raw = task.raw();
        let mut shard = self.shard(raw).lock();
        // SAFETY: under the shard lock; `task` is alive (the caller holds a
        // reference) and, if linked, in this shard.
        let unlinked = unsafe { unlink(&mut shard, raw) };
        // SAFETY: the list's reference is now ours.
        unlinked.then(|| unsafe { Task::from_raw(raw) })
    }

    /// Refuses new tasks from now on, then unlinks every task and shuts it
    /// down (cancels it inside its context, waiting for a shared context
    /// until `deadline`; see `Vtable::shutdown`).
    pub(crate) fn close_and_shutdown_all(&self, deadline: Option<Instant>) {
        for shard in self.shards.iter() {
            shard.lock().closed = true;
        }
        while let Some(task) = self.pop() {
            task.shutdown(deadline);
        }
    }

    /// Unlinks and returns some task (with the list's reference).
    fn pop(&self) -> Option<Task> {
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            if let Some(raw) = shard.head {
                // SAFETY: under the lock; the head is linked here.
                let unlinked = unsafe { unlink(&mut shard, raw) };
                debug_assert!(unlinked);
                // SAFETY: the list's reference is now ours.
                return Some(unsafe { Task::from_raw(raw) });
            }
        }
        None
    }
}

/// # Safety
/// Called under `shard`'s lock; `task` is alive.
unsafe fn unlink(shard: &mut Shard, task: RawTask) -> bool {
    // SAFETY: the caller holds the shard lock, which guards these links, and
    // every linked task is alive (the list holds a reference to it).
    unsafe {
        let links = task.header().owned().with_mut(|p| {
            if !(*p).is_linked() {
                return None;
            }
            let links = ((*p).prev, (*p).next);
            *p = Pointers::UNLINKED;
            Some(links)
        });
        let Some((prev, next)) = links else {
            return false;
        };
        match prev {
            Some(prev) => prev.header().owned().with_mut(|p| (*p).next = next),
            None => shard.head = next,
        }
        if let Some(next) = next {
            next.header().owned().with_mut(|p| (*p).prev = prev);
        }
    }
    true
}
