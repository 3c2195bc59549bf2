//! Dropping a runtime closes every socket its tasks held, and its own epoll
//! and eventfd: the process's fd count is back where it was.
//!
//! Alone in this test binary: tests running beside it would open and close
//! fds of their own while it counts.
#![cfg(all(target_os = "linux", not(baton_loom), not(miri)))]

use baton_executor::net::{TcpListener, TcpStream, UdpSocket, UnixStream};
use baton_executor::{Builder, spawn};
use futures::AsyncReadExt;

fn open_fds() -> usize {
    // The directory's own fd is counted each time, so it cancels out.
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn dropping_a_runtime_closes_the_sockets_of_its_pending_tasks() {
    let baseline = open_fds();
    let rt = Builder::new().worker_threads(2).build().unwrap();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let (unix_a, unix_b) = UnixStream::pair().unwrap();
        // Held by a task that never finishes.
        spawn(async move {
            let _held = (listener, client, udp, unix_b);
            std::future::pending::<()>().await
        });
        // Waiting in reads (registered wakers) that never complete.
        spawn(async move {
            let mut server = server;
            let _ = server.read(&mut [0; 8]).await;
        });
        spawn(async move {
            let mut unix_a = unix_a;
            let _ = unix_a.read(&mut [0; 8]).await;
        });
        baton_executor::yield_now().await;
    });
    // listener, client, server, udp, 2 × unix, + the epoll fd and eventfd.
    assert!(open_fds() >= baseline + 8, "{} open", open_fds());
    drop(rt);
    assert_eq!(open_fds(), baseline, "fds leaked by a dropped runtime");
}
