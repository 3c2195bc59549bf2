//! hyper 1 on runtimes whose sockets implement `futures_io` traits (smol's
//! async-net and baton's `net`), and the "hello" service every server runs.
//!
//! [`HyperIo`] is the small `hyper::rt::{Read, Write}` adapter: writes are
//! forwarded; a read goes into a per-thread scratch buffer and is copied
//! into hyper's (uninitialised) buffer with the safe `put_slice`, since this
//! crate has no `unsafe`. The copy is of the bytes read only (a request is a
//! few dozen bytes), cheaper than zeroing hyper's whole buffer per read as
//! `smol-hyper`'s adapter does. tokio uses hyper-util's `TokioIo`.
//!
//! No `hyper::rt::Executor` or `Timer` is needed: HTTP/1 connections spawn
//! nothing, and no server sets a timer (hyper's default header-read timeout
//! then stays off, for all three alike).

use std::cell::RefCell;
use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_lite::{AsyncRead, AsyncWrite};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::rt::ReadBufCursor;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};

use super::HELLO;

/// Bytes read per call at most (hyper asks for 8 KiB at first).
const SCRATCH: usize = 16 * 1024;

thread_local! {
    static SCRATCH_BUF: RefCell<Box<[u8]>> = RefCell::new(vec![0u8; SCRATCH].into_boxed_slice());
}

/// `hyper::rt::{Read, Write}` over a `futures_io::{AsyncRead, AsyncWrite}`
/// stream.
#[derive(Debug)]
pub struct HyperIo<T> {
    inner: T,
}

impl<T> HyperIo<T> {
    /// Wraps `inner`.
    pub fn new(inner: T) -> Self {
        HyperIo { inner }
    }
}

impl<T: AsyncRead + Unpin> hyper::rt::Read for HyperIo<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let inner = &mut self.get_mut().inner;
        SCRATCH_BUF.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let want = buf.remaining().min(scratch.len());
            let n = ready!(Pin::new(&mut *inner).poll_read(cx, &mut scratch[..want]))?;
            buf.put_slice(&scratch[..n]);
            Poll::Ready(Ok(()))
        })
    }
}

impl<T: AsyncWrite + Unpin> hyper::rt::Write for HyperIo<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

/// The service: every request gets `200` and [`HELLO`].
pub async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from_static(HELLO))))
}

/// Serves one HTTP/1.1 connection (keep-alive) with [`hello`] until the
/// peer closes it.
pub async fn serve_http1<I>(io: I) -> hyper::Result<()>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
{
    http1::Builder::new()
        .serve_connection(io, service_fn(hello))
        .await
}
