//! Task wakers: a `Waker` is one task reference. Waking sets NOTIFIED and
//! hands a `Notified` to the task's scheduler — one atomic
//! read-modify-write plus the scheduler's push; waking a task that is
//! already due, running or done pushes nothing.
//!
//! The waker's functions are generic over the scheduler type `S` (one
//! vtable per `S`), so a wake calls `S::schedule` directly.

use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::task::{RawWaker, RawWakerVTable, Waker};

use crate::task::cell::Head;
use crate::task::raw::RawTask;
use crate::task::schedule::{Notified, Schedule};
use crate::task::state::ToNotified;

/// The waker vtable of the tasks of scheduler type `S`.
struct WakerVtable<S>(PhantomData<S>);

impl<S: Schedule> WakerVtable<S> {
    const VTABLE: RawWakerVTable =
        RawWakerVTable::new(clone::<S>, wake::<S>, wake_by_ref::<S>, drop_waker);
}

fn raw_waker<S: Schedule>(task: RawTask) -> RawWaker {
    RawWaker::new(task.as_ptr() as *const (), &WakerVtable::<S>::VTABLE)
}

/// A waker borrowing the caller's reference (not dropped).
///
/// # Safety
/// `task` was allocated with scheduler type `S`, and the caller holds a
/// reference to it for as long as the waker (and anything borrowing it)
/// lives.
pub(super) unsafe fn waker_ref<S: Schedule>(task: RawTask) -> ManuallyDrop<Waker> {
    // SAFETY: our vtable upholds the RawWaker contract; ManuallyDrop keeps
    // the borrowed reference from being released.
    ManuallyDrop::new(unsafe { Waker::from_raw(raw_waker::<S>(task)) })
}

fn task(data: *const ()) -> RawTask {
    // SAFETY: `data` came from `raw_waker`, so it is a task's address.
    unsafe { RawTask::from_ptr(NonNull::new_unchecked(data as *mut ())) }
}

unsafe fn clone<S: Schedule>(data: *const ()) -> RawWaker {
    let task = task(data);
    // SAFETY: the waker holds (or borrows) a reference.
    unsafe { task.state() }.ref_inc();
    raw_waker::<S>(task)
}

unsafe fn wake<S: Schedule>(data: *const ()) {
    let task = task(data);
    // SAFETY: the waker's reference keeps the task alive.
    match unsafe { task.state() }.transition_to_notified_by_val() {
        ToNotified::DoNothing => {}
        ToNotified::Submit => {
            // SAFETY: alive (the reference below); the waker's vtable is
            // `S`'s, so the task was allocated with scheduler type `S`.
            let head = unsafe { Head::<S>::of(task) };
            // SAFETY: the waker's reference became the Notified's.
            head.scheduler()
                .schedule(unsafe { Notified::from_raw(task) });
        }
        // SAFETY: that was the last reference.
        ToNotified::Dealloc => unsafe { task.dealloc() },
    }
}

unsafe fn wake_by_ref<S: Schedule>(data: *const ()) {
    let task = task(data);
    // SAFETY: the waker's reference keeps the task alive.
    if unsafe { task.state() }.transition_to_notified_by_ref() == ToNotified::Submit {
        // SAFETY: as in `wake`.
        let head = unsafe { Head::<S>::of(task) };
        // SAFETY: a reference was made for the Notified.
        head.scheduler()
            .schedule(unsafe { Notified::from_raw(task) });
    }
}

unsafe fn drop_waker(data: *const ()) {
    // SAFETY: the waker's reference is given up.
    unsafe { task(data).drop_reference() }
}
