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
//!
//! With the feature `hyper`, the streams also implement
//! `hyper::rt::{Read, Write}`; with the feature `tokio`,
//! `tokio::io::{AsyncRead, AsyncWrite}` (for shared references too).

/// `futures_io::{AsyncRead, AsyncWrite}` for a stream type and for a
/// shared reference to it, on its inherent `poll_read`, `poll_write`,
/// `poll_write_vectored` and `shutdown` (all `&self`).
macro_rules! impl_futures_io {
    ($stream:ident) => {
        impl_futures_io!(@impl $stream, $stream);
        impl_futures_io!(@impl $stream, &$stream);
    };
    (@impl $stream:ident, $ty:ty) => {
        impl futures_io::AsyncRead for $ty {
            fn poll_read(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &mut [u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $stream::poll_read(&self, cx, buf)
            }
        }

        impl futures_io::AsyncWrite for $ty {
            fn poll_write(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $stream::poll_write(&self, cx, buf)
            }

            fn poll_write_vectored(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                $stream::poll_write_vectored(&self, cx, bufs)
            }

            fn poll_flush(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                // Writes go straight to the kernel: nothing is buffered here.
                std::task::Poll::Ready(Ok(()))
            }

            fn poll_close(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::task::Poll::Ready($stream::shutdown(&self, std::net::Shutdown::Write))
            }
        }
    };
}

#[cfg(all(feature = "hyper", unix))]
mod hyper_rt;
mod tcp;
#[cfg(all(feature = "tokio", unix))]
mod tokio_io;
mod udp;
#[cfg(unix)]
mod unix;

pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;
#[cfg(unix)]
pub use unix::{UnixListener, UnixStream};
