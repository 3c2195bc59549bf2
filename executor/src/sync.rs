//! The synchronisation facade of this crate.
//!
//! Every primitive the executor synchronises through comes from here: `std`
//! and `parking_lot` normally, [loom]'s model-checked twins under
//! `--cfg loom` (atomics, mutexes, condition variables, thread-locals and
//! thread spawning). That is what lets the models in `loom-tests/` run the
//! executor's real code rather than a copy of it.
//!
//! Two things are not modelled: crossbeam-deque (see `scheduler/queue.rs`,
//! which swaps in a `Mutex<VecDeque>` stand-in with the same interface under
//! loom) and the clock (`std::time::Instant` is used directly; loom models do
//! not use timers).
//!
//! [loom]: https://docs.rs/loom

#![allow(dead_code)]

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence,
};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence,
};

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

#[cfg(loom)]
pub(crate) use loom::thread;
#[cfg(not(loom))]
pub(crate) use std::thread;

use std::time::Instant;

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

/// A mutex with `parking_lot`'s API (no poisoning): `parking_lot` normally,
/// loom's under loom.
#[derive(Debug, Default)]
pub(crate) struct Mutex<T> {
    #[cfg(not(loom))]
    inner: parking_lot::Mutex<T>,
    #[cfg(loom)]
    inner: loom::sync::Mutex<T>,
}

#[cfg(not(loom))]
pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;
#[cfg(loom)]
pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Mutex {
            #[cfg(not(loom))]
            inner: parking_lot::Mutex::new(value),
            #[cfg(loom)]
            inner: loom::sync::Mutex::new(value),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        #[cfg(not(loom))]
        {
            self.inner.lock()
        }
        #[cfg(loom)]
        {
            self.inner.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    #[inline]
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        #[cfg(not(loom))]
        {
            self.inner.try_lock()
        }
        #[cfg(loom)]
        {
            self.inner.try_lock().ok()
        }
    }
}

/// A condition variable for [`Mutex`]; waits take the guard by `&mut`.
#[derive(Debug, Default)]
pub(crate) struct Condvar {
    #[cfg(not(loom))]
    inner: parking_lot::Condvar,
    #[cfg(loom)]
    inner: loom::sync::Condvar,
}

impl Condvar {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
        #[cfg(not(loom))]
        {
            self.inner.wait(guard);
        }
        #[cfg(loom)]
        {
            take_mut(guard, |g| {
                self.inner.wait(g).unwrap_or_else(|e| e.into_inner())
            });
        }
    }

    /// Waits until notified or until `deadline` (loom: a possible spurious
    /// wake-up, as loom has no clock).
    pub(crate) fn wait_until<T>(&self, guard: &mut MutexGuard<'_, T>, deadline: Instant) {
        #[cfg(not(loom))]
        {
            self.inner.wait_until(guard, deadline);
        }
        #[cfg(loom)]
        {
            let _ = deadline;
            take_mut(guard, |g| {
                self.inner
                    .wait_timeout(g, std::time::Duration::from_millis(1))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0)
            });
        }
    }

    pub(crate) fn notify_one(&self) {
        self.inner.notify_one();
    }

    pub(crate) fn notify_all(&self) {
        self.inner.notify_all();
    }
}

/// Replaces `*slot` by `f(old)`. Loom's condvar takes its guard by value.
#[cfg(loom)]
fn take_mut<T>(slot: &mut T, f: impl FnOnce(T) -> T) {
    struct Abort;
    impl Drop for Abort {
        fn drop(&mut self) {
            std::process::abort();
        }
    }
    let bomb = Abort;
    // SAFETY: `slot` is valid for reads and writes; if `f` panics, the
    // process aborts before the moved-out value could be observed twice.
    unsafe {
        let old = std::ptr::read(slot);
        std::ptr::write(slot, f(old));
    }
    std::mem::forget(bomb);
}

/// Sleeps the thread for a short back-off (loom: yields to the model).
pub(crate) fn backoff_sleep(duration: std::time::Duration) {
    #[cfg(loom)]
    {
        let _ = duration;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    std::thread::sleep(duration);
}

/// Declares a thread-local: `std::thread_local!` (const-initialised)
/// normally, `loom::thread_local!` under loom so every model thread gets its
/// own.
macro_rules! executor_thread_local {
    ($(static $name:ident : $t:ty = $init:expr;)*) => {
        $(
            #[cfg(not(loom))]
            std::thread_local! {
                static $name: $t = const { $init };
            }
            #[cfg(loom)]
            loom::thread_local! {
                static $name: $t = $init;
            }
        )*
    };
}
pub(crate) use executor_thread_local;
