//! `examples/trace_service.rs`, the W3C Trace Context validation service,
//! driven as the specification's harness drives it: a `POST /test` whose
//! body lists calls to make, here to a capture server that records the
//! headers each call carried.
#![cfg(feature = "http")]

use std::convert::Infallible;
use std::future::{IntoFuture, pending};
use std::net::SocketAddr;
use std::time::Duration;

use baton::net::{TcpListener, TcpStream};
use baton::{Builder, Runtime, spawn, timeout};
use bytes::Bytes;
use futures::channel::mpsc;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};

#[allow(dead_code)]
#[path = "../examples/trace_service.rs"]
mod trace_service;

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_ID: &str = "b7ad6b7169203331";

fn runtime() -> Runtime {
    Builder::new().worker_threads(2).build().unwrap()
}

/// What the capture server received: the path, the headers, the JSON body.
type Captured = (String, HeaderMap, Value);

/// Starts the service under test; returns its address.
async fn start_service() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(spawn(trace_service::serve(listener, pending())));
    addr
}

/// Starts a server that records every request (before answering it) and
/// answers `null`; returns its address and the records.
async fn start_capture() -> (SocketAddr, mpsc::UnboundedReceiver<Captured>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded();
    let capture = tower::service_fn(move |request: Request<Incoming>| {
        let tx = tx.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            let body = serde_json::from_slice(&body).unwrap();
            tx.unbounded_send((parts.uri.path().to_owned(), parts.headers, body))
                .unwrap();
            let mut response = Response::new(Full::new(Bytes::from_static(b"null")));
            response
                .headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            Ok::<_, Infallible>(response)
        }
    });
    drop(spawn(baton::http::serve(listener, capture).into_future()));
    (addr, rx)
}

/// The harness's side: `POST /test` with `headers` and `calls` as the body.
async fn post_test(service: SocketAddr, headers: &[(&str, &str)], calls: Value) -> StatusCode {
    let stream = TcpStream::connect(service).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(stream).await.unwrap();
    drop(spawn(connection));
    let mut request = Request::post("/test").header("host", service.to_string());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::from(calls.to_string())))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    response.into_body().collect().await.unwrap();
    status
}

/// Two calls to the capture server, as the harness asks for them.
fn two_calls(capture: SocketAddr) -> Value {
    json!([
        { "url": format!("http://{capture}/scope.0"), "arguments": [{ "n": 0 }] },
        { "url": format!("http://{capture}/scope.1"), "arguments": [] },
    ])
}

/// The calls the capture server has received so far, all of which the
/// service made before answering `/test`.
fn received(rx: &mut mpsc::UnboundedReceiver<Captured>) -> Vec<Captured> {
    let mut calls = Vec::new();
    while let Ok(call) = rx.try_recv() {
        calls.push(call);
    }
    calls
}

/// A `traceparent` split into version, trace-id, parent-id and flags.
fn traceparent(headers: &HeaderMap) -> [String; 4] {
    let values: Vec<_> = headers.get_all("traceparent").iter().collect();
    assert_eq!(values.len(), 1, "one traceparent: {headers:?}");
    let fields: Vec<String> = values[0]
        .to_str()
        .unwrap()
        .split('-')
        .map(str::to_owned)
        .collect();
    fields.try_into().unwrap()
}

#[test]
fn a_valid_traceparent_is_continued_with_a_new_parent_id_per_call() {
    runtime().block_on(async {
        timeout(Duration::from_secs(30), async {
            let service = start_service().await;
            let (capture, mut rx) = start_capture().await;
            let incoming = format!("00-{TRACE_ID}-{PARENT_ID}-01");
            let status = post_test(
                service,
                &[
                    ("traceparent", &incoming),
                    ("tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"),
                ],
                two_calls(capture),
            )
            .await;
            assert_eq!(status, StatusCode::OK);

            let calls = received(&mut rx);
            let paths: Vec<_> = calls.iter().map(|(path, _, _)| path.as_str()).collect();
            assert_eq!(paths, ["/scope.0", "/scope.1"]); // in order
            assert_eq!(calls[0].2, json!([{ "n": 0 }])); // the arguments
            assert_eq!(calls[1].2, json!([]));
            let mut parents = Vec::new();
            for (_, headers, _) in &calls {
                let [version, trace_id, parent_id, flags] = traceparent(headers);
                assert_eq!(version, "00");
                assert_eq!(trace_id, TRACE_ID);
                assert_eq!(parent_id.len(), 16);
                assert_ne!(parent_id, PARENT_ID);
                assert_eq!(flags, "01");
                assert_eq!(
                    headers["tracestate"],
                    "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
                );
                parents.push(parent_id);
            }
            assert_ne!(parents[0], parents[1], "each call is its own span");
        })
        .await
        .expect("bounded");
    });
}

#[test]
fn an_invalid_traceparent_starts_a_new_trace_without_the_tracestate() {
    runtime().block_on(async {
        timeout(Duration::from_secs(30), async {
            let service = start_service().await;
            let (capture, mut rx) = start_capture().await;
            // An all-zero trace-id is invalid.
            let incoming = format!("00-{}-{PARENT_ID}-01", "0".repeat(32));
            let status = post_test(
                service,
                &[("traceparent", &incoming), ("tracestate", "foo=1")],
                two_calls(capture),
            )
            .await;
            assert_eq!(status, StatusCode::OK);

            let calls = received(&mut rx);
            assert_eq!(calls.len(), 2);
            let [_, first_trace, first_parent, _] = traceparent(&calls[0].1);
            let [_, second_trace, second_parent, _] = traceparent(&calls[1].1);
            assert_eq!(first_trace.len(), 32);
            assert_ne!(first_trace, "0".repeat(32));
            // One new trace for the request, a span per call.
            assert_eq!(first_trace, second_trace);
            assert_ne!(first_parent, second_parent);
            for (_, headers, _) in &calls {
                assert!(!headers.contains_key("tracestate"), "{headers:?}");
            }

            // Another invalid request: another new trace.
            assert_eq!(
                post_test(service, &[("traceparent", &incoming)], two_calls(capture)).await,
                StatusCode::OK
            );
            let [_, other_trace, _, _] = traceparent(&received(&mut rx)[0].1);
            assert_ne!(other_trace, first_trace);
        })
        .await
        .expect("bounded");
    });
}

#[test]
fn a_failed_call_is_a_502_and_the_other_calls_are_still_made() {
    runtime().block_on(async {
        timeout(Duration::from_secs(30), async {
            let service = start_service().await;
            let (capture, mut rx) = start_capture().await;
            // A port nobody listens on any more.
            let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let closed_addr = closed.local_addr().unwrap();
            drop(closed);
            let calls = json!([
                { "url": format!("http://{closed_addr}/gone"), "arguments": [] },
                { "url": format!("http://{capture}/scope.1"), "arguments": [] },
            ]);
            assert_eq!(
                post_test(service, &[], calls).await,
                StatusCode::BAD_GATEWAY
            );
            let calls = received(&mut rx);
            assert_eq!(calls.len(), 1);
            assert_eq!(calls[0].0, "/scope.1");

            assert_eq!(
                post_test(service, &[], json!({ "not": "a list" })).await,
                StatusCode::BAD_REQUEST
            );
        })
        .await
        .expect("bounded");
    });
}
