//! [`TimerEntry`]: one registered deadline, shared by the [`Sleep`] that
//! waits for it and the store that fires it.
//!
//! Its state leaves `PENDING` once: to `FIRED` (the driver's
//! compare-and-swap, after which it wakes the waker), to `SHUT_DOWN` (the
//! runtime is gone: the sleep's next poll panics), or to `CANCELLED` (a
//! plain store by the sleep when it is dropped or reset: all cancelling
//! costs, O(1), no lock, no read-modify-write). A cancel that lands after the
//! driver fired overwrites `FIRED`, which nobody reads any more; one that
//! lands before makes the driver's compare-and-swap fail. The store forgets
//! cancelled entries lazily (`store.rs`).
//!
//! The sleep stores its waker before it is inserted and on every later
//! poll, then re-reads the state; the driver sets `FIRED` before waking.
//! That is the same race as an I/O readiness event and a waker
//! (`io/scheduled_io.rs`), closed the same way by the waker slot's protocol.
//!
//! [`Sleep`]: crate::Sleep

use std::task::Waker;

use crate::io::waker_slot::WakerSlot;
use baton_sync::{AtomicUsize, Ordering};

const PENDING: usize = 0;
const FIRED: usize = 1;
const CANCELLED: usize = 2;
const SHUT_DOWN: usize = 3;

/// One deadline.
#[derive(Debug)]
pub(crate) struct TimerEntry {
    state: AtomicUsize,
    waker: WakerSlot,
}

impl TimerEntry {
    /// An entry with `waker` already stored (the deadline is kept by the
    /// store).
    pub(crate) fn new(waker: &Waker) -> TimerEntry {
        TimerEntry {
            state: AtomicUsize::new(PENDING),
            waker: WakerSlot::with_waker(waker.clone()),
        }
    }

    /// Whether the driver fired it.
    pub(crate) fn is_fired(&self) -> bool {
        self.state.load(Ordering::Acquire) == FIRED
    }

    pub(crate) fn is_cancelled(&self) -> bool {
        self.state.load(Ordering::Relaxed) == CANCELLED
    }

    /// Stores the waker of the latest poll.
    pub(crate) fn register(&self, waker: &Waker) {
        self.waker.register(waker);
    }

    /// The driver's side: `PENDING → FIRED`. Returns the waker to wake, or
    /// `Err(())` if the entry was cancelled first.
    pub(crate) fn fire(&self) -> Result<Option<Waker>, ()> {
        match self
            .state
            .compare_exchange(PENDING, FIRED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Ok(self.waker.take()),
            Err(_) => Err(()),
        }
    }

    /// The sleep's side: it no longer waits (see the module docs).
    pub(crate) fn cancel(&self) {
        self.state.store(CANCELLED, Ordering::Relaxed);
    }

    /// Shutdown's side: `PENDING → SHUT_DOWN`, and the waker to wake.
    pub(crate) fn shut_down(&self) -> Option<Waker> {
        self.state
            .compare_exchange(PENDING, SHUT_DOWN, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .and_then(|_| self.waker.take())
    }

    /// Whether the runtime shut down before the entry fired.
    pub(crate) fn is_shut_down(&self) -> bool {
        self.state.load(Ordering::Acquire) == SHUT_DOWN
    }
}
