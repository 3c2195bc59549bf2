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

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;

/// A thread parker with a sticky token: an `unpark` before `park` makes the
/// next `park` return at once. Workers, the `block_on` thread and the tests
/// park on it. Built from the facade's `Mutex` and `Condvar`, so loom checks
/// it too.
#[derive(Debug, Default)]
pub(crate) struct Parker {
    state: AtomicUsize,
    lock: Mutex<()>,
    cvar: Condvar,
}

impl Parker {
    pub(crate) fn new() -> Self {
        Parker {
            state: AtomicUsize::new(EMPTY),
            lock: Mutex::new(()),
            cvar: Condvar::new(),
        }
    }

    /// Blocks until [`Parker::unpark`] is called (or was, since the last
    /// park), or until `deadline` passes. May return spuriously.
    pub(crate) fn park(&self, deadline: Option<Instant>) {
        // Fast path: a token is waiting.
        if self
            .state
            .compare_exchange(NOTIFIED, EMPTY, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
        {
            return;
        }
        let mut guard = self.lock.lock();
        match self
            .state
            .compare_exchange(EMPTY, PARKED, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => {}
            Err(NOTIFIED) => {
                // Raced with an unpark: consume it, with an RMW, not a
                // store. Several unparks fold into one token, and the failed
                // compare-exchange is only a load: it may have read an
                // earlier unpark's write, not the latest one. A store would
                // then consume the later unpark's token without reading
                // from it, so this thread would not see what that unparker
                // wrote before unparking (e.g. the shutdown flag) and could
                // park again with no token left (the loom model
                // `shutdown_races_a_wake_up`). `swap` reads the latest
                // write, which synchronises with every unpark up to it.
                let old = self.state.swap(EMPTY, Ordering::SeqCst);
                debug_assert_eq!(old, NOTIFIED, "baton: inconsistent parker state");
                return;
            }
            Err(actual) => panic!("baton: inconsistent parker state {actual}"),
        }
        loop {
            match deadline {
                Some(deadline) => self.cvar.wait_until(&mut guard, deadline),
                None => self.cvar.wait(&mut guard),
            }
            if self
                .state
                .compare_exchange(NOTIFIED, EMPTY, Ordering::SeqCst, Ordering::SeqCst)
                .is_ok()
            {
                return;
            }
            let timed_out = deadline.is_some_and(|d| cfg!(loom) || Instant::now() >= d);
            if timed_out {
                // Give up waiting (consuming a notification that raced in).
                match self.state.swap(EMPTY, Ordering::SeqCst) {
                    NOTIFIED | PARKED => return,
                    actual => panic!("baton: inconsistent parker state {actual}"),
                }
            }
        }
    }

    /// Wakes the parked thread, or makes its next `park` return at once.
    pub(crate) fn unpark(&self) {
        match self.state.swap(NOTIFIED, Ordering::SeqCst) {
            EMPTY | NOTIFIED => {}
            PARKED => {
                // Taking the lock orders us after the parker's check-and-wait,
                // so the notification cannot fall between them.
                drop(self.lock.lock());
                self.cvar.notify_one();
            }
            actual => panic!("baton: inconsistent parker state {actual}"),
        }
    }
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
