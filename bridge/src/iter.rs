//! [`ParallelIteratorExt::in_context`]: parallel iterators whose closures run
//! in a copy of the context captured when the adapter was created.
//!
//! # How it hooks into rayon
//!
//! A rayon pipeline is driven from its end: the terminal operation (`sum`,
//! `for_each`, `collect`, ...) builds a *consumer*, each adapter wraps the
//! consumer it is given in its own (`map` in a `MapConsumer` that calls the
//! closure, ...), and the source splits itself and the consumer in halves,
//! with `rayon::join`, until the pieces are small; each piece then turns its
//! consumer into a *folder* and feeds it items (`consume`, or `consume_iter`
//! with a whole chunk), on whichever thread runs that piece. Finally the
//! halves' results are combined by the consumer's *reducer*.
//!
//! [`InContext`] wraps the consumer it is given — the consumer of every
//! adapter chained after it and of the terminal operation — in a consumer
//! whose folder enters a copy of the captured context around each
//! `consume`/`consume_iter`/`complete`, whose `into_folder` (where `fold`
//! and `reduce` call their identity closures) and reducer (where `reduce`
//! calls its operator) do the same. Every call into the downstream chain
//! passes through one of those, so every closure chained after
//! `.in_context()` runs inside a copy, on every thread, stolen or not.
//!
//! Each piece makes one copy of the captured context (one allocation, no
//! locks) and enters it once per `consume_iter` — once per chunk, not once
//! per item, which keeps the overhead on a `map().sum()` within noise. When
//! the piece completes, its copy is dropped in a scratch context (an empty
//! one, on the stack), so that what the destructors of the closures'
//! bindings set goes nowhere.
//!
//! The pieces' results travel through rayon wrapped in `Held`: should a
//! closure panic, rayon drops the results of the other pieces while it
//! unwinds, and `Held` drops them in a scratch context (discarding a panic
//! of their destructors, which would otherwise abort the process) instead
//! of in whatever context the unwinding thread is in.
//!
//! # Why `InContext` is not an `IndexedParallelIterator`
//!
//! Index-based adapters (`zip`, `enumerate`, `chunks`, `rev`, `skip`, ...)
//! do not pass their consumer down: they pull *producers* out of the
//! iterators they combine and fold items outside any consumer of those
//! iterators. An indexed `InContext` could therefore not put the closures
//! chained after such an adapter inside the context, and would break its
//! promise silently. So `InContext` implements only `ParallelIterator`; apply
//! the index-based adapters first (`v.par_iter().enumerate().in_context()`).
//! `collect` into a `Vec` still knows the exact length and writes in place.

use std::fmt;
use std::panic::resume_unwind;

use baton_context::{Context, copy_context};
use rayon::iter::ParallelIterator;
use rayon::iter::plumbing::{Consumer, Folder, Reducer, UnindexedConsumer};

use crate::contain::{Enter, Failed, Panic, Ran, discard, drop_in_scratch, run_inside};

/// Adds [`in_context`](ParallelIteratorExt::in_context) to every rayon
/// [`ParallelIterator`].
pub trait ParallelIteratorExt: ParallelIterator {
    /// Makes every closure chained after this adapter — `map`, `filter`,
    /// `for_each`, `fold`, `reduce`, ... — run inside a copy of the context
    /// current *now*, on whichever rayon thread runs it.
    ///
    /// Each closure sees the captured values. What a closure sets stays in a
    /// private copy shared by the items of one chunk of work: it is never
    /// seen by the caller, by other chunks, or by later runs, and items
    /// should not rely on seeing each other's writes. The rayon threads' own
    /// contexts are unchanged afterwards.
    ///
    /// Closures chained *before* `.in_context()` are not covered (put it right
    /// after the source, or after index-based adapters such as `enumerate`).
    /// A parallel iterator created *inside* a closure — by `flat_map`, say —
    /// is driven by rayon separately and needs its own `.in_context()`
    /// (`flat_map(|x| inner(x).into_par_iter().in_context())`).
    ///
    /// ```
    /// use baton_bridge::ParallelIteratorExt;
    /// use baton_context::ContextVar;
    /// use rayon::prelude::*;
    ///
    /// static FACTOR: ContextVar<u64> = ContextVar::with_default("factor", 1);
    ///
    /// let _token = FACTOR.set(10);
    /// let total: u64 = (1..=100u64)
    ///     .into_par_iter()
    ///     .in_context()
    ///     .map(|x| x * FACTOR.get().unwrap())
    ///     .sum();
    /// assert_eq!(total, 50_500);
    /// ```
    fn in_context(self) -> InContext<Self> {
        InContext {
            base: self,
            ctx: copy_context(),
        }
    }
}

impl<I: ParallelIterator> ParallelIteratorExt for I {}

/// A parallel iterator whose downstream closures run in a copy of a
/// captured context; created by [`ParallelIteratorExt::in_context`].
#[must_use = "iterator adaptors are lazy and do nothing unless consumed"]
#[derive(Clone)]
pub struct InContext<I> {
    base: I,
    /// The captured bindings. Never entered: every piece of work enters a
    /// copy of its own.
    ctx: Context,
}

impl<I> InContext<I> {
    /// The context whose copies the closures run in (a snapshot taken when
    /// the adapter was created).
    pub fn context(&self) -> &Context {
        &self.ctx
    }
}

impl<I: fmt::Debug> fmt::Debug for InContext<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InContext")
            .field("base", &self.base)
            .field("ctx", &self.ctx)
            .finish()
    }
}

impl<I: ParallelIterator> ParallelIterator for InContext<I> {
    type Item = I::Item;

    fn drive_unindexed<C>(self, consumer: C) -> C::Result
    where
        C: UnindexedConsumer<Self::Item>,
    {
        self.base
            .drive_unindexed(InContextConsumer {
                base: consumer,
                ctx: self.ctx,
            })
            .into_inner()
    }

    fn opt_len(&self) -> Option<usize> {
        self.base.opt_len()
    }
}

/// Wraps the downstream consumer; splits carry a handle to the captured
/// context.
struct InContextConsumer<C> {
    base: C,
    ctx: Context,
}

impl<T, C: Consumer<T>> Consumer<T> for InContextConsumer<C> {
    type Folder = InContextFolder<C::Folder>;
    type Reducer = InContextReducer<C::Reducer>;
    type Result = Held<C::Result>;

    fn split_at(self, index: usize) -> (Self, Self, Self::Reducer) {
        let (left, right, reducer) = self.base.split_at(index);
        (
            InContextConsumer {
                base: left,
                ctx: self.ctx.clone(),
            },
            InContextConsumer {
                base: right,
                ctx: self.ctx.clone(),
            },
            InContextReducer {
                base: reducer,
                ctx: self.ctx,
            },
        )
    }

    fn into_folder(self) -> Self::Folder {
        // This piece of work's own copy.
        in_piece(self.ctx.copy(), || self.base.into_folder())
    }

    fn full(&self) -> bool {
        self.base.full()
    }
}

impl<T, C: UnindexedConsumer<T>> UnindexedConsumer<T> for InContextConsumer<C> {
    fn split_off_left(&self) -> Self {
        InContextConsumer {
            base: self.base.split_off_left(),
            ctx: self.ctx.clone(),
        }
    }

    fn to_reducer(&self) -> Self::Reducer {
        InContextReducer {
            base: self.base.to_reducer(),
            ctx: self.ctx.clone(),
        }
    }
}

/// Feeds items to the downstream folder inside this piece's copy.
struct InContextFolder<F> {
    base: F,
    ctx: Context,
}

impl<T, F: Folder<T>> Folder<T> for InContextFolder<F> {
    type Result = Held<F::Result>;

    fn consume(self, item: T) -> Self {
        let InContextFolder { base, ctx } = self;
        in_piece(ctx, || base.consume(item))
    }

    fn consume_iter<It>(self, iter: It) -> Self
    where
        It: IntoIterator<Item = T>,
    {
        let InContextFolder { base, ctx } = self;
        in_piece(ctx, || base.consume_iter(iter))
    }

    fn complete(self) -> Held<F::Result> {
        let InContextFolder { base, ctx } = self;
        match Ran::new(ctx, || base.complete()).finish() {
            Ok(result) => Held(Some(result)),
            Err(panic) => resume_unwind(panic),
        }
    }

    fn full(&self) -> bool {
        self.base.full()
    }
}

/// Combines two halves' results inside a fresh copy.
struct InContextReducer<R> {
    base: R,
    ctx: Context,
}

impl<T, R: Reducer<T>> Reducer<Held<T>> for InContextReducer<R> {
    fn reduce(self, left: Held<T>, right: Held<T>) -> Held<T> {
        let InContextReducer { base, ctx } = self;
        let (left, right) = (left.into_inner(), right.into_inner());
        match Ran::new(ctx.copy(), || base.reduce(left, right)).finish() {
            Ok(result) => Held(Some(result)),
            Err(panic) => resume_unwind(panic),
        }
    }
}

/// A piece's result on its way through rayon. If rayon drops it instead of
/// passing it on — the other half of a split panicked, and rayon unwinds
/// with that panic — it is dropped in a scratch context, not in whatever
/// context the unwinding thread is in, and a panic of its destructor is
/// discarded instead of aborting the process.
struct Held<T>(Option<T>);

impl<T> Held<T> {
    fn into_inner(mut self) -> T {
        self.0.take().expect("a result is taken once")
    }
}

impl<T> Drop for Held<T> {
    fn drop(&mut self) {
        if let Some(result) = self.0.take() {
            settle(drop_in_scratch(result));
        }
    }
}

/// Runs `f` — a step of the piece's downstream folder — inside the piece's
/// copy `ctx`. Should it panic, the copy is dropped in a scratch context
/// before the panic is resumed, not wherever the unwinding takes it.
fn in_piece<F>(ctx: Context, f: impl FnOnce() -> F) -> InContextFolder<F> {
    match run_inside(&ctx, f) {
        Ok(base) => InContextFolder { base, ctx },
        Err(Failed::Panicked(panic)) => {
            discard(ctx.retire());
            resume_unwind(panic)
        }
        Err(Failed::AlreadyEntered) => unreachable!("a piece's copy is entered by its piece only"),
    }
}

/// Resumes a destructor's panic, unless the thread is unwinding already
/// (then a second panic out of a destructor would abort: it is discarded).
fn settle(panic: Option<Panic>) {
    if let Some(panic) = panic {
        if std::thread::panicking() {
            discard(Some(panic));
        } else {
            resume_unwind(panic);
        }
    }
}
