//! Sockets on the runtime's own reactor: [`TcpListener`], [`TcpStream`],
//! [`UdpSocket`], and on Unix [`UnixListener`], [`UnixStream`].
//!
//! Each socket is registered with the reactor of the runtime it is created
//! in (`io/`), edge-triggered for reads and writes; the workers of that
//! runtime drive the reactor when they have nothing else to run, so there
//! is no I/O thread. A socket may be used from any task on any worker, and
//! a task that migrates keeps its registrations. Creating or polling one on
//! a thread that runs no baton runtime panics with a message that says so;
//! one whose runtime is gone returns an `io::Error`.

mod tcp;

pub use tcp::{TcpListener, TcpStream};
