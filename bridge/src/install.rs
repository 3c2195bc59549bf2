//! [`install`] and [`spawn`]: rayon's entry points, carrying the context.

use baton_context::ContextCell;
use rayon::ThreadPool;

use crate::contain::run_in_copy;

/// `pool.install(op)` that carries the context: runs `op` on a thread of
/// `pool` inside a copy of the context current at the call, and returns its
/// result.
///
/// Plain `pool.install` runs `op` in the pool thread's own context, so a
/// `join`, `scope` or `.in_context()` inside it would capture that instead
/// of the caller's. The caller's context is unchanged afterwards. The copy
/// is dropped after `op`, on the pool thread; it drops its bindings inside
/// itself, so what their destructors set goes nowhere. A panic in `op` propagates
/// to the caller, as with `pool.install`.
///
/// ```
/// use baton_bridge::ParallelIteratorExt;
/// use baton_context::ContextVar;
/// use rayon::prelude::*;
///
/// static SCALE: ContextVar<u64> = ContextVar::new("scale");
///
/// let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
/// let _token = SCALE.set(3);
/// let total: u64 = baton_bridge::install(&pool, || {
///     (1..=4u64).into_par_iter().in_context().map(|x| x * SCALE.get().unwrap()).sum()
/// });
/// assert_eq!(total, 30);
/// ```
pub fn install<OP, R>(pool: &ThreadPool, op: OP) -> R
where
    OP: FnOnce() -> R + Send,
    R: Send,
{
    let ctx = ContextCell::copy_current();
    pool.install(move || run_in_copy(ctx, op))
}

/// `rayon::spawn` that carries the context: runs `func` on rayon's global
/// pool, in the background, inside a copy of the context current at the
/// call. Use [`run_blocking`](crate::run_blocking) to get a result back.
///
/// As with `rayon::spawn`, a panic in `func` goes to the pool's panic handler
/// (by default rayon aborts the process) — after the pool thread is back in
/// its own context. The copy drops its bindings inside itself after `func`.
///
/// ```
/// use baton_context::ContextVar;
///
/// static TAG: ContextVar<&str> = ContextVar::new("tag");
///
/// let (tx, rx) = std::sync::mpsc::channel();
/// let _token = TAG.set("bg");
/// baton_bridge::spawn(move || tx.send(TAG.get()).unwrap());
/// assert_eq!(rx.recv().unwrap(), Some("bg"));
/// ```
pub fn spawn<F>(func: F)
where
    F: FnOnce() + Send + 'static,
{
    let ctx = ContextCell::copy_current();
    rayon::spawn(move || run_in_copy(ctx, func));
}
