//! The gateway: `baton::http::serve` on loopback with a handler that does
//! what an API gateway does with request-scoped values, checking them at
//! every step.
//!
//! For each request (each runs in its own copy of its connection's context,
//! with the `traceparent` already extracted into `baton::trace::CURRENT`):
//!
//! 1. before anything is set: no request id and no user may be visible
//!    (nothing of the previous request on the same keep-alive connection);
//! 2. the middleware sets the request id and (when the header is there)
//!    the user from the headers, and **never resets them**: the
//!    per-request context must isolate them;
//! 3. a `yield_now` or a short `sleep`;
//! 4. a small hash offloaded with `baton::bridge::run_blocking`, whose
//!    closure must see the request's values (and logs a line);
//! 5. one request in four spawns a child task, which must see them too
//!    (and logs a line), and is joined;
//! 6. a final log line, and a response echoing what the handler saw.
//!
//! After every await the values are read again and compared with the
//! headers. If hyper drops the handler early (its client vanished), the
//! drop logs a line too: a future is dropped inside its request's context.
//!
//! In `--mode http-thread-local` the request id and the user live in plain
//! thread-locals instead (the baseline), and the same checks must fail.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use baton::bridge::run_blocking;
use baton::net::TcpListener;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::checks::{Stats, Who};
use crate::http::check::{HttpChecker, Seen};
use crate::http::log::LogSink;
use crate::http::protocol::{Echo, Ident, work_hash};
use crate::vars::{Mode, Var};

/// How long a client may take to send a request's headers: short, so that
/// slowloris connections are closed within the run.
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// Counters of the gateway.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Handlers that started (a request with valid headers).
    pub started: AtomicU64,
    /// Handlers that returned a response.
    pub completed: AtomicU64,
    /// Handlers dropped before they returned (their client vanished).
    pub cancelled: AtomicU64,
    /// Requests answered 400 by the handler (headers it could not read).
    pub rejected: AtomicU64,
    /// Children spawned by handlers.
    pub children_spawned: AtomicU64,
    /// Children whose future was dropped (finished or not).
    pub children_finished: AtomicU64,
    /// Closures run through `run_blocking`.
    pub jobs: AtomicU64,
}

/// Everything the gateway shares.
pub(crate) struct Gateway {
    /// Where the request-scoped values live.
    pub mode: Mode,
    /// Observations of handlers, jobs and children.
    pub stats: &'static Stats,
    /// The log.
    pub log: &'static LogSink,
    /// Counters.
    pub counters: Counters,
}

/// Serves the gateway on `listener` until `stop` resolves (then
/// gracefully).
pub(crate) async fn serve(
    gateway: &'static Gateway,
    listener: TcpListener,
    stop: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    baton::http::serve(listener, Service(gateway))
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .with_graceful_shutdown(stop)
        .await
}

/// The tower service `serve` calls.
#[derive(Clone, Copy)]
struct Service(&'static Gateway);

type Respond = Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send>>;

impl tower_service::Service<Request<Incoming>> for Service {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = Respond;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Incoming>) -> Respond {
        let gateway = self.0;
        Box::pin(async move { Ok(handle(gateway, request).await) })
    }
}

/// The middleware, then the handler.
async fn handle(gw: &'static Gateway, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let ident = match Ident::from_headers(request.headers()) {
        Ok(ident) => ident,
        Err(e) => {
            gw.counters.rejected.fetch_add(1, Relaxed);
            gw.stats
                .fail(|| format!("gateway: a request the client did not make: {e}"));
            let mut response = Response::new(Full::new(Bytes::from(e)));
            *response.status_mut() = StatusCode::BAD_REQUEST;
            return response;
        }
    };
    drop(request);
    let mut chk = HttpChecker::new(gw.stats, Who::Request(ident.id));
    chk.fresh(
        "request start (before the middleware)",
        &ident,
        Seen::now(gw.mode),
    );
    middleware(gw.mode, &ident);
    let mut guard = Handler::start(gw, ident);
    chk.seen("after the middleware", &ident, Seen::now(gw.mode));
    gw.log
        .line("log: request received", Who::Request(ident.id), &ident);
    let echo = handler(gw, &ident, &mut chk).await;
    guard.finished = true;
    Response::new(Full::new(Bytes::from(echo.encode())))
}

/// Sets the request id and the user from the headers and does not reset
/// them: the request's own context is what keeps them from the next one.
fn middleware(mode: Mode, ident: &Ident) {
    drop(mode.set(Var::Id, ident.id));
    if let Some(user) = ident.user {
        drop(mode.set(Var::User, user));
    }
}

async fn handler(gw: &'static Gateway, ident: &Ident, chk: &mut HttpChecker) -> Echo {
    let mode = gw.mode;
    // An await: other requests run on this worker meanwhile; this one may
    // resume on another.
    if ident.id % 2 == 0 {
        baton::yield_now().await;
    } else {
        baton::sleep(Duration::from_micros(100 + ident.id % 400)).await;
    }
    chk.seen("after an await", ident, Seen::now(mode));

    // Offload: the closure runs on a rayon thread, in a copy of the context.
    let ident_copy = *ident;
    let (seen, hash) = run_blocking(move || {
        gw.counters.jobs.fetch_add(1, Relaxed);
        let seen = Seen::now(mode);
        gw.log
            .line("log: in run_blocking", Who::Job(ident_copy.id), &ident_copy);
        (seen, work_hash(&ident_copy))
    })
    .await;
    chk.seen("inside run_blocking", ident, seen);
    chk.seen("after run_blocking", ident, Seen::now(mode));

    if ident.id % 4 == 1 {
        let ident_copy = *ident;
        let guard = ChildGuard::new(gw);
        let child = baton::spawn(async move {
            let _guard = guard;
            let who = Who::Child(ident_copy.id, 0);
            let mut chk = HttpChecker::new(gw.stats, who);
            chk.seen("child start", &ident_copy, Seen::now(mode));
            baton::yield_now().await;
            chk.seen("child after an await", &ident_copy, Seen::now(mode));
            gw.log.line("log: in a child task", who, &ident_copy);
        });
        if child.await.is_err() {
            gw.stats
                .fail(|| format!("request {}: its child task failed", ident.id));
        }
        chk.seen("after joining a child", ident, Seen::now(mode));
    }

    gw.log
        .line("log: responding", Who::Request(ident.id), ident);
    let seen = Seen::now(mode);
    Echo {
        id: seen.id,
        user: seen.user,
        trace: seen.trace,
        hash,
    }
}

/// Counts a handler in; when dropped, counts it completed or cancelled (a
/// cancelled one logs a line from its drop, which runs inside the
/// request's context).
struct Handler {
    gw: &'static Gateway,
    ident: Ident,
    finished: bool,
}

impl Handler {
    fn start(gw: &'static Gateway, ident: Ident) -> Handler {
        gw.counters.started.fetch_add(1, Relaxed);
        Handler {
            gw,
            ident,
            finished: false,
        }
    }
}

impl Drop for Handler {
    fn drop(&mut self) {
        if self.finished {
            self.gw.counters.completed.fetch_add(1, Relaxed);
        } else {
            self.gw.counters.cancelled.fetch_add(1, Relaxed);
            self.gw.log.line(
                "log: handler dropped early",
                Who::Request(self.ident.id),
                &self.ident,
            );
        }
    }
}

/// Counts a child in when made, and out when its future is dropped,
/// however it ended (it lives in the future).
struct ChildGuard(&'static Gateway);

impl ChildGuard {
    fn new(gw: &'static Gateway) -> ChildGuard {
        gw.counters.children_spawned.fetch_add(1, Relaxed);
        ChildGuard(gw)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.0.counters.children_finished.fetch_add(1, Relaxed);
    }
}
