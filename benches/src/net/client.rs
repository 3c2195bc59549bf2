//! The load generator (`netbench client`): one process, the same for every
//! system, on tokio (`--threads` workers, 2 by default).
//!
//! * `echo` — N connections, each writing a [`MESSAGE_SIZE`]-byte message
//!   and reading it back (checked byte for byte), over and over;
//! * `http` — N keep-alive connections, each sending `GET /` (HTTP/1.1, no
//!   pipelining) and reading the whole response (status 200, body checked);
//! * `idle` — N connections (at most [`CONNECT_CONCURRENCY`] connecting at
//!   once), each sends one byte and reads it back, then holds still.
//!
//! Phases, so that the server's CPU can be read around exactly the measured
//! window: connect; warm up (load runs for `--warmup`); pause (every
//! connection finishes its round trip and waits); print `ready`; with
//! `--wait-go`, wait for a line on stdin (the orchestrator snapshots the
//! server meanwhile); measure for `--duration`; stop (round trips that end
//! after the stop are not counted); print one JSON line ([`ClientReport`]);
//! with `--wait-go`, wait for stdin to end (the orchestrator's last server
//! snapshot) before closing the connections.
//! Every round trip has an I/O timeout ([`IO_TIMEOUT`]) and every
//! connection a count bound, so the client always ends by itself.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::measure::{cpu_seconds, raise_nofile_limit};
use super::{HELLO, MESSAGE_SIZE, Workload};

/// Connections being set up at once.
pub const CONNECT_CONCURRENCY: usize = 128;

/// The longest any single read, write or connect may take.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest the client waits for `go` on stdin.
pub const GO_TIMEOUT: Duration = Duration::from_secs(300);

/// The request of the `http` workload.
pub const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";

/// What the load generator does.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// The workload.
    pub workload: Workload,
    /// The server (loopback).
    pub addr: SocketAddr,
    /// Connections.
    pub connections: usize,
    /// The measured window (`idle`: how long the connections are held).
    pub duration: Duration,
    /// Load before the measured window (not used by `idle`).
    pub warmup: Duration,
    /// tokio worker threads of the client.
    pub threads: usize,
    /// Wait for a line on stdin after `ready`.
    pub wait_go: bool,
    /// Round trips per connection at most (warm-up included).
    pub max_round_trips: u64,
}

/// The client's result (its JSON line).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientReport {
    /// Connections that took part.
    pub connections: u64,
    /// The measured window, in seconds.
    pub seconds: f64,
    /// Round trips completed inside the window.
    pub round_trips: u64,
    /// Round-trip latency percentiles over the window, in µs: 50, 90, 99,
    /// 99.9 and the maximum (0 for `idle`).
    pub latency_us: [f64; 5],
    /// Connections that failed.
    pub errors: u64,
    /// The client process's own CPU time over the window, in seconds.
    pub client_cpu_s: f64,
}

impl ClientReport {
    /// Round trips per second.
    pub fn rate(&self) -> f64 {
        if self.seconds > 0.0 {
            self.round_trips as f64 / self.seconds
        } else {
            0.0
        }
    }

    /// As a JSON object.
    pub fn to_json(&self) -> Value {
        let [p50, p90, p99, p999, max] = self.latency_us;
        json!({
            "connections": self.connections,
            "seconds": self.seconds,
            "round_trips": self.round_trips,
            "rate": self.rate(),
            "p50_us": p50, "p90_us": p90, "p99_us": p99, "p999_us": p999, "max_us": max,
            "errors": self.errors,
            "client_cpu_s": self.client_cpu_s,
        })
    }

    /// From [`ClientReport::to_json`]'s object.
    pub fn from_json(v: &Value) -> Option<ClientReport> {
        let f = |k: &str| v.get(k).and_then(Value::as_f64);
        Some(ClientReport {
            connections: v.get("connections")?.as_u64()?,
            seconds: f("seconds")?,
            round_trips: v.get("round_trips")?.as_u64()?,
            latency_us: [
                f("p50_us")?,
                f("p90_us")?,
                f("p99_us")?,
                f("p999_us")?,
                f("max_us")?,
            ],
            errors: v.get("errors")?.as_u64()?,
            client_cpu_s: f("client_cpu_s")?,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Warmup,
    Pause,
    Measure,
    Stop,
}

/// Shared by the connection tasks.
struct Shared {
    phase: watch::Receiver<Phase>,
    /// Connections set up (or failed), and connections paused (or failed).
    ready: AtomicUsize,
    paused: AtomicUsize,
    failed: AtomicUsize,
    connect: Semaphore,
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "netbench client: I/O timed out")
}

async fn with_timeout<T>(f: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    tokio::time::timeout(IO_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| Err(timed_out()))
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// One connection's share of the result, and the connection itself: it
/// stays open until the process exits, so that the server's cost of
/// closing it falls outside the measured window.
struct ConnResult {
    round_trips: u64,
    hist: Histogram<u64>,
    _stream: TcpStream,
}

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds")
}

/// Per-connection state of a round trip.
struct Conn {
    stream: TcpStream,
    msg: Vec<u8>,
    buf: Vec<u8>,
}

impl Conn {
    async fn echo(&mut self) -> io::Result<()> {
        self.stream.write_all(&self.msg).await?;
        self.stream
            .read_exact(&mut self.buf[..MESSAGE_SIZE])
            .await?;
        if self.buf[..MESSAGE_SIZE] != self.msg[..] {
            return Err(bad("echo: the reply differs from the message"));
        }
        Ok(())
    }

    async fn http(&mut self) -> io::Result<()> {
        self.stream.write_all(REQUEST).await?;
        let mut filled = 0;
        loop {
            if filled == self.buf.len() {
                return Err(bad("http: response larger than the buffer"));
            }
            let n = self.stream.read(&mut self.buf[filled..]).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            filled += n;
            if let Some(len) = response_len(&self.buf[..filled])? {
                if filled > len {
                    return Err(bad("http: bytes after the response"));
                }
                if filled == len {
                    if !self.buf[..len].ends_with(HELLO) {
                        return Err(bad("http: unexpected body"));
                    }
                    return Ok(());
                }
            }
        }
    }

    async fn ping(&mut self) -> io::Result<()> {
        self.stream.write_all(&[1]).await?;
        let mut one = [0u8; 1];
        self.stream.read_exact(&mut one).await?;
        if one != [1] {
            return Err(bad("idle: the ping came back wrong"));
        }
        Ok(())
    }
}

/// The length of the HTTP/1.1 response at the start of `buf` (headers and
/// `Content-Length` body) once its headers are complete; checks status 200.
pub fn response_len(buf: &[u8]) -> io::Result<Option<usize>> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| bad("http: headers not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200") {
        return Err(bad(format!("http: status line {status:?}")));
    }
    let len = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .ok_or_else(|| bad("http: no content-length"))?;
    Ok(Some(end + 4 + len))
}

async fn connection(
    id: usize,
    workload: Workload,
    addr: SocketAddr,
    max: u64,
    shared: Arc<Shared>,
) -> io::Result<ConnResult> {
    let mut phase = shared.phase.clone();
    let mut conn = {
        let _permit = shared.connect.acquire().await.expect("semaphore open");
        let stream = with_timeout(TcpStream::connect(addr)).await?;
        stream.set_nodelay(true)?;
        let msg = (0..MESSAGE_SIZE).map(|i| (i + id) as u8).collect();
        let mut conn = Conn {
            stream,
            msg,
            buf: vec![0u8; 4096],
        };
        if workload == Workload::Idle {
            with_timeout(conn.ping()).await?;
        }
        conn
    };
    shared.ready.fetch_add(1, Relaxed);
    let mut round_trips = 0;
    let mut hist = new_hist();
    if workload == Workload::Idle {
        let _ = phase.wait_for(|p| *p == Phase::Stop).await;
        return Ok(ConnResult {
            round_trips,
            hist,
            _stream: conn.stream,
        });
    }
    let mut total = 0u64;
    let mut paused = false;
    while total < max {
        let p = *phase.borrow_and_update();
        match p {
            Phase::Stop => break,
            Phase::Pause => {
                if !paused {
                    paused = true;
                    shared.paused.fetch_add(1, Relaxed);
                }
                let _ = phase.wait_for(|p| *p != Phase::Pause).await;
                continue;
            }
            Phase::Warmup | Phase::Measure => {}
        }
        let t = Instant::now();
        match workload {
            Workload::Echo => with_timeout(conn.echo()).await?,
            Workload::Http => with_timeout(conn.http()).await?,
            Workload::Idle => unreachable!("idle connections do not loop"),
        }
        total += 1;
        if p == Phase::Measure && *phase.borrow() == Phase::Measure {
            hist.saturating_record(t.elapsed().as_nanos() as u64);
            round_trips += 1;
        }
    }
    Ok(ConnResult {
        round_trips,
        hist,
        _stream: conn.stream,
    })
}

/// Waits until `count() >= n` (checked every few ms) or `limit` passed.
async fn wait_count(what: &str, n: usize, count: impl Fn() -> usize, limit: Duration) {
    let deadline = Instant::now() + limit;
    while count() < n {
        if Instant::now() > deadline {
            panic!(
                "netbench client: {what}: {} of {n} after {limit:?}",
                count()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits for a line (or the end) on stdin.
async fn read_line() -> io::Result<()> {
    let line = tokio::task::spawn_blocking(|| {
        let mut s = String::new();
        std::io::stdin().read_line(&mut s).map(|_| s)
    });
    match tokio::time::timeout(GO_TIMEOUT, line).await {
        Ok(r) => r.map_err(io::Error::other)?.map(drop),
        Err(_) => Err(timed_out()),
    }
}

async fn drive(cfg: ClientConfig) -> io::Result<(ClientReport, Vec<ConnResult>)> {
    let (set_phase, phase) = watch::channel(Phase::Warmup);
    let shared = Arc::new(Shared {
        phase,
        ready: AtomicUsize::new(0),
        paused: AtomicUsize::new(0),
        failed: AtomicUsize::new(0),
        connect: Semaphore::new(CONNECT_CONCURRENCY),
    });
    let n = cfg.connections;
    let mut tasks = JoinSet::new();
    for id in 0..n {
        let shared = shared.clone();
        let (workload, addr, max) = (cfg.workload, cfg.addr, cfg.max_round_trips);
        tasks.spawn(async move {
            let r = connection(id, workload, addr, max, shared.clone()).await;
            if let Err(e) = &r {
                eprintln!("netbench client: connection {id}: {e}");
                shared.failed.fetch_add(1, Relaxed);
            }
            r
        });
    }
    let up = |s: &Shared| s.ready.load(Relaxed) + s.failed.load(Relaxed);
    wait_count(
        "connections up",
        n,
        || up(&shared),
        Duration::from_secs(120),
    )
    .await;
    if cfg.workload != Workload::Idle {
        tokio::time::sleep(cfg.warmup).await;
        let _ = set_phase.send(Phase::Pause);
        let paused = |s: &Shared| s.paused.load(Relaxed) + s.failed.load(Relaxed);
        wait_count("paused", n, || paused(&shared), IO_TIMEOUT * 2).await;
    }
    println!("ready");
    if cfg.wait_go {
        read_line().await?;
    }
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let _ = set_phase.send(Phase::Measure);
    tokio::time::sleep(cfg.duration).await;
    let _ = set_phase.send(Phase::Stop);
    let seconds = t0.elapsed().as_secs_f64();
    let client_cpu_s = cpu_seconds() - cpu0;
    let mut hist = new_hist();
    let mut round_trips = 0;
    let mut errors = 0;
    let mut open = Vec::with_capacity(n);
    while let Some(r) = tasks.join_next().await {
        match r.map_err(io::Error::other)? {
            Ok(c) => {
                round_trips += c.round_trips;
                hist.add(&c.hist).expect("same histogram bounds");
                open.push(c);
            }
            Err(_) => errors += 1,
        }
    }
    let q = |p: f64| hist.value_at_quantile(p) as f64 / 1e3;
    let report = ClientReport {
        connections: n as u64,
        seconds,
        round_trips,
        latency_us: [q(0.5), q(0.9), q(0.99), q(0.999), hist.max() as f64 / 1e3],
        errors,
        client_cpu_s,
    };
    println!("{}", report.to_json());
    if cfg.wait_go {
        // The orchestrator snapshots the server, then closes our stdin.
        read_line().await?;
    }
    Ok((report, open))
}

/// Runs the load generator (see the module docs): prints `ready`, then the
/// report's JSON line (with `wait_go`, then waits for stdin to end before
/// it closes its connections), and returns the report.
pub fn main(cfg: &ClientConfig) -> io::Result<ClientReport> {
    assert!(
        cfg.addr.ip().is_loopback(),
        "netbench sends load to loopback only, not {}",
        cfg.addr
    );
    raise_nofile_limit()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.threads.max(1))
        .thread_name("netbench-client")
        .enable_all()
        .build()?;
    let (report, open) = rt.block_on(drive(cfg.clone()))?;
    drop(open);
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_len_waits_for_the_headers_then_counts_the_body() {
        assert_eq!(
            response_len(b"HTTP/1.1 200 OK\r\ncontent-le").unwrap(),
            None
        );
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ndate: x\r\n\r\nhel";
        assert_eq!(response_len(r).unwrap(), Some(r.len() + 2));
        assert!(response_len(b"HTTP/1.1 404 Not Found\r\n\r\n").is_err());
        assert!(response_len(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
    }

    #[test]
    fn report_round_trips_through_json() {
        let r = ClientReport {
            connections: 64,
            seconds: 3.0,
            round_trips: 300,
            latency_us: [1.0, 2.0, 3.0, 4.0, 5.0],
            errors: 0,
            client_cpu_s: 0.5,
        };
        assert_eq!(r.rate(), 100.0);
        assert_eq!(ClientReport::from_json(&r.to_json()), Some(r));
    }
}
