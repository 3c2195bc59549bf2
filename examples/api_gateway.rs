//! The API-gateway story: request-id middleware and an authentication
//! context around a handler, read deep in the call chain without passing
//! them as arguments — and the `threading.local` bug they replace.
//!
//! `cargo run --release --example api_gateway --features http` serves it
//! for real on 127.0.0.1:3000 (`--addr` to change): `/profile` with a
//! bearer token, an async session store and database, a hash offloaded to
//! rayon, a call to a downstream service carrying the W3C trace context,
//! and a log line with `request_id`, `user` and `trace_id` at every step.
//! Try it with the `curl` lines in the README. `-- --simulate` (and the
//! build without feature `http`) prints the story instead, as
//! `tests/examples.rs` checks.

// Python, from "Context Variables with contextvars" (Practical Patterns):
//
//     request_id_var = ContextVar("request_id", default=None)
//     async def middleware_handler(request):
//         import uuid
//         req_id = str(uuid.uuid4())[:8]
//         token = request_id_var.set(req_id)
//         try:
//             return await route_handler(request)
//         finally:
//             request_id_var.reset(token)
//     async def route_handler(request):
//         # Access request ID anywhere in the call chain
//         req_id = request_id_var.get()
//         await process_request(request)
//         return {"request_id": req_id}
//     async def process_request(request):
//         # No need to pass request_id through every function
//         print(f"Processing {request_id_var.get()}")
//
//     current_user = ContextVar("current_user", default=None)
//     async def get_current_user():
//         return current_user.get()
//     async def require_auth(handler):
//         async def wrapper(request):
//             user = await authenticate(request)
//             token = current_user.set(user)
//             try:
//                 return await handler(request)
//             finally:
//                 current_user.reset(token)
//         return wrapper
//
// And the story, from "How does Python's contextvars module maintain distinct
// logical execution contexts ...": "their authentication middleware, which
// stored the current user in threading.local(), was randomly assigning User
// A's identity to User B's requests under load [...] one request handler
// yields during a database call, allowing another handler to run on the same
// thread and inherit the thread-local storage. [...] The team adopted
// contextvars.ContextVar to store the authenticated user object, allowing the
// middleware to set the variable upon request entry while downstream
// functions accessed it via .get() without polluting function signatures."

use std::cell::RefCell;
use std::io::{self, Write};
use std::sync::Arc;
use std::time::Duration;

use baton::{ContextVar, Runtime, TaskGroup, copy_context, sleep, yield_now};

/// An incoming request.
#[derive(Clone, Debug)]
pub(crate) struct Request {
    /// Arrival number, from the accept loop.
    pub n: u32,
    /// The path asked for.
    pub path: &'static str,
    /// The bearer token sent, if any.
    pub auth: Option<&'static str>,
}

/// The gateway's answer.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Response {
    /// The id the middleware gave the request.
    pub request_id: String,
    /// HTTP status.
    pub status: u16,
    /// What the handler produced.
    pub body: String,
}

/// An authenticated user.
#[derive(Debug)]
pub(crate) struct User {
    /// Login name.
    pub name: &'static str,
    /// Whether the user may see every account.
    pub admin: bool,
}

static REQUEST_ID_VAR: ContextVar<String> = ContextVar::new("request_id");
static CURRENT_USER: ContextVar<Arc<User>> = ContextVar::new("current_user");

/// `str(uuid.uuid4())[:8]`, made reproducible: eight hex digits derived from
/// the arrival number.
pub(crate) fn short_id(n: u32) -> String {
    let mixed = u64::from(n)
        .wrapping_add(1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{:08x}", mixed >> 32)
}

// ---- middleware ------------------------------------------------------------

async fn middleware_handler(request: Request) -> Response {
    let token = REQUEST_ID_VAR.set(short_id(request.n));
    let response = require_auth(route_handler, request).await;
    REQUEST_ID_VAR.reset(token).unwrap();
    response
}

async fn authenticate(request: &Request) -> Option<Arc<User>> {
    sleep(Duration::from_millis(1)).await; // ask the session store
    match request.auth? {
        "token-alice" => Some(Arc::new(User {
            name: "alice",
            admin: false,
        })),
        "token-bob" => Some(Arc::new(User {
            name: "bob",
            admin: false,
        })),
        "token-root" => Some(Arc::new(User {
            name: "root",
            admin: true,
        })),
        _ => None,
    }
}

/// `require_auth(handler)`: runs `handler` with the authenticated user in
/// the context, or answers 401.
async fn require_auth<H, Fut>(handler: H, request: Request) -> Response
where
    H: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let Some(user) = authenticate(&request).await else {
        return Response {
            request_id: REQUEST_ID_VAR.get().unwrap(),
            status: 401,
            body: "unauthorized".to_string(),
        };
    };
    let token = CURRENT_USER.set(user);
    let response = handler(request).await;
    CURRENT_USER.reset(token).unwrap();
    response
}

// ---- the application: no request id or user in any signature --------------

async fn route_handler(request: Request) -> Response {
    // Access the request id anywhere in the call chain.
    let request_id = REQUEST_ID_VAR.get().unwrap();
    let body = process_request(&request).await;
    Response {
        request_id,
        status: 200,
        body,
    }
}

async fn get_current_user() -> Option<Arc<User>> {
    CURRENT_USER.get()
}

async fn process_request(request: &Request) -> String {
    let rows = db::accounts().await;
    format!(
        "Processing {} {}: {}",
        REQUEST_ID_VAR.get().unwrap(),
        request.path,
        rows.join(",")
    )
}

mod db {
    use super::*;

    /// The accounts the current user may see: the data layer reads the
    /// user from the context, like a row-level security policy.
    pub(super) async fn accounts() -> Vec<String> {
        // The database call: other requests run meanwhile, on this thread
        // or others; this one may resume on another worker.
        sleep(Duration::from_millis(2)).await;
        let user = get_current_user().await.expect("behind require_auth");
        let all = ["alice", "bob", "root"];
        all.iter()
            .filter(|owner| user.admin || **owner == user.name)
            .map(|owner| format!("{owner}-account"))
            .collect()
    }
}

// ---- before: the current user in a thread-local -----------------------------

thread_local! {
    /// `threading.local()`: one slot per OS thread, shared by every request
    /// that runs on it.
    static THREAD_USER: RefCell<Option<&'static str>> = const { RefCell::new(None) };
}

/// A handler whose middleware stores the user in a thread-local.
async fn thread_local_handler(auth: Option<&'static str>) -> String {
    if let Some(user) = auth {
        THREAD_USER.with(|u| *u.borrow_mut() = Some(user));
    }
    yield_now().await; // the database call: another request runs now
    let acting = THREAD_USER.with(|u| *u.borrow());
    format!("acts as {}", acting.unwrap_or("anonymous"))
}

/// The same handler with a ContextVar.
async fn context_var_handler(auth: Option<&'static str>) -> String {
    static USER: ContextVar<&str> = ContextVar::new("user");
    if let Some(user) = auth {
        let _token = USER.set(user);
    }
    yield_now().await;
    format!("acts as {}", USER.get().unwrap_or("anonymous"))
}

/// The requests the gateway serves: three users, a bad token and no token.
pub(crate) fn requests() -> Vec<Request> {
    let paths = ["/accounts", "/orders", "/profile"];
    let auths = [
        Some("token-alice"),
        Some("token-bob"),
        Some("token-root"),
        Some("token-forged"),
        None,
    ];
    (0..15)
        .map(|n| Request {
            n,
            path: paths[n as usize % paths.len()],
            auth: auths[n as usize % auths.len()],
        })
        .collect()
}

/// Runs the story and writes what it prints to `out`.
pub(crate) fn run(out: &mut impl Write) -> io::Result<()> {
    let rt = Runtime::new();

    // Two requests on one thread, the first authenticated, the second not.
    let (a, b) = rt.block_on(async {
        futures::join!(
            thread_local_handler(Some("alice")),
            thread_local_handler(None),
        )
    });
    writeln!(out, "threading.local: request 1 (alice) {a}")?;
    writeln!(out, "threading.local: request 2 (no credentials) {b}")?;
    let (a, b) = rt.block_on(async {
        // Each request in its own context, as each is its own task.
        futures::join!(
            copy_context().attach(context_var_handler(Some("alice"))),
            copy_context().attach(context_var_handler(None)),
        )
    });
    writeln!(out, "ContextVar: request 1 (alice) {a}")?;
    writeln!(out, "ContextVar: request 2 (no credentials) {b}")?;

    // The gateway: every request a task, all at once, on every worker.
    let responses = rt.block_on(async {
        let mut group = TaskGroup::new();
        for request in requests() {
            group.spawn(middleware_handler(request));
        }
        group.join_all().await.unwrap()
    });
    for r in responses {
        writeln!(out, "[{}] {} {}", r.request_id, r.status, r.body)?;
    }
    Ok(())
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    #[cfg(all(feature = "http", feature = "rayon", feature = "tracing"))]
    if !args.iter().any(|a| a == "--simulate") {
        let addr = args
            .iter()
            .position(|a| a == "--addr")
            .and_then(|i| args.get(i + 1))
            .map_or("127.0.0.1:3000", String::as_str);
        return server::main(addr);
    }
    let _ = args;
    run(&mut io::stdout().lock())
}

/// The gateway as a real HTTP server (feature `http`).
#[cfg(all(feature = "http", feature = "rayon", feature = "tracing"))]
pub(crate) mod server {
    use std::convert::Infallible;
    use std::io;
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::time::Duration;

    use baton::http::serve;
    use baton::net::{TcpListener, TcpStream};
    use baton::tracing::ContextFields;
    use baton::{ContextVar, Runtime, sleep, spawn};
    use bytes::Bytes;
    use http::{HeaderMap, Request, Response, StatusCode};
    use http_body_util::{BodyExt, Empty, Full};
    use hyper::body::Incoming;

    use super::{CURRENT_USER, REQUEST_ID_VAR, User};

    /// The user's name, for log lines (`CURRENT_USER` holds the whole user).
    static USER_NAME: ContextVar<&'static str> = ContextVar::new("user");

    type Reply = Response<Full<Bytes>>;

    fn reply(status: StatusCode, body: String) -> Reply {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
    }

    /// The middleware: a request id (the caller's `x-request-id`, or a new
    /// one), then authentication, then the route. It sets its values and
    /// never resets them: `serve` gives every request its own context.
    async fn gateway(request: Request<Incoming>, upstream: SocketAddr) -> Reply {
        let id = match request.headers().get("x-request-id") {
            Some(id) => id.to_str().unwrap_or("invalid").to_owned(),
            None => format!("{:08x}", fastrand::u32(..)),
        };
        let _ = REQUEST_ID_VAR.set(id);
        tracing::info!(path = request.uri().path(), "request");
        let response = match request.uri().path() {
            "/health" => reply(StatusCode::OK, "ok\n".into()),
            "/profile" => match authenticate(request.headers()).await {
                Some(user) => {
                    let _ = USER_NAME.set(user.name);
                    let _ = CURRENT_USER.set(user);
                    profile(upstream).await
                }
                None => reply(StatusCode::UNAUTHORIZED, "unauthorized\n".into()),
            },
            _ => reply(StatusCode::NOT_FOUND, "not found\n".into()),
        };
        tracing::info!(status = response.status().as_u16(), "response");
        response
    }

    /// The session store: a bearer token to a user.
    async fn authenticate(headers: &HeaderMap) -> Option<Arc<User>> {
        sleep(Duration::from_millis(1)).await;
        let token = headers.get("authorization")?.to_str().ok()?;
        let (name, admin) = match token.strip_prefix("Bearer ")? {
            "token-alice" => ("alice", false),
            "token-bob" => ("bob", false),
            "token-root" => ("root", true),
            _ => return None,
        };
        Some(Arc::new(User { name, admin }))
    }

    /// `/profile`: no request id, user or trace in any signature.
    async fn profile(upstream: SocketAddr) -> Reply {
        let accounts = super::db::accounts().await;
        tracing::info!(accounts = accounts.len(), "db answered");
        // CPU work goes to rayon, inside a copy of this request's context.
        let digest = baton::bridge::run_blocking(|| {
            let user = CURRENT_USER.get().expect("the request's user, on rayon");
            let mut hash = 0xcbf2_9ce4_8422_2325_u64;
            for _ in 0..20_000 {
                for byte in user.name.bytes() {
                    hash = (hash ^ u64::from(byte)).wrapping_mul(0x100_0000_01b3);
                }
            }
            tracing::info!("hashed on rayon");
            format!("{hash:016x}")
        })
        .await;
        let audit = match call_upstream(upstream).await {
            Ok(audit) => audit,
            Err(e) => format!("upstream failed: {e}"),
        };
        let body = format!(
            "request_id={} user={} accounts={} digest={digest} trace_id={} upstream_saw={audit}\n",
            REQUEST_ID_VAR.get().unwrap_or_default(),
            USER_NAME.get().unwrap_or("-"),
            accounts.join(","),
            baton::trace::CURRENT
                .get()
                .map(|t| t.trace_id_hex())
                .unwrap_or_default(),
        );
        reply(StatusCode::OK, body)
    }

    /// Calls the downstream audit service, carrying the trace context
    /// (`traceparent`: a child of this request's, `tracestate`, `baggage`).
    async fn call_upstream(upstream: SocketAddr) -> io::Result<String> {
        let stream = TcpStream::connect(upstream).await?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(stream)
            .await
            .map_err(io::Error::other)?;
        drop(spawn(async move {
            let _ = connection.await;
        }));
        let mut request = Request::get("/audit")
            .header("host", upstream.to_string())
            .body(Empty::<Bytes>::new())
            .map_err(io::Error::other)?;
        baton::trace::inject(request.headers_mut());
        let response = sender
            .send_request(request)
            .await
            .map_err(io::Error::other)?;
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(io::Error::other)?
            .to_bytes();
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// The downstream service: answers with the `traceparent` it received
    /// (its own request context continues the caller's trace).
    async fn audit(request: Request<Incoming>) -> Result<Reply, Infallible> {
        tracing::info!("audit");
        let seen = request
            .headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_owned();
        Ok(reply(StatusCode::OK, seen))
    }

    /// Binds the gateway on `addr` and its upstream on a free port, both on
    /// `rt`; returns the gateway's address.
    pub(crate) async fn start(addr: &str) -> io::Result<SocketAddr> {
        let upstream = TcpListener::bind("127.0.0.1:0").await?;
        let upstream_addr = upstream.local_addr()?;
        drop(spawn(
            serve(upstream, tower::service_fn(audit)).into_future(),
        ));
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let service = tower::service_fn(move |request| async move {
            Ok::<_, Infallible>(gateway(request, upstream_addr).await)
        });
        drop(spawn(serve(listener, service).into_future()));
        Ok(local)
    }

    /// Logs every event with the request's id, user and trace id.
    pub(crate) fn install_logging() {
        let format = tracing_subscriber::fmt::format().compact().without_time();
        let subscriber = tracing_subscriber::fmt()
            .event_format(
                ContextFields::new()
                    .with(&REQUEST_ID_VAR)
                    .with(&USER_NAME)
                    .with(&baton::trace::CURRENT)
                    .format(format),
            )
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
    }

    pub(crate) fn main(addr: &str) -> io::Result<()> {
        install_logging();
        Runtime::new().block_on(async {
            let local = start(addr).await?;
            println!("api_gateway listening on http://{local} (Ctrl-C stops it)");
            baton::signal::ctrl_c().await
        })
    }
}
