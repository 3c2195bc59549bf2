//! The type-erased half of a task: its [`Header`], the [`Vtable`] that knows
//! the concrete types, and [`RawTask`], the pointer everything else holds.
//!
//! Nothing here knows the future, the context or the scheduler: those live
//! in the typed rest of the allocation (`cell.rs`) and in the functions the
//! vtable points to (`harness.rs`).

use std::ptr::NonNull;
use std::task::Waker;
use std::time::Instant;

use crate::task::state::State;
use baton_sync::UnsafeCell;

/// The type-erased head of every task allocation: `repr(C)` and first in
/// the cell (`cell.rs`), so a pointer to it is also a pointer to the whole
/// task. Its fields are private: the rules for who may touch each are in
/// `task/mod.rs`, and the methods below are the only ways in.
#[repr(C)]
pub(super) struct Header {
    /// The state word: flags, reference count and last worker.
    state: State,
    /// The functions that know the concrete future, context and scheduler.
    vtable: &'static Vtable,
    /// Links of the owned-tasks list (`list.rs`), which also tell whether
    /// the task is in it ([`Pointers::UNLINKED`]); touched only under that
    /// list's shard lock.
    owned: UnsafeCell<Pointers>,
    /// The `JoinHandle`'s waker; see the JOIN_WAKER rules in `task/mod.rs`.
    join_waker: UnsafeCell<Option<Waker>>,
}

impl Header {
    /// The header of a new task (see `State::new` for the initial state).
    pub(super) fn new(vtable: &'static Vtable) -> Header {
        Header {
            state: State::new(),
            vtable,
            owned: UnsafeCell::new(Pointers::UNLINKED),
            join_waker: UnsafeCell::new(None),
        }
    }

    /// The state word.
    #[inline]
    pub(super) fn state(&self) -> &State {
        &self.state
    }

    /// The owned-list links; only `list.rs` touches them, under its lock.
    pub(super) fn owned(&self) -> &UnsafeCell<Pointers> {
        &self.owned
    }

    /// Replaces the join waker.
    ///
    /// # Safety
    /// The caller has exclusive access to the field (see JOIN_WAKER rules).
    pub(super) unsafe fn set_join_waker(&self, waker: Option<Waker>) {
        // SAFETY: exclusive access is the caller's contract.
        let old = self
            .join_waker
            .with_mut(|slot| unsafe { std::mem::replace(&mut *slot, waker) });
        drop(old);
    }

    /// Wakes the join waker.
    ///
    /// # Safety
    /// The caller may read the field: JOIN_WAKER is set and the task is
    /// COMPLETE (the `JoinHandle` no longer writes it).
    pub(super) unsafe fn wake_join(&self) {
        // SAFETY: read access is the caller's contract.
        self.join_waker.with(|slot| match unsafe { &*slot } {
            Some(waker) => waker.wake_by_ref(),
            None => panic!("baton: JOIN_WAKER set without a waker"),
        });
    }

    /// Whether the stored join waker would wake the same task as `waker`.
    ///
    /// # Safety
    /// Only the `JoinHandle`, while JOIN_WAKER is set.
    pub(super) unsafe fn join_waker_will_wake(&self, waker: &Waker) -> bool {
        self.join_waker.with(|slot| {
            // SAFETY: while JOIN_WAKER is set the field is only read.
            unsafe { &*slot }
                .as_ref()
                .is_some_and(|w| w.will_wake(waker))
        })
    }
}

/// Links of the intrusive owned-tasks list.
///
/// A linked task has `prev == None` (the shard's head) or `Some(task)`; a
/// task in no list has `prev == Some(UNLINKED_MARK)`, an address no task
/// can have (well-aligned and dangling), and `next == None`. So there is no
/// separate "linked" flag.
pub(super) struct Pointers {
    pub(super) prev: Option<RawTask>,
    pub(super) next: Option<RawTask>,
}

/// See [`Pointers`]: never dereferenced, only compared.
const UNLINKED_MARK: RawTask = RawTask {
    ptr: NonNull::dangling(),
};

impl Pointers {
    /// The links of a task that is in no list.
    pub(super) const UNLINKED: Pointers = Pointers {
        prev: Some(UNLINKED_MARK),
        next: None,
    };

    /// Whether the task is in a list.
    pub(super) fn is_linked(&self) -> bool {
        self.prev != Some(UNLINKED_MARK)
    }
}

/// Functions of one concrete task type (future, context and scheduler),
/// made by `harness::vtable`.
pub(super) struct Vtable {
    /// Runs a `Notified` (consumes its reference) on the given worker (a
    /// `state::worker_id`); returns the task's last worker before (see
    /// `State::transition_to_running`).
    pub(super) poll: unsafe fn(RawTask, u16) -> u16,
    /// Hands a new reference, standing for NOTIFIED, to the scheduler
    /// (`abort` of an idle task).
    pub(super) schedule: unsafe fn(RawTask),
    /// Frees the allocation (the reference count is zero).
    pub(super) dealloc: unsafe fn(RawTask),
    /// `JoinHandle::poll`: writes `Poll<Result<T, JoinError>>` to the
    /// pointer if the output is ready, else registers the waker.
    pub(super) try_read_output: unsafe fn(RawTask, *mut (), &Waker),
    /// Drops the `JoinHandle` (consumes its reference).
    pub(super) drop_join_handle: unsafe fn(RawTask, bool),
    /// Runtime shutdown, called by whoever removed the task from the owned
    /// list (consumes that list's reference). Waits for the task's context
    /// until the deadline.
    pub(super) shutdown: unsafe fn(RawTask, Option<Instant>),
}

/// A pointer to a task, of no particular type and owning nothing: the
/// typed references (`Notified`, `Task`, `JoinHandle`, wakers) are built on
/// it, and the LIFO slot stores it ([`RawTask::as_ptr`]) to compare
/// occupants.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct RawTask {
    ptr: NonNull<Header>,
}

impl RawTask {
    /// The task whose header `ptr` points to.
    pub(super) fn from_header(ptr: NonNull<Header>) -> RawTask {
        RawTask { ptr }
    }

    /// The task's address, for storing in an atomic and comparing; never
    /// dereferenced by its holder.
    #[inline]
    pub(crate) fn as_ptr(self) -> *mut () {
        self.ptr.as_ptr().cast()
    }

    /// The task at an address from [`RawTask::as_ptr`].
    ///
    /// # Safety
    /// `ptr` came from `as_ptr` of a task (dereferencing it is up to
    /// whoever owns a reference).
    #[inline]
    pub(crate) unsafe fn from_ptr(ptr: NonNull<()>) -> RawTask {
        RawTask { ptr: ptr.cast() }
    }

    /// The header pointer (to be cast to the typed cell by the harness).
    #[inline]
    pub(super) fn header_ptr(self) -> NonNull<Header> {
        self.ptr
    }

    /// The header.
    ///
    /// # Safety
    /// The task is alive: the caller holds (or borrows) a reference.
    #[inline]
    pub(super) unsafe fn header<'a>(self) -> &'a Header {
        // SAFETY: alive, as the caller promises.
        unsafe { self.ptr.as_ref() }
    }

    /// The state word.
    ///
    /// # Safety
    /// As [`RawTask::header`].
    #[inline]
    pub(super) unsafe fn state<'a>(self) -> &'a State {
        // SAFETY: the caller's contract.
        unsafe { self.header() }.state()
    }

    /// # Safety
    /// As [`RawTask::header`].
    unsafe fn vtable(self) -> &'static Vtable {
        // SAFETY: the caller's contract.
        unsafe { self.header() }.vtable
    }

    /// Runs the task on worker `worker`; see [`Vtable::poll`].
    ///
    /// # Safety
    /// The caller gives up a reference that stands for NOTIFIED.
    pub(super) unsafe fn poll(self, worker: u16) -> u16 {
        // SAFETY: the caller's reference is handed over.
        unsafe { (self.vtable().poll)(self, worker) }
    }

    /// Sends the task to its scheduler; see [`Vtable::schedule`].
    ///
    /// # Safety
    /// The caller gives up a reference that stands for NOTIFIED.
    pub(super) unsafe fn schedule(self) {
        // SAFETY: the caller's reference is handed over.
        unsafe { (self.vtable().schedule)(self) }
    }

    /// Frees the task; see [`Vtable::dealloc`].
    ///
    /// # Safety
    /// The reference count is zero.
    pub(super) unsafe fn dealloc(self) {
        // SAFETY: the caller's contract.
        unsafe { (self.vtable().dealloc)(self) }
    }

    /// See [`Vtable::try_read_output`].
    ///
    /// # Safety
    /// The caller is the `JoinHandle`, `dst` points to its
    /// `Poll<Result<T, JoinError>>` of the task's output type `T`, and it has
    /// not taken the output.
    pub(super) unsafe fn try_read_output(self, dst: *mut (), waker: &Waker) {
        // SAFETY: the caller's contract.
        unsafe { (self.vtable().try_read_output)(self, dst, waker) }
    }

    /// See [`Vtable::drop_join_handle`].
    ///
    /// # Safety
    /// The caller is the `JoinHandle`, gives up JOIN_INTEREST and its
    /// reference, and says truly whether it took the output.
    pub(super) unsafe fn drop_join_handle(self, output_taken: bool) {
        // SAFETY: the caller's contract.
        unsafe { (self.vtable().drop_join_handle)(self, output_taken) }
    }

    /// See [`Vtable::shutdown`].
    ///
    /// # Safety
    /// The caller gives up the owned list's reference, which it removed
    /// from the list.
    pub(super) unsafe fn shutdown(self, deadline: Option<Instant>) {
        // SAFETY: the caller's contract.
        unsafe { (self.vtable().shutdown)(self, deadline) }
    }

    /// Drops one reference, freeing the task if it was the last.
    ///
    /// # Safety
    /// The caller owns the reference.
    pub(super) unsafe fn drop_reference(self) {
        // SAFETY: the caller's reference keeps the task alive until here.
        if unsafe { self.state() }.ref_dec() {
            // SAFETY: that was the last reference.
            unsafe { self.dealloc() }
        }
    }
}

#[cfg(all(test, not(baton_loom)))]
mod tests {
    use super::*;

    #[test]
    fn unlinked_marker_is_no_task_address() {
        assert!(!Pointers::UNLINKED.is_linked());
        let head = Pointers {
            prev: None,
            next: None,
        };
        assert!(head.is_linked());
    }
}
