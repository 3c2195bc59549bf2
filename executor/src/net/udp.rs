//! [`UdpSocket`].

use std::fmt;
use std::future::poll_fn;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::task::{Context, Poll};

use crate::io::PollEvented;
use crate::io::scheduled_io::Direction;
use crate::net::tcp::each_addr;

/// A UDP socket on the current runtime's reactor.
///
/// Unconnected, it sends to and receives from any address
/// ([`send_to`](UdpSocket::send_to), [`recv_from`](UdpSocket::recv_from));
/// after [`connect`](UdpSocket::connect) it exchanges datagrams with one
/// peer ([`send`](UdpSocket::send), [`recv`](UdpSocket::recv)). Every method
/// takes `&self`, so one task may receive while another sends (share it in
/// an `Arc`).
///
/// ```
/// use baton_executor::net::UdpSocket;
///
/// let rt = baton_executor::Runtime::new();
/// rt.block_on(async {
///     let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
///     let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
///     a.send_to(b"ping", b.local_addr().unwrap()).await.unwrap();
///     let mut buf = [0; 16];
///     let (n, from) = b.recv_from(&mut buf).await.unwrap();
///     assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr().unwrap()));
///
///     // Connected: one peer, no addresses.
///     b.connect(from).await.unwrap();
///     b.send(b"pong").await.unwrap();
///     let n = a.recv(&mut buf).await.unwrap();
///     assert_eq!(&buf[..n], b"pong");
/// });
/// ```
pub struct UdpSocket {
    io: PollEvented<mio::net::UdpSocket>,
}

impl UdpSocket {
    /// Binds a socket to `addr` (the first of its addresses that can be
    /// bound). Port 0 picks a free port; see [`UdpSocket::local_addr`].
    ///
    /// # Errors
    ///
    /// If no address resolves or none can be bound.
    ///
    /// # Panics
    ///
    /// Outside a baton runtime.
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        each_addr(addr, |addr| {
            UdpSocket::from_mio(mio::net::UdpSocket::bind(addr)?)
        })
    }

    /// A socket from a std one, which the caller has already made
    /// non-blocking (`set_nonblocking(true)`), as tokio requires too.
    ///
    /// # Panics
    ///
    /// Outside a baton runtime.
    #[track_caller]
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        UdpSocket::from_mio(mio::net::UdpSocket::from_std(socket))
    }

    #[track_caller]
    fn from_mio(socket: mio::net::UdpSocket) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            io: PollEvented::new(socket)?,
        })
    }

    /// Connects the socket to `addr` (the first of its addresses that
    /// works): from then on [`send`](UdpSocket::send) goes there and only
    /// datagrams from there are received.
    ///
    /// # Errors
    ///
    /// If no address resolves or `connect(2)` fails for all of them.
    pub async fn connect(&self, addr: impl ToSocketAddrs) -> io::Result<()> {
        each_addr(addr, |addr| self.io.connect(addr))
    }

    /// Sends `buf` as one datagram to `target` (its first address).
    /// Returns the number of bytes sent.
    ///
    /// # Errors
    ///
    /// If `target` resolves to no address, or what `sendto(2)` reports.
    pub async fn send_to(&self, buf: &[u8], target: impl ToSocketAddrs) -> io::Result<usize> {
        let target = target.to_socket_addrs()?.next().ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "no addresses to send data to")
        })?;
        poll_fn(|cx| self.poll_send_to(cx, buf, target)).await
    }

    /// Polls to send `buf` as one datagram to `target` (see
    /// [`UdpSocket::send_to`]).
    pub fn poll_send_to(
        &self,
        cx: &mut Context<'_>,
        buf: &[u8],
        target: SocketAddr,
    ) -> Poll<io::Result<usize>> {
        self.io
            .poll_io(cx, Direction::Write, |s| s.send_to(buf, target))
    }

    /// Receives one datagram into `buf`; returns its length and sender. A
    /// datagram longer than `buf` is cut to fit (the rest is lost).
    ///
    /// # Errors
    ///
    /// What `recvfrom(2)` reports.
    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        poll_fn(|cx| self.poll_recv_from(cx, buf)).await
    }

    /// Polls to receive one datagram (see [`UdpSocket::recv_from`]).
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        self.io.poll_io(cx, Direction::Read, |s| s.recv_from(buf))
    }

    /// Sends `buf` as one datagram to the connected peer.
    ///
    /// # Errors
    ///
    /// If the socket is not connected, or what `send(2)` reports (such as
    /// `ConnectionRefused` after the peer's port answered an earlier
    /// datagram with ICMP port unreachable).
    pub async fn send(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_send(cx, buf)).await
    }

    /// Polls to send to the connected peer (see [`UdpSocket::send`]).
    pub fn poll_send(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.io.poll_io(cx, Direction::Write, |s| s.send(buf))
    }

    /// Receives one datagram from the connected peer into `buf`; returns
    /// its length.
    ///
    /// # Errors
    ///
    /// If the socket is not connected, or what `recv(2)` reports.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_recv(cx, buf)).await
    }

    /// Polls to receive from the connected peer (see [`UdpSocket::recv`]).
    pub fn poll_recv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.io.poll_io(cx, Direction::Read, |s| s.recv(buf))
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// The address of the connected peer (`NotConnected` if none).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.peer_addr()
    }
}

impl fmt::Debug for UdpSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UdpSocket")
            .field("local_addr", &self.local_addr().ok())
            .field("peer_addr", &self.peer_addr().ok())
            .finish()
    }
}
