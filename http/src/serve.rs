//! [`serve`]: hyper 1 on baton's sockets, one task per connection and one
//! context per request.
//!
//! # The accept loop
//!
//! 1. Wait for a connection slot (`max_connections`): while the server is
//!    full it stops accepting, so the kernel's accept queue applies the
//!    back-pressure; no connection is accepted only to be dropped.
//! 2. Accept. An error (running out of file descriptors, a connection
//!    aborted before it was accepted) is logged and retried after a
//!    back-off that doubles from 1 ms to 1 s; it never ends `serve`.
//! 3. Spawn the connection's task (in a copy of the context of the task
//!    that awaits `serve`), which serves HTTP/1.1 with keep-alive, or
//!    HTTP/2 with prior knowledge (hyper-util's auto builder), calling the
//!    service for each request in a fresh copy of its own context
//!    (`request.rs`).
//!
//! # Graceful shutdown
//!
//! When the signal given to [`Serve::with_graceful_shutdown`] completes,
//! the loop stops accepting and closes the listener, and every connection
//! is told to finish: hyper answers the requests in flight in full, then
//! closes (an idle keep-alive connection closes at once). `serve` resolves
//! when the last connection task has ended.

use std::fmt;
use std::future::{Future, IntoFuture, poll_fn};
use std::io;
use std::panic::AssertUnwindSafe;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use baton_executor::net::{TcpListener, TcpStream};
use bytes::Bytes;
use event_listener::Event;
use futures_util::FutureExt;
use futures_util::future::{Either, select};
use http::{Request, Response, StatusCode};
use http_body::Body;
use http_body_util::{Either as EitherBody, Full};
use hyper::body::Incoming;
use hyper_util::server::conn::auto;

use crate::request::in_request_context;
use crate::rt::{Executor, Timer};

/// The error type services and bodies may return.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

type Signal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The defaults a public server needs.
#[derive(Clone, Debug)]
struct Config {
    header_read_timeout: Option<Duration>,
    max_header_size: usize,
    max_connections: usize,
    keep_alive: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            header_read_timeout: Some(Duration::from_secs(30)),
            max_header_size: 64 * 1024,
            max_connections: 16 * 1024,
            keep_alive: true,
        }
    }
}

/// Serves `service` on `listener`: one task per connection, and each
/// request in its own copy of the connection task's context (taken when the
/// request arrives) with its W3C trace headers extracted into it. Nothing a
/// handler sets is visible to the next request on the same keep-alive
/// connection.
///
/// `.await` it (it resolves only after a graceful shutdown, or on a fatal
/// error); configure it with the methods of [`Serve`]. An axum `Router`
/// is such a service.
///
/// ```no_run
/// use std::convert::Infallible;
/// use baton_context::ContextVar;
/// use baton_executor::net::TcpListener;
///
/// static USER: ContextVar<String> = ContextVar::new("user");
///
/// async fn hello(req: http::Request<hyper::body::Incoming>)
///     -> Result<http::Response<String>, Infallible>
/// {
///     if let Some(user) = req.headers().get("x-user") {
///         // Never reset: it goes with this request's context.
///         let _ = USER.set(user.to_str().unwrap_or("?").to_owned());
///     }
///     Ok(http::Response::new(format!("hello {:?}\n", USER.get())))
/// }
///
/// baton_executor::Runtime::new().block_on(async {
///     let listener = TcpListener::bind("127.0.0.1:3000").await?;
///     baton_http::serve(listener, tower::service_fn(hello))
///         .with_graceful_shutdown(async {
///             let _ = baton_executor::signal::ctrl_c().await;
///         })
///         .await
/// })
/// # .unwrap();
/// ```
pub fn serve<S, B>(listener: TcpListener, service: S) -> Serve<S>
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    Serve {
        listener,
        service,
        config: Config::default(),
        signal: None,
    }
}

/// A server being configured; `.await` it to run it. See [`serve`].
#[must_use = "a server does nothing unless you `.await` it"]
pub struct Serve<S> {
    listener: TcpListener,
    service: S,
    config: Config,
    signal: Option<Signal>,
}

impl<S> Serve<S> {
    /// Stops the server gracefully when `signal` completes: no new
    /// connection is served, requests in flight are answered in full, idle
    /// keep-alive connections are closed, then the server resolves
    /// `Ok(())`.
    pub fn with_graceful_shutdown<F>(mut self, signal: F) -> Serve<S>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.signal = Some(Box::pin(signal));
        self
    }

    /// How long a client may take to send a request's headers (hyper's
    /// setting; default 30 s; `None` disables it). It guards against
    /// slowloris clients — including one that connects and sends nothing —
    /// and, as hyper starts it when it starts waiting for a request, it is
    /// also how long an idle keep-alive connection stays open.
    pub fn header_read_timeout(mut self, timeout: impl Into<Option<Duration>>) -> Serve<S> {
        self.config.header_read_timeout = timeout.into();
        self
    }

    /// The largest request head accepted (request line and headers, in
    /// bytes; default 64 KiB, at least 8 KiB): a bigger one is answered
    /// `431 Request Header Fields Too Large` and its connection closed.
    pub fn max_header_size(mut self, bytes: usize) -> Serve<S> {
        self.config.max_header_size = bytes.max(8 * 1024);
        self
    }

    /// The most connections served at once (default 16,384). When it is
    /// reached the server stops accepting until one closes: clients wait in
    /// the kernel's accept queue, none is dropped.
    ///
    /// # Panics
    ///
    /// If `max` is 0.
    #[track_caller]
    pub fn max_connections(mut self, max: usize) -> Serve<S> {
        assert!(max > 0, "baton: max_connections must be at least 1");
        self.config.max_connections = max;
        self
    }

    /// Whether HTTP/1.1 connections are kept alive between requests
    /// (default `true`).
    pub fn keep_alive(mut self, keep_alive: bool) -> Serve<S> {
        self.config.keep_alive = keep_alive;
        self
    }
}

impl<S> fmt::Debug for Serve<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serve")
            .field("listener", &self.listener)
            .field("config", &self.config)
            .field("graceful_shutdown", &self.signal.is_some())
            .finish_non_exhaustive()
    }
}

impl<S, B> IntoFuture for Serve<S>
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Output = io::Result<()>;
    type IntoFuture = Pin<Box<dyn Future<Output = io::Result<()>> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.run())
    }
}

/// The connections alive, and the signal that tells them to finish.
#[derive(Default)]
struct Connections {
    active: AtomicUsize,
    /// Notified when `active` drops to zero.
    all_closed: Event,
    shutting_down: AtomicBool,
    /// Notified when `shutting_down` is set.
    shut_down: Event,
}

impl Connections {
    /// Counts a connection in until the guard is dropped.
    fn enter(self: &Arc<Self>) -> ConnectionGuard {
        self.active.fetch_add(1, Ordering::SeqCst);
        ConnectionGuard(self.clone())
    }

    fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.shut_down.notify(usize::MAX);
    }

    /// Resolves once shutdown has begun.
    async fn shutdown_begun(&self) {
        loop {
            if self.shutting_down.load(Ordering::SeqCst) {
                return;
            }
            let listener = self.shut_down.listen();
            if self.shutting_down.load(Ordering::SeqCst) {
                return;
            }
            listener.await;
        }
    }

    /// Resolves once no connection is left.
    async fn all_closed(&self) {
        loop {
            if self.active.load(Ordering::SeqCst) == 0 {
                return;
            }
            let listener = self.all_closed.listen();
            if self.active.load(Ordering::SeqCst) == 0 {
                return;
            }
            listener.await;
        }
    }
}

struct ConnectionGuard(Arc<Connections>);

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.all_closed.notify(usize::MAX);
        }
    }
}

/// The first back-off after an accept error, and the longest.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(1);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

impl<S> Serve<S> {
    async fn run<B>(self) -> io::Result<()>
    where
        S: tower_service::Service<Request<Incoming>, Response = Response<B>>
            + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let Serve {
            listener,
            service,
            config,
            signal,
        } = self;
        let mut signal: Signal = signal.unwrap_or_else(|| Box::pin(std::future::pending()));
        let builder = Arc::new(builder(&config));
        let slots = Arc::new(async_lock::Semaphore::new(config.max_connections));
        let connections = Arc::new(Connections::default());
        let mut backoff = ACCEPT_BACKOFF_MIN;
        let first_request = config.header_read_timeout;
        loop {
            // 1. A slot: while full, stop accepting (back-pressure).
            let slot = match select(pin!(slots.acquire_arc()), signal.as_mut()).await {
                Either::Left((slot, _)) => slot,
                Either::Right(_) => break,
            };
            // 2. A connection.
            let accepted = match select(pin!(listener.accept()), signal.as_mut()).await {
                Either::Left((accepted, _)) => accepted,
                Either::Right(_) => break,
            };
            let stream = match accepted {
                Ok((stream, _peer)) => {
                    backoff = ACCEPT_BACKOFF_MIN;
                    stream
                }
                Err(e) => {
                    tracing::warn!(error = %e, ?backoff, "baton::http: accept failed; retrying");
                    drop(slot);
                    let pause = pin!(baton_executor::sleep(backoff));
                    backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    match select(pause, signal.as_mut()).await {
                        Either::Left(_) => continue,
                        Either::Right(_) => break,
                    }
                }
            };
            // 3. Its task.
            let guard = connections.enter();
            let (builder, service, connections) =
                (builder.clone(), service.clone(), connections.clone());
            drop(baton_executor::spawn(async move {
                serve_connection(&builder, stream, service, &connections, first_request).await;
                drop((guard, slot));
            }));
        }
        drop(listener);
        connections.begin_shutdown();
        connections.all_closed().await;
        Ok(())
    }
}

/// hyper-util's auto builder (HTTP/1.1, and HTTP/2 with prior knowledge)
/// with `config` on baton's executor and timers.
fn builder(config: &Config) -> auto::Builder<Executor> {
    let mut builder = auto::Builder::new(Executor::new());
    builder
        .http1()
        .timer(Timer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_header_size)
        .keep_alive(config.keep_alive);
    builder
        .http2()
        .timer(Timer::new())
        .max_header_list_size(u32::try_from(config.max_header_size).unwrap_or(u32::MAX));
    builder
}

/// One connection's task: serves it until it closes, or until shutdown
/// begins (then gracefully).
///
/// Until its first request arrives, a connection also races
/// `first_request` (the header-read timeout): hyper-util reads the first
/// bytes, to tell HTTP/1 from HTTP/2, with no timer of its own, and hyper's
/// header timer starts only after that, so a client that connects and sends
/// nothing (or trickles the HTTP/2 preface) would otherwise hold a
/// connection slot and a descriptor for ever (hyperium/hyper#3756).
async fn serve_connection<S, B>(
    builder: &auto::Builder<Executor>,
    stream: TcpStream,
    service: S,
    connections: &Connections,
    first_request: Option<Duration>,
) where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "baton::http: set_nodelay failed");
    }
    let seen = Arc::new(AtomicBool::new(false));
    let mut connection = pin!(builder.serve_connection_with_upgrades(
        stream,
        RequestService {
            inner: service,
            seen: seen.clone(),
        }
    ));
    let mut shutdown = pin!(connections.shutdown_begun());
    if let Some(timeout) = first_request {
        let deadline = pin!(baton_executor::sleep(timeout));
        let connection_or_shutdown = select(connection.as_mut(), shutdown.as_mut());
        match select(connection_or_shutdown, deadline).await {
            Either::Left((Either::Left((result, _)), _)) => return log_end(result),
            Either::Left((Either::Right(_), _)) => {
                connection.as_mut().graceful_shutdown();
                return log_end(connection.await);
            }
            Either::Right(_) if !seen.load(Ordering::Relaxed) => {
                tracing::debug!("baton::http: no request within the header timeout; closing");
                return;
            }
            Either::Right(_) => {}
        }
    }
    let result = match select(connection.as_mut(), shutdown).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    log_end(result);
}

fn log_end(result: Result<(), BoxError>) {
    if let Err(e) = result {
        tracing::debug!(error = %e, "baton::http: connection ended with an error");
    }
}

/// The service hyper calls on a connection: `S`, each call in its own
/// context, a panic turned into a 500.
struct RequestService<S> {
    inner: S,
    /// Set when the first request arrives (see `serve_connection`).
    seen: Arc<AtomicBool>,
}

type ResponseBody<B> = EitherBody<B, Full<Bytes>>;

impl<S, B> hyper::service::Service<Request<Incoming>> for RequestService<S>
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
{
    type Response = Response<ResponseBody<B>>;
    type Error = BoxError;
    type Future = baton_context::Attached<
        Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>,
    >;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        self.seen.store(true, Ordering::Relaxed);
        let mut service = self.inner.clone();
        in_request_context(request, move |request| {
            let respond = async move {
                poll_fn(|cx| service.poll_ready(cx)).await?;
                service.call(request).await
            };
            let future: Pin<Box<dyn Future<Output = _> + Send>> =
                Box::pin(AssertUnwindSafe(respond).catch_unwind().map(|outcome| {
                    match outcome {
                        Ok(Ok(response)) => Ok(response.map(EitherBody::Left)),
                        Ok(Err(e)) => Err(e.into()),
                        Err(panic) => {
                            // Still inside the request's context: a
                            // formatter that adds context values to events
                            // logs this request's id.
                            tracing::error!(
                                panic = panic_message(&*panic),
                                "baton::http: the handler panicked; answering 500"
                            );
                            Ok(internal_error())
                        }
                    }
                }));
            future
        })
    }
}

fn internal_error<B>() -> Response<ResponseBody<B>> {
    let mut response = Response::new(EitherBody::Right(Full::new(Bytes::from_static(
        b"internal server error\n",
    ))));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(not a string)")
}
