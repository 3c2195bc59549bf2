//! The multi-threaded work-stealing scheduler; the protocol is in
//! `README.md` next to this file.
//!
//! Files, bottom up: `queue.rs`, `idle.rs`, `lifo.rs` and `park.rs` are
//! leaves; this file holds [`Shared`], the state of one runtime, and what
//! needs no knowledge of the calling thread; `worker.rs` is the run loop
//! and the thread's current worker; `schedule.rs` decides where a task
//! goes (the [`Schedule`](crate::task::Schedule) implementation, and
//! spawn). The task core (`task/`) knows none of these.

mod idle;
mod lifo;
pub(crate) mod park;
mod queue;
mod schedule;
pub(crate) mod worker;

use std::sync::Arc;
use std::time::Instant;

use crossbeam_utils::CachePadded;

use crate::blocking::BlockingPool;
use crate::driver::Driver;
use crate::metrics::Metrics;
use crate::task::{Notified, OwnedTasks};
use baton_sync::{AtomicBool, AtomicU64, Mutex, Ordering, fence};
use idle::Idle;
use lifo::LifoSlot;
use park::{Park, WorkerParker};
use queue::{Injector, Local, Stealer};

/// Counters written by one worker only.
#[derive(Default)]
struct WorkerStats {
    polls: AtomicU64,
    steals: AtomicU64,
    migrations: AtomicU64,
    spawned: AtomicU64,
    completed: AtomicU64,
    parks: AtomicU64,
}

/// What other threads see of a worker.
struct Remote {
    stealer: Stealer<Notified>,
    /// The worker's LIFO slot (`lifo.rs`): its owner's, but rescued by other
    /// workers if the owner is stuck in a poll. On a cache line of its own:
    /// its owner writes it on nearly every wake, while other workers read
    /// the fields around it to steal and to unpark.
    lifo: CachePadded<LifoSlot>,
    /// Where the worker sleeps when idle (`park.rs`).
    parker: WorkerParker,
    stats: CachePadded<WorkerStats>,
}

/// The state shared by a runtime's workers, handles and tasks; the tasks'
/// [`Schedule`](crate::task::Schedule) implementation (`schedule.rs`).
///
/// Its fields are private to `scheduler/`; the rest of the crate spawns,
/// reads metrics, reaches the timer and shuts down through the methods.
pub(crate) struct Shared {
    injector: Injector<Notified>,
    remotes: Box<[Remote]>,
    /// Each worker's own queue while no thread runs that worker.
    locals: Box<[Mutex<Option<Local<Notified>>>]>,
    idle: Idle,
    /// Every live task (`task/list.rs`), for shutdown.
    owned: OwnedTasks,
    /// Tasks whose shared context was entered elsewhere when they were due.
    deferred: Mutex<Vec<Notified>>,
    has_deferred: AtomicBool,
    /// The I/O reactor and timers, driven by parked workers (`driver.rs`).
    driver: Arc<Driver>,
    shutdown: AtomicBool,
    /// Set once the workers are gone: the injector accepts nothing more.
    closed: AtomicBool,
    remote_spawned: AtomicU64,
    remote_completed: AtomicU64,
    /// The elastic pool of `spawn_blocking` (`blocking/`).
    blocking: BlockingPool,
}

impl Shared {
    /// The state of a runtime of `workers` workers (not started here).
    pub(crate) fn new(workers: usize, blocking: BlockingPool) -> std::io::Result<Arc<Shared>> {
        let driver = Driver::new(workers + 1)?;
        let locals: Vec<Local<Notified>> = (0..workers).map(|_| Local::new()).collect();
        let remotes = locals
            .iter()
            .map(|local| Remote {
                stealer: local.stealer(),
                lifo: CachePadded::new(LifoSlot::new()),
                parker: WorkerParker::new(driver.clone()),
                stats: CachePadded::new(WorkerStats::default()),
            })
            .collect();
        Ok(Arc::new(Shared {
            injector: Injector::new(),
            remotes,
            locals: locals.into_iter().map(|l| Mutex::new(Some(l))).collect(),
            idle: Idle::new(workers),
            owned: OwnedTasks::new(workers),
            deferred: Mutex::new(Vec::new()),
            has_deferred: AtomicBool::new(false),
            driver,
            shutdown: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            remote_spawned: AtomicU64::new(0),
            remote_completed: AtomicU64::new(0),
            blocking,
        }))
    }

    #[inline]
    fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// Number of workers.
    pub(crate) fn workers(&self) -> usize {
        self.remotes.len()
    }

    /// The runtime's I/O reactor and timers.
    pub(crate) fn driver(&self) -> &Arc<Driver> {
        &self.driver
    }

    /// The timer shard for the calling thread: its worker's, if it is one
    /// of this runtime's workers.
    pub(crate) fn timer_shard(&self) -> usize {
        let worker = self.with_own_worker(|worker| worker.map(|w| w.index()));
        self.driver.timers().shard_for(worker)
    }

    /// The runtime's blocking pool.
    pub(crate) fn blocking(&self) -> &BlockingPool {
        &self.blocking
    }

    /// Pushes `task` to the global queue and wakes a parked worker if
    /// needed; drops it if the runtime is shut down.
    fn schedule_remote(&self, task: Notified) {
        if self.closed.load(Ordering::Acquire) {
            return drop(task);
        }
        self.injector.push(task);
        self.notify_parked();
        // `notify_parked` fenced: either the shutdown's drain sees our push,
        // or we see `closed` and drain it ourselves.
        if self.closed.load(Ordering::SeqCst) {
            while let Some(task) = self.injector.pop() {
                drop(task);
            }
        }
    }

    /// Parks `task`, whose shared context is entered elsewhere, on the
    /// deferred list; a worker retries it later (`Worker::retry_deferred`).
    fn push_deferred(&self, task: Notified) {
        let mut deferred = self.deferred.lock();
        deferred.push(task);
        self.has_deferred.store(true, Ordering::Relaxed);
        drop(deferred);
        if self.closed.load(Ordering::SeqCst) {
            drop(std::mem::take(&mut *self.deferred.lock()));
        }
    }

    /// Wakes a parked worker if work was just pushed and nobody is
    /// searching (see `README.md`).
    #[inline]
    fn notify_parked(&self) {
        fence(Ordering::SeqCst);
        if let Some(index) = self.idle.worker_to_notify() {
            self.remotes[index].parker.unpark();
        }
    }

    /// `notify_parked` for a push to the calling worker's own queue: skips
    /// the fence when a relaxed read says nobody needs waking (see
    /// `Idle::may_need_wake`).
    #[inline]
    fn notify_parked_local(&self) {
        if self.idle.may_need_wake() {
            self.notify_parked();
        }
    }

    /// After a put into the calling worker's empty LIFO slot: wakes a
    /// parked worker if one sleeps without a deadline while nobody watches
    /// or searches (see `README.md`, "The LIFO slot and stranded tasks").
    #[inline]
    fn notify_for_lifo(&self) {
        if self.idle.lifo_needs_watcher() {
            self.notify_parked();
        }
    }

    /// Whether any queue holds a task (step 2 of parking).
    fn has_work(&self) -> bool {
        !self.injector.is_empty() || self.remotes.iter().any(|r| !r.stealer.is_empty())
    }

    /// Asks every worker to stop.
    pub(crate) fn begin_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        for remote in self.remotes.iter() {
            remote.parker.unpark();
        }
    }

    /// After the workers stopped: drop the queued references and cancel
    /// every remaining task inside its context.
    pub(crate) fn finish_shutdown(&self, deadline: Option<Instant>) {
        self.closed.store(true, Ordering::SeqCst);
        fence(Ordering::SeqCst);
        while let Some(task) = self.injector.pop() {
            drop(task);
        }
        drop(std::mem::take(&mut *self.deferred.lock()));
        for local in self.locals.iter() {
            if let Some(queue) = &*local.lock() {
                while let Some(task) = queue.pop() {
                    drop(task);
                }
            }
        }
        for remote in self.remotes.iter() {
            drop(remote.lifo.take());
        }
        self.owned.close_and_shutdown_all(deadline);
        // After the tasks: their sockets deregistered as they were dropped;
        // anything still registered (held outside the runtime) now fails.
        self.driver.shutdown();
        // Last: a running closure may be waiting for a task just cancelled,
        // or for a socket or timer, which now fail rather than hang.
        self.blocking.shutdown(deadline);
    }

    /// A snapshot of the counters.
    pub(crate) fn metrics(&self) -> Metrics {
        let mut m = Metrics {
            workers: self.remotes.len(),
            spawned: self.remote_spawned.load(Ordering::Relaxed),
            completed: self.remote_completed.load(Ordering::Relaxed),
            ..Metrics::default()
        };
        for r in self.remotes.iter() {
            let s = &r.stats;
            m.polls += s.polls.load(Ordering::Relaxed);
            m.steals += s.steals.load(Ordering::Relaxed);
            m.migrations += s.migrations.load(Ordering::Relaxed);
            m.spawned += s.spawned.load(Ordering::Relaxed);
            m.completed += s.completed.load(Ordering::Relaxed);
            m.parks += s.parks.load(Ordering::Relaxed);
        }
        m
    }
}
