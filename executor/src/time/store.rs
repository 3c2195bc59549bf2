//! [`TimerStore`]: every pending deadline of a runtime, sharded by worker,
//! and the driver's view of it.
//!
//! # Shards
//!
//! One min-heap per worker and one for every other thread (`block_on`),
//! each behind its own lock. A sleep registers in the shard of the worker
//! it is polled on, so workers creating timers never contend with each
//! other, only (briefly) with the driver when it looks for the earliest
//! deadline or fires what is due. Inserting costs O(log n) in one shard.
//!
//! # Cancelling: O(1), no lock
//!
//! Most timers are request timeouts that never fire. Cancelling one is a
//! plain store to its entry's state (`entry.rs`): the heap is not touched.
//! The driver drops cancelled entries when they reach the top, and an
//! insert that finds its shard twice as long as after the last sweep (and
//! at least [`COMPACT_MIN`] long) sweeps out every cancelled entry. A sweep
//! costs O(n) and follows at least n/2 inserts, so it is amortised O(1) per
//! timer, and a shard holds at most about twice its live timers (or
//! [`COMPACT_MIN`]). Until then a cancelled entry keeps its waker, so a
//! finished task's allocation may outlive it by that long.
//!
//! # Waking the driver for an earlier deadline
//!
//! The driver sleeps in epoll until the earliest deadline. Before it does,
//! it publishes that instant in `parked_until` and *then* reads the shards
//! again; an insert pushes under the shard's lock and *then* reads
//! `parked_until`. The shard lock orders the two: either the driver's read
//! comes after the push (and sees the new deadline), or the insert's read
//! comes after the driver's publish (and sees that the driver sleeps past
//! it). In the second case the insert lowers `parked_until` to its deadline
//! with a compare-and-swap and, if it succeeded, wakes the driver through
//! the reactor's eventfd; a burst of inserts therefore wakes the driver once
//! per new earliest deadline, not once per insert. `parked_until` is 0 while
//! nobody sleeps in the driver (inserts then wake nobody: the next thread to
//! drive reads the shards first).

use std::cmp::Ordering as CmpOrdering;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

use crossbeam_utils::CachePadded;

use crate::time::entry::TimerEntry;
use baton_sync::{AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering};

/// Sweep a shard only once it holds at least this many entries.
const COMPACT_MIN: usize = 1024;
/// `parked_until` when nobody sleeps in the driver.
const NOT_PARKED: u64 = 0;
/// `parked_until` when the driver sleeps with no deadline.
const PARKED_FOREVER: u64 = u64::MAX;

/// A heap item: ordered by deadline, then by insertion, earliest on top.
struct Item {
    deadline: Instant,
    seq: u64,
    entry: Arc<TimerEntry>,
}

impl PartialEq for Item {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == CmpOrdering::Equal
    }
}
impl Eq for Item {}
impl PartialOrd for Item {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}
impl Ord for Item {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        // Reversed: `BinaryHeap` is a max-heap.
        (other.deadline, other.seq).cmp(&(self.deadline, self.seq))
    }
}

struct Heap {
    items: BinaryHeap<Item>,
    next_seq: u64,
    /// Sweep cancelled entries when the heap reaches this length.
    sweep_at: usize,
}

struct Shard {
    heap: Mutex<Heap>,
    /// `heap`'s length, stored under its lock (a plain store, no RMW), so
    /// the periodic poll can tell an empty shard without locking.
    len: AtomicUsize,
}

/// The deadlines of one runtime.
pub(crate) struct TimerStore {
    /// The zero of `parked_until`.
    base: Instant,
    shards: Box<[CachePadded<Shard>]>,
    parked_until: AtomicU64,
    shut_down: AtomicBool,
}

impl TimerStore {
    /// A store with `shards` shards (workers + 1).
    pub(crate) fn new(shards: usize) -> TimerStore {
        TimerStore {
            base: Instant::now(),
            shards: (0..shards.max(1))
                .map(|_| {
                    CachePadded::new(Shard {
                        heap: Mutex::new(Heap {
                            items: BinaryHeap::new(),
                            next_seq: 0,
                            sweep_at: COMPACT_MIN,
                        }),
                        len: AtomicUsize::new(0),
                    })
                })
                .collect(),
            parked_until: AtomicU64::new(NOT_PARKED),
            shut_down: AtomicBool::new(false),
        }
    }

    /// The shard for the worker `index` (`None`: not a worker).
    pub(crate) fn shard_for(&self, worker: Option<usize>) -> usize {
        let last = self.shards.len() - 1;
        worker.map_or(last, |w| w.min(last))
    }

    /// Whether any timer may be pending (a hint, counting cancelled
    /// entries not swept yet: the busy workers' periodic poll skips the
    /// store when it says no). No lock, no RMW.
    pub(crate) fn has_pending(&self) -> bool {
        self.shards
            .iter()
            .any(|shard| shard.len.load(Ordering::Relaxed) != 0)
    }

    /// Creates and inserts an entry for `deadline`. Returns it and whether
    /// the driver must be woken (it sleeps past `deadline`).
    pub(crate) fn insert(
        &self,
        deadline: Instant,
        shard: usize,
        waker: &Waker,
    ) -> (Arc<TimerEntry>, bool) {
        let entry = Arc::new(TimerEntry::new(waker));
        let s = &self.shards[shard];
        let mut swept = Vec::new();
        {
            let mut heap = s.heap.lock();
            if self.shut_down.load(Ordering::Relaxed) {
                // The runtime is gone: nothing fires any more.
                drop(heap);
                drop(entry.shut_down());
                return (entry, false);
            }
            let seq = heap.next_seq;
            heap.next_seq += 1;
            heap.items.push(Item {
                deadline,
                seq,
                entry: entry.clone(),
            });
            if heap.items.len() >= heap.sweep_at {
                let (live, dead): (Vec<Item>, Vec<Item>) = std::mem::take(&mut heap.items)
                    .into_vec()
                    .into_iter()
                    .partition(|item| !item.entry.is_cancelled());
                heap.items = BinaryHeap::from(live);
                heap.sweep_at = (heap.items.len() * 2).max(COMPACT_MIN);
                swept = dead;
            }
            s.len.store(heap.items.len(), Ordering::Relaxed);
        }
        // Outside the lock: a cancelled entry still holds its waker, whose
        // drop may free a task (and its context's values: user code).
        drop(swept);
        let at = self.ticks(deadline);
        let mut parked = self.parked_until.load(Ordering::SeqCst);
        while at < parked {
            match self.parked_until.compare_exchange_weak(
                parked,
                at,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return (entry, true),
                Err(now) => parked = now,
            }
        }
        (entry, false)
    }

    /// The earliest pending deadline (dropping cancelled entries on top).
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        // Dropped after the locks (see `insert`).
        let mut dead = Vec::new();
        for shard in self.shards.iter() {
            let mut heap = shard.heap.lock();
            while let Some(top) = heap.items.peek() {
                if top.entry.is_cancelled() {
                    dead.extend(heap.items.pop());
                    shard.len.store(heap.items.len(), Ordering::Relaxed);
                    continue;
                }
                earliest = Some(earliest.map_or(top.deadline, |e| e.min(top.deadline)));
                break;
            }
        }
        drop(dead);
        earliest
    }

    /// The driver is about to sleep until `until` (`None`: no deadline).
    /// Returns the deadline to sleep until, which an insert that raced
    /// this call may have moved earlier (module docs).
    pub(crate) fn park_until(&self, until: Option<Instant>) -> Option<Instant> {
        let at = until.map_or(PARKED_FOREVER, |d| self.ticks(d));
        self.parked_until.store(at, Ordering::SeqCst);
        match (until, self.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The driver woke up.
    pub(crate) fn unparked(&self) {
        self.parked_until.store(NOT_PARKED, Ordering::SeqCst);
    }

    /// Fires every entry due by `now`; returns how many.
    pub(crate) fn fire_due(&self, now: Instant) -> usize {
        if !self.has_pending() {
            return 0;
        }
        let mut wakers = Vec::new();
        let mut dead = Vec::new();
        let mut fired = 0;
        for shard in self.shards.iter() {
            if shard.len.load(Ordering::Relaxed) == 0 {
                continue;
            }
            let mut heap = shard.heap.lock();
            while let Some(top) = heap.items.peek() {
                if top.deadline > now {
                    break;
                }
                let item = heap.items.pop().expect("peeked");
                if let Ok(waker) = item.entry.fire() {
                    fired += 1;
                    wakers.extend(waker);
                }
                // A cancelled entry still holds its waker: dropped below.
                dead.push(item);
            }
            shard.len.store(heap.items.len(), Ordering::Relaxed);
        }
        drop(dead);
        for waker in wakers {
            waker.wake();
        }
        fired
    }

    /// The runtime is gone: nothing fires any more. Its tasks are cancelled
    /// already; a sleep still waiting elsewhere (in a blocking closure, say)
    /// is woken, and its next poll panics (its entry says `SHUT_DOWN`)
    /// rather than wait forever.
    pub(crate) fn shutdown(&self) {
        self.shut_down.store(true, Ordering::SeqCst);
        for shard in self.shards.iter() {
            let items = {
                let mut heap = shard.heap.lock();
                shard.len.store(0, Ordering::Relaxed);
                std::mem::take(&mut heap.items)
            };
            for item in items {
                if let Some(waker) = item.entry.shut_down() {
                    waker.wake();
                }
            }
        }
    }

    /// `deadline` in nanoseconds since `base`, at least 1 (0 is NOT_PARKED).
    fn ticks(&self, deadline: Instant) -> u64 {
        let nanos = deadline.saturating_duration_since(self.base).as_nanos();
        u64::try_from(nanos).unwrap_or(PARKED_FOREVER - 1).max(1)
    }
}
