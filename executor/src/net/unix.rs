//! [`UnixListener`] and [`UnixStream`]: Unix domain stream sockets.

use std::fmt;
use std::future::poll_fn;
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::SocketAddr;
use std::path::Path;
use std::task::{Context, Poll};

use crate::io::PollEvented;
use crate::io::scheduled_io::Direction;

/// A Unix domain socket server, listening for connections on a path, on
/// the current runtime's reactor.
///
/// Dropping the listener closes the socket but leaves its file in the file
/// system (as std does): remove it when you are done.
///
/// ```
/// # #[cfg(unix)] {
/// use futures_util::{AsyncReadExt, AsyncWriteExt};
/// use baton_executor::net::{UnixListener, UnixStream};
///
/// let path = std::env::temp_dir().join(format!("baton-doc-{}.sock", std::process::id()));
/// let _ = std::fs::remove_file(&path); // left by an earlier run that died
/// let rt = baton_executor::Runtime::new();
/// rt.block_on(async {
///     let listener = UnixListener::bind(&path).unwrap();
///     let server = baton_executor::spawn(async move {
///         let (mut socket, _) = listener.accept().await.unwrap();
///         let mut buf = [0; 5];
///         socket.read_exact(&mut buf).await.unwrap();
///         socket.write_all(&buf).await.unwrap();
///     });
///     let mut client = UnixStream::connect(&path).await.unwrap();
///     client.write_all(b"hello").await.unwrap();
///     let mut echo = [0; 5];
///     client.read_exact(&mut echo).await.unwrap();
///     assert_eq!(&echo, b"hello");
///     server.await.unwrap();
/// });
/// std::fs::remove_file(&path).unwrap();
/// # }
/// ```
pub struct UnixListener {
    io: PollEvented<mio::net::UnixListener>,
}

impl UnixListener {
    /// Creates a socket file at `path` and listens on it. Not async: binding
    /// a path never waits.
    ///
    /// # Errors
    ///
    /// If `path` exists already (`AddrInUse`), or cannot be created.
    ///
    /// # Panics
    ///
    /// Outside a baton runtime.
    #[track_caller]
    pub fn bind(path: impl AsRef<Path>) -> io::Result<UnixListener> {
        UnixListener::from_mio(mio::net::UnixListener::bind(path)?)
    }

    /// A listener from a std one, which the caller has already made
    /// non-blocking (`set_nonblocking(true)`), as tokio requires too.
    ///
    /// # Panics
    ///
    /// Outside a baton runtime.
    #[track_caller]
    pub fn from_std(listener: std::os::unix::net::UnixListener) -> io::Result<UnixListener> {
        UnixListener::from_mio(mio::net::UnixListener::from_std(listener))
    }

    #[track_caller]
    fn from_mio(listener: mio::net::UnixListener) -> io::Result<UnixListener> {
        Ok(UnixListener {
            io: PollEvented::with_interest(listener, mio::Interest::READABLE)?,
        })
    }

    /// Waits for a connection; returns it and the peer's address (usually
    /// unnamed). The new stream is registered with the runtime of the task
    /// that accepts it.
    ///
    /// # Errors
    ///
    /// What `accept(2)` reports, such as running out of file descriptors
    /// (`EMFILE`, `ENFILE`): the listener stays usable; back off and retry.
    pub async fn accept(&self) -> io::Result<(UnixStream, SocketAddr)> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    /// Polls for a connection (see [`UnixListener::accept`]).
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(UnixStream, SocketAddr)>> {
        let (stream, addr) = std::task::ready!(self.io.poll_io(
            cx,
            Direction::Read,
            mio::net::UnixListener::accept
        ))?;
        Poll::Ready(Ok((UnixStream::from_mio(stream)?, addr)))
    }

    /// The address (path) the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }
}

impl fmt::Debug for UnixListener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixListener")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}

/// A Unix domain stream connection on the current runtime's reactor, with
/// the same [`AsyncRead`](futures_io::AsyncRead) and
/// [`AsyncWrite`](futures_io::AsyncWrite) impls as
/// [`TcpStream`](crate::net::TcpStream), for `&UnixStream` too.
///
/// ```
/// # #[cfg(unix)] {
/// use futures_util::{AsyncReadExt, AsyncWriteExt};
/// use baton_executor::net::UnixStream;
///
/// let rt = baton_executor::Runtime::new();
/// rt.block_on(async {
///     let (mut a, mut b) = UnixStream::pair().unwrap();
///     let echo = baton_executor::spawn(async move {
///         let mut buf = Vec::new();
///         b.read_to_end(&mut buf).await.unwrap(); // until `a` shuts down
///         b.write_all(&buf).await.unwrap();
///     });
///     a.write_all(b"over and out").await.unwrap();
///     a.close().await.unwrap(); // shutdown(Write): `b` sees the end
///     let mut reply = String::new();
///     a.read_to_string(&mut reply).await.unwrap();
///     assert_eq!(reply, "over and out");
///     echo.await.unwrap();
/// });
/// # }
/// ```
pub struct UnixStream {
    pub(super) io: PollEvented<mio::net::UnixStream>,
}

impl UnixStream {
    /// Connects to the socket bound at `path`.
    ///
    /// # Errors
    ///
    /// No socket there (`NotFound`), nobody listening (`ConnectionRefused`),
    /// or, as with tokio, `WouldBlock` when the listener's backlog is full
    /// (Unix domain sockets cannot wait for room in it).
    ///
    /// # Panics
    ///
    /// Outside a baton runtime.
    pub async fn connect(path: impl AsRef<Path>) -> io::Result<UnixStream> {
        let stream = UnixStream::from_mio(mio::net::UnixStream::connect(path)?)?;
        poll_fn(|cx| stream.io.poll_ready(cx, Direction::Write)).await?;
        if let Some(e) = stream.io.take_error()? {
            return Err(e);
        }
        Ok(stream)
    }

    /// Two streams connected to each other (`socketpair(2)`).
    ///
    /// # Panics
    ///
    /// Outside a baton runtime.
    #[track_caller]
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = mio::net::UnixStream::pair()?;
        Ok((UnixStream::from_mio(a)?, UnixStream::from_mio(b)?))
    }

    /// A stream from a std one, which the caller has already made
    /// non-blocking (`set_nonblocking(true)`).
    ///
    /// # Panics
    ///
    /// Outside a baton runtime.
    #[track_caller]
    pub fn from_std(stream: std::os::unix::net::UnixStream) -> io::Result<UnixStream> {
        UnixStream::from_mio(mio::net::UnixStream::from_std(stream))
    }

    #[track_caller]
    fn from_mio(stream: mio::net::UnixStream) -> io::Result<UnixStream> {
        Ok(UnixStream {
            io: PollEvented::new(stream)?,
        })
    }

    /// The local address (unnamed unless the socket was bound).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// The remote address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.peer_addr()
    }

    /// Shuts down the read half, the write half, or both (`shutdown(2)`).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.shutdown(how)
    }

    /// Reads into `buf` when the stream is readable (0: end of stream).
    pub fn poll_read(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.io.poll_io(cx, Direction::Read, |s| (&*s).read(buf))
    }

    /// Writes from `buf` when the stream is writable.
    pub fn poll_write(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io.poll_io(cx, Direction::Write, |s| (&*s).write(buf))
    }

    /// Writes from `bufs` (one `writev(2)`) when the stream is writable.
    pub fn poll_write_vectored(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.io
            .poll_io(cx, Direction::Write, |s| (&*s).write_vectored(bufs))
    }
}

impl fmt::Debug for UnixStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixStream")
            .field("local_addr", &self.local_addr().ok())
            .field("peer_addr", &self.peer_addr().ok())
            .finish()
    }
}

impl_futures_io!(UnixStream);
