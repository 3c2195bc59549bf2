//! [`join`]: `rayon::join` with each closure in its own copy of the context.

use std::panic::resume_unwind;

use baton_context::ContextCell;

use crate::contain::{Ran, discard, drop_in_scratch};

/// `rayon::join` that carries the context: runs `oper_a` and `oper_b`,
/// possibly in parallel, each inside its own copy of the context current at
/// the call, and returns both results.
///
/// The two closures may run at the same time on different threads, and a
/// context can be entered by one thread at a time, so each gets its own copy:
/// both see the caller's values, neither sees the other's writes, and the
/// caller's context is unchanged afterwards. The copies are taken without
/// allocating, and drop their bindings inside themselves after the
/// closures (what the destructors of those set goes nowhere).
///
/// Panics propagate as with `rayon::join` (`oper_a`'s, if both panic), once
/// both closures are done and the calling thread is back in its context. The
/// other closure's result is then dropped inside that closure's copy.
///
/// ```
/// use baton_context::ContextVar;
///
/// static DEPTH: ContextVar<u32> = ContextVar::with_default("depth", 0);
///
/// fn sum(v: &[u64]) -> u64 {
///     if v.len() <= 1024 {
///         return v.iter().sum();
///     }
///     let depth = DEPTH.get().unwrap();
///     let (l, r) = v.split_at(v.len() / 2);
///     let (a, b) = baton_bridge::join(
///         // Each half sees `depth` and sets the next level in its own copy.
///         || { let _ = DEPTH.set(depth + 1); sum(l) },
///         || { let _ = DEPTH.set(depth + 1); sum(r) },
///     );
///     assert_eq!(DEPTH.get(), Some(depth)); // unchanged by the halves
///     a + b
/// }
///
/// let v: Vec<u64> = (0..100_000).collect();
/// assert_eq!(sum(&v), v.iter().sum());
/// assert_eq!(DEPTH.get(), Some(0));
/// ```
pub fn join<A, B, RA, RB>(oper_a: A, oper_b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    let ctx_a = ContextCell::copy_current();
    let ctx_b = ContextCell::copy_current();
    // Each half returns its outcome with its copy still alive, so that if
    // the other half panicked, its result can be dropped inside its copy
    // rather than wherever rayon would drop it while unwinding.
    let (a, b) = rayon::join(
        move || Ran::new(ctx_a, oper_a),
        move || Ran::new(ctx_b, oper_b),
    );
    if a.panicked() {
        b.abandon();
        resume_unwind(a.into_panic());
    }
    if b.panicked() {
        a.abandon();
        resume_unwind(b.into_panic());
    }
    match (a.finish(), b.finish()) {
        (Ok(ra), Ok(rb)) => (ra, rb),
        (Err(panic), rb) => {
            discard(drop_in_scratch(rb));
            resume_unwind(panic)
        }
        (Ok(ra), Err(panic)) => {
            discard(drop_in_scratch(ra));
            resume_unwind(panic)
        }
    }
}
