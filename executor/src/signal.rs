//! Unix signals as futures: [`ctrl_c`] (`SIGINT`) and [`terminate`]
//! (`SIGTERM`), for a service's graceful shutdown.
//!
//! ```no_run
//! use baton_executor::{Runtime, signal, spawn};
//!
//! let rt = Runtime::new();
//! rt.block_on(async {
//!     let server = spawn(async { /* accept connections until aborted */ });
//!     signal::ctrl_c().await.expect("listening for SIGINT");
//!     server.abort();
//! });
//! ```
//!
//! # How a signal reaches a task
//!
//! Each waiting future owns a self-pipe: a `socketpair(2)` whose read end
//! is a [`UnixStream`] on the runtime's reactor and whose write end is
//! handed to a process-wide signal handler (installed through the
//! `signal-hook` crate, which chains handlers and keeps their registry
//! async-signal-safe). The handler writes one byte to the write end of
//! every pipe registered for the signal, without blocking; the reactor
//! then reports the read end readable and the task is woken like any task
//! waiting for a socket. The future unregisters its pipe when it is
//! dropped (resolved or not), which closes the write end.
//!
//! # Replacing the default action
//!
//! The first [`ctrl_c`] (or [`terminate`]) future polled in the process
//! installs the handler for `SIGINT` (`SIGTERM`), and it stays installed for
//! the rest of the process's life, as with tokio: from then on that signal
//! no longer terminates the process, even when no future waits for it. A
//! program that wants to stop on a second Ctrl-C must exit by itself (for
//! example by awaiting `ctrl_c()` again and calling
//! [`std::process::exit`]).

use std::future::poll_fn;
use std::io;
use std::os::raw::c_int;

use signal_hook::SigId;
use signal_hook::consts::{SIGINT, SIGTERM};

use crate::net::UnixStream;

/// Resolves when the process receives `SIGINT` (Ctrl-C in a terminal).
///
/// The future waits for the *next* signal after its first poll: a signal
/// delivered earlier, or to another `ctrl_c()` future, does not count.
/// Every future waiting at the moment of a signal resolves (a broadcast).
/// Polling it installs the process-wide handler, which replaces the default
/// "terminate" action for good (see [the module docs](self)).
///
/// # Errors
///
/// If the self-pipe cannot be made (out of file descriptors) or the handler
/// cannot be installed.
///
/// # Panics
///
/// When polled outside a baton runtime.
pub async fn ctrl_c() -> io::Result<()> {
    Listener::new(SIGINT)?.recv().await
}

/// Resolves when the process receives `SIGTERM` (what `kill` sends, and
/// what service managers and container runtimes send to stop a process).
///
/// As [`ctrl_c`], for `SIGTERM`: the next signal after the first poll,
/// every waiting future, and the default action is replaced for good.
///
/// # Errors
///
/// If the self-pipe cannot be made or the handler cannot be installed.
///
/// # Panics
///
/// When polled outside a baton runtime.
pub async fn terminate() -> io::Result<()> {
    Listener::new(SIGTERM)?.recv().await
}

/// One waiting future's self-pipe and its handler registration.
struct Listener {
    read: UnixStream,
    id: SigId,
}

impl Listener {
    fn new(signal: c_int) -> io::Result<Listener> {
        let (read, write) = std::os::unix::net::UnixStream::pair()?;
        read.set_nonblocking(true)?;
        // Registered with the reactor first: this is what panics outside a
        // runtime, and it must do so before the handler holds the write end.
        let read = UnixStream::from_std(read)?;
        // The handler writes with `send(.., MSG_DONTWAIT)`: a full pipe
        // (many signals before the task ran) drops the byte, and the read
        // end is readable anyway.
        let id = signal_hook::low_level::pipe::register(signal, write)?;
        Ok(Listener { read, id })
    }

    async fn recv(&self) -> io::Result<()> {
        let mut buf = [0; 16];
        loop {
            match poll_fn(|cx| self.read.poll_read(cx, &mut buf)).await {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "baton: the signal handler's pipe was closed",
                    ));
                }
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // Removes the action and closes the write end (once no handler runs
        // it any more); the handler itself stays installed.
        signal_hook::low_level::unregister(self.id);
    }
}
