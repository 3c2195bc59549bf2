//! Who is parked, who is searching: the counters of the parking protocol
//! described in `README.md` next to this file.

use crate::sync::{AtomicUsize, Mutex, Ordering};

const SEARCH_MASK: usize = 0xFFFF;
const UNPARK_ONE: usize = 1 << 16;

pub(crate) struct Idle {
    /// Low 16 bits: searching workers; above: unparked workers.
    state: AtomicUsize,
    num_workers: usize,
    /// Indices of the parked workers. Changed only together with `state`,
    /// under this lock.
    sleepers: Mutex<Vec<usize>>,
}

fn searching(state: usize) -> usize {
    state & SEARCH_MASK
}

fn unparked(state: usize) -> usize {
    state / UNPARK_ONE
}

impl Idle {
    pub(crate) fn new(num_workers: usize) -> Idle {
        assert!(num_workers < SEARCH_MASK, "baton: too many workers");
        Idle {
            state: AtomicUsize::new(num_workers * UNPARK_ONE),
            num_workers,
            sleepers: Mutex::new(Vec::with_capacity(num_workers)),
        }
    }

    /// Nobody is searching and somebody is parked. The caller has issued a
    /// SeqCst fence after publishing its work.
    fn should_wake(&self) -> bool {
        let state = self.state.load(Ordering::SeqCst);
        searching(state) == 0 && unparked(state) < self.num_workers
    }

    /// A cheap, possibly stale hint that some worker is parked and none is
    /// searching. Only for pushes to the pusher's *own* queue, where a
    /// missed wake-up costs parallelism, never liveness (the pusher is awake
    /// and will run the task itself).
    #[inline]
    pub(crate) fn may_need_wake(&self) -> bool {
        let state = self.state.load(Ordering::Relaxed);
        searching(state) == 0 && unparked(state) < self.num_workers
    }

    /// After new work was pushed: the index of a parked worker to unpark (it
    /// is counted as unparked and searching from now on), if one should be.
    #[inline]
    pub(crate) fn worker_to_notify(&self) -> Option<usize> {
        if !self.should_wake() {
            return None;
        }
        let mut sleepers = self.sleepers.lock();
        if !self.should_wake() {
            return None;
        }
        let index = sleepers.pop()?;
        self.state.fetch_add(UNPARK_ONE + 1, Ordering::SeqCst);
        Some(index)
    }

    /// A worker found nothing and may look into the other workers' queues.
    /// At most half of the workers search at a time.
    pub(crate) fn transition_worker_to_searching(&self) -> bool {
        let state = self.state.load(Ordering::SeqCst);
        if 2 * searching(state) >= self.num_workers.max(2) {
            return false;
        }
        self.state.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// A searching worker found a task. True if it was the last searcher
    /// (it must then wake another worker, as there may be more work).
    pub(crate) fn transition_worker_from_searching(&self) -> bool {
        let prev = self.state.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(searching(prev) > 0);
        searching(prev) == 1
    }

    /// The worker is about to park. Returns whether it was the last searcher.
    pub(crate) fn transition_worker_to_parked(&self, index: usize, is_searching: bool) -> bool {
        let mut sleepers = self.sleepers.lock();
        let dec = UNPARK_ONE + usize::from(is_searching);
        let prev = self.state.fetch_sub(dec, Ordering::SeqCst);
        sleepers.push(index);
        is_searching && searching(prev) == 1
    }

    /// The worker woke up. If it is still listed as parked (a timeout, a
    /// spurious wake-up, or shutdown), it unlists itself and returns false;
    /// otherwise a notifier unlisted it and counted it as searching: true.
    pub(crate) fn transition_worker_from_parked(&self, index: usize) -> bool {
        let mut sleepers = self.sleepers.lock();
        match sleepers.iter().position(|&i| i == index) {
            Some(pos) => {
                sleepers.swap_remove(pos);
                self.state.fetch_add(UNPARK_ONE, Ordering::SeqCst);
                false
            }
            None => true,
        }
    }
}
