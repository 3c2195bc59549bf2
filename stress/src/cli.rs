//! Command-line flags.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

use crate::faults::FaultRates;
use crate::http::faults::{DEFAULT_RATE, DEFAULT_SLOWLORIS_RATE, HttpFaultRates};

/// How long the default run spawns requests.
pub(crate) const DEFAULT_DURATION: Duration = Duration::from_secs(55);

/// Fraction of requests given each fault by `--faults`.
pub(crate) const DEFAULT_FAULT_RATE: f64 = 0.01;

/// Hunts for context leaks: simulates an API gateway on baton (requests that
/// set a request id and a user, spawn children, offload to rayon, use
/// tokens and copies) at high concurrency, and checks every read.
///
/// Exit status: 0 if no leak, no lost task and no other failure was found;
/// 1 otherwise (with `--expect-leaks`: 0 only if leaks were found and no
/// task was lost); 2 for bad flags.
#[derive(Debug, Parser)]
#[command(name = "baton-stress", version)]
pub(crate) struct Cli {
    /// Stop after this many requests. Without `--requests` and
    /// `--duration`, the run lasts `DEFAULT_DURATION` (55 s, then the
    /// requests in flight finish): well over 1,000,000 requests on 2 cores.
    #[arg(long)]
    pub requests: Option<u64>,

    /// Most requests in flight at once.
    #[arg(long, default_value_t = 100_000)]
    pub concurrency: usize,

    /// Async worker threads [default: one per CPU].
    #[arg(long)]
    pub workers: Option<usize>,

    /// rayon pool threads [default: one per CPU].
    #[arg(long)]
    pub rayon_threads: Option<usize>,

    /// Seed of every random choice (operations, faults).
    #[arg(long, default_value_t = 0xBA70)]
    pub seed: u64,

    /// Stop spawning new requests after this many seconds (then let those
    /// in flight finish); with `--requests` too, whichever comes first.
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub duration: Option<Duration>,

    /// What is hunted: tasks on baton contexts (`context`) or over HTTP
    /// (`http`), each with its baseline keeping the values in a plain
    /// thread-local, which must report leaks.
    #[arg(long, value_enum, default_value_t = RunMode::Context)]
    pub mode: RunMode,

    /// Inject every fault below at 1% of requests each (explicit rates win;
    /// in the HTTP modes, slowloris at 0.2%).
    #[arg(long)]
    pub faults: bool,

    /// Fraction of requests that panic.
    #[arg(long, value_name = "FRACTION")]
    pub panic_rate: Option<f64>,

    /// Fraction of requests aborted through their JoinHandle.
    #[arg(long, value_name = "FRACTION")]
    pub abort_rate: Option<f64>,

    /// Fraction of requests whose `timeout` elapses.
    #[arg(long, value_name = "FRACTION")]
    pub timeout_rate: Option<f64>,

    /// Fraction of requests whose rayon closure panics.
    #[arg(long, value_name = "FRACTION")]
    pub rayon_panic_rate: Option<f64>,

    /// HTTP modes: keep-alive connections of the client process.
    #[arg(long, default_value_t = 256)]
    pub connections: usize,

    /// HTTP modes: tokio threads of the client process [default: half the
    /// CPUs, at least 1].
    #[arg(long)]
    pub client_threads: Option<usize>,

    /// HTTP modes: fraction of requests that also open a connection, send
    /// half a request's headers and close it.
    #[arg(long, value_name = "FRACTION")]
    pub vanish_request_rate: Option<f64>,

    /// HTTP modes: fraction of requests that also open a connection, send a
    /// whole request and close it without reading the response.
    #[arg(long, value_name = "FRACTION")]
    pub vanish_response_rate: Option<f64>,

    /// HTTP modes: fraction of requests that also send a malformed request
    /// on a connection of its own (it must be answered 400).
    #[arg(long, value_name = "FRACTION")]
    pub malformed_rate: Option<f64>,

    /// HTTP modes: fraction of requests that also open a slowloris
    /// connection (headers one byte per 100 ms; the server must close it).
    #[arg(long, value_name = "FRACTION")]
    pub slowloris_rate: Option<f64>,

    /// HTTP modes: fraction of requests that also open a connection that
    /// sends nothing (the server must close it). Not part of `--faults`:
    /// `serve` does not close such connections yet (hyperium/hyper#3756).
    #[arg(long, value_name = "FRACTION")]
    pub silent_rate: Option<f64>,

    /// Internal: run as the HTTP client process against this address.
    #[arg(long, value_name = "ADDR", hide = true)]
    pub http_client: Option<SocketAddr>,

    /// One offload in this many also sends a bare probe job to the pool
    /// (besides a probe to every pool thread each 20 ms).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..))]
    pub probe_every: u64,

    /// Print the summary as JSON on stdout instead of a table.
    #[arg(long)]
    pub json: bool,

    /// Invert the verdict for a baseline run: exit 0 only if leaks were found
    /// (and no task was lost), 1 if the checker found none.
    #[arg(long)]
    pub expect_leaks: bool,

    /// How many problem descriptions to print.
    #[arg(long, default_value_t = 5)]
    pub show: usize,

    /// No progress bar (it is hidden anyway when stderr is not a terminal).
    #[arg(long)]
    pub no_progress: bool,
}

impl Cli {
    /// The request count and the time that bound the run (`u64::MAX`: no
    /// count).
    pub(crate) fn bounds(&self) -> (u64, Option<Duration>) {
        match (self.requests, self.duration) {
            (None, None) => (u64::MAX, Some(DEFAULT_DURATION)),
            (requests, duration) => (requests.unwrap_or(u64::MAX), duration),
        }
    }

    /// The fault rates the flags ask for.
    pub(crate) fn fault_rates(&self) -> FaultRates {
        let default = if self.faults { DEFAULT_FAULT_RATE } else { 0.0 };
        FaultRates {
            panic: self.panic_rate.unwrap_or(default),
            abort: self.abort_rate.unwrap_or(default),
            timeout: self.timeout_rate.unwrap_or(default),
            rayon_panic: self.rayon_panic_rate.unwrap_or(default),
        }
    }

    /// The HTTP modes' fault rates the flags ask for.
    pub(crate) fn http_fault_rates(&self) -> HttpFaultRates {
        let (default, slowloris) = if self.faults {
            (DEFAULT_RATE, DEFAULT_SLOWLORIS_RATE)
        } else {
            (0.0, 0.0)
        };
        HttpFaultRates {
            vanish_request: self.vanish_request_rate.unwrap_or(default),
            vanish_response: self.vanish_response_rate.unwrap_or(default),
            malformed: self.malformed_rate.unwrap_or(default),
            slowloris: self.slowloris_rate.unwrap_or(slowloris),
            silent: self.silent_rate.unwrap_or(slowloris),
        }
    }
}

/// What `--mode` runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum RunMode {
    /// Simulated requests as tasks, values in baton `ContextVar`s.
    Context,
    /// The same, values in plain thread-locals: must report leaks.
    ThreadLocal,
    /// A gateway on `baton::http::serve`, driven over loopback by a client
    /// process with keep-alive connections and faults.
    Http,
    /// The same, the request id and user in plain thread-locals: must
    /// report leaks.
    HttpThreadLocal,
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    let secs: f64 = s.parse().map_err(|e| format!("{e}"))?;
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{e}"))
}
