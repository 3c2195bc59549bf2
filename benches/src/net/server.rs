//! The server process (`netbench server`): starts one system's server on a
//! loopback address, prints the bound address as its first stdout line, and
//! then answers its stdin, one command a line:
//!
//! * `mark` — prints a [`Snapshot`] as one JSON line (CPU time, resident
//!   set, threads, connections accepted);
//! * end of input — prints a last snapshot and exits.
//!
//! It also exits by itself after `max` (so a lost orchestrator cannot leave
//! it running). The orchestrator takes a snapshot before and after each
//! measured window; the difference is the server's cost for that window.

use std::any::Any;
use std::io::{self, BufRead, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use super::measure::{Snapshot, raise_nofile_limit};
use super::{System, Workload};

/// Connections accepted by this process's server.
static ACCEPTED: AtomicU64 = AtomicU64::new(0);

/// Counts one accepted connection (every accept loop calls it).
pub fn count_accept() {
    ACCEPTED.fetch_add(1, Relaxed);
}

/// Connections accepted so far.
pub fn accepted() -> u64 {
    ACCEPTED.load(Relaxed)
}

/// How long an accept loop waits after an accept error (EMFILE and the
/// like) before it tries again.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Reports an accept error on stderr (the loop goes on after
/// [`ACCEPT_BACKOFF`]).
pub fn accept_error(system: System, e: &io::Error) {
    eprintln!("netbench server ({system}): accept failed: {e}");
}

/// A started server: its address, and whatever keeps it alive (runtime,
/// threads).
pub struct Running {
    /// The bound address.
    pub addr: SocketAddr,
    _keep: Box<dyn Any>,
}

impl Running {
    /// A server bound to `addr`, kept alive by `keep`.
    pub fn new(addr: SocketAddr, keep: impl Any) -> Running {
        Running {
            addr,
            _keep: Box::new(keep),
        }
    }
}

/// What to serve.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The system.
    pub system: System,
    /// The workload (`idle` uses the echo handler with a small buffer).
    pub workload: Workload,
    /// Where to bind (port 0: any free port).
    pub addr: SocketAddr,
    /// Worker threads of the server's runtime.
    pub workers: usize,
    /// Exit after this long whatever happens.
    pub max: Duration,
}

/// Starts `cfg.system`'s server for `cfg.workload`.
pub fn start(cfg: &ServerConfig) -> io::Result<Running> {
    assert!(
        cfg.addr.ip().is_loopback(),
        "netbench serves on loopback only, not {}",
        cfg.addr
    );
    match cfg.system {
        System::Tokio => super::server_tokio::start(cfg.workload, cfg.addr, cfg.workers),
        System::Smol => super::server_smol::start(cfg.workload, cfg.addr, cfg.workers),
        #[cfg(feature = "baton-net")]
        System::Baton => super::server_baton::start(cfg.workload, cfg.addr, cfg.workers),
        #[cfg(not(feature = "baton-net"))]
        System::Baton => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "baton's server needs baton::net: build with `--features baton-net`",
        )),
    }
}

fn print_line(line: &str) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The server process's main: start, print the address, answer stdin; see
/// the module docs. Returns when stdin ends (the caller exits).
pub fn main(cfg: &ServerConfig) -> io::Result<()> {
    raise_nofile_limit()?;
    let running = start(cfg)?;
    print_line(&running.addr.to_string());
    let max = cfg.max;
    std::thread::spawn(move || {
        std::thread::sleep(max);
        eprintln!("netbench server: {max:?} passed, exiting");
        std::process::exit(3);
    });
    for line in io::stdin().lock().lines() {
        match line?.trim() {
            "mark" => print_line(&Snapshot::take(accepted()).to_json().to_string()),
            "" => {}
            other => eprintln!("netbench server: unknown command {other:?}"),
        }
    }
    print_line(&Snapshot::take(accepted()).to_json().to_string());
    // Leave the runtime and its connections to the process exit.
    std::mem::forget(running);
    Ok(())
}
