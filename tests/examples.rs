//! Runs every example's program and checks what it prints.
//!
//! Each example keeps its program in `run(out)`; the example's `main` calls
//! it with standard output, and this file includes the example as a module
//! and calls it with a buffer. (`logging` is checked by `tests/tracing.rs`,
//! as it installs process-wide subscribers.)

#[allow(dead_code)]
#[path = "../examples/global_problem.rs"]
mod global_problem;

#[allow(dead_code)]
#[path = "../examples/tokens.rs"]
mod tokens;

#[allow(dead_code)]
#[path = "../examples/copy_context.rs"]
mod copy_context;

#[allow(dead_code)]
#[path = "../examples/spawn_inherits.rs"]
mod spawn_inherits;

#[allow(dead_code)]
#[path = "../examples/threads.rs"]
mod threads;

#[allow(dead_code)]
#[path = "../examples/api_gateway.rs"]
mod api_gateway;

#[cfg(feature = "rayon")]
#[allow(dead_code)]
#[path = "../examples/rayon_offload.rs"]
mod rayon_offload;

/// The lines `run` writes.
fn lines(run: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> Vec<String> {
    let mut out = Vec::new();
    run(&mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn global_problem_shows_the_wrong_output_then_the_fix() {
    let out = lines(global_problem::run);
    let workers = baton::Runtime::new().metrics().workers;
    assert_eq!(
        out,
        [
            "-- a global, two interleaved requests:",
            "Fetching data for req-123",
            "Fetching data for req-456",
            // Wrong: request 123 reads request 456's id from the global.
            "Processing payment for req-456",
            "Processing payment for req-456",
            "Request req-456 completed",
            "Request req-456 completed",
            "-- a ContextVar, the same interleaving:",
            "Fetching data for req-123",
            "Fetching data for req-456",
            "Fetching data for req-123",
            "Fetching data for req-456",
            &format!("-- a ContextVar, tasks on {workers} workers:"),
            "Task Alpha reads: Alpha",
            "Task Beta reads: Beta",
        ]
    );
}

#[test]
fn tokens_get_set_reset_and_temporary_override() {
    assert_eq!(
        lines(tokens::run),
        [
            "{'guest': True}",
            "{'user': 'alice', 'guest': False}",
            "token.old_value: MISSING",
            "{'guest': True}",
            "before: {'guest': True}",
            "doing admin stuff as {'user': 'admin', 'role': 'admin'}",
            "after: {'guest': True}",
            "reset outside its context: token was created in a different Context",
            "after a leaky handler, the next request sees: {'user': 'alice'}",
            "handling as {'user': 'alice'}; after it, the next request sees: {'guest': True}",
        ]
    );
}

#[test]
fn copy_context_child_sees_parent_values_and_its_sets_stay() {
    assert_eq!(
        lines(copy_context::run),
        [
            "Child sees trace_id: abc-123",
            "After the task, parent sees: abc-123",
            "In ctx.run, child sees: abc-123",
            "After ctx.run, parent sees: abc-123",
            "ctx now holds: set-in-ctx.run",
            "A task in ctx sees: set-in-ctx.run",
            "ctx now holds: set-by-task-in-ctx",
            "Parent still sees: abc-123",
            "Outside the runtime: \"\"",
        ]
    );
}

#[test]
fn spawned_tasks_inherit_the_spawners_values() {
    assert_eq!(
        lines(spawn_inherits::run),
        [
            "Logging request: req-1",
            "Logging request: req-2",
            "The child sees: req-3",
            "The parent sees: req-3-changed-by-parent",
            "main sees: None",
        ]
    );
}

#[test]
fn threads_start_with_the_default_unless_given_a_copy() {
    assert_eq!(
        lines(threads::run),
        [
            "Async task: async value",
            "Thread Thread-1: default",
            "Thread Thread-2: async value",
        ]
    );
}

#[test]
fn api_gateway_each_request_sees_its_own_id_and_user() {
    let out = lines(api_gateway::run);
    let mut expected = vec![
        // The bug of the story: the anonymous request acts as alice.
        "threading.local: request 1 (alice) acts as alice".to_string(),
        "threading.local: request 2 (no credentials) acts as alice".to_string(),
        "ContextVar: request 1 (alice) acts as alice".to_string(),
        "ContextVar: request 2 (no credentials) acts as anonymous".to_string(),
    ];
    for request in api_gateway::requests() {
        let id = api_gateway::short_id(request.n);
        let accounts = match request.auth {
            Some("token-alice") => "alice-account",
            Some("token-bob") => "bob-account",
            Some("token-root") => "alice-account,bob-account,root-account",
            _ => {
                expected.push(format!("[{id}] 401 unauthorized"));
                continue;
            }
        };
        expected.push(format!(
            "[{id}] 200 Processing {id} {}: {accounts}",
            request.path
        ));
    }
    assert_eq!(out, expected);
    // The ids are distinct, so a leak between requests would show.
    let mut ids: Vec<_> = api_gateway::requests()
        .iter()
        .map(|r| api_gateway::short_id(r.n))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), api_gateway::requests().len());
}

#[cfg(feature = "rayon")]
#[test]
fn rayon_offload_carries_the_context_and_a_bare_spawn_does_not() {
    assert_eq!(
        lines(rayon_offload::run),
        [
            "rayon::spawn:     resizing for unknown",
            "run_blocking:     resizing for req-42",
            "after the job:    req-42",
            "ctx after its job: req-43",
            "par_iter:            0:unknown 1:unknown 2:unknown 3:unknown",
            "par_iter.in_context: 0:req-42 1:req-42 2:req-42 3:req-42",
        ]
    );
}

#[cfg(feature = "macros")]
#[allow(dead_code)]
#[path = "../examples/macros.rs"]
mod macros;

/// The example's program, on a runtime that `#[baton::test]` starts as the
/// example's `#[baton::main]` does.
#[cfg(feature = "macros")]
#[baton::test(worker_threads = 2)]
async fn macros_main_runs_requests_in_their_own_contexts() {
    let mut out = Vec::new();
    macros::run(&mut out).await.unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap().lines().collect::<Vec<_>>(),
        [
            "req-1: handled as req-1",
            "req-2: handled as req-2",
            "main sees: none",
            "workers: 2",
        ]
    );
}

#[cfg(feature = "net")]
#[allow(dead_code)]
#[path = "../examples/echo_server.rs"]
mod echo_server;

/// Each connection's task logs its own id, read from its context, on every
/// line, whatever the other connections do meanwhile.
#[cfg(feature = "net")]
#[test]
fn echo_server_logs_each_connection_under_its_own_id() {
    let mut expected = Vec::new();
    for i in 1..=3 {
        expected.push(format!("[conn {i}] closed"));
        expected.push(format!("[conn {i}] connected"));
        expected.push(format!("[conn {i}] got \"bye {i}\""));
        expected.push(format!("[conn {i}] got \"hello {i}\""));
    }
    expected.sort();
    assert_eq!(lines(echo_server::run), expected);
}

/// The gateway as a real server: on one keep-alive connection, alice's
/// request, an unauthenticated one (never alice), then bob's; each sees its
/// own request id, user and trace, and the upstream continues that trace.
#[cfg(all(feature = "http", feature = "rayon", feature = "tracing"))]
#[test]
fn api_gateway_serves_each_request_in_its_own_context() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};

    let rt = baton::Runtime::new();
    rt.block_on(async {
        let addr = api_gateway::server::start("127.0.0.1:0").await.unwrap();
        let stream = baton::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(stream).await.unwrap();
        drop(baton::spawn(async move {
            let _ = connection.await;
        }));
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let mut ask = async |auth: Option<&str>, id: &str| {
            sender.ready().await.unwrap();
            let mut request = http::Request::get("/profile")
                .header("host", "gateway")
                .header("x-request-id", id)
                .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"));
            if let Some(auth) = auth {
                request = request.header("authorization", format!("Bearer {auth}"));
            }
            let response = sender
                .send_request(request.body(Empty::<Bytes>::new()).unwrap())
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8(body.to_vec()).unwrap())
        };
        let (status, alice) = ask(Some("token-alice"), "r-1").await;
        assert_eq!(status, 200);
        assert!(
            alice.starts_with("request_id=r-1 user=alice accounts=alice-account "),
            "{alice}"
        );
        assert!(
            alice.contains(&format!("trace_id={trace} upstream_saw=00-{trace}-")),
            "{alice}"
        );
        assert!(
            !alice.contains("00f067aa0ba902b7"),
            "the upstream call needs a new parent id"
        );
        let (status, anonymous) = ask(None, "r-2").await;
        assert_eq!((status, anonymous.as_str()), (401, "unauthorized\n"));
        let (status, bob) = ask(Some("token-bob"), "r-3").await;
        assert_eq!(status, 200);
        assert!(
            bob.starts_with("request_id=r-3 user=bob accounts=bob-account "),
            "{bob}"
        );
    });
}

#[cfg(feature = "http")]
#[allow(dead_code)]
#[path = "../examples/axum_router.rs"]
mod axum_router;

/// The axum example's router, served by `baton::http::serve`: on one
/// keep-alive connection, the second request never sees the first's user.
#[cfg(feature = "http")]
#[test]
fn axum_router_gives_each_request_its_own_context() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};

    baton::Runtime::new().block_on(async {
        let listener = baton::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(baton::spawn(
            baton::http::serve(listener, axum_router::app()).into_future(),
        ));
        let stream = baton::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(stream).await.unwrap();
        drop(baton::spawn(async move {
            let _ = connection.await;
        }));
        for (user, expected) in [
            (Some("alice"), "hello, alice\n"),
            (None, "hello, anonymous\n"),
        ] {
            sender.ready().await.unwrap();
            let mut request = http::Request::get("/").header("host", "test");
            if let Some(user) = user {
                request = request.header("x-user", user);
            }
            let response = sender
                .send_request(request.body(Empty::<Bytes>::new()).unwrap())
                .await
                .unwrap();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, expected.as_bytes());
        }
    });
}
