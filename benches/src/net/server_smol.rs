//! smol's server: one `async_executor::Executor` run by N threads, each in
//! `async_io::block_on` (so an idle worker drives the async-io reactor, as
//! `smol::block_on` does; async-io also starts its own fallback "async-io"
//! thread), async-net's `TcpListener`, one accept-loop task, one task per
//! connection; HTTP through [`HyperIo`].

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use async_executor::Executor;
use async_net::{TcpListener, TcpStream};

use super::echo::echo_futures_io;
use super::hyper_io::{HyperIo, serve_http1};
use super::server::{ACCEPT_BACKOFF, Running, accept_error, count_accept};
use super::{IDLE_BUFFER, MESSAGE_SIZE, System, Workload};

/// Starts the server on a fresh executor run by `workers` threads.
pub fn start(workload: Workload, addr: SocketAddr, workers: usize) -> io::Result<Running> {
    let ex = Arc::new(Executor::new());
    let (stop, stopped) = async_channel::bounded::<()>(1);
    let threads = (0..workers)
        .map(|i| {
            let ex = ex.clone();
            let stopped = stopped.clone();
            std::thread::Builder::new()
                .name(format!("smol-server-{i}"))
                .spawn(move || {
                    let _ = async_io::block_on(ex.run(stopped.recv()));
                })
        })
        .collect::<io::Result<Vec<_>>>()?;
    let listener = async_io::block_on(TcpListener::bind(addr))?;
    let local = listener.local_addr()?;
    ex.spawn(accept_loop(ex.clone(), listener, workload))
        .detach();
    Ok(Running::new(local, (ex, stop, threads)))
}

async fn accept_loop(ex: Arc<Executor<'static>>, listener: TcpListener, workload: Workload) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                count_accept();
                let _ = stream.set_nodelay(true);
                ex.spawn(connection(stream, workload)).detach();
            }
            Err(e) => {
                accept_error(System::Smol, &e);
                async_io::Timer::after(ACCEPT_BACKOFF).await;
            }
        }
    }
}

async fn connection(stream: TcpStream, workload: Workload) {
    // Errors are the client going away; nothing to report.
    let _ = match workload {
        Workload::Echo => echo_futures_io(stream, MESSAGE_SIZE).await,
        Workload::Idle => echo_futures_io(stream, IDLE_BUFFER).await,
        Workload::Http => serve_http1(HyperIo::new(stream))
            .await
            .map_err(io::Error::other),
    };
}
