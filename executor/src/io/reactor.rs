//! [`Reactor`]: the runtime's epoll instance (through mio), the sources
//! registered with it, and the eventfd that wakes whoever waits in it.
//!
//! Which thread waits in epoll is not decided here: the worker that parks
//! first while the driver is free does (`driver.rs`, and the parking
//! protocol in `scheduler/README.md`). That thread owns the [`IoCore`] (the
//! `mio::Poll` and its event buffer) for the time it drives; everybody else
//! registers and deregisters through the cloned `mio::Registry` here, which
//! epoll allows concurrently with a wait.
//!
//! # Tokens, and when a source's state may be freed
//!
//! A source is registered with the address of its [`ScheduledIo`] as its
//! token, so an event leads to its readiness word with no lookup and no
//! lock. That address must stay valid for as long as an event carrying it
//! can be in the driver's hands, which is *after* the source is
//! deregistered: an `epoll_wait` running at the moment of `EPOLL_CTL_DEL`
//! may already have copied the source's event into the driver's buffer.
//! So [`Reactor::deregister`] does not free the state: it moves the
//! reactor's reference to `pending_release`, and the driver drops that list
//! at the start of its *next* turn, when the turn that may have seen the
//! event is over (the driver holds the `IoCore` for the whole turn, so turns
//! never overlap). A wait that starts after the `EPOLL_CTL_DEL` returned
//! cannot report the source.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use mio::event::Source;
use mio::{Events, Interest, Poll, Registry, Token};
use parking_lot::RwLock;
use slab::Slab;

use crate::io::scheduled_io::{READ_CLOSED, READABLE, ScheduledIo, WRITABLE, WRITE_CLOSED};
use baton_sync::{AtomicBool, AtomicUsize, Mutex, Ordering};

/// The eventfd's token; never an address (those are aligned and non-zero).
const WAKE_TOKEN: Token = Token(0);
/// Events taken from the kernel per wait.
const EVENTS_CAPACITY: usize = 1024;

/// The part of the reactor only the driving thread touches.
pub(crate) struct IoCore {
    poll: Poll,
    events: Events,
    /// Counts turns; stamped into the readiness it sets (`scheduled_io.rs`).
    tick: usize,
}

/// Every registered source, so shutdown can reach them.
#[derive(Default)]
struct Sources {
    live: Slab<Arc<ScheduledIo>>,
    /// Deregistered since the last turn began (see the module docs).
    pending_release: Vec<Arc<ScheduledIo>>,
}

/// The reactor of one runtime.
pub(crate) struct Reactor {
    /// `None` once the runtime is shut down (its epoll fd is then closed).
    registry: RwLock<Option<Registry>>,
    waker: mio::Waker,
    sources: Mutex<Sources>,
    /// How many sources are registered: the busy worker's periodic
    /// non-blocking poll skips the syscall when there are none.
    live: AtomicUsize,
    shut_down: AtomicBool,
}

/// A registered source's handle on the reactor.
#[derive(Debug)]
pub(crate) struct SourceKey(usize);

impl Reactor {
    /// A new epoll instance and its eventfd.
    pub(crate) fn new() -> io::Result<(Reactor, IoCore)> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let waker = mio::Waker::new(poll.registry(), WAKE_TOKEN)?;
        let reactor = Reactor {
            registry: RwLock::new(Some(registry)),
            waker,
            sources: Mutex::new(Sources::default()),
            live: AtomicUsize::new(0),
            shut_down: AtomicBool::new(false),
        };
        let core = IoCore {
            poll,
            events: Events::with_capacity(EVENTS_CAPACITY),
            tick: 0,
        };
        Ok((reactor, core))
    }

    /// Whether any source is registered.
    pub(crate) fn has_sources(&self) -> bool {
        self.live.load(Ordering::Relaxed) != 0
    }

    /// Registers `source` for `interest`; its readiness lands in the
    /// returned state.
    pub(crate) fn register(
        &self,
        source: &mut impl Source,
        interest: Interest,
    ) -> io::Result<(Arc<ScheduledIo>, SourceKey)> {
        let io = Arc::new(ScheduledIo::new());
        let token = Token(Arc::as_ptr(&io) as usize);
        let key = {
            let mut sources = self.sources.lock();
            if self.shut_down.load(Ordering::Acquire) {
                return Err(gone());
            }
            sources.live.insert(io.clone())
        };
        self.live.fetch_add(1, Ordering::Relaxed);
        let registered = match &*self.registry.read() {
            Some(registry) => registry.register(source, token, interest),
            None => Err(gone()),
        };
        match registered {
            Ok(()) => Ok((io, SourceKey(key))),
            Err(e) => {
                self.release(SourceKey(key));
                Err(e)
            }
        }
    }

    /// Deregisters `source` (closing it is the caller's business) and
    /// schedules its state to be freed after the next turn begins.
    pub(crate) fn deregister(&self, source: &mut impl Source, key: SourceKey) -> io::Result<()> {
        let result = match &*self.registry.read() {
            Some(registry) => registry.deregister(source),
            // Shut down: the epoll instance is closed, nothing to undo.
            None => Ok(()),
        };
        self.release(key);
        result
    }

    fn release(&self, key: SourceKey) {
        let mut sources = self.sources.lock();
        let Some(io) = sources.live.try_remove(key.0) else {
            return;
        };
        sources.pending_release.push(io.clone());
        self.live.fetch_sub(1, Ordering::Relaxed);
        drop(sources);
        // After the lock: dropping a waker may free a task, whose context's
        // values may own sockets that deregister here in turn.
        io.clear_wakers();
    }

    /// One turn of the driver: waits up to `timeout` (`None`: until an
    /// event or a wake) and records the readiness the kernel reports.
    pub(crate) fn turn(&self, core: &mut IoCore, timeout: Option<Duration>) {
        // The turn before this one is over: nothing it took from the kernel
        // can name these sources any more (see the module docs).
        let released = std::mem::take(&mut self.sources.lock().pending_release);
        drop(released);

        match core.poll.poll(&mut core.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return,
            Err(e) => panic!("baton: epoll_wait failed: {e}"),
        }
        core.tick = core.tick.wrapping_add(1);
        for event in core.events.iter() {
            let token = event.token();
            if token == WAKE_TOKEN {
                continue;
            }
            let mut ready = 0;
            if event.is_readable() {
                ready |= READABLE;
            }
            if event.is_writable() {
                ready |= WRITABLE;
            }
            if event.is_read_closed() {
                ready |= READ_CLOSED;
            }
            if event.is_write_closed() {
                ready |= WRITE_CLOSED;
            }
            if event.is_error() {
                ready |= READABLE | WRITABLE | READ_CLOSED | WRITE_CLOSED;
            }
            let io = token.0 as *const ScheduledIo;
            // SAFETY: the token is the address of a `ScheduledIo` that the
            // reactor still holds a reference to: in `live` while the source
            // is registered, in `pending_release` after, until the start of
            // the next turn. This turn holds the `IoCore`, so that start has
            // not happened yet (module docs).
            let io = unsafe { &*io };
            io.set_readiness(core.tick, ready);
        }
    }

    /// Makes the thread waiting in [`Reactor::turn`] (now, or next) return.
    pub(crate) fn wake(&self) {
        // Fails only if the eventfd's counter is full, which means a wake is
        // already pending.
        let _ = self.waker.wake();
    }

    /// The runtime is gone: fails every source's polls from now on, wakes
    /// their tasks, and closes the epoll instance (with `core`, which the
    /// caller drops).
    pub(crate) fn shutdown(&self) {
        self.shut_down.store(true, Ordering::Release);
        drop(self.registry.write().take());
        let sources = std::mem::take(&mut *self.sources.lock());
        self.live.store(0, Ordering::Relaxed);
        for (_, io) in sources.live.iter() {
            io.shutdown();
        }
        drop(sources);
    }
}

/// The error a source whose runtime has shut down reports.
pub(crate) fn gone() -> io::Error {
    io::Error::other("baton: the runtime this socket belongs to has shut down")
}
