//! [`WakerSlot`]: one waker, stored by the task that waits and taken by
//! whoever makes it ready, with no lock.
//!
//! This is the `AtomicWaker` protocol (futures-util, tokio), written on the
//! `baton-sync` facade so that the loom model of the readiness race
//! (`io/tests/loom.rs`) checks this code and not a copy.
//!
//! # The protocol
//!
//! A state word with two bits guards the cell that holds the waker:
//!
//! ```text
//! WAITING      0    nobody touches the cell
//! REGISTERING  1    `register` owns the cell and is writing a waker
//! WAKING       2    `take` owns the cell (or, with REGISTERING set, has
//!                   asked the registrant to wake on its way out)
//! ```
//!
//! * `register` moves `WAITING → REGISTERING` with a compare-and-swap, writes
//!   the waker, then tries `REGISTERING → WAITING`. If that fails, a `take`
//!   came in while it wrote (it set `WAKING` and went away empty-handed), so
//!   the registrant takes the waker back out, resets the word and wakes it
//!   itself. If the first compare-and-swap finds `WAKING`, a `take` is in
//!   progress right now: the registrant wakes the new waker at once.
//! * `take` sets `WAKING` with a `fetch_or`. If the word was `WAITING`, it
//!   owns the cell: it takes the waker and clears `WAKING`. Otherwise it
//!   leaves the waker to the registrant (see above) or to the `take` already
//!   in progress.
//!
//! So a `take` that happens after a `register` began always results in the
//! registered waker being woken, by one side or the other; that is the
//! property the readiness word relies on (`scheduled_io.rs`). The orderings
//! are acquire on entering the cell and release on leaving it, so each side
//! sees the other's writes to the cell, and whatever the waker's owner
//! wrote before `take` (the readiness bits) is visible to a registrant whose
//! compare-and-swap read from it.

use std::task::Waker;

use baton_sync::{AtomicUsize, Ordering, UnsafeCell};

const WAITING: usize = 0;
const REGISTERING: usize = 0b01;
const WAKING: usize = 0b10;

/// One waker slot; see the module docs for the protocol.
pub(crate) struct WakerSlot {
    state: AtomicUsize,
    waker: UnsafeCell<Option<Waker>>,
}

// SAFETY: the cell is only touched by the one thread that owns it through
// the state word (REGISTERING or a successful WAKING from WAITING), and
// `Waker` is `Send + Sync`.
unsafe impl Send for WakerSlot {}
// SAFETY: as above.
unsafe impl Sync for WakerSlot {}

impl WakerSlot {
    /// An empty slot.
    pub(crate) fn new() -> WakerSlot {
        WakerSlot {
            state: AtomicUsize::new(WAITING),
            waker: UnsafeCell::new(None),
        }
    }

    /// A slot holding `waker` already (no other thread can see it yet, so
    /// no protocol is needed).
    pub(crate) fn with_waker(waker: Waker) -> WakerSlot {
        WakerSlot {
            state: AtomicUsize::new(WAITING),
            waker: UnsafeCell::new(Some(waker)),
        }
    }

    /// Stores `waker` (replacing the one there, unless it would wake the
    /// same task). A concurrent [`WakerSlot::wake`] that missed it makes this
    /// call wake it instead.
    pub(crate) fn register(&self, waker: &Waker) {
        match self.state.compare_exchange(
            WAITING,
            REGISTERING,
            Ordering::Acquire,
            Ordering::Acquire,
        ) {
            Ok(_) => {
                // SAFETY: REGISTERING gives this thread the cell.
                unsafe {
                    self.waker.with_mut(|slot| match &mut *slot {
                        Some(old) if old.will_wake(waker) => {}
                        other => *other = Some(waker.clone()),
                    });
                }
                if let Err(actual) = self.state.compare_exchange(
                    REGISTERING,
                    WAITING,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    // A `take` came in meanwhile and found the cell busy:
                    // wake on its behalf.
                    debug_assert_eq!(actual, REGISTERING | WAKING);
                    // SAFETY: still ours: only the registrant clears
                    // REGISTERING.
                    let waker = unsafe { self.waker.with_mut(|slot| (*slot).take()) };
                    self.state.swap(WAITING, Ordering::AcqRel);
                    if let Some(waker) = waker {
                        waker.wake();
                    }
                }
            }
            Err(WAKING) => {
                // A `take` is running: it may have read the cell before our
                // waker could be stored. Wake now.
                waker.wake_by_ref();
            }
            Err(_) => {
                // Registering from two threads at once: the other one wins,
                // which the slot's owner (one waiting task) never does.
            }
        }
    }

    /// Takes the stored waker, if the slot holds one and no registration is
    /// in progress (that registration will then wake itself).
    pub(crate) fn take(&self) -> Option<Waker> {
        match self.state.fetch_or(WAKING, Ordering::AcqRel) {
            WAITING => {
                // SAFETY: WAKING from WAITING gives this thread the cell.
                let waker = unsafe { self.waker.with_mut(|slot| (*slot).take()) };
                self.state.fetch_and(!WAKING, Ordering::Release);
                waker
            }
            _ => None,
        }
    }

    /// Wakes the stored waker, if any (see [`WakerSlot::take`]).
    pub(crate) fn wake(&self) {
        if let Some(waker) = self.take() {
            waker.wake();
        }
    }
}

impl std::fmt::Debug for WakerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WakerSlot")
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish()
    }
}

#[cfg(all(test, not(baton_loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize as StdCounter;
    use std::task::Wake;

    struct Count(StdCounter);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[test]
    fn register_then_wake_wakes_once() {
        let count = Arc::new(Count(StdCounter::new(0)));
        let waker = Waker::from(count.clone());
        let slot = WakerSlot::new();
        slot.wake();
        slot.register(&waker);
        slot.register(&waker);
        slot.wake();
        slot.wake();
        assert_eq!(count.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn register_replaces_another_tasks_waker() {
        let a = Arc::new(Count(StdCounter::new(0)));
        let b = Arc::new(Count(StdCounter::new(0)));
        let slot = WakerSlot::new();
        slot.register(&Waker::from(a.clone()));
        slot.register(&Waker::from(b.clone()));
        slot.wake();
        assert_eq!(a.0.load(std::sync::atomic::Ordering::SeqCst), 0);
        assert_eq!(b.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
