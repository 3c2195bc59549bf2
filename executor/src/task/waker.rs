//! Task wakers: a `Waker` is one task reference. Waking sets NOTIFIED and
//! pushes a `Notified` to the task's runtime — one atomic read-modify-write
//! plus a queue push; waking a task that is already due, running or done
//! pushes nothing.

use std::mem::ManuallyDrop;
use std::ptr::NonNull;
use std::task::{RawWaker, RawWakerVTable, Waker};

use crate::task::raw::{Header, Notified, drop_reference};
use crate::task::state::ToNotified;

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

fn raw(ptr: NonNull<Header>) -> RawWaker {
    RawWaker::new(ptr.as_ptr() as *const (), &VTABLE)
}

/// A waker borrowing the caller's reference (not dropped).
///
/// # Safety
/// The caller holds a reference to the task for as long as the waker (and
/// anything borrowing it) lives.
pub(crate) unsafe fn waker_ref(ptr: NonNull<Header>) -> ManuallyDrop<Waker> {
    // SAFETY: our vtable upholds the RawWaker contract; ManuallyDrop keeps
    // the borrowed reference from being released.
    ManuallyDrop::new(unsafe { Waker::from_raw(raw(ptr)) })
}

fn header<'a>(data: *const ()) -> (&'a Header, NonNull<Header>) {
    // SAFETY: `data` came from `raw`, and the waker holds (or borrows) a
    // reference, so the task is alive.
    let ptr = unsafe { NonNull::new_unchecked(data as *mut Header) };
    (unsafe { &*ptr.as_ptr() }, ptr)
}

unsafe fn clone(data: *const ()) -> RawWaker {
    let (header, ptr) = header(data);
    header.state.ref_inc();
    raw(ptr)
}

unsafe fn wake(data: *const ()) {
    let (header, ptr) = header(data);
    match header.state.transition_to_notified_by_val() {
        ToNotified::DoNothing => {}
        ToNotified::Submit => {
            // SAFETY: the waker's reference became the Notified's.
            let task = unsafe { Notified::from_raw(ptr) };
            header.scheduler.schedule(task);
        }
        // SAFETY: that was the last reference.
        ToNotified::Dealloc => unsafe { (header.vtable.dealloc)(ptr) },
    }
}

unsafe fn wake_by_ref(data: *const ()) {
    let (header, ptr) = header(data);
    if header.state.transition_to_notified_by_ref() == ToNotified::Submit {
        // SAFETY: a reference was made for the Notified.
        let task = unsafe { Notified::from_raw(ptr) };
        header.scheduler.schedule(task);
    }
}

unsafe fn drop_waker(data: *const ()) {
    let (_, ptr) = header(data);
    // SAFETY: the waker's reference is given up.
    unsafe { drop_reference(ptr) }
}
