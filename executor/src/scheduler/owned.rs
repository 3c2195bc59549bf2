//! The owned-tasks list: every live task of a runtime, so that shutdown can
//! find and cancel the ones no queue holds (those waiting on a waker).
//!
//! An intrusive doubly linked list through the task headers, split into
//! shards (each behind its own mutex, on its own cache line) chosen by the
//! task's address, so spawning and completing on different workers rarely
//! contend. The list holds one task reference from `insert` to `remove`.
//! Whether a task is linked is read from its links alone: an unlinked task's
//! are `Pointers::UNLINKED` (a marker in `prev`; see `task/raw.rs`).
//! Once `close` has run, `insert` refuses new tasks (the spawner cancels
//! them at once).

use std::ptr::NonNull;

use crossbeam_utils::CachePadded;

use crate::sync::Mutex;
use crate::task::Header;
use crate::task::raw::Pointers;

struct Shard {
    head: Option<NonNull<Header>>,
    closed: bool,
}

// SAFETY: the raw pointers are task references, usable from any thread.
unsafe impl Send for Shard {}

pub(crate) struct OwnedTasks {
    shards: Box<[CachePadded<Mutex<Shard>>]>,
    mask: usize,
}

impl OwnedTasks {
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

    fn shard(&self, task: NonNull<Header>) -> &Mutex<Shard> {
        let addr = task.as_ptr() as usize;
        // Allocations are at least 16-byte aligned: mix higher bits in.
        &self.shards[((addr >> 4) ^ (addr >> 12)) & self.mask]
    }

    /// Links `task` (taking over one of its references). False if the list
    /// is closed; the reference is then still the caller's.
    pub(crate) fn insert(&self, task: NonNull<Header>) -> bool {
        let mut shard = self.shard(task).lock();
        if shard.closed {
            return false;
        }
        // SAFETY: the shard lock guards the links of every task in it, and
        // `task` is not linked yet (fresh), so no other lock guards its own.
        unsafe {
            task.as_ref().owned.with_mut(|p| {
                debug_assert!(!(*p).is_linked());
                (*p).prev = None;
                (*p).next = shard.head;
            });
            if let Some(head) = shard.head {
                head.as_ref().owned.with_mut(|p| (*p).prev = Some(task));
            }
        }
        shard.head = Some(task);
        true
    }

    /// Unlinks `task` if it is still linked; true if it was (the list's
    /// reference is then the caller's).
    pub(crate) fn remove(&self, task: NonNull<Header>) -> bool {
        let mut shard = self.shard(task).lock();
        // SAFETY: under the shard lock; `task` is alive (the caller holds a
        // reference) and, if linked, in this shard.
        unsafe { unlink(&mut shard, task) }
    }

    /// Refuses new tasks from now on.
    pub(crate) fn close(&self) {
        for shard in self.shards.iter() {
            shard.lock().closed = true;
        }
    }

    /// Unlinks and returns some task (with the list's reference).
    pub(crate) fn pop(&self) -> Option<NonNull<Header>> {
        for shard in self.shards.iter() {
            let mut shard = shard.lock();
            if let Some(task) = shard.head {
                // SAFETY: under the lock; the head is linked here.
                let unlinked = unsafe { unlink(&mut shard, task) };
                debug_assert!(unlinked);
                return Some(task);
            }
        }
        None
    }
}

/// # Safety
/// Called under `shard`'s lock; `task` is alive.
unsafe fn unlink(shard: &mut Shard, task: NonNull<Header>) -> bool {
    // SAFETY: the caller holds the shard lock, which guards these links.
    unsafe {
        let links = task.as_ref().owned.with_mut(|p| {
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
            Some(prev) => prev.as_ref().owned.with_mut(|p| (*p).next = next),
            None => shard.head = next,
        }
        if let Some(next) = next {
            next.as_ref().owned.with_mut(|p| (*p).prev = prev);
        }
    }
    true
}
