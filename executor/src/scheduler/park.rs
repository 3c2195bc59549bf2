//! The parking seam: how an idle worker sleeps, and how it is woken.
//!
//! The scheduler parks a worker only through [`Park`]: the worker loop calls
//! `park(deadline)` when it runs out of work (`worker.rs`), and notifiers
//! call `unpark()` on the worker they picked (`Shared::notify_parked`), with
//! the sleepers protocol of `README.md` around both. What the worker waits
//! *in* is the implementation's business:
//!
//! * [`Parker`], a condition variable: the `block_on` thread's.
//! * [`DriverParker`], the workers': a worker that can take the runtime's
//!   driver (`driver.rs`) sleeps in epoll, and its `unpark` writes to the
//!   reactor's eventfd; one that cannot (another worker drives) sleeps on
//!   its condition variable. Named by [`WorkerParker`]. The loop and the
//!   protocol did not change when it arrived: it keeps the contract below.

use std::sync::Arc;
use std::time::Instant;

use crate::driver::Driver;
use baton_sync::{AtomicUsize, Condvar, Mutex, Ordering};

/// A sleeping place for one thread.
///
/// The contract the parking protocol relies on (`README.md`):
///
/// * **Sticky token.** `unpark` before `park` makes the next `park` return
///   at once; several `unpark`s fold into one token.
/// * **Synchronises with every `unpark`.** `park` consumes the token with a
///   read-modify-write, so when it returns the thread sees everything that
///   *every* folded-in unparker wrote before unparking (the shutdown flag
///   relies on this).
/// * **Deadlines.** `park` returns by `deadline` (if any) even without a
///   token; it may also return spuriously. Callers re-check their state.
pub(crate) trait Park: Send + Sync {
    /// Blocks until [`Park::unpark`] is called (or was, since the last
    /// park), or until `deadline` passes. May return spuriously.
    fn park(&self, deadline: Option<Instant>);

    /// Wakes the parked thread, or makes its next `park` return at once.
    fn unpark(&self);
}

/// The [`Park`] implementation each worker sleeps on: the one place that
/// names it (`Remote::parker` in `mod.rs`); everything else uses the trait.
/// A static choice, so parking and unparking cost no dynamic dispatch.
pub(super) type WorkerParker = DriverParker;

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;
/// [`DriverParker`] only: parked in the driver (epoll).
const PARKED_DRIVER: usize = 3;

/// The condition-variable [`Park`]: a state word with a sticky token, a
/// mutex and a condvar. Workers and the `block_on` thread park on it. Built
/// from the facade's `Mutex` and `Condvar`, so loom checks it too.
#[derive(Debug, Default)]
pub(crate) struct Parker {
    state: AtomicUsize,
    lock: Mutex<()>,
    cvar: Condvar,
}

impl Parker {
    /// A parker with no token.
    pub(crate) fn new() -> Self {
        Parker {
            state: AtomicUsize::new(EMPTY),
            lock: Mutex::new(()),
            cvar: Condvar::new(),
        }
    }
}

impl Parker {
    /// Consumes a waiting token, if there is one.
    #[inline]
    fn take_token(&self) -> bool {
        self.state
            .compare_exchange(NOTIFIED, EMPTY, Ordering::SeqCst, Ordering::SeqCst)
            .is_ok()
    }

    /// Publishes `parked` (PARKED or PARKED_DRIVER) unless a token raced
    /// in, which it then consumes. True if the caller may sleep.
    fn publish(&self, parked: usize) -> bool {
        match self
            .state
            .compare_exchange(EMPTY, parked, Ordering::SeqCst, Ordering::SeqCst)
        {
            Ok(_) => true,
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
                false
            }
            Err(actual) => panic!("baton: inconsistent parker state {actual}"),
        }
    }

    /// Leaves the parked state `parked` (consuming a token, if any), with
    /// an RMW for the reason given in `publish`.
    fn unpublish(&self, parked: usize) {
        let old = self.state.swap(EMPTY, Ordering::SeqCst);
        assert!(
            old == NOTIFIED || old == parked,
            "baton: inconsistent parker state {old}"
        );
    }

    /// The condition-variable sleep (after the fast path failed).
    fn park_condvar(&self, deadline: Option<Instant>) {
        let mut guard = self.lock.lock();
        if !self.publish(PARKED) {
            return;
        }
        loop {
            match deadline {
                Some(deadline) => self.cvar.wait_until(&mut guard, deadline),
                None => self.cvar.wait(&mut guard),
            }
            if self.take_token() {
                return;
            }
            let timed_out = deadline.is_some_and(|d| cfg!(baton_loom) || Instant::now() >= d);
            if timed_out {
                // Give up waiting (consuming a notification that raced in).
                return self.unpublish(PARKED);
            }
        }
    }

    /// Sets the token and wakes the sleeper; `in_driver` wakes one that
    /// sleeps in the driver.
    fn unpark_with(&self, in_driver: impl FnOnce()) {
        match self.state.swap(NOTIFIED, Ordering::SeqCst) {
            EMPTY | NOTIFIED => {}
            PARKED => {
                // Taking the lock orders us after the parker's check-and-wait,
                // so the notification cannot fall between them.
                drop(self.lock.lock());
                self.cvar.notify_one();
            }
            PARKED_DRIVER => in_driver(),
            actual => panic!("baton: inconsistent parker state {actual}"),
        }
    }
}

impl Park for Parker {
    fn park(&self, deadline: Option<Instant>) {
        // Fast path: a token is waiting.
        if !self.take_token() {
            self.park_condvar(deadline);
        }
    }

    fn unpark(&self) {
        self.unpark_with(|| unreachable!("baton: a condvar parker is never in the driver"));
    }
}

/// A worker's [`Park`]: sleeps in the runtime's driver when it is free, on a
/// condition variable otherwise.
///
/// The state word gains one value over [`Parker`]'s, `PARKED_DRIVER`, which
/// tells `unpark` where the sleeper is: on the condition variable (take the
/// lock, notify) or in epoll (write the eventfd, [`Driver::unpark`]). The
/// worker takes the driver *before* it publishes `PARKED_DRIVER`, and gives
/// it back only after it has consumed the state, so whenever an unparker
/// reads `PARKED_DRIVER` the sleeper holds the driver, and the eventfd
/// write reaches it: in `epoll_wait`, or, if it has not got there yet,
/// as an event already pending when it does (the eventfd is sticky, like
/// the token). The loom models run this with the driver's condition
/// variable stand-in (`driver.rs`).
pub(crate) struct DriverParker {
    parker: Parker,
    driver: Arc<Driver>,
}

impl DriverParker {
    /// A parker of a worker of the runtime that `driver` belongs to.
    pub(crate) fn new(driver: Arc<Driver>) -> Self {
        DriverParker {
            parker: Parker::new(),
            driver,
        }
    }
}

impl Park for DriverParker {
    fn park(&self, deadline: Option<Instant>) {
        if self.parker.take_token() {
            return;
        }
        let Some(mut driving) = self.driver.try_drive() else {
            return self.parker.park_condvar(deadline);
        };
        if !self.parker.publish(PARKED_DRIVER) {
            return;
        }
        self.driver.park(&mut driving, deadline);
        // Woken by our token, by an event or a deadline, or by a wake meant
        // for the driver (an earlier timer): all return, and the caller
        // re-checks.
        self.parker.unpublish(PARKED_DRIVER);
        drop(driving);
    }

    fn unpark(&self) {
        self.parker.unpark_with(|| self.driver.unpark());
    }
}
