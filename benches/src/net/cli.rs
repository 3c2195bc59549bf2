//! netbench's command line, shared by the `netbench` binary and the report
//! (which re-executes itself with [`CHILD_ARG`] first to be a server or a
//! client).
//!
//! ```text
//! netbench run [--systems tokio,smol] [--workloads echo,http,idle] [--duration 3] [--rounds 1]
//! netbench timers [--ops 100000] [--rounds 10]
//! netbench resolution [--samples 500] [--loads idle,busy]
//! netbench idle-cpu [--seconds 10]
//! netbench server --system tokio --workload echo --addr 127.0.0.1:0
//! netbench client --workload echo --addr 127.0.0.1:PORT --connections 64 --duration 3
//! ```

use std::ffi::OsString;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use super::client::{self, ClientConfig};
use super::markdown;
use super::resolution::{self, Load, ResolutionConfig};
use super::run::{self, Exe, RunConfig};
use super::server::{self, ServerConfig};
use super::timers::{self, TimerConfig};
use super::{System, Workload};

/// The first argument that makes the report binary act as netbench.
pub const CHILD_ARG: &str = "__netbench";

/// Network benchmarks: baton vs tokio vs smol on loopback (server and load
/// generator in separate processes), timer create + cancel, timer
/// resolution, idle CPU.
#[derive(Parser, Debug)]
#[command(name = "netbench")]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// netbench's subcommands.
#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Run the network benchmarks: server and client processes per system
    /// and workload; prints markdown tables.
    Run(RunArgs),
    /// Timer create + poll once + drop, from 1 task and from one per worker
    /// (in-process).
    Timers(TimerArgs),
    /// How long a 1 ms sleep takes (p50 / p99 / max), with the workers idle
    /// and with every worker busy (in-process).
    Resolution(ResolutionArgs),
    /// CPU used by an idle server (listener open, no connection).
    IdleCpu(IdleCpuArgs),
    /// Be a server (stdout: the address, then a JSON line per `mark` on stdin).
    Server(ServerArgs),
    /// Be the load generator (stdout: `ready`, then a JSON line).
    Client(ClientArgs),
}

fn secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s.parse().map_err(|e| format!("{s:?}: {e}"))?;
    if !(0.0..1e6).contains(&v) {
        return Err(format!("{s:?}: expected seconds in 0..1e6"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// `netbench run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Systems (comma-separated; default: every one this build has: baton
    /// needs the `baton-net` feature).
    #[arg(long, value_delimiter = ',')]
    pub systems: Vec<System>,
    /// Workloads (comma-separated): echo, http, idle.
    #[arg(long, value_delimiter = ',')]
    pub workloads: Vec<Workload>,
    /// Measured seconds per cell (and how long idle connections are held).
    #[arg(long, value_parser = secs, default_value = "3")]
    pub duration: Duration,
    /// Warm-up seconds per cell.
    #[arg(long, value_parser = secs, default_value = "0.5")]
    pub warmup: Duration,
    /// Rounds; each runs every system once per workload.
    #[arg(long, default_value_t = 1)]
    pub rounds: usize,
    /// Connections of echo and http.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Connections of idle.
    #[arg(long, default_value_t = 10_000)]
    pub idle_connections: usize,
    /// Worker threads of every server.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// tokio worker threads of the load generator.
    #[arg(long, default_value_t = 2)]
    pub client_threads: usize,
}

impl RunArgs {
    /// As a [`RunConfig`].
    pub fn config(&self) -> Result<RunConfig, String> {
        let systems = if self.systems.is_empty() {
            System::with_net()
        } else {
            self.systems.clone()
        };
        if let Some(s) = systems.iter().find(|s| !s.has_net()) {
            return Err(format!(
                "{s}: this build has no {s} server (build with `--features baton-net`)"
            ));
        }
        Ok(RunConfig {
            systems,
            workloads: if self.workloads.is_empty() {
                Workload::ALL.to_vec()
            } else {
                self.workloads.clone()
            },
            rounds: self.rounds.max(1),
            duration: self.duration,
            warmup: self.warmup,
            connections: self.connections.max(1),
            idle_connections: self.idle_connections.max(1),
            workers: self.workers.max(1),
            client_threads: self.client_threads.max(1),
        })
    }
}

/// `netbench timers`.
#[derive(Args, Debug)]
pub struct TimerArgs {
    /// Systems (comma-separated; default: baton, tokio, smol).
    #[arg(long, value_delimiter = ',')]
    pub systems: Vec<System>,
    /// Worker threads of every runtime (and tasks of the concurrent case).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Operations per task per round.
    #[arg(long, default_value_t = 100_000)]
    pub ops: u64,
    /// Rounds.
    #[arg(long, default_value_t = 10)]
    pub rounds: usize,
}

/// `netbench resolution`.
#[derive(Args, Debug)]
pub struct ResolutionArgs {
    /// Systems (comma-separated; default: baton, tokio, smol).
    #[arg(long, value_delimiter = ',')]
    pub systems: Vec<System>,
    /// Loads (comma-separated): idle (the sleeper alone), busy (plus one
    /// task per worker yielding in a loop).
    #[arg(long, value_delimiter = ',')]
    pub loads: Vec<Load>,
    /// Worker threads of every runtime (and background tasks of busy).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Sleeps counted per system and load.
    #[arg(long, default_value_t = 500)]
    pub samples: usize,
    /// Rounds the samples are split into (systems interleaved in each).
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
}

/// `netbench idle-cpu`.
#[derive(Args, Debug)]
pub struct IdleCpuArgs {
    /// Systems (comma-separated; default: every one this build has).
    #[arg(long, value_delimiter = ',')]
    pub systems: Vec<System>,
    /// The measured window per system, in seconds.
    #[arg(long, value_parser = secs, default_value = "10")]
    pub seconds: Duration,
    /// Worker threads of every server.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
}

/// `netbench server`.
#[derive(Args, Debug)]
pub struct ServerArgs {
    /// baton, tokio or smol.
    #[arg(long)]
    pub system: System,
    /// echo, http or idle.
    #[arg(long)]
    pub workload: Workload,
    /// Where to bind (loopback; port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: SocketAddr,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Exit after this many seconds whatever happens.
    #[arg(long, value_parser = secs, default_value = "3600")]
    pub max_seconds: Duration,
}

/// `netbench client`.
#[derive(Args, Debug)]
pub struct ClientArgs {
    /// echo, http or idle.
    #[arg(long)]
    pub workload: Workload,
    /// The server's address (loopback).
    #[arg(long)]
    pub addr: SocketAddr,
    /// Connections.
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Measured seconds (idle: how long the connections are held).
    #[arg(long, value_parser = secs, default_value = "3")]
    pub duration: Duration,
    /// Warm-up seconds.
    #[arg(long, value_parser = secs, default_value = "0.5")]
    pub warmup: Duration,
    /// tokio worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// After `ready`, wait for a line on stdin before measuring.
    #[arg(long)]
    pub wait_go: bool,
    /// Round trips per connection at most.
    #[arg(long, default_value_t = 100_000_000)]
    pub max_round_trips: u64,
}

fn progress(what: &str) {
    eprintln!("netbench: {what}");
}

/// Runs netbench with `args` (without the program name); `exe` is how to
/// start the child processes.
pub fn main_with(args: impl IntoIterator<Item = OsString>, exe: Exe) -> ExitCode {
    let cli = Cli::parse_from(std::iter::once(OsString::from("netbench")).chain(args));
    let r: Result<(), String> = match cli.command {
        Cmd::Server(a) => server::main(&ServerConfig {
            system: a.system,
            workload: a.workload,
            addr: a.addr,
            workers: a.workers.max(1),
            max: a.max_seconds,
        })
        .map_err(|e| format!("server: {e}")),
        Cmd::Client(a) => client::main(&ClientConfig {
            workload: a.workload,
            addr: a.addr,
            connections: a.connections.max(1),
            duration: a.duration,
            warmup: a.warmup,
            threads: a.threads.max(1),
            wait_go: a.wait_go,
            max_round_trips: a.max_round_trips.max(1),
        })
        .map(drop)
        .map_err(|e| format!("client: {e}")),
        Cmd::Run(a) => a.config().map(|cfg| {
            let cells = run::run(&exe, &cfg, progress);
            println!("{}", markdown::net_tables(&cells, &cfg));
        }),
        Cmd::Timers(a) => {
            let cfg = TimerConfig {
                systems: if a.systems.is_empty() {
                    System::ALL.to_vec()
                } else {
                    a.systems
                },
                workers: a.workers.max(1),
                ops: a.ops.max(1),
                rounds: a.rounds.max(1),
            };
            let results = timers::run(&cfg);
            println!("{}", markdown::timers_table(&results, cfg.workers));
            Ok(())
        }
        Cmd::Resolution(a) => {
            let cfg = ResolutionConfig {
                systems: if a.systems.is_empty() {
                    System::ALL.to_vec()
                } else {
                    a.systems
                },
                loads: if a.loads.is_empty() {
                    Load::ALL.to_vec()
                } else {
                    a.loads
                },
                workers: a.workers.max(1),
                samples: a.samples.max(1),
                rounds: a.rounds.max(1),
            };
            let results = resolution::run(&cfg);
            println!("{}", markdown::resolution_table(&results, &cfg));
            Ok(())
        }
        Cmd::IdleCpu(a) => {
            let systems = if a.systems.is_empty() {
                System::with_net()
            } else {
                a.systems
            };
            match systems.iter().find(|s| !s.has_net()) {
                Some(s) => Err(format!(
                    "{s}: this build has no {s} server (build with `--features baton-net`)"
                )),
                None => {
                    let r = run::idle_cpu(&exe, &systems, a.seconds, a.workers.max(1), progress);
                    println!("{}", markdown::idle_cpu_table(&r, a.workers.max(1)));
                    Ok(())
                }
            }
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netbench: {e}");
            ExitCode::FAILURE
        }
    }
}
