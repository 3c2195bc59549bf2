//! A worker: its run loop, stealing, parking, and watching other workers'
//! LIFO slots for stranded tasks.
//!
//! A `Worker` lives on the stack of the thread that runs it; a thread-local
//! here points to it while the loop runs ([`with_current`]), so wakes and
//! spawns on that thread reach its queue without synchronisation.

use std::cell::Cell;
use std::ptr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::coop;
use crate::scheduler::Shared;
use crate::scheduler::lifo::LifoSlot;
use crate::scheduler::park::Park;
use crate::scheduler::queue::Local;
use crate::task::{NO_WORKER, Notified, RawTask, worker_id};
use baton_sync::{Ordering, baton_thread_local, fence};

baton_thread_local! {
    static CURRENT: Cell<*const Worker> = Cell::new(ptr::null());
}

/// Runs `f` with the worker running on this thread, if any.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(Option<&Worker>) -> R) -> R {
    let worker = CURRENT.try_with(Cell::get).unwrap_or(ptr::null());
    // SAFETY: the pointer is set by `CurrentGuard` for as long as the worker
    // (on this thread's stack) is borrowed by its run loop.
    f(unsafe { worker.as_ref() })
}

/// Marks this thread as running a worker until dropped.
struct CurrentGuard(());

impl CurrentGuard {
    fn enter(worker: &Worker) -> CurrentGuard {
        CURRENT.with(|w| {
            assert!(
                w.get().is_null(),
                "baton: a thread can run only one worker at a time"
            );
            w.set(worker);
        });
        CurrentGuard(())
    }
}

impl Drop for CurrentGuard {
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|w| w.set(ptr::null()));
    }
}

/// Every this many ticks the injector is checked first (fairness).
const GLOBAL_QUEUE_INTERVAL: u32 = 31;
/// Batches (of up to 32 tasks) taken from the injector at those ticks.
const GLOBAL_QUEUE_BATCHES: usize = 8;
/// Rounds of 16 spin hints a worker watches the queues before parking.
const SPIN_ROUNDS: u32 = 16;
/// Every this many ticks: retry deferred tasks, and turn the driver without
/// blocking, so I/O and timers are seen while no worker is idle (tokio: 61).
const MAINTENANCE_INTERVAL: u32 = 61;
/// Consecutive polls from the LIFO slot before its task goes to the queue.
const MAX_LIFO_POLLS: u8 = 3;
/// How long a worker sleeps before retrying tasks whose context was busy:
/// doubling from the first to the last while nothing else runs.
const DEFER_BACKOFF_MIN: Duration = Duration::from_micros(100);
const DEFER_BACKOFF_MAX: Duration = Duration::from_millis(5);
/// How long a parked worker sleeps, while another worker is busy, before
/// it looks at the LIFO slots again (README.md, "The LIFO slot and stranded
/// tasks"): doubling from the first to the last while it rescues nothing.
const WATCH_MIN: Duration = Duration::from_micros(200);
const WATCH_MAX: Duration = Duration::from_millis(5);

/// One worker of a runtime, on the stack of the thread that runs it.
pub(crate) struct Worker {
    index: usize,
    shared: Arc<Shared>,
    queue: Local<Notified>,
    lifo_streak: Cell<u8>,
    tick: Cell<u32>,
    searching: Cell<bool>,
    rng: Cell<u32>,
    defer_backoff: Cell<Duration>,
    watch_period: Cell<Duration>,
    /// Set while this worker is parked: wakes on its thread then come from
    /// its own driver turn (`driver.rs`), and it runs them right after.
    parked: Cell<bool>,
}

/// A task seen in another worker's LIFO slot by a parking worker.
#[derive(Clone, Copy)]
struct SeenOccupant {
    worker: usize,
    /// Compared, never dereferenced (see `lifo.rs`).
    occupant: RawTask,
    /// That worker's poll count, read before the slot.
    polls: u64,
}

/// How the loop ends.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Park when idle; return at shutdown.
    UntilShutdown,
    /// Return as soon as no task can be found (loom models, tests).
    UntilIdle,
}

impl Worker {
    /// Runs worker `index` of `shared` on the calling thread.
    pub(crate) fn run(shared: &Arc<Shared>, index: usize, mode: Mode) {
        let queue = shared.locals[index]
            .lock()
            .take()
            .unwrap_or_else(|| panic!("baton: worker {index} is already running"));
        let worker = Worker {
            index,
            shared: shared.clone(),
            queue,
            lifo_streak: Cell::new(0),
            tick: Cell::new(0),
            searching: Cell::new(false),
            rng: Cell::new((index as u32).wrapping_mul(0x9E37_79B9) | 1),
            defer_backoff: Cell::new(DEFER_BACKOFF_MIN),
            watch_period: Cell::new(WATCH_MIN),
            parked: Cell::new(false),
        };
        let guard = CurrentGuard::enter(&worker);
        worker.run_loop(mode);
        drop(guard);
        if worker.searching.replace(false) && shared.idle.transition_worker_from_searching() {
            shared.notify_parked();
        }
        let Worker { queue, .. } = worker;
        let lifo = &shared.remotes[index].lifo;
        if mode == Mode::UntilIdle && !shared.is_shutdown() {
            if let Some(task) = lifo.take() {
                queue.push(task);
            }
            *shared.locals[index].lock() = Some(queue);
        } else {
            // Shutdown: these tasks will be cancelled through the owned
            // list; drop the queue's references now (the thread-local is
            // cleared, so any wake this causes goes to the closed injector).
            drop(lifo.take());
            while let Some(task) = queue.pop() {
                drop(task);
            }
            *shared.locals[index].lock() = Some(queue);
        }
    }

    fn run_loop(&self, mode: Mode) {
        loop {
            if self.shared.is_shutdown() {
                return;
            }
            let tick = self.tick.get();
            self.tick.set(tick.wrapping_add(1));
            if tick % MAINTENANCE_INTERVAL == 0 {
                self.retry_deferred();
                if tick != 0 {
                    self.shared.driver().poll_now();
                }
            }
            if let Some(task) = self.next_task(tick) {
                self.run_task(task);
                continue;
            }
            if let Some(task) = self.search() {
                self.run_task(task);
                continue;
            }
            if mode == Mode::UntilIdle {
                return;
            }
            if self.spin_for_work() {
                continue;
            }
            self.park();
        }
    }

    fn next_task(&self, tick: u32) -> Option<Notified> {
        if tick % GLOBAL_QUEUE_INTERVAL == 0 {
            // Take a batch, not one: under a steady local load the injector
            // would otherwise drain at one task per interval.
            if let Some(task) = self.shared.injector.steal_batch_and_pop(&self.queue) {
                for _ in 1..GLOBAL_QUEUE_BATCHES {
                    if !self.shared.injector.steal_batch(&self.queue) {
                        break;
                    }
                }
                return Some(task);
            }
        }
        if let Some(task) = self.lifo().take() {
            let streak = self.lifo_streak.get();
            if streak < MAX_LIFO_POLLS {
                self.lifo_streak.set(streak + 1);
                return Some(task);
            }
            self.queue.push(task);
            self.shared.notify_parked_local();
        }
        self.lifo_streak.set(0);
        if let Some(task) = self.queue.pop() {
            return Some(task);
        }
        self.shared.injector.steal_batch_and_pop(&self.queue)
    }

    #[inline]
    fn lifo(&self) -> &LifoSlot {
        &self.shared.remotes[self.index].lifo
    }

    fn next_random(&self, n: usize) -> usize {
        // xorshift32
        let mut x = self.rng.get();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng.set(x);
        (x as usize) % n
    }

    /// Steals from other workers (if allowed to search).
    fn search(&self) -> Option<Notified> {
        let remotes = &self.shared.remotes;
        let n = remotes.len();
        if n > 1 {
            if !self.searching.get() {
                if !self.shared.idle.transition_worker_to_searching() {
                    return None;
                }
                self.searching.set(true);
            }
            let start = self.next_random(n);
            for i in 0..n {
                let victim = (start + i) % n;
                if victim == self.index {
                    continue;
                }
                if let Some(task) = remotes[victim].stealer.steal_batch_and_pop(&self.queue) {
                    let stats = &remotes[self.index].stats;
                    bump(&stats.steals);
                    return Some(task);
                }
            }
        }
        self.shared.injector.steal_batch_and_pop(&self.queue)
    }

    fn run_task(&self, task: Notified) {
        if self.searching.replace(false) && self.shared.idle.transition_worker_from_searching() {
            // The last searcher found work: there may be more; wake another.
            self.shared.notify_parked();
        }
        let stats = &self.shared.remotes[self.index].stats;
        bump(&stats.polls);
        // Claiming RUNNING records us as the task's last worker and tells us
        // the one before (indices from `MAX_WORKER_ID` on share one id, so
        // migrations among those are not counted).
        let me = worker_id(self.index);
        let prev = coop::with_budget(|| task.run(me));
        if prev != me && prev != NO_WORKER {
            bump(&stats.migrations);
        }
    }

    /// Moves tasks whose context was busy back into the queue.
    fn retry_deferred(&self) {
        if !self.shared.has_deferred.load(Ordering::Relaxed) {
            return;
        }
        let tasks = {
            let mut deferred = self.shared.deferred.lock();
            self.shared.has_deferred.store(false, Ordering::Relaxed);
            std::mem::take(&mut *deferred)
        };
        for task in tasks {
            self.queue.push(task);
        }
    }

    /// Before parking, watch the queues for a few microseconds: work that
    /// arrives meanwhile (the common case while other workers spawn) is
    /// picked up without a futex sleep here and a futex wake on the
    /// spawner's side. Bounded, so an idle runtime still parks at once.
    /// Only while another worker is awake to push that work: when the
    /// others sleep (one of them in the driver, waiting for I/O), new work
    /// comes with a wake-up anyway, and spinning would only burn the CPU
    /// that the I/O path needs (it was 8% of an echo server's time).
    fn spin_for_work(&self) -> bool {
        if cfg!(baton_loom)
            || self.shared.remotes.len() == 1
            || !self.shared.idle.another_unparked()
        {
            return false;
        }
        for _ in 0..SPIN_ROUNDS {
            for _ in 0..16 {
                std::hint::spin_loop();
            }
            if self.shared.has_work() || self.shared.is_shutdown() {
                return true;
            }
        }
        false
    }

    /// The sleeping half of the protocol in `README.md`.
    fn park(&self) {
        let shared = &*self.shared;
        let was_searching = self.searching.replace(false);
        shared
            .idle
            .transition_worker_to_parked(self.index, was_searching);
        fence(Ordering::SeqCst);
        if shared.has_work() {
            shared.notify_parked();
        }
        // While another worker is busy (it may be stuck in a poll with a
        // task in its LIFO slot), or a slot is occupied, watch the slots:
        // sleep with a deadline, then look again (README.md, "The LIFO slot
        // and stranded tasks").
        let deferred = shared.has_deferred.load(Ordering::Relaxed);
        let (mut occupied, mut watching) = self.look_for_watch();
        // About to sleep for good (nothing to watch, no deferred tasks):
        // say so, then look once more, so that a put that this look misses
        // sees the count and wakes a watcher (README.md).
        let mut indefinite = false;
        if !watching && !deferred {
            shared.idle.begin_indefinite();
            (occupied, watching) = self.look_for_watch();
            if watching {
                shared.idle.end_indefinite();
            } else {
                indefinite = true;
            }
        }
        if watching {
            shared.idle.start_watching();
        }
        let mut deadline = deferred.then(|| {
            let backoff = self.defer_backoff.get();
            self.defer_backoff.set((backoff * 2).min(DEFER_BACKOFF_MAX));
            Instant::now() + backoff
        });
        if !deferred {
            self.defer_backoff.set(DEFER_BACKOFF_MIN);
        }
        if watching {
            let period = self.watch_period.get();
            self.watch_period.set((period * 2).min(WATCH_MAX));
            let watch = Instant::now() + period;
            deadline = Some(deadline.map_or(watch, |d| d.min(watch)));
        }
        bump(&shared.remotes[self.index].stats.parks);
        if !shared.is_shutdown() {
            self.parked.set(true);
            shared.remotes[self.index].parker.park(deadline);
            self.parked.set(false);
        }
        let picked = shared.idle.transition_worker_from_parked(self.index);
        self.searching.set(picked);
        // The driver turn woke more than this worker will run next (one in
        // the LIFO slot): bring in help, once, as tokio does.
        if !self.queue.is_empty() {
            shared.notify_parked();
        }
        if watching {
            shared.idle.stop_watching();
        }
        if indefinite {
            shared.idle.end_indefinite();
        }
        if let Some(seen) = occupied {
            let remote = &shared.remotes[seen.worker];
            // Still there, and its worker has not started a poll since: it
            // is stuck in the one it was in.
            if remote.stats.polls.load(Ordering::Relaxed) == seen.polls {
                if let Some(task) = remote.lifo.rescue(seen.occupant) {
                    bump(&shared.remotes[self.index].stats.steals);
                    self.queue.push(task);
                    self.watch_period.set(WATCH_MIN);
                }
            }
        }
        if deferred {
            self.retry_deferred();
        }
    }

    /// A parking worker's look (README.md, "The LIFO slot and stranded
    /// tasks"): another worker's occupied LIFO slot, if any, and whether to
    /// watch — a slot is occupied, or another worker is unparked.
    fn look_for_watch(&self) -> (Option<SeenOccupant>, bool) {
        let remotes = &self.shared.remotes;
        let occupied = remotes.iter().enumerate().find_map(|(i, remote)| {
            if i == self.index {
                return None;
            }
            // The poll count first: if it is unchanged when we come back,
            // the worker has been in one poll since before we saw the task.
            let polls = remote.stats.polls.load(Ordering::Relaxed);
            let occupant = remote.lifo.peek()?;
            Some(SeenOccupant {
                worker: i,
                occupant,
                polls,
            })
        });
        let watch = occupied.is_some() || self.shared.idle.others_unparked();
        (occupied, watch)
    }

    /// This worker's index in its runtime.
    #[inline]
    pub(crate) fn index(&self) -> usize {
        self.index
    }

    /// The runtime this worker belongs to.
    #[inline]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// A wake on this worker's thread.
    #[inline]
    pub(super) fn schedule_local(&self, task: Notified, is_yield: bool) {
        if self.parked.get() {
            // Woken by this worker's own driver turn (an I/O event or a
            // timer): it runs these as soon as the turn ends, so nothing can
            // be stranded in its LIFO slot, and `park` wakes a helper once
            // afterwards if the queue holds more. Waking one per event
            // would cost a futex wake and a context switch per message.
            if let Some(prev) = self.lifo().put(task) {
                self.queue.push(prev);
            }
            return;
        }
        if is_yield {
            self.queue.push(task);
        } else {
            match self.lifo().put(task) {
                None => return self.shared.notify_for_lifo(),
                Some(prev) => self.queue.push(prev),
            }
        }
        self.shared.notify_parked_local();
    }

    /// A spawn on this worker's thread: like a wake, into the LIFO slot, so
    /// that a task that spawns and then awaits (or a chain of tasks, each
    /// spawning the next) runs the child next, on this worker, while its
    /// data is in cache — rather than in the queue, from which a worker
    /// woken for it steals it to another core.
    #[inline]
    pub(super) fn spawn_local(&self, task: Notified) {
        bump(&self.shared.remotes[self.index].stats.spawned);
        self.schedule_local(task, false);
    }

    /// A task completed on this worker's thread.
    pub(super) fn count_completed(&self) {
        bump(&self.shared.remotes[self.index].stats.completed);
    }
}

/// A counter written only by its worker: a load and a store, no RMW.
#[inline]
fn bump(counter: &baton_sync::AtomicU64) {
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}
