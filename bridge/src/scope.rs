//! [`scope`] and [`Scope`]: `rayon::scope` with every spawned closure in its
//! own copy of the context current where it was spawned.

use std::fmt;
use std::panic::{self, AssertUnwindSafe};

use baton_context::ContextCell;

use crate::contain::{Ran, discard, run_in_copy};

/// `rayon::scope` that carries the context: creates a scope in which
/// closures that borrow from the enclosing stack frame can be spawned, runs
/// `op` in it, and returns once every spawned closure has finished.
///
/// `op` runs in a copy of the context current at the call; each closure
/// spawned with [`Scope::spawn`] runs in a copy of the context current where
/// `spawn` was called (taken without allocating, inside rayon's own job).
/// Spawned closures may run at the same time, so each has its own copy:
/// they all see the values of their spawner, and none sees another's
/// writes. The caller's context is unchanged afterwards. Each copy drops
/// its bindings inside itself after its closure (what their destructors
/// set goes nowhere).
///
/// Panics propagate as with `rayon::scope` (`op`'s own first, if both `op`
/// and a spawned closure panic), once every spawned closure is done; `op`'s
/// result, if it returned one, is then dropped inside `op`'s copy.
///
/// ```
/// use baton_context::ContextVar;
///
/// static JOB: ContextVar<&str> = ContextVar::new("job");
///
/// let mut parts = [0u32; 3];
/// let _token = JOB.set("render");
/// baton_bridge::scope(|s| {
///     for (i, part) in parts.iter_mut().enumerate() {
///         s.spawn(move |s| {
///             assert_eq!(JOB.get(), Some("render"));
///             let _ = JOB.set("tile"); // this closure's copy only
///             s.spawn(|_| assert_eq!(JOB.get(), Some("tile")));
///             *part = i as u32 * 10;
///         });
///     }
/// });
/// assert_eq!(parts, [0, 10, 20]);
/// assert_eq!(JOB.get(), Some("render"));
/// ```
pub fn scope<'scope, OP, R>(op: OP) -> R
where
    OP: FnOnce(&Scope<'scope>) -> R + Send,
    R: Send,
{
    let ctx = ContextCell::copy_current();
    // `op`'s outcome stays here with its copy, so that if a spawned closure
    // panics, `op`'s result is dropped inside that copy rather than wherever
    // rayon would drop it while unwinding.
    let mut ran = None;
    let slot = &mut ran;
    let scoped = panic::catch_unwind(AssertUnwindSafe(move || {
        rayon::scope(move |s| *slot = Some(Ran::new(ctx, || op(Scope::from_rayon(s)))))
    }));
    let ran = ran.expect("rayon::scope calls its closure");
    match scoped {
        Ok(()) => match ran.finish() {
            Ok(value) => value,
            Err(panic) => panic::resume_unwind(panic),
        },
        // Both `op` and a spawned closure panicked: `op`'s panic comes first.
        Err(panic) if ran.panicked() => {
            discard(Some(panic));
            panic::resume_unwind(ran.into_panic())
        }
        Err(panic) => {
            ran.abandon();
            panic::resume_unwind(panic)
        }
    }
}

/// A fork-join scope whose spawned closures carry the context; see
/// [`scope`]. A thin wrapper around [`rayon::Scope`].
#[repr(transparent)]
pub struct Scope<'scope> {
    inner: rayon::Scope<'scope>,
}

impl<'scope> Scope<'scope> {
    #[inline]
    fn from_rayon<'a>(inner: &'a rayon::Scope<'scope>) -> &'a Scope<'scope> {
        // SAFETY: `Scope` is `repr(transparent)` over `rayon::Scope`, so the
        // two have the same layout and the pointer cast keeps the referent's
        // lifetime and validity; `Scope` adds no invariant of its own.
        unsafe { &*(inner as *const rayon::Scope<'scope> as *const Scope<'scope>) }
    }

    /// Spawns `body` into the scope, like [`rayon::Scope::spawn`]: it runs
    /// (possibly in parallel) before the scope ends, inside a copy of the
    /// context current here, and may spawn more closures through the scope it
    /// is given.
    pub fn spawn<BODY>(&self, body: BODY)
    where
        BODY: FnOnce(&Scope<'scope>) + Send + 'scope,
    {
        let ctx = ContextCell::copy_current();
        self.inner
            .spawn(move |s| run_in_copy(ctx, || body(Scope::from_rayon(s))));
    }

    /// The underlying rayon scope, to spawn closures that do *not* carry the
    /// context: like any plain rayon job, they run in whatever context the
    /// thread that picks them up is in at that moment.
    pub fn as_rayon(&self) -> &rayon::Scope<'scope> {
        &self.inner
    }
}

impl fmt::Debug for Scope<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope").finish_non_exhaustive()
    }
}

#[cfg(all(test, not(baton_loom)))]
mod tests {
    use baton_context::ContextVar;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static SCOPE_VAR: ContextVar<u32> = ContextVar::new("scope_var");

    // Runs under Miri (the reference cast above is this module's `unsafe`).
    #[test]
    fn scope_nested_spawns_see_their_spawners_values() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let ok = AtomicUsize::new(0);
        let _t = SCOPE_VAR.set(1);
        crate::install(&pool, || {
            super::scope(|s| {
                s.spawn(|s| {
                    assert_eq!(SCOPE_VAR.get(), Some(1));
                    let _ = SCOPE_VAR.set(2);
                    s.spawn(|_| {
                        assert_eq!(SCOPE_VAR.get(), Some(2));
                        ok.fetch_add(1, Ordering::SeqCst);
                    });
                    ok.fetch_add(1, Ordering::SeqCst);
                });
                s.spawn(|_| {
                    assert_eq!(SCOPE_VAR.get(), Some(1));
                    ok.fetch_add(1, Ordering::SeqCst);
                });
            });
        });
        assert_eq!(ok.load(Ordering::SeqCst), 3);
        assert_eq!(SCOPE_VAR.get(), Some(1));
    }
}
