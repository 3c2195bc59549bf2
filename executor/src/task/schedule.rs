//! The seam between the task core and a scheduler: the [`Schedule`] trait
//! (what a task asks of the scheduler it belongs to) and the two task
//! references the scheduler holds, [`Notified`] and [`Task`].
//!
//! The task core never names a scheduler type: a task is allocated with an
//! `Arc<S>` for some `S: Schedule`, and the functions that need it (the
//! harness, the waker) are generic over `S`, so each call below is a direct,
//! monomorphised call, with no dynamic dispatch. The runtime's scheduler is
//! one implementation (`scheduler/schedule.rs`); the task core's own tests
//! drive it with another (`task/tests/`).

use std::time::Instant;

use crate::task::raw::RawTask;

/// What the task core asks of the scheduler a task belongs to.
///
/// Every method is called by the task core on some thread that holds a
/// reference to the task (a worker polling it, or anyone waking it); none is
/// called with a lock of the task's held.
pub(crate) trait Schedule: Send + Sync + Sized + 'static {
    /// The task became due while idle (a wake, or an `abort`): run it. The
    /// scheduler may run it on any thread, or drop it if it is shutting
    /// down.
    fn schedule(&self, task: Notified);

    /// The task was woken during its own poll: run it again, after the
    /// other due tasks (`yield_now`).
    fn yield_now(&self, task: Notified);

    /// The task's shared context is entered on another thread, so it could
    /// be neither polled nor dropped: run it again later (without spinning
    /// on it).
    fn defer(&self, task: Notified);

    /// The task is about to publish COMPLETE (called first, so that whoever
    /// sees the task finished also sees it counted).
    fn count_completed(&self);

    /// The task completed: take it out of the owned-tasks list. Returns the
    /// list's reference if this call removed it (shutdown may have removed
    /// it first).
    fn release(&self, task: &Task) -> Option<Task>;
}

/// A task reference that stands for "this task is due": what the run queues
/// and the LIFO slots hold. At most one exists per task (the NOTIFIED bit).
pub(crate) struct Notified(RawTask);

// SAFETY: a task reference may be used from any thread: every shared field
// is synchronised by the state word or the owned-list lock.
unsafe impl Send for Notified {}

impl Notified {
    /// # Safety
    /// `raw` is a live task and the caller gives one reference (which stands
    /// for NOTIFIED) to the new value.
    #[inline]
    pub(crate) unsafe fn from_raw(raw: RawTask) -> Notified {
        Notified(raw)
    }

    /// Gives up the value without dropping its reference, which the caller
    /// takes over (for `from_raw` later).
    #[inline]
    pub(crate) fn into_raw(self) -> RawTask {
        let raw = self.0;
        std::mem::forget(self);
        raw
    }

    /// Runs the task (polls it, or cancels it if aborted) on worker
    /// `worker` (a [`worker_id`](crate::task::worker_id)). Returns the
    /// worker that claimed the task before, for the migration metric:
    /// `NO_WORKER` if none did, or if the task turned out to be running or
    /// complete already.
    #[inline]
    pub(crate) fn run(self, worker: u16) -> u16 {
        // SAFETY: our reference, which stands for NOTIFIED, is handed over.
        unsafe { self.into_raw().poll(worker) }
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        // SAFETY: we own one reference and give it up.
        unsafe { self.0.drop_reference() }
    }
}

/// The owned-tasks list's reference to a task (`list.rs`): held from spawn
/// until the task completes or the runtime shuts it down.
pub(crate) struct Task(RawTask);

// SAFETY: as for `Notified`.
unsafe impl Send for Task {}

impl Task {
    /// # Safety
    /// `raw` is a live task and the caller gives one reference to the new
    /// value.
    pub(super) unsafe fn from_raw(raw: RawTask) -> Task {
        Task(raw)
    }

    /// Gives up the value without dropping its reference.
    pub(super) fn into_raw(self) -> RawTask {
        let raw = self.0;
        std::mem::forget(self);
        raw
    }

    /// The task, for comparing and linking (owns nothing).
    pub(super) fn raw(&self) -> RawTask {
        self.0
    }

    /// Runtime shutdown: cancels the task inside its context, unless it is
    /// running (its runner then sees CANCELLED) or complete. Waits for a
    /// shared context entered elsewhere until `deadline`.
    pub(super) fn shutdown(self, deadline: Option<Instant>) {
        // SAFETY: our reference, which was the list's, is handed over.
        unsafe { self.into_raw().shutdown(deadline) }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        // SAFETY: we own one reference and give it up.
        unsafe { self.0.drop_reference() }
    }
}
