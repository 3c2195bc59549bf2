//! [`ScheduledIo`]: the readiness of one registered source, and the reader's
//! and the writer's wakers.
//!
//! # The readiness word
//!
//! ```text
//! bits 0..4   READABLE · WRITABLE · READ_CLOSED · WRITE_CLOSED
//! bit  4      SHUTDOWN: the runtime's driver is gone; every poll fails
//! bits 16..32 tick: the driver turn that last set readiness
//! ```
//!
//! The reactor is edge-triggered: the kernel reports a source once when it
//! *becomes* ready, so readiness is remembered here until a read or write
//! returns `WouldBlock`, and only then cleared. Three parties touch it:
//!
//! * **The driver** (whichever worker is driving) ORs in what an event
//!   reported and stamps its turn's tick, then wakes the direction's waker.
//! * **A poller** (the task using the socket) reads the word; if its
//!   direction is ready it performs the operation; on `WouldBlock` it clears
//!   that readiness — *only if the tick is still the one it saw*
//!   ([`ScheduledIo::clear_readiness`]). An event that arrived between its
//!   read and its clear carries a newer tick, so it is not thrown away.
//! * **Shutdown** sets `SHUTDOWN` and wakes both directions.
//!
//! # The race between an event and a waker being stored
//!
//! A poller that finds its direction not ready must store its waker and
//! then sleep, while the driver may be setting readiness at that very
//! moment. The two sides do their steps in opposite orders:
//!
//! ```text
//! poller                              driver
//! 1. load word: not ready             a. fetch_or readiness into word
//! 2. register waker in the slot       b. take the slot's waker, wake it
//! 3. load word again
//! ```
//!
//! If (b) runs after (2) began, the slot protocol (`waker_slot.rs`)
//! guarantees the registered waker is woken, by the driver or by the
//! registrant itself. If (b) runs before (2), the driver's release of the
//! slot (after its `fetch_or` in (a)) is what (2)'s compare-and-swap
//! acquires, so (3) sees the readiness and the poll returns `Ready` instead
//! of sleeping. Either way no event is lost. The loom model
//! `io/tests/loom.rs` explores every interleaving of the two,
//! and of a `clear_readiness` racing a new event.

use std::task::{Context, Poll};

use crate::io::waker_slot::WakerSlot;
use baton_sync::{AtomicUsize, Ordering};

/// Readable (or a peer connection to accept).
pub(crate) const READABLE: usize = 0b0001;
/// Writable.
pub(crate) const WRITABLE: usize = 0b0010;
/// The read half is closed (EOF or an error): reads will not block.
pub(crate) const READ_CLOSED: usize = 0b0100;
/// The write half is closed (or an error): writes will not block.
pub(crate) const WRITE_CLOSED: usize = 0b1000;
/// The runtime's driver has shut down.
const SHUTDOWN: usize = 0b1_0000;
const READINESS_MASK: usize = 0xFFFF;
const TICK_SHIFT: u32 = 16;
const TICK_MASK: usize = 0xFFFF;

/// One direction of a source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// Reads, accepts, receives.
    Read,
    /// Writes, connects, sends.
    Write,
}

impl Direction {
    /// The readiness bits that let this direction proceed.
    fn mask(self) -> usize {
        match self {
            Direction::Read => READABLE | READ_CLOSED,
            Direction::Write => WRITABLE | WRITE_CLOSED,
        }
    }
}

/// What a poller saw: the readiness it may act on and the tick it was set in.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ReadyEvent {
    tick: usize,
    ready: usize,
}

/// The outcome of a poll of a source whose runtime is gone.
#[derive(Debug)]
pub(crate) struct Gone;

/// The per-source state shared by the driver and the source's user.
#[derive(Debug)]
pub(crate) struct ScheduledIo {
    readiness: AtomicUsize,
    reader: WakerSlot,
    writer: WakerSlot,
}

impl ScheduledIo {
    /// A source with no readiness yet.
    pub(crate) fn new() -> ScheduledIo {
        ScheduledIo {
            readiness: AtomicUsize::new(0),
            reader: WakerSlot::new(),
            writer: WakerSlot::new(),
        }
    }

    /// The driver's half: `ready` was reported in turn `tick`. Records it
    /// and wakes the directions it concerns.
    pub(crate) fn set_readiness(&self, tick: usize, ready: usize) {
        let stamp = (tick & TICK_MASK) << TICK_SHIFT;
        let _ = self
            .readiness
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                Some((word & READINESS_MASK) | ready | stamp)
            });
        if ready & Direction::Read.mask() != 0 {
            self.reader.wake();
        }
        if ready & Direction::Write.mask() != 0 {
            self.writer.wake();
        }
    }

    /// The poller's half: `Ready` with what it may act on, or `Pending` with
    /// the task's waker stored (see "The race" above).
    pub(crate) fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
    ) -> Poll<Result<ReadyEvent, Gone>> {
        if let Some(ready) = self.ready_now(direction) {
            return Poll::Ready(ready);
        }
        self.slot(direction).register(cx.waker());
        match self.ready_now(direction) {
            Some(ready) => Poll::Ready(ready),
            None => Poll::Pending,
        }
    }

    fn ready_now(&self, direction: Direction) -> Option<Result<ReadyEvent, Gone>> {
        let word = self.readiness.load(Ordering::Acquire);
        if word & SHUTDOWN != 0 {
            return Some(Err(Gone));
        }
        let ready = word & direction.mask();
        (ready != 0).then_some(Ok(ReadyEvent {
            tick: (word >> TICK_SHIFT) & TICK_MASK,
            ready,
        }))
    }

    /// The operation that `event` allowed returned `WouldBlock`: forget that
    /// readiness, unless a newer event set it again meanwhile. Closed bits
    /// are never cleared (a closed half stays closed).
    pub(crate) fn clear_readiness(&self, event: ReadyEvent) {
        let clear = event.ready & !(READ_CLOSED | WRITE_CLOSED);
        let _ = self
            .readiness
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |word| {
                ((word >> TICK_SHIFT) & TICK_MASK == event.tick).then_some(word & !clear)
            });
    }

    /// The driver is gone: every poll from now on fails; wakes both sides.
    pub(crate) fn shutdown(&self) {
        self.readiness.fetch_or(SHUTDOWN, Ordering::AcqRel);
        self.reader.wake();
        self.writer.wake();
    }

    /// Drops both wakers (the source is being deregistered).
    #[cfg(not(baton_loom))]
    pub(crate) fn clear_wakers(&self) {
        drop(self.reader.take());
        drop(self.writer.take());
    }

    fn slot(&self, direction: Direction) -> &WakerSlot {
        match direction {
            Direction::Read => &self.reader,
            Direction::Write => &self.writer,
        }
    }
}
