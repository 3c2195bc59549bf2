//! The W3C Trace Context validation service: the test service that the
//! specification's own harness (w3c/trace-context, `test/test.py`) drives.
//!
//! `cargo run --example trace_service --features http -- 127.0.0.1:5000`
//! serves on that address (127.0.0.1:5000 if none is given) until Ctrl-C.
//! The harness then checks it with
//! `python test.py http://127.0.0.1:5000/test` (the harness itself listens
//! on 127.0.0.1:7777, so keep the service off that port).
//!
//! On `POST /test` with a JSON array of `{"url": ..., "arguments": [...]}`,
//! the service POSTs each element's `arguments` (as JSON) to its `url`, one
//! call after the other, and answers 200 when all are done (502 if one
//! failed or took longer than 10 s; the others are still made), with the
//! calls' statuses as a JSON array. Nothing in the handler touches a trace
//! header by hand: `serve` has already extracted the request's
//! `traceparent`/`tracestate` into `baton::trace::CURRENT` (a fresh context
//! per request), and each outgoing call gets its headers from
//! `baton::trace::inject` — the same trace-id, a new parent-id per call, the
//! incoming `tracestate` — or a new trace if the incoming one was missing or
//! invalid.

use std::convert::Infallible;
use std::io;
use std::time::Duration;

use baton::http::BoxError;
use baton::net::{TcpListener, TcpStream};
use baton::{Runtime, spawn, timeout};
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};

/// How long one outgoing call may take, connecting included (the harness
/// gives up on a test after 5 s).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the validation service on `listener` until `shutdown` completes
/// (then finishes the requests in flight).
pub(crate) async fn serve(
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    baton::http::serve(listener, tower::service_fn(handle))
        .with_graceful_shutdown(shutdown)
        .await
}

/// The service: `POST /test` makes the calls it is asked for; anything else
/// is a 404 (or a 405 for another method on `/test`).
async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() != "/test" {
        return Ok(reply(StatusCode::NOT_FOUND, json!("not found")));
    }
    if request.method() != Method::POST {
        return Ok(reply(StatusCode::METHOD_NOT_ALLOWED, json!("POST only")));
    }
    let calls = match read_calls(request.into_body()).await {
        Ok(calls) => calls,
        Err(e) => return Ok(reply(StatusCode::BAD_REQUEST, json!(e.to_string()))),
    };
    // Sequentially, as the reference implementations do. Each call is
    // made, and answered, whatever happened to the one before it.
    let mut results = Vec::with_capacity(calls.len());
    let mut failed = false;
    for (url, arguments) in calls {
        match timeout(CALL_TIMEOUT, post(&url, &arguments)).await {
            Ok(Ok(status)) => results.push(json!({ "url": url, "status": status.as_u16() })),
            Ok(Err(e)) => {
                failed = true;
                results.push(json!({ "url": url, "error": e.to_string() }));
            }
            Err(_) => {
                failed = true;
                results.push(json!({ "url": url, "error": "timed out" }));
            }
        }
    }
    let status = if failed {
        StatusCode::BAD_GATEWAY
    } else {
        StatusCode::OK
    };
    Ok(reply(status, Value::Array(results)))
}

/// A JSON response.
fn reply(status: StatusCode, body: Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

/// The body of a `/test` request: `(url, arguments)` for each element.
async fn read_calls(body: Incoming) -> Result<Vec<(String, Value)>, BoxError> {
    let body = body.collect().await?.to_bytes();
    let Value::Array(elements) = serde_json::from_slice(&body)? else {
        return Err("expected a JSON array".into());
    };
    elements
        .into_iter()
        .map(|mut element| {
            let url = match element.get("url") {
                Some(Value::String(url)) => url.clone(),
                _ => return Err(BoxError::from("each element needs a string \"url\"")),
            };
            let arguments = element
                .get_mut("arguments")
                .map_or(Value::Array(Vec::new()), Value::take);
            Ok((url, arguments))
        })
        .collect()
}

/// POSTs `arguments` as JSON to `url` (`http://` only) on a connection of
/// its own, with the trace headers [`baton::trace::inject`] writes from the
/// current context; returns the status once the whole response is read.
async fn post(url: &str, arguments: &Value) -> Result<StatusCode, BoxError> {
    let uri: Uri = url.parse()?;
    if uri.scheme_str() != Some("http") {
        return Err(format!("{url}: only http:// URLs are supported").into());
    }
    let authority = uri.authority().ok_or_else(|| format!("{url}: no host"))?;
    // `Host` is the authority without any userinfo.
    let host_header = match authority.port() {
        Some(port) => format!("{}:{port}", authority.host()),
        None => authority.host().to_owned(),
    };
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    let port = authority.port_u16().unwrap_or(80);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());

    let mut request = Request::post(path)
        .header(HOST, host_header)
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(arguments.to_string())))?;
    baton::trace::inject(request.headers_mut());

    let stream = TcpStream::connect((host, port)).await?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(stream).await?;
    let connection = spawn(connection);
    let response = sender.send_request(request).await?;
    let status = response.status();
    response.into_body().collect().await?;
    // Closing our half ends the connection task.
    drop(sender);
    connection.await.map_err(|e| e.to_string())??;
    Ok(status)
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5000".to_string());
    Runtime::new().block_on(async move {
        let listener = TcpListener::bind(&addr).await?;
        println!(
            "trace_service listening on http://{}/test",
            listener.local_addr()?
        );
        serve(listener, async {
            let _ = baton::signal::ctrl_c().await;
        })
        .await
    })
}
