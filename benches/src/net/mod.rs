//! Network benchmarks: baton's I/O driver and sockets against tokio and smol
//! on loopback, plus timer create + cancel, timer resolution and
//! idle-runtime CPU.
//!
//! Everything runs through the `netbench` binary (`src/bin/netbench.rs`):
//! a *server* process per system (2 worker threads each by default), a
//! *load generator* process that is the same for every system (tokio, see
//! [`client`]), and an orchestrator ([`run`]) that re-executes the binary as
//! both, collects their JSON lines and prints markdown tables
//! ([`markdown`]). The report binary reuses the same pieces (`--only io`).
//!
//! * [`server`] — the server process: starts one system's server, prints its
//!   bound address, answers `mark` on stdin with a [`measure::Snapshot`]
//!   (CPU time, resident set, threads, connections accepted);
//! * [`server_tokio`], [`server_smol`] and `server_baton` (feature
//!   `baton-net`) — the three servers, one accept loop task and one task per
//!   connection each, with the same handlers: [`echo`] and HTTP/1.1 "hello"
//!   through hyper 1 ([`hyper_io`]);
//! * [`client`] — the load generator: echo ping-pong, HTTP/1.1 keep-alive
//!   requests, or idle connections held open;
//! * [`timers`] — timeout / sleep create, poll once, drop (in-process);
//! * [`resolution`] — how long a 1 ms sleep takes: p50 / p99 / max, with the
//!   workers idle and busy (in-process);
//! * [`measure`] — `getrusage`, `/proc/self/status`, `RLIMIT_NOFILE`;
//! * [`io_group`] — the report's `io` section.
//!
//! Loopback only: every address is `127.0.0.1`. Every load loop stops by
//! itself (a time bound, a count bound and an I/O timeout per operation).

use std::fmt;
use std::str::FromStr;

pub mod cli;
pub mod client;
pub mod echo;
pub mod hyper_io;
pub mod io_group;
pub mod markdown;
pub mod measure;
pub mod resolution;
pub mod run;
pub mod server;
#[cfg(feature = "baton-net")]
pub mod server_baton;
pub mod server_smol;
pub mod server_tokio;
pub mod timers;

/// Bytes per echo message (the client writes one, reads it back).
pub const MESSAGE_SIZE: usize = 1024;

/// The server's read buffer per connection in the idle workload (the echo
/// workload's is [`MESSAGE_SIZE`]).
pub const IDLE_BUFFER: usize = 64;

/// The body of every HTTP response.
pub const HELLO: &[u8] = b"hello";

/// A system under test: the runtime and its socket types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum System {
    /// baton's runtime and `baton::net` (feature `baton-net`).
    Baton,
    /// tokio's multi-thread runtime and `tokio::net`.
    Tokio,
    /// async-executor run by N threads (`async_io::block_on`) with
    /// async-io / async-net sockets.
    Smol,
}

impl System {
    /// Every system, in table order.
    pub const ALL: [System; 3] = [System::Baton, System::Tokio, System::Smol];

    /// Its name on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            System::Baton => "baton",
            System::Tokio => "tokio",
            System::Smol => "smol",
        }
    }

    /// Whether this build can run its *network* server (baton's needs the
    /// `baton-net` feature; its timers are always there).
    pub fn has_net(self) -> bool {
        match self {
            System::Baton => cfg!(feature = "baton-net"),
            System::Tokio | System::Smol => true,
        }
    }

    /// The systems whose network server this build can run.
    pub fn with_net() -> Vec<System> {
        System::ALL.into_iter().filter(|s| s.has_net()).collect()
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for System {
    type Err = String;

    fn from_str(s: &str) -> Result<System, String> {
        System::ALL
            .into_iter()
            .find(|sys| sys.name() == s.trim().to_lowercase())
            .ok_or_else(|| format!("unknown system {s:?} (expected baton, tokio or smol)"))
    }
}

/// What a server serves and what the client does with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Workload {
    /// [`MESSAGE_SIZE`]-byte ping-pong on each connection.
    Echo,
    /// HTTP/1.1 GET on keep-alive connections, "hello" in reply (hyper 1).
    Http,
    /// Connections opened, pinged once (one byte echoed, so the server's
    /// connection task has run) and held open.
    Idle,
}

impl Workload {
    /// Every workload, in table order.
    pub const ALL: [Workload; 3] = [Workload::Echo, Workload::Http, Workload::Idle];

    /// Its name on the command line and in tables.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Echo => "echo",
            Workload::Http => "http",
            Workload::Idle => "idle",
        }
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Workload {
    type Err = String;

    fn from_str(s: &str) -> Result<Workload, String> {
        Workload::ALL
            .into_iter()
            .find(|w| w.name() == s.trim().to_lowercase())
            .ok_or_else(|| format!("unknown workload {s:?} (expected echo, http or idle)"))
    }
}
