//! The client's faults, each on a connection of its own (the keep-alive
//! connections that carry the checked load never misbehave):
//!
//! * **vanish mid-request**: half a request's headers, then the socket is
//!   closed — the server must drop the connection without calling the
//!   handler;
//! * **vanish mid-response**: a whole request, then the socket is closed
//!   after 0–2 ms without reading — the handler may be dropped halfway
//!   (its drop runs in its own context, and logs a line that is checked);
//! * **malformed**: a request hyper cannot parse — it must answer `400`;
//! * **slowloris**: a request line and headers sent one byte per 100 ms —
//!   the server's `header_read_timeout` must close it (and the others must
//!   be served meanwhile: a lost request would show it);
//! * **silent** (not in `--faults`; `--silent-rate` turns it on): a
//!   connection that sends nothing at all. `serve` does not close it yet:
//!   hyper-util's automatic HTTP/1-or-2 detection reads the first bytes
//!   with no timer, and `header_read_timeout` starts only after it
//!   (hyperium/hyper#3756). With the rate on, such connections left open
//!   fail the run.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::http::protocol::{Ident, PATH};
use crate::rng::Rng;

/// The fraction of requests given each fault by `--faults`.
pub(crate) const DEFAULT_RATE: f64 = 0.01;
/// ... slowloris (each holds a connection for seconds).
pub(crate) const DEFAULT_SLOWLORIS_RATE: f64 = 0.002;

/// Fault connections (all but slowloris) open at once at most; a fault
/// drawn while all are busy is skipped (and counted).
pub(crate) const FAULT_SLOTS: usize = 64;
/// Slowloris and silent connections open at once at most.
pub(crate) const SLOWLORIS_SLOTS: usize = 32;

/// How long a slowloris connection is kept up if the server does not close
/// it: then it counts as left open.
pub(crate) const SLOWLORIS_LIMIT: Duration = Duration::from_secs(10);
/// The pause between two bytes of a slowloris connection.
const SLOWLORIS_PACE: Duration = Duration::from_millis(100);
/// How long a malformed request's answer may take.
const ANSWER_LIMIT: Duration = Duration::from_secs(10);

/// For each normal request, the chances that the client also starts one of
/// the faults (on a new connection).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct HttpFaultRates {
    /// Closes after half the headers.
    pub vanish_request: f64,
    /// Closes after the request, before reading the response.
    pub vanish_response: f64,
    /// Sends an unparsable request.
    pub malformed: f64,
    /// Sends its headers one byte per 100 ms.
    pub slowloris: f64,
    /// Connects and sends nothing.
    pub silent: f64,
}

impl HttpFaultRates {
    /// Checks the rates are fractions that sum to at most 1.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let all = self.all();
        if all.iter().any(|r| !(0.0..=1.0).contains(r)) {
            return Err("fault rates must be between 0 and 1".into());
        }
        if all.iter().sum::<f64>() > 1.0 {
            return Err("fault rates must sum to at most 1".into());
        }
        Ok(())
    }

    fn all(&self) -> [f64; 5] {
        [
            self.vanish_request,
            self.vanish_response,
            self.malformed,
            self.slowloris,
            self.silent,
        ]
    }

    /// Draws the fault (if any) that goes with one normal request.
    pub(crate) fn draw(&self, rng: &mut Rng) -> Option<Fault> {
        let u = rng.unit();
        let mut edge = 0.0;
        for (rate, fault) in self.all().into_iter().zip([
            Fault::VanishRequest,
            Fault::VanishResponse,
            Fault::Malformed,
            Fault::Slowloris,
            Fault::Silent,
        ]) {
            edge += rate;
            if u < edge {
                return Some(fault);
            }
        }
        None
    }
}

/// One fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// See [`HttpFaultRates::vanish_request`].
    VanishRequest,
    /// See [`HttpFaultRates::vanish_response`].
    VanishResponse,
    /// See [`HttpFaultRates::malformed`].
    Malformed,
    /// See [`HttpFaultRates::slowloris`].
    Slowloris,
    /// See [`HttpFaultRates::silent`].
    Silent,
}

/// The client's fault counters.
#[derive(Debug, Default)]
pub(crate) struct FaultCounters {
    vanish_request: AtomicU64,
    vanish_response: AtomicU64,
    malformed: AtomicU64,
    malformed_400: AtomicU64,
    slowloris: AtomicU64,
    slowloris_closed: AtomicU64,
    slowloris_longest_ms: AtomicU64,
    silent: AtomicU64,
    silent_closed: AtomicU64,
    skipped: AtomicU64,
    connect_errors: AtomicU64,
}

/// What the faults did, for the report.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub(crate) struct FaultTally {
    /// Connections closed after half a request's headers.
    pub vanish_mid_request: u64,
    /// Connections closed after a request, before its response.
    pub vanish_mid_response: u64,
    /// Malformed requests sent.
    pub malformed: u64,
    /// ... answered `400 Bad Request`.
    pub malformed_answered_400: u64,
    /// Slowloris connections.
    pub slowloris: u64,
    /// ... closed by the server.
    pub slowloris_closed: u64,
    /// The longest a slowloris connection stayed up before the server
    /// closed it, seconds.
    pub slowloris_longest_s: f64,
    /// Connections that sent nothing.
    pub silent: u64,
    /// ... closed by the server.
    pub silent_closed: u64,
    /// Faults drawn while all their slots were busy, not started.
    pub skipped: u64,
    /// Fault connections that could not connect.
    pub connect_errors: u64,
}

impl FaultTally {
    /// Malformed requests not answered 400.
    pub(crate) fn malformed_wrong(&self) -> u64 {
        self.malformed - self.malformed_answered_400
    }

    /// Slowloris connections the server left open.
    pub(crate) fn slowloris_open(&self) -> u64 {
        self.slowloris - self.slowloris_closed
    }

    /// Silent connections the server left open.
    pub(crate) fn silent_open(&self) -> u64 {
        self.silent - self.silent_closed
    }
}

impl FaultCounters {
    /// Counts a fault drawn while its slots were busy.
    pub(crate) fn skip(&self) {
        self.skipped.fetch_add(1, Relaxed);
    }

    /// The counts so far.
    pub(crate) fn tally(&self) -> FaultTally {
        FaultTally {
            vanish_mid_request: self.vanish_request.load(Relaxed),
            vanish_mid_response: self.vanish_response.load(Relaxed),
            malformed: self.malformed.load(Relaxed),
            malformed_answered_400: self.malformed_400.load(Relaxed),
            slowloris: self.slowloris.load(Relaxed),
            slowloris_closed: self.slowloris_closed.load(Relaxed),
            slowloris_longest_s: self.slowloris_longest_ms.load(Relaxed) as f64 / 1000.0,
            silent: self.silent.load(Relaxed),
            silent_closed: self.silent_closed.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
            connect_errors: self.connect_errors.load(Relaxed),
        }
    }
}

/// Requests hyper must refuse with `400` (none starts with `P`, which the
/// server's HTTP/2 detection would wait on).
const MALFORMED: [&[u8]; 4] = [
    b"GET /api HTTP/1.1\r\nhost: stress\r\nthis is not a header\r\n\r\n",
    b"G\x01T /api HTTP/1.1\r\nhost: stress\r\n\r\n",
    b"GET /api HTTP/1.7\r\nhost: stress\r\n\r\n",
    b"GET /a\x7fpi HTTP/1.1\r\nhost: stress\r\n\r\n",
];

/// Runs `fault` against `addr`; `ident` is the identity its request (if it
/// sends one) carries, `pick` a random number for its variant.
pub(crate) async fn run(
    fault: Fault,
    addr: SocketAddr,
    ident: Ident,
    pick: u64,
    counters: &FaultCounters,
) {
    let mut stream = match tokio::time::timeout(ANSWER_LIMIT, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        _ => {
            counters.connect_errors.fetch_add(1, Relaxed);
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let request = format!("GET {PATH} HTTP/1.1\r\n{}\r\n", ident.header_lines());
    match fault {
        Fault::VanishRequest => {
            counters.vanish_request.fetch_add(1, Relaxed);
            let half = &request.as_bytes()[..request.len() / 2];
            let _ = stream.write_all(half).await;
            if pick % 2 == 0 {
                // Sometimes give the server the time to read it first.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        Fault::VanishResponse => {
            counters.vanish_response.fetch_add(1, Relaxed);
            let _ = stream.write_all(request.as_bytes()).await;
            let wait = pick % 3;
            if wait > 0 {
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
        }
        Fault::Malformed => {
            counters.malformed.fetch_add(1, Relaxed);
            let bad = MALFORMED[(pick % MALFORMED.len() as u64) as usize];
            if stream.write_all(bad).await.is_ok() {
                let mut answer = Vec::new();
                let read = stream.read_to_end(&mut answer);
                if let Ok(Ok(_)) = tokio::time::timeout(ANSWER_LIMIT, read).await {
                    if answer.starts_with(b"HTTP/1.1 400 ") {
                        counters.malformed_400.fetch_add(1, Relaxed);
                    }
                }
            }
        }
        Fault::Slowloris => {
            counters.slowloris.fetch_add(1, Relaxed);
            let start = Instant::now();
            let trickle = slowloris(stream, request.as_bytes());
            if let Ok(Some(())) = tokio::time::timeout(SLOWLORIS_LIMIT, trickle).await {
                counters.slowloris_closed.fetch_add(1, Relaxed);
                counters
                    .slowloris_longest_ms
                    .fetch_max(start.elapsed().as_millis() as u64, Relaxed);
            }
        }
        Fault::Silent => {
            counters.silent.fetch_add(1, Relaxed);
            if tokio::time::timeout(SLOWLORIS_LIMIT, closed(stream))
                .await
                .is_ok()
            {
                counters.silent_closed.fetch_add(1, Relaxed);
            }
        }
    }
}

/// Resolves when the server closes the connection.
async fn closed<R: AsyncReadExt + Unpin>(mut read: R) {
    let mut buf = [0; 512];
    // A `408` or nothing: either way, then the end of the stream.
    while let Ok(n) = read.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}

/// Sends `request` one byte per [`SLOWLORIS_PACE`] until the server closes
/// the connection (`Some`), or the whole request is out (`None`: the server
/// let it through).
async fn slowloris(stream: TcpStream, request: &[u8]) -> Option<()> {
    let (read, mut write) = stream.into_split();
    let trickle = async move {
        for byte in request {
            if write.write_all(std::slice::from_ref(byte)).await.is_err() {
                return true;
            }
            tokio::time::sleep(SLOWLORIS_PACE).await;
        }
        false
    };
    tokio::select! {
        () = closed(read) => Some(()),
        write_failed = trickle => write_failed.then_some(()),
    }
}
