//! The parking seam: how an idle worker sleeps, and how it is woken.
//!
//! The scheduler parks a worker only through [`Park`]: the worker loop calls
//! `park(deadline)` when it runs out of work (`worker.rs`), and notifiers
//! call `unpark()` on the worker they picked (`Shared::notify_parked`), with
//! the sleepers protocol of `README.md` around both. What the worker waits
//! *in* is the implementation's business. Today that is [`Parker`], a
//! condition variable; a worker that waits for I/O readiness instead (in
//! epoll, with `unpark` writing to an eventfd) would be a second
//! implementation, named by [`WorkerParker`], with no change to the loop or
//! the protocol, as long as it keeps the contract below.

use std::time::Instant;

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
pub(super) type WorkerParker = Parker;

const EMPTY: usize = 0;
const PARKED: usize = 1;
const NOTIFIED: usize = 2;

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

impl Park for Parker {
    fn park(&self, deadline: Option<Instant>) {
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
            let timed_out = deadline.is_some_and(|d| cfg!(baton_loom) || Instant::now() >= d);
            if timed_out {
                // Give up waiting (consuming a notification that raced in).
                match self.state.swap(EMPTY, Ordering::SeqCst) {
                    NOTIFIED | PARKED => return,
                    actual => panic!("baton: inconsistent parker state {actual}"),
                }
            }
        }
    }

    fn unpark(&self) {
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
