//! Running user code inside a context, and dropping what it leaves behind,
//! so that nothing it does — panic, or re-enter (enter a context, set a
//! variable, copy the context) — lands outside the context it belongs to,
//! leaves a pool thread in the wrong context, or aborts the process.
//!
//! Every bridge operation is built from three steps (see the crate docs,
//! "Where user code runs"):
//!
//! * [`run_inside`]: calls the closure inside its context and catches every
//!   panic — of entering (the caller's replaced bindings are dropped first,
//!   in the caller's context), of the closure, and of leaving (the bindings
//!   the run replaced are dropped inside the context, which then resumes
//!   their destructor's panic). The result never crosses a panic: it is
//!   stored before the context is left, so that a panic of leaving finds it
//!   still here, and it is then dropped inside the context, as it was made.
//!   So is the closure if it was never called.
//! * [`drop_inside`]: drops a value inside a context (a skipped job's
//!   closure, a result nobody awaits); where the context cannot be entered
//!   (it is entered elsewhere), in a scratch context instead.
//! * [`drop_in_scratch`]: drops a value inside a fresh, empty context, which
//!   is itself dropped the same way while a destructor wrote into it. That
//!   is where a private `Context` copy goes when its work is done (a
//!   `ContextCell` copy needs no scratch: it drops its bindings inside
//!   itself; see [`Enter::retire`]): its bindings' destructors run there,
//!   and what they set goes nowhere — never into the thread's own context,
//!   a pool thread's included.
//!
//! Each returns the first panic it caught instead of unwinding: the caller
//! decides whether to resume it (to the caller of the operation, once the
//! thread is back in its own context and nothing is left claimed) or to
//! discard it (when it already unwinds with a panic of the user's, or when
//! nobody awaits the job any more — the panic hook has printed it).

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

use baton_context::{Context, ContextCell, ContextError};

/// A panic's payload.
pub(crate) type Panic = Box<dyn Any + Send + 'static>;

/// Something a closure can run inside.
pub(crate) trait Enter {
    fn try_run<R>(&self, f: impl FnOnce() -> R) -> Result<R, ContextError>;

    /// Drops the context once its work is done, so that its bindings'
    /// destructors write nowhere that outlives it. Returns the first panic
    /// of a destructor.
    fn retire(self) -> Option<Panic>
    where
        Self: Sized;
}

impl Enter for ContextCell {
    #[inline]
    fn try_run<R>(&self, f: impl FnOnce() -> R) -> Result<R, ContextError> {
        ContextCell::try_run(self, f)
    }

    /// A cell drops its bindings inside itself (the context crate's
    /// `ContextCell` drop): nothing more to do.
    #[inline]
    fn retire(self) -> Option<Panic> {
        catch_unwind(AssertUnwindSafe(move || drop(self))).err()
    }
}

impl Enter for Context {
    #[inline]
    fn try_run<R>(&self, f: impl FnOnce() -> R) -> Result<R, ContextError> {
        Context::try_run(self, f)
    }

    /// A `Context`'s last handle drops its bindings where it stands: in a
    /// scratch context, then.
    fn retire(self) -> Option<Panic> {
        drop_in_scratch(self)
    }
}

/// Why [`run_inside`] has no result.
pub(crate) enum Failed {
    /// The context was entered elsewhere: the closure was not called (and
    /// was dropped in a scratch context).
    AlreadyEntered,
    /// Entering, the closure or leaving panicked.
    Panicked(Panic),
}

/// Runs `f` inside `ctx` and returns its result, unless `ctx` is entered
/// elsewhere or a panic occurs on the way; never unwinds.
///
/// What is left of `f` when it fails — the closure itself if entering
/// panicked, its result if leaving did — is dropped inside `ctx` (a panic
/// of that drop is discarded: the first panic is the one returned).
#[inline]
pub(crate) fn run_inside<C, F, R>(ctx: &C, f: F) -> Result<R, Failed>
where
    C: Enter + ?Sized,
    F: FnOnce() -> R,
{
    let mut f = Some(f);
    let mut out = None;
    let ran = catch_unwind(AssertUnwindSafe(|| {
        ctx.try_run(|| {
            let f = f.take().expect("called once");
            out = Some(f());
        })
    }));
    match ran {
        Ok(Ok(())) => Ok(out.expect("the closure returned")),
        Ok(Err(_)) => {
            // `try_run` fails only with AlreadyEntered, before calling `f`.
            discard(drop_in_scratch(f));
            Err(Failed::AlreadyEntered)
        }
        Err(panic) => {
            if f.is_some() || out.is_some() {
                discard(drop_inside(ctx, (f, out)));
            }
            Err(Failed::Panicked(panic))
        }
    }
}

/// Drops `value` inside `ctx` — or, where `ctx` cannot be entered, in a
/// scratch context. Returns the first panic of a destructor.
pub(crate) fn drop_inside<C, T>(ctx: &C, value: T) -> Option<Panic>
where
    C: Enter + ?Sized,
{
    if !std::mem::needs_drop::<T>() {
        return None;
    }
    let mut value = Some(value);
    let mut panic = catch_unwind(AssertUnwindSafe(|| ctx.try_run(|| drop(value.take())))).err();
    if value.is_some() {
        // Entered elsewhere, or entering panicked before `ctx` was claimed.
        keep_first(&mut panic, drop_in_scratch(value));
    }
    panic
}

/// Drops `value` inside a fresh, empty context; what its destructors set
/// there is dropped the same way, until they set nothing. Returns the first
/// panic of a destructor.
pub(crate) fn drop_in_scratch<T>(value: T) -> Option<Panic> {
    if !std::mem::needs_drop::<T>() {
        return None;
    }
    let mut panic = None;
    let mut written = drop_once_in_scratch(value, &mut panic);
    while let Some(scratch) = written {
        written = drop_once_in_scratch(scratch, &mut panic);
    }
    panic
}

/// Drops `value` inside a new scratch context, and returns that context if
/// a destructor wrote into it.
fn drop_once_in_scratch<T>(value: T, panic: &mut Option<Panic>) -> Option<ContextCell> {
    let scratch = ContextCell::new();
    let mut value = Some(value);
    // Entering publishes the thread's own pending writes first, and the
    // destructors of what they replace may panic: then the scratch context
    // was not entered, and a second try finds nothing left to publish.
    for _ in 0..2 {
        keep_first(
            panic,
            catch_unwind(AssertUnwindSafe(|| scratch.run(|| drop(value.take())))).err(),
        );
        if value.is_none() {
            break;
        }
    }
    if value.is_some() {
        // Never happens in practice; better here than leaked.
        keep_first(panic, catch_unwind(AssertUnwindSafe(|| drop(value))).err());
    }
    (!scratch.is_empty()).then_some(scratch)
}

/// Runs `f` inside `ctx`, a private context made for this one call, then
/// drops `ctx` in a scratch context. Panics — of `f`, of entering or
/// leaving, of dropping `ctx` — are resumed once all that is done (the first
/// one; what is left of `f` is dropped inside `ctx` first).
#[inline]
pub(crate) fn run_in_copy<C: Enter, R>(ctx: C, f: impl FnOnce() -> R) -> R {
    match Ran::new(ctx, f).finish() {
        Ok(value) => value,
        Err(panic) => resume_unwind(panic),
    }
}

/// A closure that ran inside a private context, which is still alive: what
/// it returned can still be dropped inside it.
pub(crate) struct Ran<C: Enter, R> {
    ctx: C,
    outcome: Result<R, Panic>,
}

impl<C: Enter, R> Ran<C, R> {
    /// Runs `f` inside `ctx`, which nobody else can enter.
    #[inline]
    pub(crate) fn new(ctx: C, f: impl FnOnce() -> R) -> Self {
        let outcome = match run_inside(&ctx, f) {
            Ok(value) => Ok(value),
            Err(Failed::Panicked(panic)) => Err(panic),
            Err(Failed::AlreadyEntered) => unreachable!("a private context is entered once"),
        };
        Ran { ctx, outcome }
    }

    /// Whether the closure (or entering, or leaving) panicked.
    pub(crate) fn panicked(&self) -> bool {
        self.outcome.is_err()
    }

    /// Retires the context ([`Enter::retire`]), and returns the result — or
    /// the first panic, with the result dropped.
    #[inline]
    pub(crate) fn finish(self) -> Result<R, Panic> {
        let Ran { ctx, outcome } = self;
        let dropped = ctx.retire();
        match (outcome, dropped) {
            (Ok(value), None) => Ok(value),
            (Ok(value), Some(panic)) => {
                // The context is gone: the result goes to a scratch one.
                discard(drop_in_scratch(value));
                Err(panic)
            }
            (Err(panic), _) => Err(panic),
        }
    }

    /// The panic of a closure that [`panicked`](Self::panicked), once the
    /// context is dropped (a panic of that is discarded).
    pub(crate) fn into_panic(self) -> Panic {
        match self.finish() {
            Err(panic) => panic,
            Ok(_) => unreachable!("into_panic of a closure that returned"),
        }
    }

    /// Gives up the result, dropping it inside the context, then retires
    /// the context; panics of those destructors are discarded (the caller
    /// unwinds with another one).
    pub(crate) fn abandon(self) {
        let Ran { ctx, outcome } = self;
        if let Ok(value) = outcome {
            discard(drop_inside(&ctx, value));
        }
        discard(ctx.retire());
    }
}

/// Keeps the first of two panics; a later one is dropped (the panic hook has
/// reported it already).
#[inline]
pub(crate) fn keep_first(first: &mut Option<Panic>, later: Option<Panic>) {
    if first.is_none() {
        *first = later;
    } else {
        discard(later);
    }
}

/// Drops a panic's payload; a payload whose own destructor panics is leaked
/// instead.
pub(crate) fn discard(panic: Option<Panic>) {
    if let Some(panic) = panic {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(move || drop(panic))) {
            std::mem::forget(payload);
        }
    }
}
