//! baton's one synchronisation facade, shared by `baton-context`,
//! `baton-executor` and `baton-bridge`.
//!
//! Every primitive those crates synchronise through comes from here: `std`
//! and `parking_lot` normally, [loom]'s model-checked twins when the
//! workspace is built with the namespaced cfg `baton_loom`:
//!
//! ```text
//! RUSTFLAGS="--cfg baton_loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p baton-loom-tests --release
//! ```
//!
//! That is what lets the models in `loom-tests/` run baton's real code rather
//! than a copy of it. The cfg is baton's own (not the conventional `loom`),
//! so it switches only baton: the dependencies that react to `--cfg loom`
//! (event-listener, concurrent-queue, async-lock, tokio) build as usual under
//! it, and so does crossbeam (which has its own `crossbeam_loom`).
//!
//! What it hands out:
//!
//! * the atomics ([`AtomicBool`], [`AtomicIsize`], [`AtomicPtr`],
//!   [`AtomicU64`], [`AtomicUsize`], [`Ordering`], [`fence`]) and [`Arc`];
//! * [`UnsafeCell`], with loom's closure API (`with`/`with_mut`), so that
//!   loom can track every access to a cell;
//! * [`Mutex`] and [`Condvar`] with `parking_lot`'s API (no poisoning);
//! * [`thread`] (spawning, `current`, `yield_now`);
//! * [`spin_wait`], one step of a short busy wait;
//! * [`baton_thread_local!`], a thread-local that is `std`'s
//!   const-initialised `thread_local!` normally and `loom::thread_local!`
//!   under the cfg, so every model thread gets its own.
//!
//! What a crate keeps on `std` on purpose (data, not protocol: the reference
//! counts of the context map's nodes, the id counters, the executor's task
//! `Arc`s), and what it swaps for a stand-in under the cfg (the executor's
//! crossbeam-deque run queues), is said in that crate.
//!
//! [loom]: https://docs.rs/loom

#[cfg(baton_loom)]
pub use loom::sync::Arc;
#[cfg(baton_loom)]
pub use loom::sync::atomic::{
    AtomicBool, AtomicIsize, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence,
};
#[cfg(baton_loom)]
pub use loom::thread;

#[cfg(not(baton_loom))]
pub use std::sync::Arc;
#[cfg(not(baton_loom))]
pub use std::sync::atomic::{
    AtomicBool, AtomicIsize, AtomicPtr, AtomicU64, AtomicUsize, Ordering, fence,
};
#[cfg(not(baton_loom))]
pub use std::thread;

#[cfg(baton_loom)]
pub use loom::cell::UnsafeCell;

use std::time::Instant;

/// loom itself, for [`baton_thread_local!`] (not part of the API).
#[cfg(baton_loom)]
#[doc(hidden)]
pub use loom as __loom;

/// `std`'s `UnsafeCell` behind loom's closure-based API, so the same code
/// compiles both ways and loom can track every access to the cell.
#[cfg(not(baton_loom))]
#[derive(Debug)]
pub struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(baton_loom))]
impl<T> UnsafeCell<T> {
    /// A cell holding `value`.
    pub const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    /// Calls `f` with a shared pointer to the contents.
    #[inline(always)]
    pub fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    /// Calls `f` with a mutable pointer to the contents.
    #[inline(always)]
    pub fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

/// A mutex with `parking_lot`'s API (no poisoning): `parking_lot` normally,
/// loom's under `baton_loom`.
#[derive(Debug, Default)]
pub struct Mutex<T> {
    #[cfg(not(baton_loom))]
    inner: parking_lot::Mutex<T>,
    #[cfg(baton_loom)]
    inner: loom::sync::Mutex<T>,
}

/// The guard of a locked [`Mutex`].
#[cfg(not(baton_loom))]
pub type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;
/// The guard of a locked [`Mutex`].
#[cfg(baton_loom)]
pub type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    /// An unlocked mutex holding `value`.
    pub fn new(value: T) -> Self {
        Mutex {
            #[cfg(not(baton_loom))]
            inner: parking_lot::Mutex::new(value),
            #[cfg(baton_loom)]
            inner: loom::sync::Mutex::new(value),
        }
    }

    /// Locks the mutex, blocking until it is free.
    #[inline]
    pub fn lock(&self) -> MutexGuard<'_, T> {
        #[cfg(not(baton_loom))]
        {
            self.inner.lock()
        }
        #[cfg(baton_loom)]
        {
            self.inner.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    /// Locks the mutex if it is free.
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        #[cfg(not(baton_loom))]
        {
            self.inner.try_lock()
        }
        #[cfg(baton_loom)]
        {
            self.inner.try_lock().ok()
        }
    }
}

/// A condition variable for [`Mutex`]; waits take the guard by `&mut`.
#[derive(Debug, Default)]
pub struct Condvar {
    #[cfg(not(baton_loom))]
    inner: parking_lot::Condvar,
    #[cfg(baton_loom)]
    inner: loom::sync::Condvar,
}

impl Condvar {
    /// A condition variable nobody waits on.
    pub fn new() -> Self {
        Self::default()
    }

    /// Unlocks the guard's mutex, waits for a notification, and locks it
    /// again.
    pub fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
        #[cfg(not(baton_loom))]
        {
            self.inner.wait(guard);
        }
        #[cfg(baton_loom)]
        {
            take_mut(guard, |g| {
                self.inner.wait(g).unwrap_or_else(|e| e.into_inner())
            });
        }
    }

    /// Waits until notified or until `deadline` (loom: a possible spurious
    /// wake-up, as loom has no clock).
    pub fn wait_until<T>(&self, guard: &mut MutexGuard<'_, T>, deadline: Instant) {
        #[cfg(not(baton_loom))]
        {
            self.inner.wait_until(guard, deadline);
        }
        #[cfg(baton_loom)]
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

    /// Wakes one waiter, if any.
    pub fn notify_one(&self) {
        self.inner.notify_one();
    }

    /// Wakes every waiter.
    pub fn notify_all(&self) {
        self.inner.notify_all();
    }
}

/// Replaces `*slot` by `f(old)`. Loom's condvar takes its guard by value.
#[cfg(baton_loom)]
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

/// One step of a short busy wait. Under loom it yields to the model checker,
/// which otherwise would explore the spin forever.
#[inline]
pub fn spin_wait(spins: &mut u32) {
    #[cfg(baton_loom)]
    {
        let _ = spins;
        loom::thread::yield_now();
    }
    #[cfg(not(baton_loom))]
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

/// Declares thread-locals: `std::thread_local!` (const-initialised) normally,
/// `loom::thread_local!` under `baton_loom` so that every model thread gets
/// its own.
///
/// ```
/// use std::cell::Cell;
///
/// baton_sync::baton_thread_local! {
///     /// How deep this thread is.
///     static DEPTH: Cell<u32> = Cell::new(0);
/// }
///
/// DEPTH.with(|depth| depth.set(depth.get() + 1));
/// ```
///
/// The initialiser must be usable in a `const` block (normally).
#[cfg(not(baton_loom))]
#[macro_export]
macro_rules! baton_thread_local {
    ($($(#[$attr:meta])* $vis:vis static $name:ident : $t:ty = $init:expr;)*) => {
        $(
            ::std::thread_local! {
                $(#[$attr])*
                $vis static $name: $t = const { $init };
            }
        )*
    };
}

/// Declares thread-locals: `std::thread_local!` (const-initialised) normally,
/// `loom::thread_local!` under `baton_loom` so that every model thread gets
/// its own.
#[cfg(baton_loom)]
#[macro_export]
macro_rules! baton_thread_local {
    ($($(#[$attr:meta])* $vis:vis static $name:ident : $t:ty = $init:expr;)*) => {
        $(
            $crate::__loom::thread_local! {
                $(#[$attr])*
                $vis static $name: $t = $init;
            }
        )*
    };
}
