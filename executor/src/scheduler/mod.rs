//! The multi-threaded work-stealing scheduler; the protocol is in
//! `README.md` next to this file.

pub(crate) mod idle;
pub(crate) mod lifo;
pub(crate) mod owned;
pub(crate) mod queue;
pub(crate) mod worker;

use std::future::Future;
use std::ptr::{self, NonNull};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_utils::CachePadded;

use crate::current;
use crate::metrics::Metrics;
use crate::sync::{AtomicBool, AtomicU64, Mutex, Ordering, Parker, fence};
use crate::task::raw::{Header, TaskContext};
use crate::task::{Cell, JoinHandle, Notified};
use crate::time::Driver;
use idle::Idle;
use lifo::LifoSlot;
use owned::OwnedTasks;
use queue::{Injector, Local, Stealer};

/// Counters written by one worker only.
#[derive(Default)]
pub(crate) struct WorkerStats {
    pub(crate) polls: AtomicU64,
    pub(crate) steals: AtomicU64,
    pub(crate) migrations: AtomicU64,
    pub(crate) spawned: AtomicU64,
    pub(crate) completed: AtomicU64,
    pub(crate) parks: AtomicU64,
}

/// What other threads see of a worker.
pub(crate) struct Remote {
    pub(crate) stealer: Stealer<Notified>,
    /// The worker's LIFO slot (`lifo.rs`): its owner's, but rescued by other
    /// workers if the owner is stuck in a poll. On a cache line of its own:
    /// its owner writes it on nearly every wake, while other workers read
    /// the fields around it to steal and to unpark.
    pub(crate) lifo: CachePadded<LifoSlot>,
    pub(crate) parker: Parker,
    pub(crate) stats: CachePadded<WorkerStats>,
}

/// The state shared by a runtime's workers, handles and tasks.
pub(crate) struct Shared {
    pub(crate) injector: Injector<Notified>,
    pub(crate) remotes: Box<[Remote]>,
    /// Each worker's own queue while no thread runs that worker.
    pub(crate) locals: Box<[Mutex<Option<Local<Notified>>>]>,
    pub(crate) idle: Idle,
    pub(crate) owned: OwnedTasks,
    /// Tasks whose shared context was entered elsewhere when they were due.
    pub(crate) deferred: Mutex<Vec<Notified>>,
    pub(crate) has_deferred: AtomicBool,
    pub(crate) timer: Driver,
    shutdown: AtomicBool,
    /// Set once the workers are gone: the injector accepts nothing more.
    closed: AtomicBool,
    remote_spawned: AtomicU64,
    remote_completed: AtomicU64,
}

impl Shared {
    pub(crate) fn new(workers: usize, timer_thread_name: String) -> Arc<Shared> {
        let locals: Vec<Local<Notified>> = (0..workers).map(|_| Local::new()).collect();
        let remotes = locals
            .iter()
            .map(|local| Remote {
                stealer: local.stealer(),
                lifo: CachePadded::new(LifoSlot::new()),
                parker: Parker::new(),
                stats: CachePadded::new(WorkerStats::default()),
            })
            .collect();
        Arc::new(Shared {
            injector: Injector::new(),
            remotes,
            locals: locals.into_iter().map(|l| Mutex::new(Some(l))).collect(),
            idle: Idle::new(workers),
            owned: OwnedTasks::new(workers),
            deferred: Mutex::new(Vec::new()),
            has_deferred: AtomicBool::new(false),
            timer: Driver::new(timer_thread_name),
            shutdown: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            remote_spawned: AtomicU64::new(0),
            remote_completed: AtomicU64::new(0),
        })
    }

    #[inline]
    pub(crate) fn is_shutdown(&self) -> bool {
        self.shutdown.load(Ordering::Acquire)
    }

    /// Spawns `future` to run in `context`.
    pub(crate) fn spawn<F, C>(self: &Arc<Self>, future: F, context: C) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
        C: TaskContext,
    {
        let ptr = Cell::allocate(future, context, self.clone());
        // SAFETY: a new task has three references: the handle's, the owned
        // list's and the Notified's.
        let (handle, task) = unsafe { (JoinHandle::from_raw(ptr), Notified::from_raw(ptr)) };
        if !self.owned.insert(ptr) {
            // The runtime is shut down: cancel the task right away.
            drop(task);
            // SAFETY: the list's reference is ours, as the insert failed.
            unsafe { (ptr.as_ref().vtable.shutdown)(ptr, None) };
            return handle;
        }
        current::with_worker(|worker| match worker {
            Some(worker) if ptr::eq(&*worker.shared, &**self) => worker.spawn_local(task),
            _ => {
                self.remote_spawned.fetch_add(1, Ordering::Relaxed);
                self.schedule_remote(task);
            }
        });
        handle
    }

    /// A task was woken.
    #[inline]
    pub(crate) fn schedule(&self, task: Notified) {
        self.schedule_inner(task, false)
    }

    /// A task woke itself during its poll: back of the queue.
    #[inline]
    pub(crate) fn yield_task(&self, task: Notified) {
        self.schedule_inner(task, true)
    }

    #[inline]
    fn schedule_inner(&self, task: Notified, is_yield: bool) {
        current::with_worker(|worker| match worker {
            Some(worker) if ptr::eq(&*worker.shared, self) => worker.schedule_local(task, is_yield),
            _ => self.schedule_remote(task),
        })
    }

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

    /// The task's shared context is entered elsewhere: retry later.
    pub(crate) fn defer(&self, task: Notified) {
        let mut deferred = self.deferred.lock();
        deferred.push(task);
        self.has_deferred.store(true, Ordering::Relaxed);
        drop(deferred);
        if self.closed.load(Ordering::SeqCst) {
            drop(std::mem::take(&mut *self.deferred.lock()));
        }
    }

    /// A task is about to publish COMPLETE (counted first, so that anyone
    /// who saw a task finish also sees it counted).
    pub(crate) fn count_completed(&self) {
        current::with_worker(|worker| match worker {
            Some(worker) if ptr::eq(&*worker.shared, self) => worker.count_completed(),
            _ => {
                self.remote_completed.fetch_add(1, Ordering::Relaxed);
            }
        });
    }

    /// A task completed: unlink it from the owned list. True if this call
    /// unlinked it (the list's reference is then the caller's to drop).
    pub(crate) fn release(&self, task: NonNull<Header>) -> bool {
        self.owned.remove(task)
    }

    /// Wakes a parked worker if work was just pushed and nobody is
    /// searching (see `README.md`).
    #[inline]
    pub(crate) fn notify_parked(&self) {
        fence(Ordering::SeqCst);
        if let Some(index) = self.idle.worker_to_notify() {
            self.remotes[index].parker.unpark();
        }
    }

    /// `notify_parked` for a push to the calling worker's own queue: skips
    /// the fence when a relaxed read says nobody needs waking (see
    /// `Idle::may_need_wake`).
    #[inline]
    pub(crate) fn notify_parked_local(&self) {
        if self.idle.may_need_wake() {
            self.notify_parked();
        }
    }

    /// After a put into the calling worker's empty LIFO slot: wakes a
    /// parked worker if one sleeps without a deadline while nobody watches
    /// or searches (see `README.md`, "The LIFO slot and stranded tasks").
    #[inline]
    pub(crate) fn notify_for_lifo(&self) {
        if self.idle.lifo_needs_watcher() {
            self.notify_parked();
        }
    }

    /// Whether any queue holds a task (step 2 of parking).
    pub(crate) fn has_work(&self) -> bool {
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
        self.timer.shutdown();
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
        self.owned.close();
        while let Some(task) = self.owned.pop() {
            // SAFETY: `pop` handed us the list's reference.
            unsafe { (task.as_ref().vtable.shutdown)(task, deadline) };
        }
    }

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
