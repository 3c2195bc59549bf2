//! The API-gateway story: request-id middleware and an authentication
//! context around a handler, read deep in the call chain without passing
//! them as arguments — and the `threading.local` bug they replace.
//!
//! Run with `cargo run --example api_gateway`.

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
    run(&mut io::stdout().lock())
}
