//! The task's state word; the protocol is written out in `task/mod.rs`.
//!
//! One `u64`:
//!
//! ```text
//! bits  0..6    flags (RUNNING ... JOIN_WAKER)
//! bits  6..48   reference count (42 bits)
//! bits 48..64   last worker: index of the worker that last claimed RUNNING
//!               through `transition_to_running`, NO_WORKER before that
//! ```

use std::fmt;

use baton_sync::{AtomicU64, Ordering};

pub(super) const RUNNING: u64 = 0b00_0001;
pub(super) const COMPLETE: u64 = 0b00_0010;
pub(super) const NOTIFIED: u64 = 0b00_0100;
pub(super) const CANCELLED: u64 = 0b00_1000;
pub(super) const JOIN_INTEREST: u64 = 0b01_0000;
pub(super) const JOIN_WAKER: u64 = 0b10_0000;
const REF_SHIFT: u32 = 6;
const REF_ONE: u64 = 1 << REF_SHIFT;
const FLAGS: u64 = REF_ONE - 1;
const WORKER_SHIFT: u32 = 48;
const REF_BITS: u32 = WORKER_SHIFT - REF_SHIFT;
const REF_MASK: u64 = ((1 << REF_BITS) - 1) << REF_SHIFT;
const WORKER_MASK: u64 = !(REF_MASK | FLAGS);
/// Making a reference when the count is already this high panics. The half
/// of the count's field above it is head-room: the unconditional
/// `fetch_add` of `State::ref_inc` checks after incrementing, and it would
/// take 2^41 more increments, each of them panicking, to carry into the
/// worker bits.
const REF_COUNT_LIMIT: u64 = 1 << (REF_BITS - 1);

/// The last-worker field before the first poll.
pub(crate) const NO_WORKER: u16 = u16::MAX;
/// The highest worker index the last-worker field holds: workers from this
/// index on all share it (so moves between them are not counted as
/// migrations).
pub(super) const MAX_WORKER_ID: u16 = u16::MAX - 1;

/// Worker `index` as the last-worker field stores it (clamped to
/// [`MAX_WORKER_ID`]).
pub(crate) fn worker_id(index: usize) -> u16 {
    index.min(MAX_WORKER_ID as usize) as u16
}

// The three fields tile the word, and the count's limit leaves it half its
// field as head-room.
const _: () = {
    assert!(FLAGS & REF_MASK == 0 && REF_MASK & WORKER_MASK == 0);
    assert!(FLAGS | REF_MASK | WORKER_MASK == u64::MAX);
    assert!(WORKER_MASK >> WORKER_SHIFT == u16::MAX as u64);
    assert!(REF_COUNT_LIMIT * 2 - 1 == REF_MASK >> REF_SHIFT);
};

/// A spawned task starts with three references (its `JoinHandle`, the
/// owned-tasks list, and the `Notified` in the run queue), NOTIFIED and
/// JOIN_INTEREST, and no last worker.
const INITIAL: u64 =
    ((NO_WORKER as u64) << WORKER_SHIFT) | (3 * REF_ONE) | NOTIFIED | JOIN_INTEREST;

pub(super) struct State(AtomicU64);

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct Snapshot(pub(super) u64);

impl Snapshot {
    pub(super) fn is_running(self) -> bool {
        self.0 & RUNNING != 0
    }
    pub(super) fn is_complete(self) -> bool {
        self.0 & COMPLETE != 0
    }
    /// Neither running nor complete.
    pub(super) fn is_idle(self) -> bool {
        self.0 & (RUNNING | COMPLETE) == 0
    }
    pub(super) fn is_notified(self) -> bool {
        self.0 & NOTIFIED != 0
    }
    pub(super) fn is_cancelled(self) -> bool {
        self.0 & CANCELLED != 0
    }
    pub(super) fn is_join_interested(self) -> bool {
        self.0 & JOIN_INTEREST != 0
    }
    pub(super) fn is_join_waker_set(self) -> bool {
        self.0 & JOIN_WAKER != 0
    }
    pub(super) fn ref_count(self) -> u64 {
        (self.0 & REF_MASK) >> REF_SHIFT
    }
    /// The worker that last claimed RUNNING (`NO_WORKER` if none has).
    pub(super) fn last_worker(self) -> u16 {
        (self.0 >> WORKER_SHIFT) as u16
    }
    fn set_last_worker(&mut self, worker: u16) {
        self.0 = (self.0 & !WORKER_MASK) | ((worker as u64) << WORKER_SHIFT);
    }
    fn set(&mut self, bits: u64) {
        self.0 |= bits;
    }
    fn unset(&mut self, bits: u64) {
        self.0 &= !bits;
    }
    fn ref_inc(&mut self) {
        assert!(
            self.ref_count() < REF_COUNT_LIMIT,
            "baton: task reference count overflow"
        );
        self.0 += REF_ONE;
    }
    fn ref_dec(&mut self) {
        debug_assert!(self.ref_count() > 0);
        self.0 -= REF_ONE;
    }
}

impl fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Snapshot")
            .field("running", &self.is_running())
            .field("complete", &self.is_complete())
            .field("notified", &self.is_notified())
            .field("cancelled", &self.is_cancelled())
            .field("join_interest", &self.is_join_interested())
            .field("join_waker", &self.is_join_waker_set())
            .field("refs", &self.ref_count())
            .field("last_worker", &self.last_worker())
            .field("flags", &(self.0 & FLAGS))
            .finish()
    }
}

/// What `transition_to_running` tells the poller to do.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ToRunning {
    /// RUNNING is ours: poll the future.
    Success,
    /// RUNNING is ours but the task was aborted: drop the future.
    Cancelled,
    /// Running or complete already: our reference was dropped.
    Failed,
    /// As `Failed`, and that was the last reference.
    Dealloc,
}

/// What `transition_to_idle` tells the poller to do.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ToIdle {
    /// Idle; the poller's reference was dropped.
    Ok,
    /// Idle, and that was the last reference.
    OkDealloc,
    /// Woken while running: the poller's reference becomes a new `Notified`
    /// that the poller must schedule.
    OkNotified,
    /// Aborted while running: still RUNNING, the poller must cancel.
    Cancelled,
}

/// What a wake tells the waker to do.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ToNotified {
    /// Nothing to schedule.
    DoNothing,
    /// Schedule a new `Notified` (a reference has been made for it).
    Submit,
    /// Nothing to schedule, and the last reference is gone.
    Dealloc,
}

/// What dropping the `JoinHandle` must clean up.
pub(super) struct JoinDropped {
    pub(super) drop_output: bool,
    pub(super) drop_waker: bool,
}

impl State {
    pub(super) fn new() -> State {
        State(AtomicU64::new(INITIAL))
    }

    pub(super) fn load(&self) -> Snapshot {
        Snapshot(self.0.load(Ordering::Acquire))
    }

    /// Loops `f` over compare-and-swaps until one succeeds; `f` returns the
    /// action and the new value (`None`: leave the word as it is).
    #[inline]
    fn update<T>(&self, mut f: impl FnMut(Snapshot) -> (T, Option<Snapshot>)) -> T {
        let mut curr = self.load();
        loop {
            let (action, next) = f(curr);
            let Some(next) = next else { return action };
            match self
                .0
                .compare_exchange_weak(curr.0, next.0, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return action,
                Err(actual) => curr = Snapshot(actual),
            }
        }
    }

    /// The holder of a `Notified` claims the task to poll it, on worker
    /// `worker` (a [`worker_id`], or `NO_WORKER`). On success the same CAS
    /// records `worker` as the task's last worker; the second value is the
    /// last worker before (`NO_WORKER` if none, or if RUNNING was not
    /// claimed).
    pub(super) fn transition_to_running(&self, worker: u16) -> (ToRunning, u16) {
        self.update(|mut next| {
            debug_assert!(next.is_notified(), "{next:?}");
            if !next.is_idle() {
                next.ref_dec();
                let action = if next.ref_count() == 0 {
                    ToRunning::Dealloc
                } else {
                    ToRunning::Failed
                };
                return ((action, NO_WORKER), Some(next));
            }
            let last = next.last_worker();
            next.set_last_worker(worker);
            next.set(RUNNING);
            next.unset(NOTIFIED);
            let action = if next.is_cancelled() {
                ToRunning::Cancelled
            } else {
                ToRunning::Success
            };
            ((action, last), Some(next))
        })
    }

    /// The poller is done with a poll that returned `Pending`.
    pub(super) fn transition_to_idle(&self) -> ToIdle {
        self.update(|curr| {
            debug_assert!(curr.is_running());
            if curr.is_cancelled() {
                return (ToIdle::Cancelled, None);
            }
            let mut next = curr;
            next.unset(RUNNING);
            let action = if next.is_notified() {
                ToIdle::OkNotified
            } else {
                next.ref_dec();
                if next.ref_count() == 0 {
                    ToIdle::OkDealloc
                } else {
                    ToIdle::Ok
                }
            };
            (action, Some(next))
        })
    }

    /// The poller could not enter the task's context: give RUNNING up and
    /// turn the poller's reference into a `Notified`.
    pub(super) fn transition_running_to_notified(&self) {
        self.update(|curr| {
            debug_assert!(curr.is_running());
            let mut next = curr;
            next.unset(RUNNING);
            next.set(NOTIFIED);
            ((), Some(next))
        })
    }

    /// The future finished (or was dropped): RUNNING -> COMPLETE. Returns
    /// the state before.
    pub(super) fn transition_to_complete(&self) -> Snapshot {
        let prev = Snapshot(self.0.fetch_xor(RUNNING | COMPLETE, Ordering::AcqRel));
        debug_assert!(prev.is_running() && !prev.is_complete(), "{prev:?}");
        prev
    }

    /// Drops `count` references; true if they were the last.
    pub(super) fn transition_to_terminal(&self, count: u64) -> bool {
        let prev = Snapshot(self.0.fetch_sub(count * REF_ONE, Ordering::AcqRel));
        assert!(
            prev.ref_count() >= count,
            "baton: task reference count underflow: {prev:?}"
        );
        prev.ref_count() == count
    }

    /// A waker is consumed (`wake`).
    pub(super) fn transition_to_notified_by_val(&self) -> ToNotified {
        self.update(|mut next| {
            let action = if next.is_running() {
                next.set(NOTIFIED);
                next.ref_dec();
                debug_assert!(next.ref_count() > 0);
                ToNotified::DoNothing
            } else if next.is_complete() || next.is_notified() {
                next.ref_dec();
                if next.ref_count() == 0 {
                    ToNotified::Dealloc
                } else {
                    ToNotified::DoNothing
                }
            } else {
                // The waker's reference becomes the Notified's.
                next.set(NOTIFIED);
                ToNotified::Submit
            };
            (action, Some(next))
        })
    }

    /// A waker is used by reference (`wake_by_ref`).
    pub(super) fn transition_to_notified_by_ref(&self) -> ToNotified {
        self.update(|mut next| {
            if next.is_complete() || next.is_notified() {
                (ToNotified::DoNothing, None)
            } else if next.is_running() {
                next.set(NOTIFIED);
                (ToNotified::DoNothing, Some(next))
            } else {
                next.set(NOTIFIED);
                next.ref_inc();
                (ToNotified::Submit, Some(next))
            }
        })
    }

    /// `abort()`: true if the caller must schedule a new `Notified` (a
    /// reference has been made for it).
    pub(super) fn transition_to_notified_and_cancel(&self) -> bool {
        self.update(|mut next| {
            if next.is_cancelled() || next.is_complete() {
                (false, None)
            } else if next.is_running() || next.is_notified() {
                // The poller, or the queued Notified, will see CANCELLED.
                next.set(NOTIFIED | CANCELLED);
                (false, Some(next))
            } else {
                next.set(NOTIFIED | CANCELLED);
                next.ref_inc();
                (true, Some(next))
            }
        })
    }

    /// Shutdown: marks the task cancelled and claims RUNNING if it was idle.
    /// True if the caller now holds RUNNING and must cancel the task.
    pub(super) fn transition_to_shutdown(&self) -> bool {
        self.update(|mut next| {
            let idle = next.is_idle();
            if idle {
                next.set(RUNNING);
            }
            next.set(CANCELLED);
            (idle, Some(next))
        })
    }

    pub(super) fn ref_inc(&self) {
        let prev = Snapshot(self.0.fetch_add(REF_ONE, Ordering::Relaxed));
        // Checked after the fact: see `REF_COUNT_LIMIT` for why the count
        // cannot carry into the worker bits meanwhile.
        assert!(
            prev.ref_count() < REF_COUNT_LIMIT,
            "baton: task reference count overflow"
        );
    }

    /// True if that was the last reference.
    pub(super) fn ref_dec(&self) -> bool {
        self.transition_to_terminal(1)
    }

    /// The `JoinHandle` published its waker. Fails if the task completed.
    pub(super) fn set_join_waker(&self) -> Result<Snapshot, Snapshot> {
        self.update(|curr| {
            debug_assert!(curr.is_join_interested() && !curr.is_join_waker_set());
            if curr.is_complete() {
                return (Err(curr), None);
            }
            let mut next = curr;
            next.set(JOIN_WAKER);
            (Ok(next), Some(next))
        })
    }

    /// The `JoinHandle` takes its waker back to replace it. Fails if the
    /// task completed.
    pub(super) fn unset_join_waker(&self) -> Result<Snapshot, Snapshot> {
        self.update(|curr| {
            debug_assert!(curr.is_join_interested() && curr.is_join_waker_set());
            if curr.is_complete() {
                return (Err(curr), None);
            }
            let mut next = curr;
            next.unset(JOIN_WAKER);
            (Ok(next), Some(next))
        })
    }

    /// The completer is done waking the join waker. Returns the new state.
    pub(super) fn unset_waker_after_complete(&self) -> Snapshot {
        let prev = Snapshot(self.0.fetch_and(!JOIN_WAKER, Ordering::AcqRel));
        debug_assert!(prev.is_complete() && prev.is_join_waker_set());
        Snapshot(prev.0 & !JOIN_WAKER)
    }

    /// The `JoinHandle` is dropped; `output_taken` says whether it took the
    /// output out of the slot already (a poll returned it).
    pub(super) fn transition_to_join_handle_dropped(&self, output_taken: bool) -> JoinDropped {
        self.update(|curr| {
            debug_assert!(curr.is_join_interested());
            let mut next = curr;
            next.unset(JOIN_INTEREST);
            let mut drop_output = false;
            if next.is_complete() {
                // The output is ours to drop, unless we took it already.
                drop_output = !output_taken;
            } else {
                // Take exclusive access to the waker back.
                next.unset(JOIN_WAKER);
            }
            // JOIN_WAKER still set means the completer is waking it right
            // now and will drop it itself (it will see no JOIN_INTEREST).
            let drop_waker = !next.is_join_waker_set();
            (
                JoinDropped {
                    drop_output,
                    drop_waker,
                },
                Some(next),
            )
        })
    }
}

#[cfg(all(test, not(baton_loom)))]
mod tests {
    use super::*;

    fn run(s: &State) -> ToRunning {
        s.transition_to_running(0).0
    }

    #[test]
    fn lifecycle() {
        let s = State::new();
        assert_eq!(s.load().ref_count(), 3);
        assert_eq!(run(&s), ToRunning::Success);
        // A wake while running sets NOTIFIED and schedules nothing.
        assert_eq!(s.transition_to_notified_by_ref(), ToNotified::DoNothing);
        assert_eq!(s.transition_to_idle(), ToIdle::OkNotified);
        assert!(s.load().is_notified() && !s.load().is_running());
        assert_eq!(run(&s), ToRunning::Success);
        assert_eq!(s.transition_to_idle(), ToIdle::Ok);
        assert_eq!(s.load().ref_count(), 2);
        assert_eq!(s.transition_to_notified_by_ref(), ToNotified::Submit);
        assert_eq!(s.load().ref_count(), 3);
        // abort while queued: no new Notified
        assert!(!s.transition_to_notified_and_cancel());
        assert_eq!(run(&s), ToRunning::Cancelled);
        let prev = s.transition_to_complete();
        assert!(prev.is_running());
        assert!(s.load().is_complete());
        let d = s.transition_to_join_handle_dropped(false);
        assert!(d.drop_output && d.drop_waker);
        assert!(!s.transition_to_terminal(2));
        assert!(s.transition_to_terminal(1));
    }

    #[test]
    fn wake_by_val_on_complete_drops_ref() {
        let s = State::new();
        assert_eq!(run(&s), ToRunning::Success);
        s.transition_to_complete();
        s.ref_inc();
        assert_eq!(s.transition_to_notified_by_val(), ToNotified::DoNothing);
        assert!(!s.transition_to_terminal(2));
        assert_eq!(s.transition_to_notified_by_val(), ToNotified::Dealloc);
    }

    #[test]
    fn shutdown_claims_idle_tasks_only() {
        let s = State::new();
        assert_eq!(run(&s), ToRunning::Success);
        assert!(!s.transition_to_shutdown());
        assert_eq!(s.transition_to_idle(), ToIdle::Cancelled);
        let s = State::new();
        assert!(s.transition_to_shutdown());
        assert!(s.load().is_running() && s.load().is_cancelled());
    }

    #[test]
    fn claiming_running_records_the_last_worker() {
        let s = State::new();
        assert_eq!(s.load().last_worker(), NO_WORKER);
        assert_eq!(s.transition_to_running(3), (ToRunning::Success, NO_WORKER));
        assert_eq!(s.load().last_worker(), 3);
        assert_eq!(s.transition_to_notified_by_ref(), ToNotified::DoNothing);
        assert_eq!(s.transition_to_idle(), ToIdle::OkNotified);
        assert_eq!(s.transition_to_running(7), (ToRunning::Success, 3));
        assert_eq!(s.load().last_worker(), 7);
        // Giving RUNNING up (context busy) keeps the field.
        s.transition_running_to_notified();
        assert_eq!(s.transition_to_running(7), (ToRunning::Success, 7));
        assert_eq!(s.transition_to_idle(), ToIdle::Ok);
        // A refused claim (the task is running) neither reads nor writes it.
        assert_eq!(s.transition_to_notified_by_ref(), ToNotified::Submit);
        assert!(s.transition_to_shutdown());
        assert_eq!(s.transition_to_running(9), (ToRunning::Failed, NO_WORKER));
        assert_eq!(s.load().last_worker(), 7);
        // The largest worker id round-trips; larger indices are clamped.
        assert_eq!(worker_id(5), 5);
        assert_eq!(worker_id(usize::MAX), MAX_WORKER_ID);
        let s = State::new();
        assert_eq!(
            s.transition_to_running(worker_id(1 << 20)),
            (ToRunning::Success, NO_WORKER)
        );
        assert_eq!(s.load().last_worker(), MAX_WORKER_ID);
        assert_eq!(s.load().ref_count(), 3);
    }

    #[test]
    fn reference_counting_leaves_the_worker_bits_alone() {
        let s = State::new();
        assert_eq!(s.transition_to_running(MAX_WORKER_ID).0, ToRunning::Success);
        let before = s.load();
        for _ in 0..1000 {
            s.ref_inc();
        }
        assert_eq!(s.load().ref_count(), 1003);
        assert!(!s.transition_to_terminal(1000));
        let after = s.load();
        assert_eq!(after, before);
        assert_eq!(after.last_worker(), MAX_WORKER_ID);
        // The count's field is full well before it could carry.
        let mut full = Snapshot(before.0 & !REF_MASK);
        full.0 |= (REF_COUNT_LIMIT - 1) << REF_SHIFT;
        full.ref_inc();
        assert_eq!(full.ref_count(), REF_COUNT_LIMIT);
        assert_eq!(full.last_worker(), MAX_WORKER_ID);
        assert_eq!(full.0 & FLAGS, before.0 & FLAGS);
        let overflow = std::panic::catch_unwind(move || {
            let mut full = full;
            full.ref_inc();
        });
        assert!(overflow.is_err());
    }

    #[test]
    fn a_handle_that_took_the_output_drops_nothing() {
        let s = State::new();
        assert_eq!(run(&s), ToRunning::Success);
        assert!(s.transition_to_complete().is_join_interested());
        // Dropping the handle after it took the output drops nothing.
        let d = s.transition_to_join_handle_dropped(true);
        assert!(!d.drop_output && d.drop_waker);
        assert!(!s.transition_to_terminal(1));
    }
}
