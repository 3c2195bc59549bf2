//! The orchestrator (`netbench run`, `netbench idle-cpu`, and the report's
//! `io` group): re-executes the benchmark binary as a server process and a
//! client process per cell (one system × one workload × one round), talks
//! to them over their stdin / stdout (see [`super::server`] and
//! [`super::client`]) and collects a [`Cell`] per run.
//!
//! Per cell: start the server and read its address; snapshot it (`m0`);
//! start the client, which connects and warms up, then prints `ready`;
//! snapshot the server (`m1`); tell the client `go`; read the client's JSON
//! line once its window has ended; snapshot the server (`m2`); close both.
//! The server's cost of the window is `m2 - m1`; the idle workload's memory
//! per connection is `(m1.rss - m0.rss) / connections`. Children that do
//! not answer in time are killed (they are ours, by handle) and the cell
//! fails with an error; systems are interleaved within each round.

use std::io::{self, BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::Duration;

use serde_json::Value;

use super::client::ClientReport;
use super::measure::Snapshot;
use super::{System, Workload};

/// How to start this benchmark's child processes: an executable and the
/// arguments that select netbench's command line in it (none for the
/// `netbench` binary itself; [`super::cli::CHILD_ARG`] for the report).
#[derive(Clone, Debug)]
pub struct Exe {
    /// The executable.
    pub path: PathBuf,
    /// Arguments before the subcommand.
    pub prefix: Vec<String>,
}

impl Exe {
    /// The running executable, with `prefix`.
    pub fn current(prefix: &[&str]) -> io::Result<Exe> {
        Ok(Exe {
            path: std::env::current_exe()?,
            prefix: prefix.iter().map(|s| s.to_string()).collect(),
        })
    }

    fn command(&self, args: &[String]) -> Command {
        let mut c = Command::new(&self.path);
        c.args(&self.prefix)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        c
    }
}

/// What `run` measures.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The systems, in order.
    pub systems: Vec<System>,
    /// The workloads, in order.
    pub workloads: Vec<Workload>,
    /// Rounds (each runs every system once per workload).
    pub rounds: usize,
    /// The measured window of each echo / http cell, and how long idle
    /// connections are held.
    pub duration: Duration,
    /// Load before the window.
    pub warmup: Duration,
    /// Connections of the echo and http workloads.
    pub connections: usize,
    /// Connections of the idle workload.
    pub idle_connections: usize,
    /// Worker threads of every server.
    pub workers: usize,
    /// Worker threads of the client.
    pub client_threads: usize,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            systems: System::with_net(),
            workloads: Workload::ALL.to_vec(),
            rounds: 1,
            duration: Duration::from_secs(3),
            warmup: Duration::from_millis(500),
            connections: 64,
            idle_connections: 10_000,
            workers: 2,
            client_threads: 2,
        }
    }
}

/// One measured cell.
#[derive(Clone, Debug)]
pub struct Cell {
    /// The system.
    pub system: System,
    /// The workload.
    pub workload: Workload,
    /// The round (0-based).
    pub round: usize,
    /// The client's report.
    pub client: ClientReport,
    /// The server before the client connected.
    pub m0: Snapshot,
    /// The server when the client was ready (window start).
    pub m1: Snapshot,
    /// The server after the window.
    pub m2: Snapshot,
}

impl Cell {
    /// Round trips (messages, requests) per second.
    pub fn rate(&self) -> f64 {
        self.client.rate()
    }

    /// Server CPU time per round trip over the window, in µs.
    pub fn server_cpu_per_round_trip_us(&self) -> f64 {
        (self.m2.cpu_s - self.m1.cpu_s) * 1e6 / self.client.round_trips.max(1) as f64
    }

    /// Server CPU over the window, in CPU-seconds per second (cores busy).
    pub fn server_cores(&self) -> f64 {
        (self.m2.cpu_s - self.m1.cpu_s) / self.client.seconds.max(1e-9)
    }

    /// Client CPU over the window, in cores busy.
    pub fn client_cores(&self) -> f64 {
        self.client.client_cpu_s / self.client.seconds.max(1e-9)
    }

    /// The server's resident-set growth per connection once every
    /// connection was up and pinged, in bytes.
    pub fn rss_per_connection(&self) -> f64 {
        (self.m1.rss_bytes as f64 - self.m0.rss_bytes as f64)
            / self.client.connections.max(1) as f64
    }
}

/// A child process with line-wise stdout; killed (by its handle) on drop.
struct Proc {
    what: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
}

impl Proc {
    fn spawn(exe: &Exe, what: String, args: &[String]) -> io::Result<Proc> {
        let mut child = exe.command(args).spawn()?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Proc {
            what,
            child,
            stdin,
            lines,
        })
    }

    fn line(&mut self, limit: Duration) -> io::Result<String> {
        match self.lines.recv_timeout(limit) {
            Ok(l) => Ok(l),
            Err(RecvTimeoutError::Timeout) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{}: no answer in {limit:?}", self.what),
            )),
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait()?;
                Err(io::Error::other(format!("{} exited ({status})", self.what)))
            }
        }
    }

    fn json(&mut self, limit: Duration) -> io::Result<Value> {
        let l = self.line(limit)?;
        serde_json::from_str(&l).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}: {l:?}", self.what),
            )
        })
    }

    fn send(&mut self, line: &str) -> io::Result<()> {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}")?;
        stdin.flush()
    }

    /// Closes stdin and waits for the exit.
    fn finish(mut self, limit: Duration) -> io::Result<Option<Value>> {
        drop(self.stdin.take());
        let last = self.json(limit).ok();
        let status = self.child.wait()?;
        if !status.success() {
            return Err(io::Error::other(format!("{} exited ({status})", self.what)));
        }
        Ok(last)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

const ANSWER: Duration = Duration::from_secs(30);

struct Server {
    proc: Proc,
    addr: SocketAddr,
}

impl Server {
    fn start(exe: &Exe, system: System, workload: Workload, workers: usize) -> io::Result<Server> {
        let args = [
            "server",
            "--system",
            system.name(),
            "--workload",
            workload.name(),
            "--addr",
            "127.0.0.1:0",
            "--workers",
            &workers.to_string(),
        ]
        .map(String::from);
        let mut proc = Proc::spawn(exe, format!("{system} {workload} server"), &args)?;
        let line = proc.line(ANSWER)?;
        let addr = line.trim().parse().map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("server address {line:?}: {e}"),
            )
        })?;
        Ok(Server { proc, addr })
    }

    fn mark(&mut self) -> io::Result<Snapshot> {
        self.proc.send("mark")?;
        let v = self.proc.json(ANSWER)?;
        Snapshot::from_json(&v)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("snapshot {v}")))
    }
}

/// Runs one cell; see the module docs.
pub fn cell(
    exe: &Exe,
    cfg: &RunConfig,
    system: System,
    workload: Workload,
    round: usize,
) -> io::Result<Cell> {
    let mut server = Server::start(exe, system, workload, cfg.workers)?;
    std::thread::sleep(Duration::from_millis(100));
    let m0 = server.mark()?;
    let connections = match workload {
        Workload::Idle => cfg.idle_connections,
        Workload::Echo | Workload::Http => cfg.connections,
    };
    let args = vec![
        "client".to_string(),
        "--workload".into(),
        workload.name().into(),
        "--addr".into(),
        server.addr.to_string(),
        "--connections".into(),
        connections.to_string(),
        "--duration".into(),
        cfg.duration.as_secs_f64().to_string(),
        "--warmup".into(),
        cfg.warmup.as_secs_f64().to_string(),
        "--threads".into(),
        cfg.client_threads.to_string(),
        "--wait-go".into(),
    ];
    let mut client = Proc::spawn(exe, format!("{system} {workload} client"), &args)?;
    let ready = client.line(Duration::from_secs(180) + cfg.warmup)?;
    if ready.trim() != "ready" {
        return Err(io::Error::other(format!(
            "client said {ready:?}, not ready"
        )));
    }
    let m1 = server.mark()?;
    client.send("go")?;
    let v = client.json(cfg.duration + Duration::from_secs(60))?;
    let report = ClientReport::from_json(&v)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("client report {v}")))?;
    let m2 = server.mark()?;
    client.finish(ANSWER)?;
    server.proc.finish(ANSWER)?;
    if report.errors > 0 {
        return Err(io::Error::other(format!(
            "{system} {workload}: {} of {} connections failed",
            report.errors, report.connections
        )));
    }
    Ok(Cell {
        system,
        workload,
        round,
        client: report,
        m0,
        m1,
        m2,
    })
}

/// Runs every cell of `cfg`: for each workload, for each round, each system
/// in turn. A failed cell is reported on stderr and left out; `progress` is
/// told of each cell before it starts.
pub fn run(exe: &Exe, cfg: &RunConfig, mut progress: impl FnMut(&str)) -> Vec<Cell> {
    let mut cells = Vec::new();
    for &workload in &cfg.workloads {
        for round in 0..cfg.rounds.max(1) {
            for &system in &cfg.systems {
                progress(&format!("{workload} / {system} (round {})", round + 1));
                match cell(exe, cfg, system, workload, round) {
                    Ok(c) => cells.push(c),
                    Err(e) => eprintln!("netbench: {workload} / {system} failed: {e}"),
                }
            }
        }
    }
    cells
}

/// The CPU an idle server used: its runtime started, a listener open, no
/// connection.
#[derive(Clone, Debug)]
pub struct IdleCpu {
    /// The system.
    pub system: System,
    /// The window, in seconds.
    pub seconds: f64,
    /// CPU time used over the window, in seconds.
    pub cpu_s: f64,
    /// The server's threads.
    pub threads: u64,
}

/// Starts each system's echo server in turn, lets it settle for a second,
/// then reads its CPU time across `window`.
pub fn idle_cpu(
    exe: &Exe,
    systems: &[System],
    window: Duration,
    workers: usize,
    mut progress: impl FnMut(&str),
) -> Vec<IdleCpu> {
    let one = |system: System| -> io::Result<IdleCpu> {
        let mut server = Server::start(exe, system, Workload::Echo, workers)?;
        std::thread::sleep(Duration::from_secs(1));
        let a = server.mark()?;
        std::thread::sleep(window);
        let b = server.mark()?;
        server.proc.finish(ANSWER)?;
        Ok(IdleCpu {
            system,
            seconds: window.as_secs_f64(),
            cpu_s: b.cpu_s - a.cpu_s,
            threads: b.threads,
        })
    };
    let mut out = Vec::new();
    for &system in systems {
        progress(&format!("idle-cpu / {system}"));
        match one(system) {
            Ok(r) => out.push(r),
            Err(e) => eprintln!("netbench: idle-cpu / {system} failed: {e}"),
        }
    }
    out
}
