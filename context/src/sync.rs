//! The synchronisation facade of this crate.
//!
//! Every primitive the context machinery synchronises through comes from here:
//! the standard library normally, [loom]'s model-checked twins under
//! `--cfg loom`. That is what lets the models in `loom-tests/` run this crate's
//! real code rather than a copy of it.
//!
//! Two things deliberately stay on `std` under loom, because they are data, not
//! protocol: the reference counts of the persistent map's nodes (an ordinary
//! `std::sync::Arc`), and the counters that hand out unique ids. (A `Context`
//! handle's count is protocol — it decides whether a context may be entered
//! without a compare-and-swap — and comes from here.)
//!
//! [loom]: https://docs.rs/loom

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicIsize, AtomicU64, AtomicUsize, Ordering, fence};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicIsize, AtomicU64, AtomicUsize, Ordering, fence};

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// `std`'s `UnsafeCell` behind loom's closure-based API, so the same code
/// compiles both ways and loom can track every access to the cell.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    #[inline(always)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// One step of a short busy wait. Under loom it yields to the model checker,
/// which otherwise would explore the spin forever.
#[inline]
pub(crate) fn spin_wait(spins: &mut u32) {
    #[cfg(loom)]
    {
        let _ = spins;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    {
        *spins += 1;
        if *spins < 64 {
            std::hint::spin_loop();
        } else {
            // The other side was preempted mid-step: let it run.
            std::thread::yield_now();
        }
    }
}

/// Declares a thread-local of the context machinery (the current context,
/// the ledger, the exit cleanup): `std::thread_local!` (const-initialised)
/// normally, `loom::thread_local!` under loom so that every model thread gets
/// its own.
macro_rules! baton_thread_local {
    ($(#[$attr:meta])* static $name:ident : $t:ty = $init:expr;) => {
        #[cfg(not(loom))]
        std::thread_local! {
            $(#[$attr])*
            static $name: $t = const { $init };
        }
        #[cfg(loom)]
        loom::thread_local! {
            $(#[$attr])*
            static $name: $t = $init;
        }
    };
}
pub(crate) use baton_thread_local;
