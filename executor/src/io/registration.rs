//! [`PollEvented`]: a mio source registered with the current runtime's
//! reactor, and the poll loop every socket operation goes through.
//!
//! A socket type (`net/`) wraps one `PollEvented` and performs each
//! operation with [`PollEvented::poll_io`]: wait until the direction is
//! ready, try the non-blocking call, and on `WouldBlock` clear that
//! readiness (unless a newer event set it again) and wait again. The task's
//! waker is stored only when the direction is not ready, so a busy socket
//! costs no waker traffic at all.

use std::fmt;
use std::io;
use std::ops::Deref;
use std::sync::Arc;
use std::task::{Context, Poll};

use mio::Interest;
use mio::event::Source;

use crate::current;
use crate::driver::Driver;
use crate::io::reactor::{SourceKey, gone};
use crate::io::scheduled_io::{Direction, Gone, ScheduledIo};

/// A registered source; deregistered (and then closed) when dropped.
pub(crate) struct PollEvented<E: Source> {
    /// `None` only while dropping.
    source: Option<E>,
    io: Arc<ScheduledIo>,
    key: Option<SourceKey>,
    driver: Arc<Driver>,
}

impl<E: Source> PollEvented<E> {
    /// Registers `source` for reads and writes with the current runtime.
    ///
    /// # Panics
    ///
    /// Outside a baton runtime (a worker or a `block_on`).
    #[track_caller]
    pub(crate) fn new(source: E) -> io::Result<Self> {
        Self::with_interest(source, Interest::READABLE | Interest::WRITABLE)
    }

    /// Registers `source` for `interest` with the current runtime.
    ///
    /// # Panics
    ///
    /// Outside a baton runtime.
    #[track_caller]
    pub(crate) fn with_interest(mut source: E, interest: Interest) -> io::Result<Self> {
        let driver = match current::with_shared(|s| s.map(|s| s.driver().clone())) {
            Some(driver) => driver,
            None => outside(),
        };
        let (io, key) = driver.reactor().register(&mut source, interest)?;
        Ok(PollEvented {
            source: Some(source),
            io,
            key: Some(key),
            driver,
        })
    }

    /// Runs `op` once `direction` is ready, until it does not return
    /// `WouldBlock`.
    ///
    /// # Panics
    ///
    /// When polled on a thread that runs no baton runtime.
    #[track_caller]
    pub(crate) fn poll_io<R>(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        op: impl FnMut(&E) -> io::Result<R>,
    ) -> Poll<io::Result<R>> {
        self.poll_op(cx, direction, op, |_| false)
    }

    /// [`PollEvented::poll_io`] for a read or write of `len` bytes on a
    /// stream: a transfer shorter than asked means the kernel's buffer is
    /// drained (read) or full (write), so the readiness is cleared at once
    /// instead of by a further call that would return `WouldBlock`, one
    /// syscall saved per message. An event that arrived meanwhile carries a
    /// newer tick and is kept (`scheduled_io.rs`).
    #[track_caller]
    pub(crate) fn poll_transfer(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        len: usize,
        op: impl FnMut(&E) -> io::Result<usize>,
    ) -> Poll<io::Result<usize>> {
        self.poll_op(cx, direction, op, |n| *n > 0 && *n < len)
    }

    /// The loop of both: `exhausted` says whether a successful result shows
    /// the readiness used up.
    #[track_caller]
    #[inline]
    fn poll_op<R>(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
        mut op: impl FnMut(&E) -> io::Result<R>,
        exhausted: impl Fn(&R) -> bool,
    ) -> Poll<io::Result<R>> {
        check_inside();
        loop {
            let event = match self.io.poll_ready(cx, direction) {
                Poll::Ready(Ok(event)) => event,
                Poll::Ready(Err(Gone)) => return Poll::Ready(Err(gone())),
                Poll::Pending => return Poll::Pending,
            };
            match op(self.source()) {
                Ok(r) => {
                    if exhausted(&r) {
                        self.io.clear_readiness(event);
                    }
                    return Poll::Ready(Ok(r));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.io.clear_readiness(event);
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Waits until `direction` is ready (for operations such as `connect`
    /// whose completion is a readiness, not a call).
    #[track_caller]
    pub(crate) fn poll_ready(
        &self,
        cx: &mut Context<'_>,
        direction: Direction,
    ) -> Poll<io::Result<()>> {
        check_inside();
        match self.io.poll_ready(cx, direction) {
            Poll::Ready(Ok(_)) => Poll::Ready(Ok(())),
            Poll::Ready(Err(Gone)) => Poll::Ready(Err(gone())),
            Poll::Pending => Poll::Pending,
        }
    }

    /// The source.
    pub(crate) fn source(&self) -> &E {
        self.source
            .as_ref()
            .expect("baton: source used while dropping")
    }
}

impl<E: Source> Deref for PollEvented<E> {
    type Target = E;

    fn deref(&self) -> &E {
        self.source()
    }
}

impl<E: Source> Drop for PollEvented<E> {
    fn drop(&mut self) {
        if let (Some(mut source), Some(key)) = (self.source.take(), self.key.take()) {
            // Deregister before the fd is closed (by dropping `source`), so
            // a reused fd number can never be confused with this one.
            let _ = self.driver.reactor().deregister(&mut source, key);
            drop(source);
        }
    }
}

impl<E: Source + fmt::Debug> fmt::Debug for PollEvented<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollEvented")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

const OUTSIDE_IO: &str = "baton: sockets and signals must be created and used inside a baton runtime \
     (a task, or the future given to Runtime::block_on): no I/O driver runs on this thread";

#[track_caller]
fn outside() -> ! {
    panic!("{OUTSIDE_IO}")
}

/// Panics when the calling thread runs no baton runtime (see DESIGN.md §5:
/// polling a socket there would otherwise wait for a driver that never
/// turns).
#[track_caller]
#[inline]
fn check_inside() {
    if !current::is_inside() {
        outside();
    }
}
