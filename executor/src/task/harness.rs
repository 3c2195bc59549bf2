//! What happens to a task: poll inside its context, catch panics, complete,
//! cancel, deliver the output. The generic half of the vtable: every
//! function here knows the future `F`, the context `C` and the scheduler
//! `S`, and calls the scheduler's [`Schedule`] methods directly.

use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll, Waker};
use std::time::Instant;

use crate::task::cell::{Cell, TaskContext};
use crate::task::join::JoinError;
use crate::task::raw::{Header, RawTask, Vtable};
use crate::task::schedule::{Notified, Schedule, Task};
use crate::task::state::{Snapshot, ToIdle, ToRunning};
use crate::task::waker::waker_ref;

/// Allocates a task of scheduler `scheduler`, with three references (see
/// `State::new`) for the caller to hand out: the `JoinHandle`'s, the owned
/// list's and the first `Notified`'s.
pub(super) fn allocate<F, C, S>(future: F, context: C, scheduler: Arc<S>) -> RawTask
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    C: TaskContext,
    S: Schedule,
{
    Cell::allocate(future, context, scheduler, vtable::<F, C, S>())
}

fn vtable<F, C, S>() -> &'static Vtable
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    C: TaskContext,
    S: Schedule,
{
    &Vtable {
        poll: poll::<F, C, S>,
        schedule: schedule::<S>,
        dealloc: dealloc::<F, C, S>,
        try_read_output: try_read_output::<F, C, S>,
        drop_join_handle: drop_join_handle::<F, C, S>,
        shutdown: shutdown::<F, C, S>,
    }
}

struct Harness<F: Future, C, S> {
    cell: NonNull<Cell<F, C, S>>,
}

impl<F, C, S> Harness<F, C, S>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    C: TaskContext,
    S: Schedule,
{
    /// # Safety
    /// `task` is a live `Cell<F, C, S>`.
    unsafe fn from_raw(task: RawTask) -> Self {
        Harness {
            cell: task.header_ptr().cast(),
        }
    }

    fn raw(&self) -> RawTask {
        RawTask::from_header(self.cell.cast())
    }

    fn cell(&self) -> &Cell<F, C, S> {
        // SAFETY: every caller holds a reference (or RUNNING, which implies
        // one), so the allocation is alive.
        unsafe { self.cell.as_ref() }
    }

    fn header(&self) -> &Header {
        self.cell().header()
    }

    fn scheduler(&self) -> &S {
        self.cell().head().scheduler()
    }

    /// Runs a `Notified` (its reference is ours) on worker `worker`;
    /// returns the task's last worker before.
    fn poll(self, worker: u16) -> u16 {
        let (action, last_worker) = self.header().state().transition_to_running(worker);
        match action {
            ToRunning::Success => self.poll_inner(),
            ToRunning::Cancelled => self.cancel(),
            ToRunning::Failed => {}
            // SAFETY: the last reference is gone.
            ToRunning::Dealloc => unsafe { dealloc::<F, C, S>(self.raw()) },
        }
        last_worker
    }

    /// We hold RUNNING (and the reference the Notified had).
    fn poll_inner(self) {
        let cell = self.cell();
        let raw = self.raw();
        let entered = run_contained(cell.context(), || {
            // SAFETY: RUNNING keeps the task alive; this waker is not
            // dropped (it borrows our reference); the task's scheduler type
            // is `S`.
            let waker = unsafe { waker_ref::<S>(raw) };
            let mut cx = TaskCx::from_waker(&waker);
            // SAFETY: we hold RUNNING and the future is live: it is dropped
            // only on the way to `complete`.
            let polled =
                panic::catch_unwind(AssertUnwindSafe(|| unsafe { cell.poll_future(&mut cx) }));
            match polled {
                Ok(Poll::Pending) => None,
                Ok(Poll::Ready(output)) => {
                    // Drop the future inside the task's context (S6).
                    // SAFETY: we hold RUNNING; the future is live (it just
                    // returned) and is not touched again.
                    match unsafe { drop_future(cell) } {
                        Ok(()) => Some(Ok(output)),
                        Err(panic) => Some(Err(JoinError::panic(panic))),
                    }
                }
                Err(panic) => {
                    // SAFETY: we hold RUNNING; a panicking poll leaves the
                    // future live, and it is not touched again.
                    let _ = unsafe { drop_future(cell) };
                    Some(Err(JoinError::panic(panic)))
                }
            }
        });
        let outcome = match entered {
            // The context is entered elsewhere (a shared context): wait in
            // the scheduler's deferred list and try again later.
            Err(_) => return self.defer(),
            Ok((outcome, None)) => outcome,
            // Leaving the task's context panicked: a destructor of a value
            // the poll replaced there. The task panicked: what it made is
            // dropped inside its context (its future, if still pending).
            Ok((outcome, Some(panic))) => {
                match outcome {
                    Some(Ok(output)) => drop_inside(cell.context(), move || drop(output)),
                    Some(Err(_)) => {}
                    // SAFETY: RUNNING, and the pending future is live; it
                    // is dropped once, and not touched again.
                    None => drop_inside(cell.context(), || unsafe {
                        let _ = drop_future(cell);
                    }),
                }
                Some(Err(JoinError::panic(panic)))
            }
        };
        match outcome {
            Some(output) => self.complete(output),
            None => match self.header().state().transition_to_idle() {
                ToIdle::Ok => {}
                // SAFETY: the last reference is gone.
                ToIdle::OkDealloc => unsafe { dealloc::<F, C, S>(raw) },
                ToIdle::OkNotified => {
                    // SAFETY: our reference becomes the Notified's.
                    let task = unsafe { Notified::from_raw(raw) };
                    self.scheduler().yield_now(task);
                }
                ToIdle::Cancelled => self.cancel(),
            },
        }
    }

    fn defer(self) {
        self.header().state().transition_running_to_notified();
        // SAFETY: our reference becomes the Notified's.
        let task = unsafe { Notified::from_raw(self.raw()) };
        self.scheduler().defer(task);
    }

    /// We hold RUNNING (and a reference); the task was aborted or shut down.
    fn cancel(self) {
        let cell = self.cell();
        // SAFETY: we hold RUNNING and the task is not COMPLETE, so the
        // future is live (it is dropped only on the way to `complete`); if
        // the context is busy the closure does not run.
        match run_contained(cell.context(), || unsafe { drop_future(cell) }) {
            Err(_) => self.defer(),
            Ok((Ok(()), None)) => self.complete(Err(JoinError::cancelled())),
            Ok((Err(panic), _) | (Ok(()), Some(panic))) => {
                self.complete(Err(JoinError::panic(panic)))
            }
        }
    }

    /// Stores the output, publishes COMPLETE, hands the output to the
    /// `JoinHandle` or drops it, and releases the runner's reference (and
    /// the owned list's, if we are the ones removing it).
    ///
    /// The caller holds RUNNING and has dropped the future.
    fn complete(self, output: Result<F::Output, JoinError>) {
        let cell = self.cell();
        let header = self.header();
        // An `Ok` output of a type without a destructor runs no user code
        // when dropped: no need to enter the task's context for it.
        let inert = output.is_ok() && !std::mem::needs_drop::<F::Output>();
        // SAFETY: we hold RUNNING, the task is not COMPLETE and the future
        // was dropped: the stage is ours and its slot is empty.
        unsafe { cell.store_output(output) };
        self.scheduler().count_completed();
        let snapshot = header.state().transition_to_complete();
        if !snapshot.is_join_interested() {
            // Nobody will read the output: it is ours to drop, inside the
            // task's context (what its destructor sets goes with the task,
            // not into the worker's own context) unless it is inert.
            if inert {
                // SAFETY: without JOIN_INTEREST nobody else touches the
                // stage, and the output we just stored is live.
                unsafe { cell.drop_output() };
            } else {
                // SAFETY: as above; it is dropped once, inside the context
                // or (if that is busy) here.
                drop_inside(cell.context(), || unsafe { cell.drop_output() });
            }
        } else if snapshot.is_join_waker_set() {
            // SAFETY: JOIN_WAKER and COMPLETE: we may read the waker.
            unsafe { header.wake_join() };
            let snapshot = header.state().unset_waker_after_complete();
            if !snapshot.is_join_interested() {
                // The handle went away while we were waking it.
                // SAFETY: JOIN_WAKER unset after COMPLETE without interest:
                // nobody else touches the waker.
                unsafe { header.set_join_waker(None) };
            }
        }
        // SAFETY: a view of the task that owns nothing (never dropped).
        let me = ManuallyDrop::new(unsafe { Task::from_raw(self.raw()) });
        // The list's reference, if the scheduler removed the task now, is
        // dropped together with ours, in one atomic operation.
        let count = match self.scheduler().release(&me) {
            Some(list_ref) => {
                debug_assert!(list_ref.raw() == self.raw());
                let _ = list_ref.into_raw();
                2
            }
            None => 1,
        };
        if header.state().transition_to_terminal(count) {
            // SAFETY: the last reference is gone.
            unsafe { dealloc::<F, C, S>(self.raw()) }
        }
    }
}

/// A panic's payload.
type Panic = Box<dyn std::any::Any + Send>;

/// Runs `f` inside the task's context, with every panic of leaving it
/// contained.
///
/// Leaving a context drops the bindings the run replaced there, and a
/// destructor's panic is resumed once the worker's own context is restored
/// (the context crate's "Where user code runs"). It is caught here and
/// returned beside `f`'s result, which is kept outside the context so that
/// the unwinding does not lose it. Entering can panic too, before `f` runs:
/// publishing the worker's own writes drops what they replace; `f` is then
/// tried again (the publish finished before the panic was resumed).
fn run_contained<C: TaskContext, R>(
    ctx: &C,
    f: impl FnOnce() -> R,
) -> Result<(R, Option<Panic>), baton_context::ContextError> {
    let mut f = Some(f);
    loop {
        let mut out = None;
        let left = panic::catch_unwind(AssertUnwindSafe(|| {
            ctx.try_run(|| out = Some((f.take().expect("runs once"))()))
        }));
        match (left, out) {
            (Ok(Ok(())), Some(out)) => return Ok((out, None)),
            (Ok(Err(busy)), _) => return Err(busy),
            (Err(panic), Some(out)) => return Ok((out, Some(panic))),
            // Entering panicked; `f` did not run.
            (Err(_), None) => continue,
            (Ok(Ok(())), None) => unreachable!("the closure ran"),
        }
    }
}

/// Runs `f`, a destructor, inside the task's context — or here, if that is
/// entered elsewhere — and discards its panic (nobody is left to report it
/// to).
fn drop_inside<C: TaskContext>(ctx: &C, f: impl FnOnce()) {
    let mut f = Some(f);
    let _ = run_contained(ctx, || {
        let f = f.take().expect("runs once");
        let _ = panic::catch_unwind(AssertUnwindSafe(f));
    });
    if let Some(f) = f {
        let _ = panic::catch_unwind(AssertUnwindSafe(f));
    }
}

/// Drops the future in place (called inside the task's context). The
/// future is gone afterwards even if its destructor panicked (the panic is
/// returned); every caller goes on to `complete`.
///
/// # Safety
/// The caller holds RUNNING and the future is live.
unsafe fn drop_future<F, C, S>(cell: &Cell<F, C, S>) -> Result<(), Box<dyn std::any::Any + Send>>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    C: TaskContext,
    S: Schedule,
{
    // SAFETY: RUNNING and a live future are the caller's contract.
    panic::catch_unwind(AssertUnwindSafe(|| unsafe { cell.drop_future() }))
}

unsafe fn poll<F, C, S>(task: RawTask, worker: u16) -> u16
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    C: TaskContext,
    S: Schedule,
{
    // SAFETY: the vtable belongs to a `Cell<F, C, S>`.
    unsafe { Harness::<F, C, S>::from_raw(task) }.poll(worker)
}

unsafe fn schedule<S: Schedule>(task: RawTask) {
    // SAFETY: the caller's reference keeps the task alive; the vtable
    // belongs to a task of scheduler type `S`.
    let head = unsafe { crate::task::cell::Head::<S>::of(task) };
    // SAFETY: the caller's reference, which stands for NOTIFIED, becomes
    // the Notified's.
    head.scheduler()
        .schedule(unsafe { Notified::from_raw(task) });
}

unsafe fn dealloc<F, C, S>(task: RawTask)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    C: TaskContext,
    S: Schedule,
{
    // SAFETY: the reference count is zero; the allocation came from
    // `Cell::allocate`'s `Box`.
    let cell = unsafe { Box::from_raw(task.header_ptr().cast::<Cell<F, C, S>>().as_ptr()) };
    // The stage is a union, which drops nothing: drop its live member here.
    // A COMPLETE task's slot is empty (whoever owned the output took or
    // dropped it before giving up its reference). One that is not COMPLETE
    // still holds its future: the runtime was shut down while a worker was
    // running the task (`shutdown_timeout`, or a runtime dropped by its own
    // task), and the runner's reference went with a `Notified` that the
    // closed queues dropped.
    if !cell.header().state().load().is_complete() {
        // SAFETY: the last reference is ours, so nobody holds RUNNING, and
        // the future of a task that is not COMPLETE is live. If its
        // destructor panics, the panic is discarded (nobody is left to
        // report it to) and the slot is not touched again.
        let _ = panic::catch_unwind(AssertUnwindSafe(|| unsafe { cell.drop_future() }));
    }
    // The task's context drops its bindings inside itself, and a
    // destructor's panic there has nobody to go to: it must not unwind into
    // a worker (or whoever dropped the last reference).
    let _ = panic::catch_unwind(AssertUnwindSafe(move || drop(cell)));
}

unsafe fn try_read_output<F, C, S>(task: RawTask, dst: *mut (), waker: &Waker)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    C: TaskContext,
    S: Schedule,
{
    // SAFETY: the JoinHandle's reference keeps the cell alive.
    let harness = unsafe { Harness::<F, C, S>::from_raw(task) };
    if can_read_output(harness.header(), waker) {
        // SAFETY: `dst` is the JoinHandle's `Poll<Result<F::Output, _>>`;
        // we saw COMPLETE with JOIN_INTEREST, so the output is ours, and the
        // handle has not taken it yet (its `output_taken` flag, checked by
        // the caller, which sets it when this returns `Ready`).
        unsafe {
            let dst = &mut *(dst as *mut Poll<Result<F::Output, JoinError>>);
            *dst = Poll::Ready(harness.cell().take_output());
        }
    }
}

/// The `JoinHandle` side of the JOIN_WAKER protocol: true if the task is
/// complete; otherwise `waker` is registered.
fn can_read_output(header: &Header, waker: &Waker) -> bool {
    let snapshot = header.state().load();
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
            .state()
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
    let res = header.state().set_join_waker();
    if res.is_err() {
        // SAFETY: still ours: JOIN_WAKER was not set.
        unsafe { header.set_join_waker(None) };
    }
    res
}

unsafe fn drop_join_handle<F, C, S>(task: RawTask, output_taken: bool)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    C: TaskContext,
    S: Schedule,
{
    // SAFETY: the JoinHandle's reference keeps the cell alive.
    let harness = unsafe { Harness::<F, C, S>::from_raw(task) };
    let dropped = harness
        .header()
        .state()
        .transition_to_join_handle_dropped(output_taken);
    if dropped.drop_output {
        // SAFETY: COMPLETE with our JOIN_INTEREST, and the handle did not
        // take the output: it is ours and still in the slot.
        let _ = panic::catch_unwind(AssertUnwindSafe(|| unsafe { harness.cell().drop_output() }));
    }
    if dropped.drop_waker {
        // SAFETY: JOIN_WAKER is unset: the waker is ours.
        unsafe { harness.header().set_join_waker(None) };
    }
    // SAFETY: we give up the JoinHandle's reference.
    unsafe { task.drop_reference() }
}

unsafe fn shutdown<F, C, S>(task: RawTask, deadline: Option<Instant>)
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
    C: TaskContext,
    S: Schedule,
{
    // SAFETY: the owned list's reference (now ours) keeps the cell alive.
    let harness = unsafe { Harness::<F, C, S>::from_raw(task) };
    if !harness.header().state().transition_to_shutdown() {
        // Running (its poller will see CANCELLED) or complete.
        // SAFETY: we give up the list's reference.
        unsafe { task.drop_reference() };
        return;
    }
    // We hold RUNNING; the list's reference plays the runner's.
    let cell = harness.cell();
    let mut backoff = std::time::Duration::from_micros(20);
    loop {
        // We hold RUNNING and the task was idle, so its future is live; it
        // is dropped at most once, as a drop leads straight to `complete`
        // (and a busy context runs no closure).
        let result = if cell.context().is_current() {
            // The shutting-down thread is itself inside the task's shared
            // context: dropping here is dropping inside it.
            // SAFETY: RUNNING and a live future, as above.
            Ok((unsafe { drop_future(cell) }, None))
        } else {
            // SAFETY: RUNNING and a live future, as above.
            run_contained(cell.context(), || unsafe { drop_future(cell) })
        };
        match result {
            Ok((Ok(()), None)) => return harness.complete(Err(JoinError::cancelled())),
            Ok((Err(panic), _) | (Ok(()), Some(panic))) => {
                return harness.complete(Err(JoinError::panic(panic)));
            }
            Err(_) => {
                // The shared context is entered elsewhere: wait for it.
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    // Give up: the task is leaked, RUNNING forever.
                    return;
                }
                backoff_sleep(backoff);
                backoff = (backoff * 2).min(std::time::Duration::from_millis(1));
            }
        }
    }
}

/// Sleeps the thread for a short back-off (under `baton_loom`: yields to the
/// model checker, as loom has no clock).
fn backoff_sleep(duration: std::time::Duration) {
    #[cfg(baton_loom)]
    {
        let _ = duration;
        baton_sync::thread::yield_now();
    }
    #[cfg(not(baton_loom))]
    std::thread::sleep(duration);
}
