//! `serve` with a real hyper client on loopback: one context per request,
//! the limits, panics, graceful shutdown, HTTP/2 and an axum `Router`.
#![cfg(not(miri))]

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use baton_context::ContextVar;
use baton_executor::net::{TcpListener, TcpStream};
use baton_executor::{Builder, Runtime, spawn};
use baton_http::serve;
use bytes::Bytes;
use futures::{AsyncReadExt, AsyncWriteExt};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;

static USER: ContextVar<String> = ContextVar::new("user");
static REGION: ContextVar<&'static str> = ContextVar::new("region");

fn runtime() -> Runtime {
    Builder::new().worker_threads(2).build().unwrap()
}

/// Sets `USER` from `x-user` when present and never resets it, panics on
/// `/panic`, waits on `/slow` until told, and answers with what it sees.
async fn handler(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.uri().path() == "/panic" {
        panic!("handler panic for {:?}", USER.get());
    }
    if let Some(user) = request.headers().get("x-user") {
        let _ = USER.set(user.to_str().unwrap().to_owned()); // never reset
    }
    if request.uri().path() == "/slow" {
        baton_executor::sleep(Duration::from_millis(200)).await;
    }
    let seen = format!(
        "user={} region={}",
        USER.get().unwrap_or_else(|| "none".into()),
        REGION.get().unwrap_or("none")
    );
    Ok(Response::new(Full::new(Bytes::from(seen))))
}

fn service() -> impl tower_service::Service<
    Request<Incoming>,
    Response = Response<Full<Bytes>>,
    Error = Infallible,
    Future = impl Send,
> + Clone
+ Send
+ 'static {
    tower::service_fn(handler)
}

/// A keep-alive HTTP/1.1 client connection.
async fn connect(addr: SocketAddr) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, connection) = hyper::client::conn::http1::handshake(stream).await.unwrap();
    drop(spawn(async move {
        let _ = connection.await;
    }));
    sender
}

async fn get(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    path: &str,
    user: Option<&str>,
) -> (StatusCode, String) {
    sender.ready().await.unwrap();
    let mut request = Request::get(path).header("host", "test");
    if let Some(user) = user {
        request = request.header("x-user", user);
    }
    let response = sender
        .send_request(request.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

/// Starts `serve` in a task (inside a context with `REGION` set) and
/// returns its address.
async fn start() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _t = REGION.set("eu");
    drop(spawn(async move { serve(listener, service()).await }));
    addr
}

#[test]
fn a_value_set_by_one_request_never_reaches_the_next_on_the_same_connection() {
    runtime().block_on(async {
        let addr = start().await;
        let mut client = connect(addr).await;
        // The handler sets USER from the header and never resets it.
        assert_eq!(
            get(&mut client, "/", Some("alice")).await.1,
            "user=alice region=eu"
        );
        // Same keep-alive connection, no header: alice must not be seen.
        assert_eq!(get(&mut client, "/", None).await.1, "user=none region=eu");
        assert_eq!(
            get(&mut client, "/", Some("bob")).await.1,
            "user=bob region=eu"
        );
        assert_eq!(get(&mut client, "/", None).await.1, "user=none region=eu");
    });
}

#[test]
fn connections_start_from_the_context_of_the_task_that_awaits_serve() {
    runtime().block_on(async {
        let addr = start().await;
        let mut clients = Vec::new();
        for i in 0..8 {
            clients.push(spawn(async move {
                let mut client = connect(addr).await;
                let user = format!("u{i}");
                for _ in 0..5 {
                    assert_eq!(
                        get(&mut client, "/", Some(&user)).await.1,
                        format!("user={user} region=eu")
                    );
                    assert_eq!(get(&mut client, "/", None).await.1, "user=none region=eu");
                }
            }));
        }
        for client in clients {
            client.await.unwrap();
        }
    });
}

#[test]
fn a_panicking_handler_is_a_500_and_the_connection_keeps_working() {
    runtime().block_on(async {
        let addr = start().await;
        let mut client = connect(addr).await;
        let (status, _) = get(&mut client, "/panic", Some("carol")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            get(&mut client, "/", None).await,
            (StatusCode::OK, "user=none region=eu".into())
        );
    });
}

/// Writes `request` on a raw connection and reads the reply until the
/// server closes the connection.
async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut reply = Vec::new();
    // The server closes the connection after an error response.
    let _ = stream.read_to_end(&mut reply).await;
    String::from_utf8_lossy(&reply).into_owned()
}

#[test]
fn a_malformed_request_is_a_400_and_the_server_carries_on() {
    runtime().block_on(async {
        let addr = start().await;
        let reply = raw(addr, b"THIS IS NOT HTTP\r\n\r\n").await;
        assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
        let mut client = connect(addr).await;
        assert_eq!(get(&mut client, "/", None).await.0, StatusCode::OK);
    });
}

#[test]
fn oversized_headers_are_a_431() {
    runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(spawn(
            serve(listener, service())
                .max_header_size(8 * 1024)
                .into_future(),
        ));
        let big = "a".repeat(16 * 1024);
        let request = format!("GET / HTTP/1.1\r\nhost: test\r\nx-big: {big}\r\n\r\n");
        let reply = raw(addr, request.as_bytes()).await;
        assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
        let mut client = connect(addr).await;
        assert_eq!(get(&mut client, "/", None).await.0, StatusCode::OK);
    });
}

#[test]
fn graceful_shutdown_answers_the_request_in_flight_then_resolves() {
    runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = async_channel::bounded::<()>(1);
        let (arrived_tx, arrived_rx) = async_channel::bounded::<()>(1);
        let (release_tx, release_rx) = async_channel::bounded::<()>(1);
        // `/slow` says it has arrived, then waits to be released.
        let slow = tower::service_fn(move |request: Request<Incoming>| {
            let (arrived_tx, release_rx) = (arrived_tx.clone(), release_rx.clone());
            async move {
                if request.uri().path() == "/slow" {
                    arrived_tx.send(()).await.unwrap();
                    release_rx.recv().await.unwrap();
                }
                handler(request).await
            }
        });
        let server = spawn(
            serve(listener, slow)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.recv().await;
                })
                .into_future(),
        );
        // An idle keep-alive connection (raw, to see the server close it).
        let mut idle = TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n")
            .await
            .unwrap();
        let mut reply = Vec::new();
        while !String::from_utf8_lossy(&reply).ends_with("region=none") {
            let mut buf = [0; 512];
            let n = idle.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before answering");
            reply.extend_from_slice(&buf[..n]);
        }
        let mut busy = connect(addr).await;
        let in_flight = spawn(async move { get(&mut busy, "/slow", Some("dave")).await });
        arrived_rx.recv().await.unwrap();
        stop_tx.send(()).await.unwrap();
        // The idle connection is closed (EOF), while… (the timeout is a
        // bound: a server that never closes it fails here, not hangs)
        let mut buf = [0; 16];
        let closed = baton_executor::timeout(Duration::from_secs(20), idle.read(&mut buf))
            .await
            .expect("the idle connection was not closed");
        assert_eq!(closed.unwrap_or(0), 0);
        // …the request in flight is still answered in full.
        release_tx.send(()).await.unwrap();
        let (status, body) = in_flight.await.unwrap();
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "user=dave region=none")
        );
        server.await.unwrap().unwrap();
        // The listener is closed: no new connection.
        assert!(TcpStream::connect(addr).await.is_err());
    });
}

#[test]
fn at_max_connections_the_server_stops_accepting_and_drops_nobody() {
    runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(spawn(
            serve(listener, service()).max_connections(1).into_future(),
        ));
        let mut first = connect(addr).await;
        assert_eq!(get(&mut first, "/", None).await.0, StatusCode::OK);
        // The second connection waits in the accept queue…
        let second = spawn(async move {
            let mut second = connect(addr).await;
            get(&mut second, "/", Some("erin")).await
        });
        // A negative needs a window: a server that served it would have
        // answered within it (a slow machine can only hide the bug, not
        // fail the test).
        baton_executor::sleep(Duration::from_millis(100)).await;
        assert!(!second.is_finished(), "served beyond max_connections");
        // …and is served as soon as the first closes.
        drop(first);
        assert_eq!(second.await.unwrap().1, "user=erin region=none");
    });
}

#[test]
fn http2_with_prior_knowledge_gives_each_stream_its_own_context() {
    runtime().block_on(async {
        let addr = start().await;
        let stream = TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(baton_http::Executor::new(), stream)
                .await
                .unwrap();
        drop(spawn(async move {
            let _ = connection.await;
        }));
        for user in [Some("frank"), None, Some("grace"), None] {
            let mut request = Request::get("http://test/");
            if let Some(user) = user {
                request = request.header("x-user", user);
            }
            let response = sender
                .send_request(request.body(Empty::<Bytes>::new()).unwrap())
                .await
                .unwrap();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(
                String::from_utf8(body.to_vec()).unwrap(),
                format!("user={} region=eu", user.unwrap_or("none"))
            );
        }
    });
}

#[test]
fn an_axum_router_is_served_with_a_context_per_request() {
    use axum::routing::get as route;
    async fn whoami(headers: http::HeaderMap) -> String {
        if let Some(user) = headers.get("x-user") {
            let _ = USER.set(user.to_str().unwrap().to_owned());
        }
        format!("user={}", USER.get().unwrap_or_else(|| "none".into()))
    }
    runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new().route("/", route(whoami));
        drop(spawn(serve(listener, app).into_future()));
        let mut client = connect(addr).await;
        assert_eq!(get(&mut client, "/", Some("heidi")).await.1, "user=heidi");
        assert_eq!(get(&mut client, "/", None).await.1, "user=none");
    });
}

#[test]
fn serve_outlives_a_client_that_vanishes_mid_request() -> io::Result<()> {
    runtime().block_on(async {
        let addr = start().await;
        for _ in 0..20 {
            let mut stream = TcpStream::connect(addr).await?;
            stream.write_all(b"GET / HTTP/1.1\r\nhost: te").await?;
            drop(stream);
        }
        let mut client = connect(addr).await;
        assert_eq!(get(&mut client, "/", None).await.0, StatusCode::OK);
        Ok(())
    })
}

#[test]
fn each_request_continues_its_own_trace_and_never_the_previous_one() {
    use baton_http::trace::CURRENT;
    let traced = tower::service_fn(|_request: Request<Incoming>| async {
        let trace = CURRENT
            .get()
            .expect("extract sets CURRENT for every request");
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(trace.trace_id_hex()))))
    });
    runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(spawn(serve(listener, traced).into_future()));
        let mut client = connect(addr).await;
        let incoming = "0af7651916cd43dd8448eb211c80319c";
        let request = Request::get("/")
            .header("host", "test")
            .header("traceparent", format!("00-{incoming}-b7ad6b7169203331-01"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = client.send_request(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, incoming.as_bytes());
        // Same connection, no traceparent: a new root trace, not the last one.
        let (_, trace_id) = get(&mut client, "/", None).await;
        assert_eq!(trace_id.len(), 32);
        assert_ne!(trace_id, incoming);
        // A malformed one also starts a new root, never an error response.
        client.ready().await.unwrap();
        let request = Request::get("/")
            .header("host", "test")
            .header("traceparent", "00-not-a-trace-01")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = client.send_request(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    });
}

/// A client that connects and sends nothing is closed after the header
/// timeout (hyper-util's protocol detection has no timer of its own), and
/// does not keep its connection slot: with room for one connection, the
/// next client is served once the silent one is gone.
#[test]
fn a_silent_connection_is_closed_after_the_header_timeout() {
    runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(spawn(
            serve(listener, service())
                .header_read_timeout(Duration::from_millis(200))
                .max_connections(1)
                .into_future(),
        ));
        let mut silent = TcpStream::connect(addr).await.unwrap();
        let mut buf = [0; 16];
        // The server closes it: EOF (a bound, not a synchronisation: a
        // server that never closes fails here instead of hanging).
        let read = baton_executor::timeout(Duration::from_secs(20), silent.read(&mut buf))
            .await
            .expect("the silent connection was never closed");
        assert_eq!(read.unwrap_or(0), 0);
        let mut client = connect(addr).await;
        assert_eq!(get(&mut client, "/", None).await.0, StatusCode::OK);
    });
}
