//! The task allocation: [`Header`] (type-erased) followed by the task's
//! context and its future-or-output, all in one `Box`.

use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll, Waker};

use baton_context::{Context, ContextCell, ContextError};

use crate::scheduler::Shared;
use crate::sync::UnsafeCell;
use crate::task::JoinError;
use crate::task::state::State;

/// The type-erased head of every task allocation. `repr(C)` and first in
/// [`Cell`], so a `NonNull<Header>` is also a pointer to the whole cell.
#[repr(C)]
pub(crate) struct Header {
    /// The state word: flags, reference count and last worker (see
    /// `task/mod.rs`).
    pub(crate) state: State,
    /// The functions that know the concrete future and context types.
    pub(crate) vtable: &'static Vtable,
    /// Links of the owned-tasks list, which also tell whether the task is in
    /// it ([`Pointers::UNLINKED`]); touched only under that list's shard
    /// lock.
    pub(crate) owned: UnsafeCell<Pointers>,
    /// The runtime the task belongs to: wakers schedule it there.
    pub(crate) scheduler: Arc<Shared>,
    /// The `JoinHandle`'s waker; see the JOIN_WAKER rules in `task/mod.rs`.
    pub(crate) join_waker: UnsafeCell<Option<Waker>>,
}

/// Links of the intrusive owned-tasks list.
///
/// A linked task has `prev == None` (the shard's head) or `Some(task)`; a
/// task in no list has `prev == Some(UNLINKED_MARK)`, an address no task
/// can have (well-aligned and dangling), and `next == None`. So there is no
/// separate "linked" flag.
pub(crate) struct Pointers {
    pub(crate) prev: Option<NonNull<Header>>,
    pub(crate) next: Option<NonNull<Header>>,
}

/// See [`Pointers`]: never dereferenced, only compared.
const UNLINKED_MARK: NonNull<Header> = NonNull::dangling();

impl Pointers {
    /// The links of a task that is in no list.
    pub(crate) const UNLINKED: Pointers = Pointers {
        prev: Some(UNLINKED_MARK),
        next: None,
    };

    pub(crate) fn is_linked(&self) -> bool {
        self.prev != Some(UNLINKED_MARK)
    }
}

/// Functions of one concrete task type.
pub(crate) struct Vtable {
    /// Runs a `Notified` (consumes its reference) on the given worker (a
    /// `state::worker_id`); returns the task's last worker before (see
    /// `State::transition_to_running`).
    pub(crate) poll: unsafe fn(NonNull<Header>, u16) -> u16,
    /// Frees the allocation (the reference count is zero).
    pub(crate) dealloc: unsafe fn(NonNull<Header>),
    /// `JoinHandle::poll`: writes `Poll<Result<T, JoinError>>` to the
    /// pointer if the output is ready, else registers the waker.
    pub(crate) try_read_output: unsafe fn(NonNull<Header>, *mut (), &Waker),
    /// Drops the `JoinHandle` (consumes its reference).
    pub(crate) drop_join_handle: unsafe fn(NonNull<Header>, bool),
    /// Runtime shutdown, called by whoever removed the task from the owned
    /// list (consumes that list's reference). Waits for the task's context
    /// until the deadline.
    pub(crate) shutdown: unsafe fn(NonNull<Header>, Option<std::time::Instant>),
}

/// Where a task runs: its own embedded copy of the spawner's context
/// (`spawn`), or a shared `Context` (`spawn_with_context`).
pub(crate) trait TaskContext: Send + 'static {
    fn try_run<R>(&self, f: impl FnOnce() -> R) -> Result<R, ContextError>;
    fn is_current(&self) -> bool;
}

impl TaskContext for ContextCell {
    #[inline]
    fn try_run<R>(&self, f: impl FnOnce() -> R) -> Result<R, ContextError> {
        ContextCell::try_run(self, f)
    }
    fn is_current(&self) -> bool {
        ContextCell::is_current(self)
    }
}

impl TaskContext for Context {
    #[inline]
    fn try_run<R>(&self, f: impl FnOnce() -> R) -> Result<R, ContextError> {
        Context::try_run(self, f)
    }
    fn is_current(&self) -> bool {
        Context::is_current(self)
    }
}

/// The future, then its output, in the same bytes: no discriminant. Which
/// member is live (if any) is told by the state word and the protocol in
/// `task/mod.rs` ("The stage slot"); a union never drops its members, so
/// every path drops the live one itself.
pub(crate) union Stage<F: Future> {
    running: ManuallyDrop<F>,
    finished: ManuallyDrop<Result<F::Output, JoinError>>,
}

/// The whole task allocation.
#[repr(C)]
pub(crate) struct Cell<F: Future, C> {
    pub(crate) header: Header,
    pub(crate) context: C,
    /// Accessed only by the holder of RUNNING while not COMPLETE, then by
    /// whoever owns the output (see `task/mod.rs`).
    pub(crate) stage: UnsafeCell<Stage<F>>,
}

impl<F, C> Cell<F, C>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    C: TaskContext,
{
    /// Allocates a task (the only allocation a task makes).
    pub(crate) fn allocate(future: F, context: C, scheduler: Arc<Shared>) -> NonNull<Header> {
        let cell = Box::new(Cell {
            header: Header {
                state: State::new(),
                vtable: vtable::<F, C>(),
                owned: UnsafeCell::new(Pointers::UNLINKED),
                scheduler,
                join_waker: UnsafeCell::new(None),
            },
            context,
            stage: UnsafeCell::new(Stage {
                running: ManuallyDrop::new(future),
            }),
        });
        // `Header` is the first field of a `repr(C)` struct.
        NonNull::from(Box::leak(cell)).cast()
    }

    /// Polls the future.
    ///
    /// # Safety
    /// The caller holds RUNNING and the future is live (not yet dropped).
    pub(crate) unsafe fn poll_future(&self, cx: &mut TaskCx<'_>) -> Poll<F::Output> {
        self.stage.with_mut(|stage| {
            // SAFETY: RUNNING gives exclusive access to the stage and the
            // future is its live member (the caller's contract); the cell is
            // heap-allocated and never moves, and the future is dropped in
            // place, so it is pinned.
            unsafe { Pin::new_unchecked(&mut *(*stage).running) }.poll(cx)
        })
    }

    /// Drops the future in place. The slot is empty afterwards, even if the
    /// future's destructor panics (the panic propagates).
    ///
    /// # Safety
    /// The caller has exclusive access to the stage and the future is live;
    /// it is not touched again.
    pub(crate) unsafe fn drop_future(&self) {
        // SAFETY: exclusive access and a live future are the caller's
        // contract.
        self.stage
            .with_mut(|stage| unsafe { ManuallyDrop::drop(&mut (*stage).running) });
    }

    /// Stores the output in the (empty) slot.
    ///
    /// # Safety
    /// The caller holds RUNNING, the future has been dropped, and the task is
    /// not COMPLETE yet.
    pub(crate) unsafe fn store_output(&self, output: Result<F::Output, JoinError>) {
        // SAFETY: exclusive access is the caller's contract; the slot holds
        // nothing live, so nothing is overwritten without being dropped.
        self.stage.with_mut(|stage| unsafe {
            std::ptr::write(&raw mut (*stage).finished, ManuallyDrop::new(output))
        });
    }

    /// Moves the output out; the slot is empty afterwards.
    ///
    /// # Safety
    /// The caller owns the output and it is still there (the `JoinHandle`,
    /// which saw COMPLETE with JOIN_INTEREST and had not taken it yet).
    pub(crate) unsafe fn take_output(&self) -> Result<F::Output, JoinError> {
        // SAFETY: the caller owns the output, which is the live member.
        self.stage
            .with_mut(|stage| unsafe { ManuallyDrop::take(&mut (*stage).finished) })
    }

    /// Drops the output in place; the slot is empty afterwards, even if a
    /// destructor panics.
    ///
    /// # Safety
    /// The caller owns the output and it is still there.
    pub(crate) unsafe fn drop_output(&self) {
        // SAFETY: the caller owns the output, which is the live member.
        self.stage
            .with_mut(|stage| unsafe { ManuallyDrop::drop(&mut (*stage).finished) });
    }
}

impl Header {
    /// Replaces the join waker.
    ///
    /// # Safety
    /// The caller has exclusive access to the field (see JOIN_WAKER rules).
    pub(crate) unsafe fn set_join_waker(&self, waker: Option<Waker>) {
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
    pub(crate) unsafe fn wake_join(&self) {
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
    pub(crate) unsafe fn join_waker_will_wake(&self, waker: &Waker) -> bool {
        // SAFETY: while JOIN_WAKER is set the field is only read.
        self.join_waker.with(|slot| {
            unsafe { &*slot }
                .as_ref()
                .is_some_and(|w| w.will_wake(waker))
        })
    }
}

fn vtable<F, C>() -> &'static Vtable
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    C: TaskContext,
{
    use crate::task::harness;
    &Vtable {
        poll: harness::poll::<F, C>,
        dealloc: harness::dealloc::<F, C>,
        try_read_output: harness::try_read_output::<F, C>,
        drop_join_handle: harness::drop_join_handle::<F, C>,
        shutdown: harness::shutdown::<F, C>,
    }
}

/// A task reference that stands for "this task is due": it is what the run
/// queues hold. At most one exists per task (the NOTIFIED bit).
pub(crate) struct Notified(NonNull<Header>);

// SAFETY: a task reference may be used from any thread: every shared field
// is synchronised by the state word or the owned-list lock.
unsafe impl Send for Notified {}

impl Notified {
    /// # Safety
    /// `ptr` is a live task and the caller gives one reference (which stands
    /// for NOTIFIED) to the new value.
    pub(crate) unsafe fn from_raw(ptr: NonNull<Header>) -> Notified {
        Notified(ptr)
    }

    /// Gives up the value without dropping its reference, which the caller
    /// takes over (for `from_raw` later).
    pub(crate) fn into_raw(self) -> NonNull<Header> {
        let ptr = self.0;
        std::mem::forget(self);
        ptr
    }

    /// Runs the task (polls it, or cancels it if aborted) on worker
    /// `worker` (a `state::worker_id`). Returns the worker that claimed the
    /// task before, for the migration metric: `NO_WORKER` if none did, or if
    /// the task turned out to be running or complete already.
    pub(crate) fn run(self, worker: u16) -> u16 {
        let ptr = self.into_raw();
        // SAFETY: our reference is handed to `poll`.
        unsafe { (ptr.as_ref().vtable.poll)(ptr, worker) }
    }
}

impl Drop for Notified {
    fn drop(&mut self) {
        // SAFETY: we own one reference and give it up.
        unsafe { drop_reference(self.0) }
    }
}

/// Drops one reference, freeing the task if it was the last.
///
/// # Safety
/// The caller owns the reference.
pub(crate) unsafe fn drop_reference(ptr: NonNull<Header>) {
    // SAFETY: the caller's reference keeps the task alive until here.
    let header = unsafe { ptr.as_ref() };
    if header.state.ref_dec() {
        // SAFETY: that was the last reference.
        unsafe { (header.vtable.dealloc)(ptr) }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    struct Fut64([u64; 8]);
    impl Future for Fut64 {
        type Output = ();
        fn poll(self: Pin<&mut Self>, _: &mut TaskCx<'_>) -> Poll<()> {
            Poll::Ready(())
        }
    }

    #[test]
    fn one_task_with_a_64_byte_future_is_header_context_and_64_bytes() {
        use std::mem::size_of;
        let header = size_of::<Header>();
        let stage = size_of::<UnsafeCell<Stage<Fut64>>>();
        let context = size_of::<ContextCell>();
        let size = size_of::<Cell<Fut64, ContextCell>>();
        println!(
            "task allocation with a 64-byte future: {size} bytes \
             (header {header}, context {context}, stage {stage})"
        );
        assert!(header <= 56, "{header}");
        // No discriminant: the stage costs the future's bytes alone.
        assert_eq!(stage, size_of::<Fut64>());
        assert!(size <= 56 + context + 64, "{size}");
        let _ = Fut64([0; 8]).0;
    }

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
