//! The synchronisation facade of this crate.
//!
//! Every primitive the offload hand-off (`handoff.rs`) synchronises through
//! comes from here: the standard library normally, [loom]'s model-checked
//! twins under `--cfg loom`. That is what lets the models in `loom-tests/`
//! run the bridge's real hand-off, with loom threads standing in for rayon's
//! pool threads (see [`BlockingJob`](crate::BlockingJob)).
//!
//! rayon itself is not modelled: under loom it still compiles and runs, but
//! only the hand-off between a job and the future that awaits it is checked.
//!
//! [loom]: https://docs.rs/loom

#[cfg(loom)]
pub(crate) use loom::sync::Arc;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::Arc;
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicUsize, Ordering};

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
