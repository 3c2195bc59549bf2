//! [`TcpListener`] and [`TcpStream`].

use std::fmt;
use std::future::poll_fn;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, SocketAddr, ToSocketAddrs};
use std::task::{Context, Poll};

use crate::io::PollEvented;
use crate::io::scheduled_io::Direction;

/// A TCP socket server, listening for connections, on the current
/// runtime's reactor.
///
/// ```
/// use futures_util::{AsyncReadExt, AsyncWriteExt};
/// use baton_executor::net::{TcpListener, TcpStream};
///
/// let rt = baton_executor::Runtime::new();
/// rt.block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
///     let addr = listener.local_addr().unwrap();
///     let server = baton_executor::spawn(async move {
///         let (mut socket, _) = listener.accept().await.unwrap();
///         let mut buf = [0; 5];
///         socket.read_exact(&mut buf).await.unwrap();
///         socket.write_all(&buf).await.unwrap();
///     });
///     let mut client = TcpStream::connect(addr).await.unwrap();
///     client.write_all(b"hello").await.unwrap();
///     let mut echo = [0; 5];
///     client.read_exact(&mut echo).await.unwrap();
///     assert_eq!(&echo, b"hello");
///     server.await.unwrap();
/// });
/// ```
pub struct TcpListener {
    io: PollEvented<mio::net::TcpListener>,
}

impl TcpListener {
    /// Binds a listener to `addr` (the first of its addresses that can be
    /// bound), with a backlog of 1024 pending connections. Port 0 picks a
    /// free port; see [`TcpListener::local_addr`].
    ///
    /// # Errors
    ///
    /// If no address resolves or none can be bound.
    ///
    /// # Panics
    ///
    /// Outside a baton runtime.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        each_addr(addr, |addr| TcpListener::from_std(listen(addr)?))
    }

    /// A listener from a std one, which the caller has already made
    /// non-blocking (`set_nonblocking(true)`), as tokio requires too.
    ///
    /// # Panics
    ///
    /// Outside a baton runtime.
    #[track_caller]
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        TcpListener::from_mio(mio::net::TcpListener::from_std(listener))
    }

    #[track_caller]
    fn from_mio(listener: mio::net::TcpListener) -> io::Result<TcpListener> {
        Ok(TcpListener {
            io: PollEvented::with_interest(listener, mio::Interest::READABLE)?,
        })
    }

    /// Waits for a connection. The new stream is registered with the
    /// runtime of the task that accepts it.
    ///
    /// # Errors
    ///
    /// What `accept(2)` reports, such as running out of file descriptors
    /// (`EMFILE`, `ENFILE`): the listener stays usable; back off and retry.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for a connection (see [`TcpListener::accept`]).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        let (stream, addr) = std::task::ready!(self.io.poll_io(
            cx,
            Direction::Read,
            mio::net::TcpListener::accept
        ))?;
        Poll::Ready(Ok((TcpStream::from_mio(stream)?, addr)))
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }
}

impl fmt::Debug for TcpListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpListener")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}

/// Backlog of a listener from [`TcpListener::bind`]: tokio's, not std's
/// 128, which drops handshakes when hundreds of clients connect at once.
const BACKLOG: i32 = 1024;

/// A non-blocking listening socket on `addr` (`SO_REUSEADDR` on Unix, as
/// std and tokio set it).
fn listen(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}

/// A TCP connection on the current runtime's reactor: `futures_io`'s
/// [`AsyncRead`](futures_io::AsyncRead) and
/// [`AsyncWrite`](futures_io::AsyncWrite), for `&TcpStream` too (one task
/// reading while another writes).
///
/// A task blocked on a stream may move between workers like any other; every
/// read and write runs in the task's own context.
pub struct TcpStream {
    pub(super) io: PollEvented<mio::net::TcpStream>,
}

impl TcpStream {
    /// Connects to `addr` (trying each of its addresses in turn).
    ///
    /// # Errors
    ///
    /// Connection refused, unreachable, or no address resolves.
    ///
    /// # Panics
    ///
    /// Outside a baton runtime.
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        let addrs = addr.to_socket_addrs()?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_addr(addr).await {
                Ok(stream) => return Ok(stream),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "could not resolve to any address",
            )
        }))
    }

    async fn connect_addr(addr: SocketAddr) -> io::Result<TcpStream> {
        let stream = TcpStream::from_mio(mio::net::TcpStream::connect(addr)?)?;
        // A non-blocking connect completes when the socket turns writable
        // (or errors); mio's documented check follows.
        poll_fn(|cx| stream.io.poll_ready(cx, Direction::Write)).await?;
        if let Some(e) = stream.io.take_error()? {
            return Err(e);
        }
        match stream.io.peer_addr() {
            Ok(_) => Ok(stream),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Err(io::Error::new(
                io::ErrorKind::ConnectionRefused,
                "baton: connection failed",
            )),
            Err(e) => Err(e),
        }
    }

    /// A stream from a std one, which the caller has already made
    /// non-blocking (`set_nonblocking(true)`).
    ///
    /// # Panics
    ///
    /// Outside a baton runtime.
    #[track_caller]
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        TcpStream::from_mio(mio::net::TcpStream::from_std(stream))
    }

    #[track_caller]
    fn from_mio(stream: mio::net::TcpStream) -> io::Result<TcpStream> {
        Ok(TcpStream {
            io: PollEvented::new(stream)?,
        })
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.peer_addr()
    }

    /// The local address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm when `true`).
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.io.set_nodelay(nodelay)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.nodelay()
    }

    /// Shuts down the read half, the write half, or both (`shutdown(2)`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.shutdown(how)
    }

    /// Reads into `buf` when the stream is readable (0: end of stream).
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let len = buf.len();
        self.io
            .poll_transfer(cx, Direction::Read, len, |s| (&*s).read(buf))
    }

    /// Writes from `buf` when the stream is writable.
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io
            .poll_transfer(cx, Direction::Write, buf.len(), |s| (&*s).write(buf))
    }

    /// Writes from `bufs` (one `writev(2)`) when the stream is writable.
    pub fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.io
            .poll_transfer(cx, Direction::Write, len, |s| (&*s).write_vectored(bufs))
    }
}

impl fmt::Debug for TcpStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TcpStream")
            .field("local_addr", &self.local_addr().ok())
            .field("peer_addr", &self.peer_addr().ok())
            .finish()
    }
}

impl_futures_io!(TcpStream);

/// Runs `f` on each address of `addr` until one succeeds.
pub(crate) fn each_addr<T>(
    addr: impl ToSocketAddrs,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for addr in addr.to_socket_addrs()? {
        match f(addr) {
            Ok(value) => return Ok(value),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "could not resolve to any address",
        )
    }))
}
