//! baton's server (feature `baton-net`): a runtime with N workers,
//! `baton_executor::net::TcpListener`, one accept-loop task, one task per
//! connection (`baton_executor::spawn`); HTTP through `TcpStream`'s own
//! `hyper::rt::{Read, Write}` (the executor's feature `hyper`, what
//! `baton::http::serve` uses), which reads into hyper's buffer directly.

use std::io;
use std::net::SocketAddr;

use baton_executor::net::{TcpListener, TcpStream};

use super::echo::echo_futures_io;
use super::hyper_io::serve_http1;
use super::server::{ACCEPT_BACKOFF, Running, accept_error, count_accept};
use super::{IDLE_BUFFER, MESSAGE_SIZE, System, Workload};

/// Starts the server on a fresh runtime with `workers` worker threads.
pub fn start(workload: Workload, addr: SocketAddr, workers: usize) -> io::Result<Running> {
    let rt = baton_executor::Builder::new()
        .worker_threads(workers)
        .thread_name("baton-server")
        .build()?;
    let local = rt.block_on(async {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        drop(baton_executor::spawn(accept_loop(listener, workload)));
        io::Result::Ok(local)
    })?;
    Ok(Running::new(local, rt))
}

async fn accept_loop(listener: TcpListener, workload: Workload) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                count_accept();
                let _ = stream.set_nodelay(true);
                drop(baton_executor::spawn(connection(stream, workload)));
            }
            Err(e) => {
                accept_error(System::Baton, &e);
                baton_executor::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

async fn connection(stream: TcpStream, workload: Workload) {
    // Errors are the client going away; nothing to report.
    let _ = match workload {
        Workload::Echo => echo_futures_io(stream, MESSAGE_SIZE).await,
        Workload::Idle => echo_futures_io(stream, IDLE_BUFFER).await,
        Workload::Http => serve_http1(stream).await.map_err(io::Error::other),
    };
}
