//! The task allocation: [`Header`] (type-erased) followed by the task's
//! context and its future-or-output, all in one `Box`.

use std::future::Future;
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll, Waker};

use baton_context::{Context, ContextCell, ContextError};

use crate::scheduler::Shared;
use crate::sync::{AtomicU32, Ordering, UnsafeCell};
use crate::task::JoinError;
use crate::task::state::State;

/// `last_worker` before the first poll.
pub(crate) const NO_WORKER: u32 = u32::MAX;

/// The type-erased head of every task allocation. `repr(C)` and first in
/// [`Cell`], so a `NonNull<Header>` is also a pointer to the whole cell.
#[repr(C)]
pub(crate) struct Header {
    /// The state word: flags and reference count (see `task/mod.rs`).
    pub(crate) state: State,
    /// The functions that know the concrete future and context types.
    pub(crate) vtable: &'static Vtable,
    /// Links of the owned-tasks list; touched only under that list's shard
    /// lock.
    pub(crate) owned: UnsafeCell<Pointers>,
    /// Index of the worker that polled the task last (for the migration
    /// metric); read and written only by the holder of RUNNING.
    pub(crate) last_worker: AtomicU32,
    /// Whether the task is in the owned-tasks list; under that list's shard
    /// lock (kept out of `Pointers` so it packs beside `last_worker`).
    pub(crate) linked: UnsafeCell<bool>,
    /// The runtime the task belongs to: wakers schedule it there.
    pub(crate) scheduler: Arc<Shared>,
    /// The `JoinHandle`'s waker; see the JOIN_WAKER rules in `task/mod.rs`.
    pub(crate) join_waker: UnsafeCell<Option<Waker>>,
}

/// Links of the intrusive owned-tasks list.
pub(crate) struct Pointers {
    pub(crate) prev: Option<NonNull<Header>>,
    pub(crate) next: Option<NonNull<Header>>,
}

/// Functions of one concrete task type.
pub(crate) struct Vtable {
    /// Runs a `Notified` (consumes its reference).
    pub(crate) poll: unsafe fn(NonNull<Header>),
    /// Frees the allocation (the reference count is zero).
    pub(crate) dealloc: unsafe fn(NonNull<Header>),
    /// `JoinHandle::poll`: writes `Poll<Result<T, JoinError>>` to the
    /// pointer if the output is ready, else registers the waker.
    pub(crate) try_read_output: unsafe fn(NonNull<Header>, *mut (), &Waker),
    /// Drops the `JoinHandle` (consumes its reference).
    pub(crate) drop_join_handle: unsafe fn(NonNull<Header>),
    /// Runtime shutdown, called by whoever removed the task from the owned
    /// list (consumes that list's reference). Waits for the task's context
    /// until the deadline.
    pub(crate) shutdown: unsafe fn(NonNull<Header>, Option<std::time::Instant>),
}

/// Where a task runs: its own embedded copy of the spawner's context
/// (`spawn`), or a shared `Context` (`spawn_with_context`).
pub(crate) trait TaskContext: Send + Sync + 'static {
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

/// The future, then its output, then nothing.
pub(crate) enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, JoinError>),
    Consumed,
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
                owned: UnsafeCell::new(Pointers {
                    prev: None,
                    next: None,
                }),
                last_worker: AtomicU32::new(NO_WORKER),
                linked: UnsafeCell::new(false),
                scheduler,
                join_waker: UnsafeCell::new(None),
            },
            context,
            stage: UnsafeCell::new(Stage::Running(future)),
        });
        // `Header` is the first field of a `repr(C)` struct.
        NonNull::from(Box::leak(cell)).cast()
    }

    /// Polls the future.
    ///
    /// # Safety
    /// The caller holds RUNNING and the stage is `Running`.
    pub(crate) unsafe fn poll_future(&self, cx: &mut TaskCx<'_>) -> Poll<F::Output> {
        self.stage.with_mut(|stage| {
            // SAFETY: RUNNING gives exclusive access to the stage; the cell
            // is heap-allocated and never moves, so the future is pinned.
            match unsafe { &mut *stage } {
                Stage::Running(fut) => unsafe { Pin::new_unchecked(fut) }.poll(cx),
                _ => unreachable!("baton: task polled after its future was dropped"),
            }
        })
    }

    /// Replaces the stage, dropping the old one (the future or the output).
    ///
    /// # Safety
    /// The caller has exclusive access to the stage.
    pub(crate) unsafe fn set_stage(&self, new: Stage<F>) {
        // SAFETY: exclusive access is the caller's contract.
        self.stage.with_mut(|stage| unsafe { *stage = new });
    }

    /// Takes the output out.
    ///
    /// # Safety
    /// The caller owns the output (it saw COMPLETE with JOIN_INTEREST).
    pub(crate) unsafe fn take_output(&self) -> Result<F::Output, JoinError> {
        // SAFETY: the caller owns the stage now.
        let stage = self
            .stage
            .with_mut(|stage| unsafe { std::mem::replace(&mut *stage, Stage::Consumed) });
        match stage {
            Stage::Finished(output) => output,
            _ => panic!("baton: JoinHandle polled after it returned its output"),
        }
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

    pub(crate) fn take_last_worker(&self, index: u32) -> u32 {
        let prev = self.last_worker.load(Ordering::Relaxed);
        if prev != index {
            self.last_worker.store(index, Ordering::Relaxed);
        }
        prev
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

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: we hold a reference, so the task is alive.
        unsafe { self.0.as_ref() }
    }

    /// Runs the task (polls it, or cancels it if aborted).
    pub(crate) fn run(self) {
        let ptr = self.0;
        std::mem::forget(self);
        // SAFETY: our reference is handed to `poll`.
        unsafe { (ptr.as_ref().vtable.poll)(ptr) }
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
    fn one_task_with_a_64_byte_future_fits_in_184_bytes() {
        let size = std::mem::size_of::<Cell<Fut64, ContextCell>>();
        println!("task allocation with a 64-byte future: {size} bytes");
        assert!(size <= 184, "{size}");
        assert!(std::mem::size_of::<Header>() <= 64);
        let _ = Fut64([0; 8]).0;
    }
}
