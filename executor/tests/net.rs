//! Sockets: an echo server under load whose tasks keep their contexts,
//! half-close, errors (refused, reset), UDP, Unix, vectored writes, and use
//! outside a runtime (a panic) or after it (an error).
//!
//! The fd-count and `EMFILE` checks are in `net_fd.rs` and `net_emfile.rs`,
//! alone in their processes.
// Miri cannot run epoll; the Unix sockets need Unix.
#![cfg(all(unix, not(baton_loom), not(miri)))]

use std::io::{ErrorKind, IoSlice};
use std::net::{Shutdown, SocketAddr};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use baton_context::ContextVar;
use baton_executor::net::{TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
use baton_executor::{Builder, Runtime, spawn, yield_now};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

fn runtime() -> Runtime {
    Builder::new().worker_threads(2).build().unwrap()
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// A fresh socket path in the temp dir, removed when dropped.
struct TempPath(PathBuf);

impl TempPath {
    fn new(tag: &str) -> TempPath {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("baton-net-{}-{tag}-{n}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        TempPath(path)
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

static CONN: ContextVar<u64> = ContextVar::new("conn");

/// Awaits `$fut`, then checks that the task's context still holds `$id`.
macro_rules! checked {
    ($id:expr, $fut:expr) => {{
        let out = $fut.await;
        assert_eq!(
            CONN.get(),
            Some($id),
            "the task's context changed across an await"
        );
        out
    }};
}

#[test]
fn echo_500_connections_each_task_keeps_its_context() {
    const CONNS: u64 = 500;
    const ROUNDS: u64 = 8;
    let rt = runtime();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spawn(async move {
            let mut handlers = Vec::new();
            for _ in 0..CONNS {
                let (mut socket, _) = listener.accept().await.unwrap();
                handlers.push(spawn(async move {
                    assert_eq!(CONN.get(), None);
                    let mut id = [0; 8];
                    socket.read_exact(&mut id).await.unwrap();
                    // The connection's id, from the wire, into this task's context.
                    let id = u64::from_le_bytes(id);
                    let _token = CONN.set(id);
                    for round in 0..ROUNDS {
                        let mut msg = [0; 16];
                        checked!(id, socket.read_exact(&mut msg)).unwrap();
                        assert_eq!(msg, message(id, round));
                        checked!(id, yield_now());
                        checked!(id, socket.write_all(&msg)).unwrap();
                    }
                    let mut rest = Vec::new();
                    assert_eq!(checked!(id, socket.read_to_end(&mut rest)).unwrap(), 0);
                }));
            }
            for handler in handlers {
                handler.await.unwrap();
            }
        });
        let clients: Vec<_> = (0..CONNS)
            .map(|id| {
                spawn(async move {
                    let _token = CONN.set(id);
                    let mut socket = checked!(id, TcpStream::connect(addr)).unwrap();
                    checked!(id, socket.write_all(&id.to_le_bytes())).unwrap();
                    for round in 0..ROUNDS {
                        let msg = message(id, round);
                        checked!(id, socket.write_all(&msg)).unwrap();
                        checked!(id, yield_now());
                        let mut echo = [0; 16];
                        checked!(id, socket.read_exact(&mut echo)).unwrap();
                        assert_eq!(echo, msg);
                    }
                    checked!(id, socket.close()).unwrap();
                    id
                })
            })
            .collect();
        for (id, client) in (0..CONNS).zip(clients) {
            assert_eq!(client.await.unwrap(), id);
        }
        server.await.unwrap();
    });
}

fn message(id: u64, round: u64) -> [u8; 16] {
    let mut msg = [0; 16];
    msg[..8].copy_from_slice(&id.to_le_bytes());
    msg[8..].copy_from_slice(&round.to_le_bytes());
    msg
}

#[test]
fn half_close_then_reply_then_eof() {
    let rt = runtime();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spawn(async move {
            let (mut socket, peer) = listener.accept().await.unwrap();
            assert_eq!(socket.peer_addr().unwrap(), peer);
            let mut request = Vec::new();
            // Reads until the client's shutdown(Write): a read returned 0.
            socket.read_to_end(&mut request).await.unwrap();
            assert_eq!(request, b"request");
            socket.write_all(b"reply").await.unwrap();
        });
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.set_nodelay(true).unwrap();
        assert!(client.nodelay().unwrap());
        client.write_all(b"request").await.unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut reply = Vec::new();
        client.read_to_end(&mut reply).await.unwrap();
        assert_eq!(reply, b"reply");
        // EOF stays EOF.
        assert_eq!(client.read(&mut [0; 8]).await.unwrap(), 0);
        server.await.unwrap();
    });
}

#[test]
fn connecting_to_a_closed_port_is_refused() {
    let rt = runtime();
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let err = rt.block_on(TcpStream::connect(addr)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
}

#[test]
fn a_peer_reset_is_an_error_not_a_panic() {
    let rt = runtime();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // The loopback handshake completes in the kernel: no accept needed.
        let peer = std::net::TcpStream::connect(addr).unwrap();
        let (socket, _) = listener.accept().await.unwrap();
        let mut buf = [0; 16];
        let mut reader = &socket;
        let mut read = pin!(reader.read(&mut buf));
        // Waiting for data when the reset arrives.
        assert!(futures::poll!(read.as_mut()).is_pending());
        // SO_LINGER 0: close sends RST instead of FIN.
        socket2::SockRef::from(&peer)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(peer);
        match read.await {
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{e}"),
            Ok(n) => assert_eq!(n, 0),
        }
    });
    // The runtime keeps working, I/O included.
    rt.block_on(async {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        a.write_all(b"still here").await.unwrap();
        let mut buf = [0; 10];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"still here");
    });
}

#[test]
fn udp_send_to_recv_from_and_connected() {
    let rt = runtime();
    rt.block_on(async {
        let a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (a_addr, b_addr) = (a.local_addr().unwrap(), b.local_addr().unwrap());
        assert_eq!(a.peer_addr().unwrap_err().kind(), ErrorKind::NotConnected);

        // The receiver waits first, in a task of its own.
        let b = std::sync::Arc::new(b);
        let receiver = {
            let b = b.clone();
            spawn(async move {
                let mut buf = [0; 64];
                let (n, from) = b.recv_from(&mut buf).await.unwrap();
                (buf[..n].to_vec(), from)
            })
        };
        assert_eq!(a.send_to(b"ping", b_addr).await.unwrap(), 4);
        let (got, from) = receiver.await.unwrap();
        assert_eq!((got.as_slice(), from), (&b"ping"[..], a_addr));

        // Connected both ways: send/recv with no addresses.
        a.connect(b_addr).await.unwrap();
        b.connect(a_addr).await.unwrap();
        assert_eq!(a.peer_addr().unwrap(), b_addr);
        for i in 0..10u8 {
            b.send(&[i; 3]).await.unwrap();
            let mut buf = [0; 8];
            assert_eq!(a.recv(&mut buf).await.unwrap(), 3);
            assert_eq!(&buf[..3], &[i; 3]);
        }
        a.send(b"pong").await.unwrap();
        let mut buf = [0; 8];
        let n = b.recv(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"pong");

        // poll_* with poll_fn.
        let n = std::future::poll_fn(|cx| a.poll_send(cx, b"x"))
            .await
            .unwrap();
        assert_eq!(n, 1);
        let (n, from) = std::future::poll_fn(|cx| b.poll_recv_from(cx, &mut buf))
            .await
            .unwrap();
        assert_eq!((n, from), (1, a_addr));
    });
}

#[test]
fn udp_send_to_an_unresolvable_target_is_an_error() {
    let rt = runtime();
    rt.block_on(async {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let none: &[SocketAddr] = &[];
        let err = socket.send_to(b"x", none).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    });
}

#[test]
fn unix_listener_stream_round_trip() {
    let path = TempPath::new("round-trip");
    let rt = runtime();
    rt.block_on(async {
        let listener = UnixListener::bind(&path.0).unwrap();
        assert_eq!(
            listener.local_addr().unwrap().as_pathname(),
            Some(path.0.as_path())
        );
        // Binding the same path twice fails.
        assert_eq!(
            UnixListener::bind(&path.0).unwrap_err().kind(),
            ErrorKind::AddrInUse
        );
        let server = spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = Vec::new();
            socket.read_to_end(&mut buf).await.unwrap();
            buf.reverse();
            socket.write_all(&buf).await.unwrap();
            socket.shutdown(Shutdown::Both).unwrap();
        });
        let mut client = UnixStream::connect(&path.0).await.unwrap();
        assert_eq!(
            client.peer_addr().unwrap().as_pathname(),
            Some(path.0.as_path())
        );
        assert!(client.local_addr().unwrap().is_unnamed());
        client.write_all(b"stressed").await.unwrap();
        client.close().await.unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).await.unwrap();
        assert_eq!(reply, "desserts");
        server.await.unwrap();
    });
}

#[test]
fn unix_connect_to_a_missing_path_fails() {
    let path = TempPath::new("missing");
    let rt = runtime();
    let err = rt.block_on(UnixStream::connect(&path.0)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}

#[test]
fn unix_pair_both_ways_from_two_tasks() {
    let rt = runtime();
    rt.block_on(async {
        let (a, b) = UnixStream::pair().unwrap();
        let a = std::sync::Arc::new(a);
        // One task reads `a` while this one writes to it (through `&UnixStream`).
        let reader = {
            let a = a.clone();
            spawn(async move {
                let mut buf = [0; 5];
                (&*a).read_exact(&mut buf).await.unwrap();
                buf
            })
        };
        (&*a).write_all(b"to b!").await.unwrap();
        let mut b = b;
        let mut buf = [0; 5];
        b.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"to b!");
        b.write_all(b"to a!").await.unwrap();
        assert_eq!(&reader.await.unwrap(), b"to a!");
    });
}

/// Writes `bufs` whole with `write_vectored`, then closes the write half.
async fn write_all_vectored(mut w: impl AsyncWrite + Unpin, bufs: &[&[u8]]) {
    let mut slices: Vec<IoSlice<'_>> = bufs.iter().map(|b| IoSlice::new(b)).collect();
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        let n = w.write_vectored(slices).await.unwrap();
        assert!(n > 0);
        IoSlice::advance_slices(&mut slices, n);
    }
    w.close().await.unwrap();
}

async fn read_all(mut r: impl AsyncRead + Unpin) -> Vec<u8> {
    let mut all = Vec::new();
    r.read_to_end(&mut all).await.unwrap();
    all
}

#[test]
fn vectored_writes_arrive_in_order() {
    // Big enough that a socket buffer fills and the writer waits.
    let first: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let second: Vec<u8> = (0..300_000u32).map(|i| (i % 241) as u8 ^ 0xff).collect();
    let expected = [first.as_slice(), second.as_slice()].concat();
    let rt = runtime();
    rt.block_on(async {
        // TCP.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let reader = spawn(read_all(server));
        write_all_vectored(&client, &[&first, &second]).await;
        assert!(reader.await.unwrap() == expected);

        // Unix.
        let (a, b) = UnixStream::pair().unwrap();
        let reader = spawn(read_all(b));
        write_all_vectored(a, &[&first, &second]).await;
        assert!(reader.await.unwrap() == expected);
    });
}

#[test]
fn creating_a_socket_outside_a_runtime_panics() {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    std_listener.set_nonblocking(true).unwrap();
    let p = catch_unwind(AssertUnwindSafe(|| TcpListener::from_std(std_listener))).unwrap_err();
    assert!(panic_message(p).contains("baton runtime"));

    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let p = catch_unwind(AssertUnwindSafe(|| UnixStream::from_std(a))).unwrap_err();
    assert!(panic_message(p).contains("baton runtime"));

    let p = catch_unwind(|| UnixStream::pair()).unwrap_err();
    assert!(panic_message(p).contains("baton runtime"));

    // An async constructor panics when first polled.
    let p =
        catch_unwind(|| futures::executor::block_on(UdpSocket::bind("127.0.0.1:0"))).unwrap_err();
    assert!(panic_message(p).contains("baton runtime"));
}

#[test]
fn polling_a_socket_on_a_plain_thread_panics() {
    let rt = runtime();
    let (a, b) = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (b, _) = listener.accept().await.unwrap();
        (a, b)
    });
    let p = std::thread::spawn(move || {
        let mut a = a;
        let mut buf = [0; 4];
        // Would wait forever for a driver that does not run here.
        let _ = futures::executor::block_on(a.read(&mut buf));
    })
    .join()
    .unwrap_err();
    assert!(panic_message(p).contains("baton runtime"));
    // The runtime, and the other end, are fine.
    rt.block_on(async move {
        let mut b = b;
        b.write_all(b"ok").await.unwrap();
    });
}

#[test]
fn a_socket_whose_runtime_is_gone_returns_an_error() {
    let rt = runtime();
    let (listener, stream, udp) = rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        (listener, stream, udp)
    });
    drop(rt);
    let other = runtime();
    other.block_on(async {
        // The connection is in the backlog, but its listener's driver is gone.
        let err = listener.accept().await.unwrap_err();
        assert!(err.to_string().contains("shut down"), "{err}");
        let err = (&stream).read(&mut [0; 4]).await.unwrap_err();
        assert!(err.to_string().contains("shut down"), "{err}");
        let err = (&stream).write(b"x").await.unwrap_err();
        assert!(err.to_string().contains("shut down"), "{err}");
        let err = udp.recv_from(&mut [0; 4]).await.unwrap_err();
        assert!(err.to_string().contains("shut down"), "{err}");
    });
    // Dropped outside any runtime: deregistering from a dead driver is fine.
    drop((listener, stream, udp));
}

#[test]
fn sockets_and_their_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    fn send_sync<T: Send + Sync + Unpin>() {}
    send_sync::<TcpStream>();
    send_sync::<TcpListener>();
    send_sync::<UdpSocket>();
    send_sync::<UnixStream>();
    send_sync::<UnixListener>();
    let rt = runtime();
    rt.block_on(async {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let mut buf = [0; 4];
        send(&udp.recv_from(&mut buf));
        send(&udp.send_to(b"x", "127.0.0.1:9"));
        send(&udp.connect("127.0.0.1:9"));
        send(&UdpSocket::bind("127.0.0.1:0"));
        send(&UnixStream::connect("/nonexistent"));
        send(&TcpStream::connect("127.0.0.1:9"));
    });
}

/// A worker that never runs out of work still sees I/O readiness: it turns
/// the driver without blocking every so many ticks. One worker, kept busy
/// by a task that yields until a datagram (sent by a plain thread) is
/// received, or gives up after ten million yields (a failure, not a hang).
#[test]
fn a_busy_worker_still_sees_io_readiness() {
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    let rt = Builder::new().worker_threads(1).build().unwrap();
    let received = Arc::new(AtomicBool::new(false));
    let yields = rt.block_on({
        let received = received.clone();
        async move {
            let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            let addr = socket.local_addr().unwrap();
            let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
            let receiver = spawn({
                let received = received.clone();
                async move {
                    let mut buf = [0; 16];
                    let n = {
                        let mut recv = pin!(socket.recv_from(&mut buf));
                        // Registered (and pending) before the datagram is
                        // sent.
                        assert!(futures::poll!(recv.as_mut()).is_pending());
                        ready_tx.send(()).unwrap();
                        recv.await.unwrap().0
                    };
                    assert_eq!(&buf[..n], b"ping");
                    received.store(true, Ordering::SeqCst);
                }
            });
            let spinner = spawn(async move {
                let mut yields = 0u64;
                while !received.load(Ordering::SeqCst) && yields < 10_000_000 {
                    yield_now().await;
                    yields += 1;
                }
                yields
            });
            std::thread::spawn(move || {
                ready_rx.recv().unwrap();
                let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                sender.send_to(b"ping", addr).unwrap();
            });
            let yields = spinner.await.unwrap();
            receiver.await.unwrap();
            yields
        }
    });
    assert!(
        received.load(Ordering::SeqCst),
        "readiness never seen while busy"
    );
    assert!(yields < 10_000_000);
}
