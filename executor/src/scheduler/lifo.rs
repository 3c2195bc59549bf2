//! A worker's LIFO slot: the task it runs next.
//!
//! A task spawned or woken on a worker goes here, not to the back of the
//! queue, so that a task that spawns (or wakes) another and then finishes
//! its poll is followed by that task on the same worker, while its data is
//! in cache, and without waking a parked worker to come and steal it.
//!
//! The slot is not part of ordinary stealing, which would move exactly
//! those tasks to another core. But the slot's owner may never come back
//! for it: its current poll may block the thread (blocking code in a task is
//! a mistake, but it must not hang the runtime). So another worker, before it
//! parks, *watches* the occupied slots it sees: it parks with a short
//! deadline, and on waking *rescues* a task that is still in the same slot
//! while that slot's owner has not started another poll since (see
//! `README.md`, "The LIFO slot and stranded tasks").
//!
//! The slot is an atomic pointer holding one task reference (the queue
//! reference, `Notified`, stored as its [`RawTask`]'s address). The owner puts with a store (a swap when it
//! displaces an occupant) and takes with a swap; a rescuer
//! takes with a compare-and-swap against the occupant it saw, so exactly one
//! of them gets any given occupant. A rescuer never dereferences what it
//! saw: the pointer is only compared, so a task that was taken, completed and
//! freed meanwhile (its address perhaps reused by a new occupant) is never
//! touched through it. Taking a new occupant at a reused address is harmless:
//! it is a task in the slot like any other.

use std::ptr::{self, NonNull};

use crate::task::{Notified, RawTask};
use baton_sync::{AtomicPtr, Ordering};

/// A worker's LIFO slot: empty, or one `Notified` (see the module docs).
pub(super) struct LifoSlot(AtomicPtr<()>);

/// The `Notified` whose reference the slot held at `ptr`.
///
/// # Safety
/// `ptr` is a non-null value of the slot that the caller took out of it (so
/// the reference it stands for is now the caller's).
unsafe fn notified(ptr: *mut ()) -> Option<Notified> {
    // SAFETY: a non-null occupant is the address of a task (from
    // `RawTask::as_ptr`) whose reference the caller took over.
    NonNull::new(ptr).map(|ptr| unsafe { Notified::from_raw(RawTask::from_ptr(ptr)) })
}

impl LifoSlot {
    /// An empty slot.
    pub(super) fn new() -> LifoSlot {
        LifoSlot(AtomicPtr::new(ptr::null_mut()))
    }

    /// The owner puts `task` in the slot and gets back the previous
    /// occupant. Into an empty slot this is a store, not a swap: only the
    /// owner ever makes the slot non-empty, and a rescuer leaves an empty
    /// slot alone, so nobody can race it. SeqCst: the rescue argument in
    /// `README.md` orders it against a parking worker's look at the slot
    /// (and it releases the task's data to a rescuer).
    #[inline]
    pub(super) fn put(&self, task: Notified) -> Option<Notified> {
        let task = task.into_raw().as_ptr();
        if self.0.load(Ordering::Relaxed).is_null() {
            self.0.store(task, Ordering::SeqCst);
            return None;
        }
        let prev = self.0.swap(task, Ordering::SeqCst);
        // SAFETY: the swap took the occupant, and its reference, out.
        unsafe { notified(prev) }
    }

    /// The owner takes the occupant, unless a rescuer took it first (so this
    /// is a swap: a rescuer may be taking it at the same moment). An empty
    /// slot costs one load.
    #[inline]
    pub(super) fn take(&self) -> Option<Notified> {
        if self.0.load(Ordering::Relaxed).is_null() {
            return None;
        }
        let taken = self.0.swap(ptr::null_mut(), Ordering::AcqRel);
        // SAFETY: as in `put`.
        unsafe { notified(taken) }
    }

    /// The current occupant, for comparison only (see the module docs): the
    /// caller owns no reference and must not use it as a task.
    #[inline]
    pub(super) fn peek(&self) -> Option<RawTask> {
        // SAFETY: a non-null occupant came from `RawTask::as_ptr`.
        NonNull::new(self.0.load(Ordering::SeqCst)).map(|ptr| unsafe { RawTask::from_ptr(ptr) })
    }

    /// A rescuer takes the occupant if it is still `seen`.
    pub(super) fn rescue(&self, seen: RawTask) -> Option<Notified> {
        let taken = self
            .0
            .compare_exchange(
                seen.as_ptr(),
                ptr::null_mut(),
                Ordering::AcqRel,
                Ordering::Relaxed,
            )
            .ok()?;
        // SAFETY: the exchange moved the slot's reference (to `seen`) to us.
        unsafe { notified(taken) }
    }
}

impl Drop for LifoSlot {
    fn drop(&mut self) {
        drop(self.take());
    }
}

/// The hand-off in loom (`RUSTFLAGS="--cfg baton_loom" cargo test -p
/// baton-executor --lib lifo`): the owner's `take` races a rescuer's
/// `peek` and `rescue`, with the owner's next `put` after it; every task
/// reference ends up with exactly one of them (the count below would be off
/// for a lost or a duplicated one; a duplicated one would also drop the
/// task's reference twice).
#[cfg(all(test, baton_loom))]
mod loom_model {
    use super::LifoSlot;
    use crate::Builder;
    use crate::task::Notified;
    use loom::sync::Arc;
    use loom::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn owner_and_rescuer_never_both_take_a_task() {
        loom::model(|| {
            let rt = Builder::new()
                .worker_threads(1)
                .start_workers(false)
                .build()
                .unwrap();
            let shared = rt.handle().shared.clone();
            let _a = rt.spawn(async {});
            let _b = rt.spawn(async {});
            let pop = || -> Notified { shared.injector.pop().expect("spawned") };
            let slot = Arc::new(LifoSlot::new());
            let taken = Arc::new(AtomicUsize::new(0));
            assert!(slot.put(pop()).is_none());
            let rescuer = {
                let (slot, taken) = (slot.clone(), taken.clone());
                loom::thread::spawn(move || {
                    if let Some(task) = slot.peek().and_then(|seen| slot.rescue(seen)) {
                        taken.fetch_add(1, Ordering::SeqCst);
                        drop(task);
                    }
                })
            };
            if let Some(task) = slot.take() {
                taken.fetch_add(1, Ordering::SeqCst);
                drop(task);
            }
            // The owner's next put may meet the rescuer's look.
            let second = pop();
            if let Some(prev) = slot.put(second) {
                taken.fetch_add(1, Ordering::SeqCst);
                drop(prev);
            }
            rescuer.join().unwrap();
            if let Some(task) = slot.take() {
                taken.fetch_add(1, Ordering::SeqCst);
                drop(task);
            }
            assert_eq!(taken.load(Ordering::SeqCst), 2, "each task taken once");
        });
    }
}
