//! `tokio::io::{AsyncRead, AsyncWrite}` for [`TcpStream`] and
//! [`UnixStream`], and for shared references to them (feature `tokio`), so
//! that code written against tokio's I/O traits (`AsyncReadExt`,
//! `tokio_util::codec`, hyper-util's `TokioIo`, tonic's transports) runs on
//! baton's sockets with no adapter.
//!
//! Reads go straight into the unfilled, possibly uninitialised part of
//! tokio's `ReadBuf` through `recv(2)` (socket2's `SockRef::recv` takes
//! `MaybeUninit` bytes), as tokio's own `TcpStream` does: no zeroing and no
//! intermediate copy. Writes and shutdown are the streams' own.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use mio::event::Source;
use tokio::io::ReadBuf;

use crate::io::PollEvented;
use crate::io::scheduled_io::Direction;
use crate::net::{TcpStream, UnixStream};

/// Reads into the unfilled part of `buf` once the stream is readable.
fn poll_read_buf<E: Source + AsFd>(
    io: &PollEvented<E>,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    // SAFETY: `recv(2)` only writes initialised bytes into this slice (it
    // never de-initialises any), which is all `unfilled_mut` asks of us.
    let unfilled: &mut [MaybeUninit<u8>] = unsafe { buf.unfilled_mut() };
    let len = unfilled.len();
    let n = std::task::ready!(io.poll_transfer(cx, Direction::Read, len, |s| {
        socket2::SockRef::from(s).recv(unfilled)
    }))?;
    // SAFETY: `recv` initialised the first `n` bytes of the unfilled part.
    unsafe { buf.assume_init(n) };
    buf.advance(n);
    Poll::Ready(Ok(()))
}

macro_rules! impl_tokio_io {
    ($stream:ident) => {
        impl_tokio_io!(@impl $stream, $stream);
        impl_tokio_io!(@impl $stream, &$stream);
    };
    (@impl $stream:ident, $ty:ty) => {
        impl tokio::io::AsyncRead for $ty {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &mut ReadBuf<'_>,
            ) -> Poll<io::Result<()>> {
                poll_read_buf(&self.io, cx, buf)
            }
        }

        impl tokio::io::AsyncWrite for $ty {
            fn poll_write(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: &[u8],
            ) -> Poll<io::Result<usize>> {
                $stream::poll_write(&self, cx, buf)
            }

            fn poll_write_vectored(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                bufs: &[IoSlice<'_>],
            ) -> Poll<io::Result<usize>> {
                $stream::poll_write_vectored(&self, cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                true
            }

            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                // Writes go straight to the kernel: nothing is buffered here.
                Poll::Ready(Ok(()))
            }

            fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready($stream::shutdown(&self, std::net::Shutdown::Write))
            }
        }
    };
}

impl_tokio_io!(TcpStream);
impl_tokio_io!(UnixStream);
