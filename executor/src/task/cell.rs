//! The task allocation: the type-erased [`Header`], the scheduler handle,
//! the task's context and its future-or-output, all in one `Box`.

use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll};

use baton_context::{Context, ContextCell, ContextError};

use crate::task::join::JoinError;
use crate::task::raw::{Header, RawTask, Vtable};
use baton_sync::UnsafeCell;

/// Where a task runs: its own embedded copy of the spawner's context
/// (`spawn`), or a shared `Context` (`spawn_with_context`).
pub(crate) trait TaskContext: Send + 'static {
    /// Runs `f` inside the context, unless it is entered on another thread.
    fn try_run<R>(&self, f: impl FnOnce() -> R) -> Result<R, ContextError>;
    /// Whether the calling thread is inside the context right now.
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

/// The part of a task that does not depend on its future or context: the
/// header, then the handle of the scheduler the task belongs to. `repr(C)`
/// and first in [`Cell`], so that code that knows only `S` (the waker) finds
/// the scheduler at the same offset in every task.
#[repr(C)]
pub(super) struct Head<S> {
    header: Header,
    /// Wakers and the harness schedule the task here.
    scheduler: Arc<S>,
}

impl<S> Head<S> {
    /// The head of the task `raw`.
    ///
    /// # Safety
    /// `raw` is a live task allocated with scheduler type `S`, and the
    /// caller holds (or borrows) a reference for `'a`.
    #[inline]
    pub(super) unsafe fn of<'a>(raw: RawTask) -> &'a Head<S> {
        // SAFETY: the header is the first field of `Head<S>`, itself the
        // first field of the `repr(C)` cell, so the pointer is also one to
        // the cell's `Head<S>`; alive as the caller promises.
        unsafe { raw.header_ptr().cast::<Head<S>>().as_ref() }
    }

    /// The scheduler the task belongs to.
    #[inline]
    pub(super) fn scheduler(&self) -> &S {
        &self.scheduler
    }
}

/// The future, then its output, in the same bytes: no discriminant. Which
/// member is live (if any) is told by the state word and the protocol in
/// `task/mod.rs` ("The stage slot"); a union never drops its members, so
/// every path drops the live one itself.
pub(super) union Stage<F: Future> {
    running: ManuallyDrop<F>,
    finished: ManuallyDrop<Result<F::Output, JoinError>>,
}

/// The whole task allocation.
#[repr(C)]
pub(super) struct Cell<F: Future, C, S> {
    head: Head<S>,
    context: C,
    /// Accessed only by the holder of RUNNING while not COMPLETE, then by
    /// whoever owns the output (see `task/mod.rs`).
    stage: UnsafeCell<Stage<F>>,
}

impl<F, C, S> Cell<F, C, S>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    C: TaskContext,
    S: Send + Sync + 'static,
{
    /// Allocates a task (the only allocation a task makes) with the
    /// functions of `vtable`, which must be those of `Cell<F, C, S>`.
    pub(super) fn allocate(
        future: F,
        context: C,
        scheduler: Arc<S>,
        vtable: &'static Vtable,
    ) -> RawTask {
        let cell = Box::new(Cell {
            head: Head {
                header: Header::new(vtable),
                scheduler,
            },
            context,
            stage: UnsafeCell::new(Stage {
                running: ManuallyDrop::new(future),
            }),
        });
        // `Header` is the first field of `Head`, the first field of a
        // `repr(C)` struct.
        RawTask::from_header(NonNull::from(Box::leak(cell)).cast())
    }

    /// The header and the scheduler.
    #[inline]
    pub(super) fn head(&self) -> &Head<S> {
        &self.head
    }

    /// The header.
    #[inline]
    pub(super) fn header(&self) -> &Header {
        &self.head.header
    }

    /// The task's context.
    #[inline]
    pub(super) fn context(&self) -> &C {
        &self.context
    }

    /// Polls the future.
    ///
    /// # Safety
    /// The caller holds RUNNING and the future is live (not yet dropped).
    pub(super) unsafe fn poll_future(&self, cx: &mut TaskCx<'_>) -> Poll<F::Output> {
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
    pub(super) unsafe fn drop_future(&self) {
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
    pub(super) unsafe fn store_output(&self, output: Result<F::Output, JoinError>) {
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
    pub(super) unsafe fn take_output(&self) -> Result<F::Output, JoinError> {
        // SAFETY: the caller owns the output, which is the live member.
        self.stage
            .with_mut(|stage| unsafe { ManuallyDrop::take(&mut (*stage).finished) })
    }

    /// Drops the output in place; the slot is empty afterwards, even if a
    /// destructor panics.
    ///
    /// # Safety
    /// The caller owns the output and it is still there.
    pub(super) unsafe fn drop_output(&self) {
        // SAFETY: the caller owns the output, which is the live member.
        self.stage
            .with_mut(|stage| unsafe { ManuallyDrop::drop(&mut (*stage).finished) });
    }
}
