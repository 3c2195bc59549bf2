//! [`Driver`]: the runtime's I/O reactor and timers, driven by its own
//! workers. There is no reactor thread and no timer thread.
//!
//! # Who drives
//!
//! The driver has one *core* (the epoll instance's event buffer, behind a
//! lock that is only ever tried, never waited for). A worker that runs out
//! of work parks through its [`DriverParker`](crate::scheduler::park): if
//! it can take the core, it sleeps *in epoll*, with a timeout equal to the
//! earliest timer deadline (or its own parking deadline, if earlier);
//! otherwise it sleeps on its condition variable as before. So exactly one
//! idle worker waits for I/O and timers, the others wait for work, and a
//! runtime with nothing to do sleeps in one `epoll_wait` with no timeout.
//!
//! When it wakes (an event, a deadline, or the eventfd), the driving worker
//! records the readiness, fires due timers, gives the core back, and goes on
//! as any unparked worker: the tasks it woke are in its own queue, so it
//! runs them itself, and the usual wake-up protocol brings in help.
//!
//! A worker that never runs out of work would starve I/O and timers, so
//! every [`MAINTENANCE_INTERVAL`](crate::scheduler::worker) ticks a busy
//! worker also turns the driver without blocking (if nobody holds the core,
//! and if any source or timer is registered at all): tokio's 61 ticks.
//!
//! # Waking the driver
//!
//! Anything that must reach the worker sleeping in epoll writes to the
//! reactor's eventfd ([`Driver::unpark`]): a wake-up for that worker
//! (`park.rs`), an earlier timer deadline (`time/store.rs`), shutdown. The
//! eventfd keeps a write that happens before the wait starts, so a wake-up
//! between "I will drive" and `epoll_wait` is never lost.
//!
//! Under `--cfg baton_loom` there is no epoll: the core is a condition
//! variable [`Parker`](crate::scheduler::park::Parker) whose sticky token
//! stands in for the eventfd, so the loom models check the parking protocol
//! with a worker sleeping "in the driver".

use std::io;
use std::sync::Arc;
use std::task::Waker;
use std::time::Instant;

#[cfg(not(baton_loom))]
use crate::io::reactor::{IoCore, Reactor};
#[cfg(baton_loom)]
use crate::scheduler::park::{Park, Parker};
use crate::time::{TimerEntry, TimerStore};
use baton_sync::{Mutex, MutexGuard};

/// What the driving thread holds.
pub(crate) struct Core {
    #[cfg(not(baton_loom))]
    io: IoCore,
}

/// The I/O reactor and the timers of one runtime.
pub(crate) struct Driver {
    /// `None` after shutdown.
    core: Mutex<Option<Core>>,
    #[cfg(not(baton_loom))]
    reactor: Reactor,
    #[cfg(baton_loom)]
    stand_in: Parker,
    timers: TimerStore,
}

/// The right to drive, held by one thread at a time.
pub(crate) struct Driving<'a>(
    // Under loom, held only for its lock.
    #[cfg_attr(baton_loom, allow(dead_code))] MutexGuard<'a, Option<Core>>,
);

impl Driver {
    /// A driver with `timer_shards` timer shards (workers + 1).
    pub(crate) fn new(timer_shards: usize) -> io::Result<Arc<Driver>> {
        #[cfg(not(baton_loom))]
        let (reactor, io) = Reactor::new()?;
        Ok(Arc::new(Driver {
            core: Mutex::new(Some(Core {
                #[cfg(not(baton_loom))]
                io,
            })),
            #[cfg(not(baton_loom))]
            reactor,
            #[cfg(baton_loom)]
            stand_in: Parker::new(),
            timers: TimerStore::new(timer_shards),
        }))
    }

    /// The reactor, to register sources.
    #[cfg(not(baton_loom))]
    pub(crate) fn reactor(&self) -> &Reactor {
        &self.reactor
    }

    /// The timers.
    pub(crate) fn timers(&self) -> &TimerStore {
        &self.timers
    }

    /// Registers a timer for `deadline` in `shard`, waking the driver if it
    /// sleeps past it.
    pub(crate) fn insert_timer(
        &self,
        deadline: Instant,
        shard: usize,
        waker: &Waker,
    ) -> Arc<TimerEntry> {
        let (entry, wake) = self.timers.insert(deadline, shard, waker);
        if wake {
            self.unpark();
        }
        entry
    }

    /// Takes the core if nobody drives now (and the runtime is running).
    pub(crate) fn try_drive(&self) -> Option<Driving<'_>> {
        let guard = self.core.try_lock()?;
        guard.is_some().then_some(Driving(guard))
    }

    /// Sleeps in the driver until an event, a timer deadline, `deadline`,
    /// or [`Driver::unpark`]; then records readiness and fires due timers.
    pub(crate) fn park(&self, driving: &mut Driving<'_>, deadline: Option<Instant>) {
        let until = self.timers.park_until(deadline);
        self.wait(driving, until);
        self.timers.unparked();
        self.timers.fire_due(Instant::now());
    }

    /// A busy worker's periodic look: turns the driver without blocking if
    /// anything is registered and nobody drives.
    pub(crate) fn poll_now(&self) {
        #[cfg(not(baton_loom))]
        let io = self.reactor.has_sources();
        #[cfg(baton_loom)]
        let io = false;
        if !io && !self.timers.has_pending() {
            return;
        }
        if let Some(mut driving) = self.try_drive() {
            #[cfg(not(baton_loom))]
            if io {
                self.wait(&mut driving, Some(Instant::now()));
            }
            #[cfg(baton_loom)]
            let _ = &mut driving;
            self.timers.fire_due(Instant::now());
        }
    }

    #[cfg(not(baton_loom))]
    fn wait(&self, driving: &mut Driving<'_>, until: Option<Instant>) {
        let core = driving
            .0
            .as_mut()
            .expect("baton: driving a shut-down driver");
        let timeout = until.map(|d| d.saturating_duration_since(Instant::now()));
        self.reactor.turn(&mut core.io, timeout);
    }

    #[cfg(baton_loom)]
    fn wait(&self, _driving: &mut Driving<'_>, until: Option<Instant>) {
        // No clock decides a path under loom: a sleep with a deadline is a
        // wait that may time out (the stand-in treats every deadline as
        // possibly passed), whatever the instant.
        self.stand_in.park(until);
    }

    /// Wakes the thread sleeping in the driver (or makes its next sleep
    /// return at once).
    pub(crate) fn unpark(&self) {
        #[cfg(not(baton_loom))]
        self.reactor.wake();
        #[cfg(baton_loom)]
        self.stand_in.unpark();
    }

    /// After the workers stopped: fails every source's polls, closes the
    /// epoll instance, and drops every timer.
    pub(crate) fn shutdown(&self) {
        self.unpark();
        // A worker still in the driver (only possible after a shutdown
        // timeout) gives the core back when it wakes.
        let core = self.core.lock().take();
        #[cfg(not(baton_loom))]
        self.reactor.shutdown();
        drop(core);
        self.timers.shutdown();
    }
}
