//! [`TimerEntry`]: one registered deadline, shared by the [`Sleep`] that
//! waits for it and the store that fires it.
//!
//! Its state moves once, from `PENDING` to either `FIRED` (by the driver,
//! which then wakes the waker) or `CANCELLED` (by the sleep, when it is
//! dropped or reset before firing). Whoever wins the compare-and-swap owns
//! the outcome; that is all cancelling costs (O(1), no lock): the store
//! forgets cancelled entries lazily (`store.rs`).
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

/// One deadline.
#[derive(Debug)]
pub(crate) struct TimerEntry {
    /// The store shard it lives in.
    shard: usize,
    state: AtomicUsize,
    waker: WakerSlot,
}

impl TimerEntry {
    /// An entry in `shard`, with `waker` already stored (the deadline is
    /// kept by the store).
    pub(crate) fn new(shard: usize, waker: &Waker) -> TimerEntry {
        let entry = TimerEntry {
            shard,
            state: AtomicUsize::new(PENDING),
            waker: WakerSlot::new(),
        };
        entry.waker.register(waker);
        entry
    }

    pub(crate) fn shard(&self) -> usize {
        self.shard
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

    /// Takes the waker without changing the state (shutdown).
    pub(crate) fn take_waker(&self) -> Option<Waker> {
        self.waker.take()
    }

    /// The sleep's side: `PENDING → CANCELLED`. True if this call cancelled
    /// it (it had not fired).
    pub(crate) fn cancel(&self) -> bool {
        self.state
            .compare_exchange(PENDING, CANCELLED, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    }
}
