//! An axum `Router` served by `baton::http::serve`: every request in its own
//! copy of the context, so a value a handler sets is never seen by the next
//! request on the same keep-alive connection.
//!
//! `cargo run --example axum_router --features http` serves on
//! 127.0.0.1:3001 until Ctrl-C; `curl -H 'x-user: alice' 127.0.0.1:3001/`
//! then `curl 127.0.0.1:3001/` (the second never sees alice).

use axum::Router;
use axum::routing::get;
use baton::net::TcpListener;
use baton::{ContextVar, Runtime};

static USER: ContextVar<String> = ContextVar::new("user");

/// Middleware-style: sets the user from a header and never resets it.
async fn whoami(headers: http::HeaderMap) -> String {
    if let Some(user) = headers.get("x-user").and_then(|v| v.to_str().ok()) {
        let _ = USER.set(user.to_owned());
    }
    baton::yield_now().await; // the task may move to another worker here
    format!(
        "hello, {}\n",
        USER.get().unwrap_or_else(|| "anonymous".into())
    )
}

/// The application.
pub(crate) fn app() -> Router {
    Router::new().route("/", get(whoami))
}

fn main() -> std::io::Result<()> {
    Runtime::new().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:3001").await?;
        println!("listening on http://{}", listener.local_addr()?);
        baton::http::serve(listener, app())
            .with_graceful_shutdown(async {
                let _ = baton::signal::ctrl_c().await;
            })
            .await
    })
}
