//! The client process (`baton-stress --http-client ADDR ...`, started by
//! `--mode http`): tokio and hyper, so that the load does not depend on the
//! runtime under test, and its own process, so that each side stays within
//! the open-file limit.
//!
//! `--connections` keep-alive HTTP/1.1 connections each send requests one
//! after another until `--duration` (or `--requests` in all), each with a
//! unique id, user (or none) and `traceparent` ([`Ident`]), and check every
//! response: status 200 and a body ([`Echo`]) naming exactly what was sent.
//! A request sent on a connection that the client kept up and that was not
//! answered within [`RESPONSE_LIMIT`] (or whose connection the server
//! broke) is *lost*. Alongside, each request may start a fault on a
//! connection of its own (`faults.rs`).
//!
//! Every loop is bounded by time and count: the client stops sending at
//! `--duration`, waits at most [`DRAIN_LIMIT`] for what is in flight, then
//! prints one JSON object ([`ClientReport`]) on stdout and exits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::http::faults::{
    self, Fault, FaultCounters, FaultTally, HttpFaultRates, SLOWLORIS_SLOTS,
};
use crate::http::protocol::{Echo, Ident, PATH, TRACEPARENT, USER, work_hash};
use crate::rng::Rng;

/// The longest a response may take before its request counts as lost.
pub(crate) const RESPONSE_LIMIT: Duration = Duration::from_secs(10);
/// The longest the client waits, after `--duration`, for its connections
/// and faults to finish.
pub(crate) const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// Connections being set up at once.
const CONNECT_SLOTS: usize = 128;
/// Problem descriptions kept.
const MAX_SAMPLES: usize = 8;

/// What the client is told by its command line.
#[derive(Debug, Clone)]
pub(crate) struct ClientConfig {
    /// The gateway.
    pub addr: SocketAddr,
    /// Keep-alive connections.
    pub connections: usize,
    /// Stop sending after this long.
    pub duration: Duration,
    /// Stop after this many requests in all (`u64::MAX`: no count).
    pub requests: u64,
    /// Of every request's identity.
    pub seed: u64,
    /// tokio worker threads.
    pub threads: usize,
    /// Fault injection.
    pub faults: HttpFaultRates,
}

/// The client's result: one JSON object on its stdout.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct ClientReport {
    /// Keep-alive connections.
    pub connections: u64,
    /// Requests sent on them.
    pub sent: u64,
    /// ... answered 200 with a body naming exactly what was sent.
    pub ok: u64,
    /// ... answered with a body naming another request's values (or none):
    /// leaks seen by the client.
    pub leaks: u64,
    /// ... answered, but not 200, or with a body that is not an echo.
    pub bad_answers: u64,
    /// ... never answered (timed out, or the server broke the connection).
    pub lost: u64,
    /// Connections that could not be made (the load's, not the faults').
    pub connect_errors: u64,
    /// Times a kept connection was found closed by the server between
    /// requests (then it reconnects).
    pub closed_between_requests: u64,
    /// Latency of answered requests (sent to body read), microseconds.
    pub p50_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Maximum.
    pub max_us: u64,
    /// From the first request to the end of the load, seconds.
    pub elapsed_s: f64,
    /// Whether everything finished within [`DRAIN_LIMIT`].
    pub drained: bool,
    /// The faults.
    pub faults: FaultTally,
    /// The first problems, described.
    pub samples: Vec<String>,
}

/// Runs the client and prints its report; the exit status is 0 unless the
/// client could not run at all.
pub(crate) fn main(cfg: ClientConfig) -> std::process::ExitCode {
    if let Err(e) = crate::http::limits::raise_nofile_limit() {
        eprintln!("baton-stress client: cannot raise the open-file limit: {e}");
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.threads.max(1))
        .thread_name("stress-client")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("baton-stress client: cannot start tokio: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let report = rt.block_on(run(cfg));
    rt.shutdown_timeout(Duration::from_secs(1));
    match serde_json::to_string(&report) {
        Ok(json) => {
            println!("{json}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("baton-stress client: cannot write the report: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Shared by the connection tasks.
struct Shared {
    cfg: ClientConfig,
    deadline: Instant,
    next_id: AtomicU64,
    left: AtomicU64,
    connect: Semaphore,
    fault_slots: Arc<Semaphore>,
    slowloris_slots: Arc<Semaphore>,
    faults: FaultCounters,
    samples: std::sync::Mutex<Vec<String>>,
}

impl Shared {
    /// Takes one request from the `--requests` budget.
    fn take_one(&self) -> bool {
        self.left
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    fn sample(&self, describe: impl FnOnce() -> String) {
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        if samples.len() < MAX_SAMPLES {
            samples.push(describe());
        }
    }
}

/// One connection's counts.
struct Tally {
    sent: u64,
    ok: u64,
    leaks: u64,
    bad_answers: u64,
    lost: u64,
    connect_errors: u64,
    closed_between_requests: u64,
    latency: Histogram<u64>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            sent: 0,
            ok: 0,
            leaks: 0,
            bad_answers: 0,
            lost: 0,
            connect_errors: 0,
            closed_between_requests: 0,
            latency: histogram(),
        }
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 10 min, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid histogram bounds")
}

async fn run(cfg: ClientConfig) -> ClientReport {
    let start = Instant::now();
    let sh = Arc::new(Shared {
        deadline: start + cfg.duration,
        next_id: AtomicU64::new(1),
        left: AtomicU64::new(cfg.requests),
        connect: Semaphore::new(CONNECT_SLOTS),
        fault_slots: Arc::new(Semaphore::new(faults::FAULT_SLOTS)),
        slowloris_slots: Arc::new(Semaphore::new(SLOWLORIS_SLOTS)),
        faults: FaultCounters::default(),
        samples: std::sync::Mutex::new(Vec::new()),
        cfg,
    });
    let mut connections = JoinSet::new();
    for n in 0..sh.cfg.connections {
        connections.spawn(connection(n as u64, sh.clone()));
    }
    let mut total = Tally::new();
    let mut faults = Vec::new();
    let mut elapsed = Duration::ZERO;
    let drain_end = sh.deadline + DRAIN_LIMIT;
    let drained = tokio::time::timeout_at(drain_end.into(), async {
        while let Some(done) = connections.join_next().await {
            elapsed = start.elapsed();
            match done {
                Ok((tally, fault_tasks)) => {
                    total.sent += tally.sent;
                    total.ok += tally.ok;
                    total.leaks += tally.leaks;
                    total.bad_answers += tally.bad_answers;
                    total.lost += tally.lost;
                    total.connect_errors += tally.connect_errors;
                    total.closed_between_requests += tally.closed_between_requests;
                    let _ = total.latency.add(&tally.latency);
                    faults.extend(fault_tasks);
                }
                Err(e) => sh.sample(|| format!("client: a connection task failed: {e}")),
            }
        }
        for fault in faults.drain(..) {
            let _ = fault.await;
        }
    })
    .await
    .is_ok();
    let samples = sh.samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    ClientReport {
        connections: sh.cfg.connections as u64,
        sent: total.sent,
        ok: total.ok,
        leaks: total.leaks,
        bad_answers: total.bad_answers,
        lost: total.lost,
        connect_errors: total.connect_errors,
        closed_between_requests: total.closed_between_requests,
        p50_us: total.latency.value_at_quantile(0.50),
        p99_us: total.latency.value_at_quantile(0.99),
        max_us: total.latency.max(),
        elapsed_s: elapsed.as_secs_f64(),
        drained,
        faults: sh.faults.tally(),
        samples,
    }
}

type Sender = SendRequest<Empty<Bytes>>;

/// A fault started by a connection, to be awaited at the end.
type FaultTask = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

/// One keep-alive connection's loop. Returns its counts and the faults it
/// started (still running, perhaps).
async fn connection(n: u64, sh: Arc<Shared>) -> (Tally, Vec<tokio::task::JoinHandle<()>>) {
    let mut tally = Tally::new();
    let mut rng = Rng::for_stream(sh.cfg.seed, n);
    let mut started = Vec::new();
    let mut sender: Option<Sender> = None;
    while Instant::now() < sh.deadline {
        let conn = match &mut sender {
            Some(conn) => conn,
            None => match connect(&sh).await {
                Ok(conn) => sender.insert(conn),
                Err(e) => {
                    tally.connect_errors += 1;
                    sh.sample(|| format!("client: connection {n} could not connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        match tokio::time::timeout(RESPONSE_LIMIT, conn.ready()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) | Err(_) => {
                // Closed by the server while idle (or stuck): no request
                // was sent on it, so none is lost; reconnect.
                tally.closed_between_requests += 1;
                sender = None;
                continue;
            }
        }
        if !sh.take_one() {
            break;
        }
        if let Some(fault) = sh.cfg.faults.draw(&mut rng) {
            if let Some(task) = start_fault(&sh, fault, rng.next_u64()) {
                started.push(task);
            }
        }
        let ident = Ident::new(sh.cfg.seed, sh.next_id.fetch_add(1, Relaxed));
        tally.sent += 1;
        let sent_at = Instant::now();
        match tokio::time::timeout(RESPONSE_LIMIT, exchange(conn, &ident)).await {
            Ok(Ok((status, body))) => {
                let _ = tally
                    .latency
                    .record(sent_at.elapsed().as_micros().max(1) as u64);
                judge(&sh, &mut tally, &ident, status, &body);
            }
            Ok(Err(e)) => {
                tally.lost += 1;
                sh.sample(|| format!("client: request {} lost: {e}", ident.id));
                sender = None;
            }
            Err(_) => {
                tally.lost += 1;
                sh.sample(|| {
                    format!(
                        "client: request {} lost: no answer in {RESPONSE_LIMIT:?}",
                        ident.id
                    )
                });
                sender = None;
            }
        }
    }
    (tally, started)
}

/// A new keep-alive connection (its driver runs as a task).
async fn connect(sh: &Shared) -> Result<Sender, String> {
    let _slot = sh.connect.acquire().await.map_err(|e| e.to_string())?;
    let stream = tokio::time::timeout(RESPONSE_LIMIT, TcpStream::connect(sh.cfg.addr))
        .await
        .map_err(|_| "connect timed out".to_owned())?
        .map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = driver.await;
    });
    Ok(sender)
}

/// Sends one request and reads its whole response.
async fn exchange(conn: &mut Sender, ident: &Ident) -> Result<(StatusCode, Bytes), hyper::Error> {
    let mut request = Request::get(PATH)
        .header("host", "stress")
        .header(crate::http::protocol::REQUEST_ID, ident.id)
        .header(TRACEPARENT, ident.traceparent());
    if let Some(user) = ident.user {
        request = request.header(USER, format!("user-{user}"));
    }
    let request = request
        .body(Empty::new())
        .expect("a request built from valid parts");
    let response = conn.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// Checks one answer.
fn judge(sh: &Shared, tally: &mut Tally, ident: &Ident, status: StatusCode, body: &[u8]) {
    let text = String::from_utf8_lossy(body);
    let echo = if status == StatusCode::OK {
        Echo::parse(&text)
    } else {
        None
    };
    let Some(echo) = echo else {
        tally.bad_answers += 1;
        sh.sample(|| format!("client: request {}: answer {status} {text:?}", ident.id));
        return;
    };
    let expected = Echo {
        id: Some(ident.id),
        user: ident.user,
        trace: Some(ident.trace),
        hash: work_hash(ident),
    };
    if echo == expected {
        tally.ok += 1;
    } else {
        tally.leaks += 1;
        sh.sample(|| {
            format!(
                "client: request {}: sent {:?}, the server saw {:?}",
                ident.id,
                expected.encode(),
                echo.encode()
            )
        });
    }
}

/// Starts `fault` on a connection of its own if one of its slots is free.
fn start_fault(sh: &Arc<Shared>, fault: Fault, pick: u64) -> Option<tokio::task::JoinHandle<()>> {
    let slots = if matches!(fault, Fault::Slowloris | Fault::Silent) {
        &sh.slowloris_slots
    } else {
        &sh.fault_slots
    };
    let Ok(permit) = slots.clone().try_acquire_owned() else {
        sh.faults.skip();
        return None;
    };
    let ident = Ident::new(sh.cfg.seed, sh.next_id.fetch_add(1, Relaxed));
    let sh = sh.clone();
    let task: FaultTask = Box::pin(async move {
        faults::run(fault, sh.cfg.addr, ident, pick, &sh.faults).await;
        drop(permit);
    });
    Some(tokio::spawn(task))
}
