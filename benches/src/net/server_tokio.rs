//! tokio's server: a multi-thread runtime with N workers (I/O and timers
//! enabled), `tokio::net::TcpListener`, one accept-loop task, one task per
//! connection (`tokio::spawn`); HTTP through hyper-util's `TokioIo`.

use std::io;
use std::net::SocketAddr;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::hyper_io::serve_http1;
use super::server::{ACCEPT_BACKOFF, Running, accept_error, count_accept};
use super::{IDLE_BUFFER, MESSAGE_SIZE, System, Workload};

/// Starts the server on a fresh runtime with `workers` worker threads.
pub fn start(workload: Workload, addr: SocketAddr, workers: usize) -> io::Result<Running> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("tokio-server")
        .enable_all()
        .build()?;
    let local = rt.block_on(async {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        tokio::spawn(accept_loop(listener, workload));
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
                tokio::spawn(connection(stream, workload));
            }
            Err(e) => {
                accept_error(System::Tokio, &e);
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

async fn connection(stream: TcpStream, workload: Workload) {
    // Errors are the client going away; nothing to report.
    let _ = match workload {
        Workload::Echo => echo(stream, MESSAGE_SIZE).await,
        Workload::Idle => echo(stream, IDLE_BUFFER).await,
        Workload::Http => serve_http1(TokioIo::new(stream))
            .await
            .map_err(io::Error::other),
    };
}

/// [`super::echo::echo_futures_io`] on `tokio::io`.
async fn echo(mut stream: TcpStream, buffer: usize) -> io::Result<()> {
    let mut buf = vec![0u8; buffer];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}
