//! Who is parked, who is searching: the counters of the parking protocol
//! described in `README.md` next to this file.

use baton_sync::{AtomicUsize, Mutex, Ordering};

const SEARCH_MASK: usize = 0xFFFF;
const UNPARK_ONE: usize = 1 << 16;

pub(super) struct Idle {
    /// Low 16 bits: searching workers; above: unparked workers.
    state: AtomicUsize,
    num_workers: usize,
    /// Indices of the parked workers. Changed only together with `state`,
    /// under this lock.
    sleepers: Mutex<Vec<usize>>,
    /// Parked workers that will wake by a deadline to look at the LIFO
    /// slots (`README.md`, "The LIFO slot and stranded tasks").
    watching: AtomicUsize,
    /// Parked workers that sleep without a deadline.
    indefinite: AtomicUsize,
}

fn searching(state: usize) -> usize {
    state & SEARCH_MASK
}

fn unparked(state: usize) -> usize {
    state / UNPARK_ONE
}

impl Idle {
    pub(super) fn new(num_workers: usize) -> Idle {
        assert!(num_workers < SEARCH_MASK, "baton: too many workers");
        Idle {
            state: AtomicUsize::new(num_workers * UNPARK_ONE),
            num_workers,
            sleepers: Mutex::new(Vec::with_capacity(num_workers)),
            watching: AtomicUsize::new(0),
            indefinite: AtomicUsize::new(0),
        }
    }

    /// After a put into an empty LIFO slot: true if a worker sleeps
    /// without a deadline and nobody searches or watches, so that a parked
    /// worker must be woken to watch the slot. SeqCst loads, after the put's
    /// SeqCst store (the argument is in the README). While any worker is
    /// busy, parking workers watch rather than sleep for good, so this is
    /// one load of a counter that stays zero.
    #[inline]
    pub(super) fn lifo_needs_watcher(&self) -> bool {
        self.indefinite.load(Ordering::SeqCst) > 0
            && self.watching.load(Ordering::SeqCst) == 0
            && searching(self.state.load(Ordering::SeqCst)) == 0
    }

    /// A parking worker is about to sleep without a deadline (it then looks
    /// at the slots and the other workers once more).
    pub(super) fn begin_indefinite(&self) {
        self.indefinite.fetch_add(1, Ordering::SeqCst);
    }

    /// It woke up, or decided to watch after all.
    pub(super) fn end_indefinite(&self) {
        let prev = self.indefinite.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(prev > 0);
    }

    /// Whether any other worker is unparked (called by a parking worker,
    /// after its own decrement).
    pub(super) fn others_unparked(&self) -> bool {
        unparked(self.state.load(Ordering::SeqCst)) > 0
    }

    /// Called by an unparked worker: whether another worker is unparked too
    /// (running tasks, so it may push work this one could take).
    pub(super) fn another_unparked(&self) -> bool {
        unparked(self.state.load(Ordering::Relaxed)) > 1
    }

    /// A worker about to park will wake by a deadline to watch LIFO slots.
    pub(super) fn start_watching(&self) {
        self.watching.fetch_add(1, Ordering::SeqCst);
    }

    /// The watching worker woke up.
    pub(super) fn stop_watching(&self) {
        let prev = self.watching.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(prev > 0);
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
    pub(super) fn may_need_wake(&self) -> bool {
        let state = self.state.load(Ordering::Relaxed);
        searching(state) == 0 && unparked(state) < self.num_workers
    }

    /// After new work was pushed: the index of a parked worker to unpark (it
    /// is counted as unparked and searching from now on), if one should be.
    #[inline]
    pub(super) fn worker_to_notify(&self) -> Option<usize> {
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
    pub(super) fn transition_worker_to_searching(&self) -> bool {
        let state = self.state.load(Ordering::SeqCst);
        if 2 * searching(state) >= self.num_workers.max(2) {
            return false;
        }
        self.state.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// A searching worker found a task. True if it was the last searcher
    /// (it must then wake another worker, as there may be more work).
    pub(super) fn transition_worker_from_searching(&self) -> bool {
        let prev = self.state.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(searching(prev) > 0);
        searching(prev) == 1
    }

    /// The worker is about to park. Returns whether it was the last searcher.
    pub(super) fn transition_worker_to_parked(&self, index: usize, is_searching: bool) -> bool {
        let mut sleepers = self.sleepers.lock();
        let dec = UNPARK_ONE + usize::from(is_searching);
        let prev = self.state.fetch_sub(dec, Ordering::SeqCst);
        sleepers.push(index);
        is_searching && searching(prev) == 1
    }

    /// The worker woke up. If it is still listed as parked (a timeout, a
    /// spurious wake-up, or shutdown), it unlists itself and returns false;
    /// otherwise a notifier unlisted it and counted it as searching: true.
    pub(super) fn transition_worker_from_parked(&self, index: usize) -> bool {
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
