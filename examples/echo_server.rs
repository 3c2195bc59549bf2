//! A line-echo server on baton's own sockets: one task per connection, the
//! connection's id in a `ContextVar`, read deep inside the handler without
//! being passed down, across every await and worker migration.
//!
//! `cargo run --example echo_server` serves on 127.0.0.1:7000 (`--addr` to
//! change) until Ctrl-C; try it with `nc 127.0.0.1 7000`.
//! `cargo run --example echo_server -- --demo` starts the server on a free
//! port, connects a few clients itself, prints what the server logged, and
//! exits (the form `tests/examples.rs` checks).

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use baton::net::{TcpListener, TcpStream};
use baton::{ContextVar, Runtime, spawn};
use futures::io::BufReader;
use futures::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// The connection this task serves.
static CONN: ContextVar<u32> = ContextVar::new("conn");

/// Where the server logs (stdout when serving, a buffer in the demo).
type Log = Arc<Mutex<Vec<String>>>;

/// Deep in the handler: the connection id comes from the context.
fn log(log: &Log, what: &str) {
    let conn = CONN.get().map_or("-".to_string(), |c| c.to_string());
    log.lock().unwrap().push(format!("[conn {conn}] {what}"));
}

/// Serves one connection: echoes each line back, upper-cased.
async fn serve(socket: TcpStream, id: u32, logs: Log) -> io::Result<()> {
    let _t = CONN.set(id); // this task's context only
    log(&logs, "connected");
    let mut writer = &socket;
    let mut lines = BufReader::new(&socket).lines();
    while let Some(line) = futures::StreamExt::next(&mut lines).await {
        let line = line?;
        log(&logs, &format!("got {line:?}"));
        writer.write_all(line.to_uppercase().as_bytes()).await?;
        writer.write_all(b"\n").await?;
    }
    log(&logs, "closed");
    Ok(())
}

/// Accepts connections forever, each in its own task.
async fn accept_loop(listener: TcpListener, logs: Log) {
    let mut next = 1;
    loop {
        match listener.accept().await {
            Ok((socket, _)) => {
                let (id, logs) = (next, logs.clone());
                next += 1;
                spawn(async move {
                    if let Err(e) = serve(socket, id, logs.clone()).await {
                        log(&logs, &format!("error: {e}"));
                    }
                });
            }
            Err(e) => eprintln!("accept: {e}"),
        }
    }
}

/// The demo: three clients, two lines each; writes the server's log,
/// sorted (the connections interleave).
pub(crate) fn run(out: &mut impl Write) -> io::Result<()> {
    let logs: Log = Arc::default();
    let rt = Runtime::new();
    rt.block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        spawn(accept_loop(listener, logs.clone()));
        let mut clients = Vec::new();
        for i in 1..=3 {
            // Connected one after the other, so client i is connection i;
            // then all three talk at once.
            let mut socket = TcpStream::connect(addr).await?;
            clients.push(spawn(async move {
                socket
                    .write_all(format!("hello {i}\nbye {i}\n").as_bytes())
                    .await?;
                socket.shutdown(std::net::Shutdown::Write)?;
                let mut reply = String::new();
                socket.read_to_string(&mut reply).await?;
                io::Result::Ok(reply)
            }));
        }
        for (i, client) in (1..=3).zip(clients) {
            let reply = client.await.expect("client task")?;
            assert_eq!(reply, format!("HELLO {i}\nBYE {i}\n"));
        }
        io::Result::Ok(())
    })?;
    // Let the connection tasks log their "closed" lines: they end when the
    // runtime is dropped at the latest.
    drop(rt);
    let mut lines = logs.lock().unwrap().clone();
    lines.sort();
    for line in lines {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--demo") {
        return run(&mut io::stdout());
    }
    let addr = args
        .iter()
        .position(|a| a == "--addr")
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:7000".to_string());
    let logs: Log = Arc::default();
    let printer = logs.clone();
    Runtime::new().block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        println!("echo_server listening on {}", listener.local_addr()?);
        spawn(accept_loop(listener, logs));
        // Print the log as it grows, until Ctrl-C.
        let print = spawn(async move {
            loop {
                baton::sleep(std::time::Duration::from_millis(100)).await;
                for line in printer.lock().unwrap().drain(..) {
                    println!("{line}");
                }
            }
        });
        baton::signal::ctrl_c().await?;
        print.abort();
        io::Result::Ok(())
    })
}
