//! What happens to a task: poll inside its context, catch panics, complete,
//! cancel, deliver the output. The generic half of the vtable.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::task::{Context as TaskCx, Poll, Waker};
use std::time::Instant;

use crate::task::JoinError;
use crate::task::raw::{Cell, Header, Notified, Stage, TaskContext};
use crate::task::state::{Snapshot, ToIdle, ToRunning};
use crate::task::waker::waker_ref;

struct Harness<F: Future, C> {
    cell: NonNull<Cell<F, C>>,
}

impl<F, C> Harness<F, C>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    C: TaskContext,
{
    /// # Safety
    /// `ptr` points to a live `Cell<F, C>`.
    unsafe fn from_raw(ptr: NonNull<Header>) -> Self {
        Harness { cell: ptr.cast() }
    }

    fn ptr(&self) -> NonNull<Header> {
        self.cell.cast()
    }

    fn cell(&self) -> &Cell<F, C> {
        // SAFETY: every caller holds a reference (or RUNNING, which implies
        // one), so the allocation is alive.
        unsafe { self.cell.as_ref() }
    }

    fn header(&self) -> &Header {
        &self.cell().header
    }

    /// Runs a `Notified` (its reference is ours).
    fn poll(self) {
        match self.header().state.transition_to_running() {
            ToRunning::Success => self.poll_inner(),
            ToRunning::Cancelled => self.cancel(),
            ToRunning::Failed => {}
            // SAFETY: the last reference is gone.
            ToRunning::Dealloc => unsafe { dealloc::<F, C>(self.ptr()) },
        }
    }

    /// We hold RUNNING (and the reference the Notified had).
    fn poll_inner(self) {
        let cell = self.cell();
        let ptr = self.ptr();
        let entered = cell.context.try_run(|| {
            // SAFETY: RUNNING keeps the task alive; this waker is not
            // dropped (it borrows our reference).
            let waker = unsafe { waker_ref(ptr) };
            let mut cx = TaskCx::from_waker(&waker);
            // SAFETY: we hold RUNNING and the future is still there.
            let polled =
                panic::catch_unwind(AssertUnwindSafe(|| unsafe { cell.poll_future(&mut cx) }));
            match polled {
                Ok(Poll::Pending) => None,
                Ok(Poll::Ready(output)) => {
                    // Drop the future inside the task's context (S6).
                    match drop_future(cell) {
                        Ok(()) => Some(Ok(output)),
                        Err(panic) => Some(Err(JoinError::panic(panic))),
                    }
                }
                Err(panic) => {
                    let _ = drop_future(cell);
                    Some(Err(JoinError::panic(panic)))
                }
            }
        });
        match entered {
            // The context is entered elsewhere (a shared context): wait in
            // the scheduler's deferred list and try again later.
            Err(_) => self.defer(),
            Ok(Some(output)) => self.complete(output),
            Ok(None) => match self.header().state.transition_to_idle() {
                ToIdle::Ok => {}
                // SAFETY: the last reference is gone.
                ToIdle::OkDealloc => unsafe { dealloc::<F, C>(ptr) },
                ToIdle::OkNotified => {
                    // SAFETY: our reference becomes the Notified's.
                    let task = unsafe { Notified::from_raw(ptr) };
                    self.header().scheduler.yield_task(task);
                }
                ToIdle::Cancelled => self.cancel(),
            },
        }
    }

    fn defer(self) {
        self.header().state.transition_running_to_notified();
        // SAFETY: our reference becomes the Notified's.
        let task = unsafe { Notified::from_raw(self.ptr()) };
        self.header().scheduler.defer(task);
    }

    /// We hold RUNNING (and a reference); the task was aborted or shut down.
    fn cancel(self) {
        let cell = self.cell();
        match cell.context.try_run(|| drop_future(cell)) {
            Err(_) => self.defer(),
            Ok(Ok(())) => self.complete(Err(JoinError::cancelled())),
            Ok(Err(panic)) => self.complete(Err(JoinError::panic(panic))),
        }
    }

    /// Stores the output, publishes COMPLETE, hands the output to the
    /// `JoinHandle` or drops it, and releases the runner's reference (and
    /// the owned list's, if we are the ones removing it).
    fn complete(self, output: Result<F::Output, JoinError>) {
        let cell = self.cell();
        let header = self.header();
        // SAFETY: we hold RUNNING and the task is not COMPLETE: the stage is
        // ours.
        unsafe { cell.set_stage(Stage::Finished(output)) };
        header.scheduler.count_completed();
        let snapshot = header.state.transition_to_complete();
        if !snapshot.is_join_interested() {
            // Nobody will read the output: it is ours to drop.
            // SAFETY: without JOIN_INTEREST nobody else touches the stage.
            let _ = panic::catch_unwind(AssertUnwindSafe(|| unsafe {
                cell.set_stage(Stage::Consumed)
            }));
        } else if snapshot.is_join_waker_set() {
            // SAFETY: JOIN_WAKER and COMPLETE: we may read the waker.
            unsafe { header.wake_join() };
            let snapshot = header.state.unset_waker_after_complete();
            if !snapshot.is_join_interested() {
                // The handle went away while we were waking it.
                // SAFETY: JOIN_WAKER unset after COMPLETE without interest:
                // nobody else touches the waker.
                unsafe { header.set_join_waker(None) };
            }
        }
        let removed = header.scheduler.release(self.ptr());
        let count = if removed { 2 } else { 1 };
        if header.state.transition_to_terminal(count) {
            // SAFETY: the last reference is gone.
            unsafe { dealloc::<F, C>(self.ptr()) }
        }
    }
}

/// Drops the future in place (called inside the task's context).
fn drop_future<F, C>(cell: &Cell<F, C>) -> Result<(), Box<dyn std::any::Any + Send>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    C: TaskContext,
{
    // SAFETY: the caller holds RUNNING.
    panic::catch_unwind(AssertUnwindSafe(|| unsafe {
        cell.set_stage(Stage::Consumed)
    }))
}

pub(super) unsafe fn poll<F, C>(ptr: NonNull<Header>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    C: TaskContext,
{
    // SAFETY: the vtable belongs to a `Cell<F, C>`.
    unsafe { Harness::<F, C>::from_raw(ptr) }.poll()
}

pub(super) unsafe fn dealloc<F, C>(ptr: NonNull<Header>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    C: TaskContext,
{
    // SAFETY: the reference count is zero; the allocation came from
    // `Cell::allocate`'s `Box`.
    drop(unsafe { Box::from_raw(ptr.cast::<Cell<F, C>>().as_ptr()) });
}

pub(super) unsafe fn try_read_output<F, C>(ptr: NonNull<Header>, dst: *mut (), waker: &Waker)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    C: TaskContext,
{
    // SAFETY: the JoinHandle's reference keeps the cell alive.
    let harness = unsafe { Harness::<F, C>::from_raw(ptr) };
    if can_read_output(harness.header(), waker) {
        // SAFETY: `dst` is the JoinHandle's `Poll<Result<F::Output, _>>`; we
        // saw COMPLETE with JOIN_INTEREST, so the output is ours.
        unsafe {
            let dst = &mut *(dst as *mut Poll<Result<F::Output, JoinError>>);
            *dst = Poll::Ready(harness.cell().take_output());
        }
    }
}

/// The `JoinHandle` side of the JOIN_WAKER protocol: true if the task is
/// complete; otherwise `waker` is registered.
fn can_read_output(header: &Header, waker: &Waker) -> bool {
    let snapshot = header.state.load();
    debug_assert!(snapshot.is_join_interested());
    if snapshot.is_complete() {
        return true;
    }
    let res = if !snapshot.is_join_waker_set() {
        set_join_waker(header, waker, snapshot)
    } else {
        // SAFETY: we are the JoinHandle and JOIN_WAKER is set.
        if unsafe { header.join_waker_will_wake(waker) } {
            return false;
        }
        header
            .state
            .unset_join_waker()
            .and_then(|snapshot| set_join_waker(header, waker, snapshot))
    };
    match res {
        Ok(_) => false,
        Err(snapshot) => {
            debug_assert!(snapshot.is_complete());
            true
        }
    }
}

fn set_join_waker(
    header: &Header,
    waker: &Waker,
    snapshot: Snapshot,
) -> Result<Snapshot, Snapshot> {
    debug_assert!(!snapshot.is_join_waker_set());
    // SAFETY: JOIN_WAKER is unset and the task is not COMPLETE: the field is
    // the JoinHandle's alone.
    unsafe { header.set_join_waker(Some(waker.clone())) };
    let res = header.state.set_join_waker();
    if res.is_err() {
        // SAFETY: still ours: JOIN_WAKER was not set.
        unsafe { header.set_join_waker(None) };
    }
    res
}

pub(super) unsafe fn drop_join_handle<F, C>(ptr: NonNull<Header>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    C: TaskContext,
{
    // SAFETY: the JoinHandle's reference keeps the cell alive.
    let harness = unsafe { Harness::<F, C>::from_raw(ptr) };
    let dropped = harness.header().state.transition_to_join_handle_dropped();
    if dropped.drop_output {
        // SAFETY: COMPLETE with our JOIN_INTEREST: the output is ours.
        let _ = panic::catch_unwind(AssertUnwindSafe(|| unsafe {
            harness.cell().set_stage(Stage::Consumed)
        }));
    }
    if dropped.drop_waker {
        // SAFETY: JOIN_WAKER is unset: the waker is ours.
        unsafe { harness.header().set_join_waker(None) };
    }
    // SAFETY: we give up the JoinHandle's reference.
    unsafe { crate::task::raw::drop_reference(ptr) }
}

pub(super) unsafe fn shutdown<F, C>(ptr: NonNull<Header>, deadline: Option<Instant>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    C: TaskContext,
{
    // SAFETY: the owned list's reference (now ours) keeps the cell alive.
    let harness = unsafe { Harness::<F, C>::from_raw(ptr) };
    if !harness.header().state.transition_to_shutdown() {
        // Running (its poller will see CANCELLED) or complete.
        // SAFETY: we give up the list's reference.
        unsafe { crate::task::raw::drop_reference(ptr) };
        return;
    }
    // We hold RUNNING; the list's reference plays the runner's.
    let cell = harness.cell();
    let mut backoff = std::time::Duration::from_micros(20);
    loop {
        let result = if cell.context.is_current() {
            // The shutting-down thread is itself inside the task's shared
            // context: dropping here is dropping inside it.
            Ok(drop_future(cell))
        } else {
            cell.context.try_run(|| drop_future(cell))
        };
        match result {
            Ok(Ok(())) => return harness.complete(Err(JoinError::cancelled())),
            Ok(Err(panic)) => return harness.complete(Err(JoinError::panic(panic))),
            Err(_) => {
                // The shared context is entered elsewhere: wait for it.
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    // Give up: the task is leaked, RUNNING forever.
                    return;
                }
                crate::sync::backoff_sleep(backoff);
                backoff = (backoff * 2).min(std::time::Duration::from_millis(1));
            }
        }
    }
}
