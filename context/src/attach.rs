//! Futures that always run inside one context: [`Attached`], behind a
//! [`Context`] handle, and [`PackedAttached`], in a [`PackedCell`] (one word,
//! for other runtimes' tasks).

use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use pin_project_lite::pin_project;

use crate::cell::Claim;
use crate::context::Context;
use crate::current;
use crate::error::ContextError;
use crate::hook;
use crate::packed::PackedCell;

pin_project! {
    /// A future wrapped by [`Context::attach`]: each poll, and the drop of the
    /// inner future, run inside the context.
    ///
    /// This is how to give futures joined inside one task (`join!`,
    /// `select!`) contexts of their own, and how to use baton contexts under
    /// another executor, such as tokio's.
    ///
    /// ```
    /// use baton_context::{Context, ContextVar};
    ///
    /// static ID: ContextVar<u32> = ContextVar::new("id");
    ///
    /// let ctx = Context::new();
    /// let fut = ctx.attach(async {
    ///     let _ = ID.set(7);
    ///     ID.get()
    /// });
    /// assert_eq!(futures::executor::block_on(fut), Some(7));
    /// assert_eq!(ctx.get(&ID), Some(7));
    /// assert_eq!(ID.get(), None);
    /// ```
    ///
    /// # Panics
    ///
    /// A poll panics if the context is entered already — by another thread,
    /// or by this one (an attached future polled from inside its own
    /// context): [`ContextError::AlreadyEntered`](crate::ContextError).
    #[must_use = "futures do nothing unless polled"]
    pub struct Attached<F> {
        ctx: Context,
        #[pin]
        fut: Option<F>,
    }

    impl<F> PinnedDrop for Attached<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            let mut fut = this.fut;
            if fut.is_some() {
                this.ctx.run_for_drop(|| fut.set(None));
            }
        }
    }
}

impl<F> Attached<F> {
    fn new(ctx: Context, fut: F) -> Self {
        Attached {
            ctx,
            fut: Some(fut),
        }
    }

    /// The context this future runs in.
    pub fn context(&self) -> &Context {
        &self.ctx
    }
}

impl<F: Future> Future for Attached<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        let this = self.project();
        let mut fut = this.fut;
        // `Pin<&mut Self>` holds the handle by `&mut`: if it is the only
        // one, the context is entered without a compare-and-swap.
        let polled = this.ctx.try_run_mut(|| {
            let inner = fut
                .as_mut()
                .as_pin_mut()
                .expect("`Attached` polled after completion");
            let poll = inner.poll(cx);
            if poll.is_ready() {
                // Completed: drop the future now, still inside its context.
                fut.set(None);
            }
            poll
        });
        match polled {
            Ok(poll) => poll,
            Err(e) => panic!("baton: cannot poll an attached future: {e}"),
        }
    }
}

impl Context {
    /// Wraps `fut` so that each of its polls, and its drop, runs inside this
    /// context. See [`Attached`].
    pub fn attach<F: Future>(&self, fut: F) -> Attached<F> {
        Attached::new(self.clone(), fut)
    }

    /// [`Context::try_run`] for a caller that holds this handle by `&mut`:
    /// if it is the only handle, no other thread can reach the context, and
    /// it is entered with plain loads and stores instead of the
    /// compare-and-swap (what [`Attached`] polls pay).
    #[inline]
    fn try_run_mut<R>(&mut self, f: impl FnOnce() -> R) -> Result<R, ContextError> {
        let claim = if self.is_sole_handle() {
            Claim::Exclusive
        } else {
            Claim::Contended
        };
        // SAFETY: the handle (and so the cell) outlives the guard; and the
        // cell is exclusive when so claimed: `&mut self` keeps this, the
        // only handle, from being cloned or lent meanwhile, and the count
        // was read with Acquire.
        let entered = unsafe { current::enter(self.cell_ptr(), claim) }?;
        if hook::any() {
            return Ok(current::run_mirrored(entered, f));
        }
        let _entered = entered;
        Ok(f())
    }

    /// Runs `f` (a destructor) inside this context if possible: directly if
    /// it is current already, entered otherwise. If another thread has it
    /// entered, `f` runs in the caller's context — a destructor cannot wait
    /// for another thread, and must not fail.
    pub(crate) fn run_for_drop(&self, f: impl FnOnce()) {
        if self.is_current() {
            f();
            return;
        }
        let mut f = Some(f);
        if self.try_run(|| (f.take().expect("once"))()).is_err() {
            (f.take().expect("not run"))();
        }
    }
}

/// A future wrapped by [`PackedCell::attach`]: each poll, and the drop of
/// the inner future, run inside the cell's context. [`Attached`] with the
/// context stored inline, in one word, rather than behind a handle — what
/// `baton::tokio::spawn` hands tokio, whose task allocations are size
/// classes.
///
/// The inner future is dropped when the `PackedAttached` is, inside the
/// context (runtimes drop a task's future as soon as it completes).
///
/// ```
/// use baton_context::{ContextVar, PackedCell};
///
/// static ID: ContextVar<u32> = ContextVar::new("id");
///
/// let _token = ID.set(1);
/// let fut = PackedCell::copy_current().attach(async {
///     let seen = ID.get();
///     let _ = ID.set(2); // in the copy only
///     seen
/// });
/// assert_eq!(futures::executor::block_on(fut), Some(1));
/// assert_eq!(ID.get(), Some(1));
/// ```
#[must_use = "futures do nothing unless polled"]
pub struct PackedAttached<F> {
    cell: PackedCell,
    /// Pinned whenever `self` is: never moved out, and dropped in place by
    /// `Drop` — once, inside `cell`.
    fut: ManuallyDrop<F>,
}

impl PackedCell {
    /// Wraps `fut` so that each of its polls, and its drop, runs inside
    /// this context. See [`PackedAttached`].
    pub fn attach<F: Future>(self, fut: F) -> PackedAttached<F> {
        PackedAttached {
            cell: self,
            fut: ManuallyDrop::new(fut),
        }
    }
}

impl<F: Future> Future for PackedAttached<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<F::Output> {
        // SAFETY: `fut` is structurally pinned and `cell` is not: nothing
        // moves `fut` out of `self` (it is dropped in place, by `Drop`),
        // and `cell` is only ever used by `&mut`, never pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above: `fut` is pinned because `self` is.
        let fut = unsafe { Pin::new_unchecked(&mut *this.fut) };
        this.cell.run(|| fut.poll(cx))
    }
}

impl<F> Drop for PackedAttached<F> {
    fn drop(&mut self) {
        let fut = &mut self.fut;
        // SAFETY: `fut` is dropped here, in place (as pinning requires),
        // once: `ManuallyDrop` keeps the field's own drop from dropping it
        // again, and nothing uses it afterwards. If its destructor panics
        // the panic propagates, and `fut` is still never touched again.
        self.cell.run(|| unsafe { ManuallyDrop::drop(fut) });
    }
}
