//! `hyper::rt::{Read, Write}` for [`TcpStream`] and [`UnixStream`]
//! (feature `hyper`), so hyper 1 serves and connects on baton's sockets
//! with no adapter.
//!
//! Reads go straight into hyper's uninitialised buffer through
//! `recv(2)` (socket2's `SockRef::recv` takes `MaybeUninit` bytes), as
//! tokio's `TokioIo` does: no zeroing and no intermediate copy.

use std::io::{self, IoSlice};
use std::mem::MaybeUninit;
use std::os::fd::AsFd;
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::rt::ReadBufCursor;
use mio::event::Source;

use crate::io::PollEvented;
use crate::io::scheduled_io::Direction;
use crate::net::{TcpStream, UnixStream};

/// Reads into the unfilled part of `cursor` once the stream is readable.
fn poll_read_cursor<E: Source + AsFd>(
    io: &PollEvented<E>,
    cx: &mut Context<'_>,
    mut cursor: ReadBufCursor<'_>,
) -> Poll<io::Result<()>> {
    // SAFETY: `recv(2)` only writes initialised bytes into this slice (it
    // never de-initialises any), which is all `as_mut` asks of us.
    let unfilled: &mut [MaybeUninit<u8>] = unsafe { cursor.as_mut() };
    let len = unfilled.len();
    let n = std::task::ready!(io.poll_transfer(cx, Direction::Read, len, |s| {
        socket2::SockRef::from(s).recv(unfilled)
    }))?;
    // SAFETY: `recv` initialised the first `n` bytes of the unfilled part.
    unsafe { cursor.advance(n) };
    Poll::Ready(Ok(()))
}

macro_rules! impl_hyper_rt {
    ($stream:ident) => {
        impl hyper::rt::Read for $stream {
            fn poll_read(
                self: Pin<&mut Self>,
                cx: &mut Context<'_>,
                buf: ReadBufCursor<'_>,
            ) -> Poll<io::Result<()>> {
                poll_read_cursor(&self.io, cx, buf)
            }
        }

        impl hyper::rt::Write for $stream {
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

impl_hyper_rt!(TcpStream);
impl_hyper_rt!(UnixStream);
