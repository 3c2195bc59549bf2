//! tokio interop (feature `tokio`): `baton::tokio::spawn` and
//! `spawn_blocking` carry the context where a plain `tokio::spawn` does
//! not; a sealed tokio runtime refuses a `set` in a bare task with a
//! message that names the fix; `compat` runs tokio-only futures (a hyper
//! client over tokio's `TcpStream`) inside baton tasks, in their context;
//! baton's sockets work through tokio's I/O traits.
#![cfg(feature = "tokio")]

use std::any::Any;
use std::io::{Read, Write};
use std::time::Duration;

use baton::{Builder, ContextVar, Runtime, copy_context, is_thread_sealed, spawn};

static REQUEST_ID: ContextVar<String> = ContextVar::new("request_id");
static STEP: ContextVar<u32> = ContextVar::new("step");

fn baton_rt() -> Runtime {
    Builder::new().worker_threads(2).build().unwrap()
}

fn tokio_rt(sealed: bool) -> tokio::runtime::Runtime {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.worker_threads(2).enable_all();
    if sealed {
        baton::tokio::seal(&mut builder);
    }
    builder.build().unwrap()
}

fn text(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        "<not a string>".to_owned()
    }
}

// ---------------------------------------------------------------------------
// spawn and spawn_blocking

#[test]
fn the_wrapper_carries_the_context_and_plain_tokio_spawn_does_not() {
    for sealed in [false, true] {
        let rt = tokio_rt(sealed);
        let (wrapped, bare, after) = rt.block_on(copy_context().attach(async {
            let _token = REQUEST_ID.set("req-1".into());
            let wrapped = baton::tokio::spawn(async {
                let seen = REQUEST_ID.get();
                // Still there after the task moves between polls.
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(1)).await;
                assert_eq!(REQUEST_ID.get(), seen);
                // The child's set stays in the child's copy.
                let _ = REQUEST_ID.set("changed by the child".into());
                // ... and its children inherit it.
                let grandchild = baton::tokio::spawn(async { REQUEST_ID.get() });
                (seen, grandchild.await.unwrap())
            });
            let bare = tokio::spawn(async { REQUEST_ID.get() });
            (
                wrapped.await.unwrap(),
                bare.await.unwrap(),
                REQUEST_ID.get(),
            )
        }));
        assert_eq!(
            wrapped,
            (
                Some("req-1".to_owned()),
                Some("changed by the child".to_owned())
            )
        );
        assert_eq!(bare, None, "a plain tokio::spawn carries nothing");
        assert_eq!(after, Some("req-1".to_owned()));
    }
}

#[test]
fn the_copy_is_taken_at_the_spawn() {
    let rt = tokio_rt(true);
    let seen = rt.block_on(copy_context().attach(async {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let token = STEP.set(1);
        let task = baton::tokio::spawn(async move {
            rx.await.unwrap();
            STEP.get()
        });
        STEP.reset(token).unwrap();
        let _ = STEP.set(2);
        tx.send(()).unwrap();
        task.await.unwrap()
    }));
    assert_eq!(seen, Some(1));
}

#[test]
fn spawn_blocking_carries_a_copy() {
    for sealed in [false, true] {
        let rt = tokio_rt(sealed);
        let (seen, after) = rt.block_on(copy_context().attach(async {
            let _token = REQUEST_ID.set("req-2".into());
            let seen = baton::tokio::spawn_blocking(|| {
                let seen = REQUEST_ID.get();
                let _ = REQUEST_ID.set("changed in the copy".into());
                (seen, REQUEST_ID.get(), is_thread_sealed())
            })
            .await
            .unwrap();
            (seen, REQUEST_ID.get())
        }));
        assert_eq!(
            seen,
            (
                Some("req-2".to_owned()),
                Some("changed in the copy".to_owned()),
                sealed
            )
        );
        assert_eq!(after, Some("req-2".to_owned()));
        // A bare spawn_blocking sees nothing.
        let bare = rt.block_on(copy_context().attach(async {
            let _token = REQUEST_ID.set("req-3".into());
            tokio::task::spawn_blocking(|| REQUEST_ID.get())
                .await
                .unwrap()
        }));
        assert_eq!(bare, None);
    }
}

#[test]
fn a_wrapped_task_is_dropped_inside_its_context_when_aborted() {
    /// Sends what `REQUEST_ID` is where it is dropped.
    struct Report(Option<std::sync::mpsc::Sender<Option<String>>>);
    impl Drop for Report {
        fn drop(&mut self) {
            let _ = self.0.take().unwrap().send(REQUEST_ID.get());
        }
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let rt = tokio_rt(true);
    rt.block_on(copy_context().attach(async {
        let _token = REQUEST_ID.set("req-abort".into());
        let report = Report(Some(tx));
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let task = baton::tokio::spawn(async move {
            let _report = report;
            started_tx.send(()).unwrap();
            std::future::pending::<()>().await;
        });
        started.await.unwrap();
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
    }));
    assert_eq!(rx.recv().unwrap().as_deref(), Some("req-abort"));
}

#[test]
fn a_panic_in_a_wrapped_task_reaches_the_join_handle() {
    let rt = tokio_rt(true);
    let err = rt.block_on(async {
        baton::tokio::spawn(async { panic!("boom in the task") })
            .await
            .unwrap_err()
    });
    assert!(err.is_panic());
    assert_eq!(text(&*err.into_panic()), "boom in the task");
}

// ---------------------------------------------------------------------------
// seal

#[test]
fn a_set_in_a_bare_task_on_a_sealed_runtime_panics_with_the_fix() {
    let rt = tokio_rt(true);
    let err = rt
        .block_on(rt.spawn(async {
            let _ = REQUEST_ID.set("leaked".into());
        }))
        .unwrap_err();
    assert!(err.is_panic());
    let message = text(&*err.into_panic());
    for needle in [
        "baton: this thread is sealed",
        "leak into everything that later runs on it",
        "baton::tokio::spawn",
        "Context::attach",
        "request_id",
    ] {
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    }
    // Nothing landed in any worker's own context.
    let seen = rt.block_on(async {
        let mut seen = Vec::new();
        for _ in 0..16 {
            seen.push(tokio::spawn(async { REQUEST_ID.get() }).await.unwrap());
        }
        seen
    });
    assert!(seen.iter().all(Option::is_none), "{seen:?}");
}

#[test]
fn on_an_unsealed_runtime_a_bare_set_leaks_into_later_tasks() {
    // The bug `seal` reports: a one-worker runtime, so that the later task
    // lands on the same thread.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let later = rt.block_on(async {
        tokio::spawn(async { drop(STEP.set(99)) }).await.unwrap();
        tokio::spawn(async { STEP.get() }).await.unwrap()
    });
    assert_eq!(later, Some(99), "the leak that sealing turns into a panic");
}

#[test]
fn sealed_runtime_threads_are_sealed_and_wrapped_tasks_set_freely() {
    let rt = tokio_rt(true);
    let (worker, blocking, set) = rt.block_on(async {
        let worker = tokio::spawn(async { is_thread_sealed() }).await.unwrap();
        let blocking = tokio::task::spawn_blocking(is_thread_sealed).await.unwrap();
        let set = baton::tokio::spawn(async {
            let _ = STEP.set(5);
            tokio::task::yield_now().await;
            STEP.get()
        })
        .await
        .unwrap();
        (worker, blocking, set)
    });
    assert!(worker && blocking);
    assert_eq!(set, Some(5));
}

#[test]
fn a_hook_of_your_own_calls_seal_thread() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .on_thread_start(|| {
            // ... the user's own bookkeeping ...
            baton::seal_thread();
        })
        .build()
        .unwrap();
    let err = rt
        .block_on(rt.spawn(async { drop(STEP.set(1)) }))
        .unwrap_err();
    assert!(text(&*err.into_panic()).contains("this thread is sealed"));
}

#[test]
fn a_sealed_rayon_pool_refuses_bare_sets_too() {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .start_handler(|_| baton::seal_thread())
        .build()
        .unwrap();
    let refused = pool.install(|| std::panic::catch_unwind(|| drop(STEP.set(1))).is_err());
    assert!(refused);
    let ctx = copy_context();
    pool.install(|| ctx.run(|| drop(STEP.set(2))));
    assert_eq!(ctx.get(&STEP), Some(2));
}

// ---------------------------------------------------------------------------
// compat

#[test]
fn without_compat_tokio_code_panics_in_a_baton_task() {
    let rt = baton_rt();
    let err = rt
        .block_on(rt.spawn(async {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }))
        .unwrap_err();
    let message = text(&*err.into_panic());
    assert!(message.contains("no reactor running"), "{message}");
}

#[test]
fn compat_runs_a_future_that_needs_tokios_reactor_and_timers() {
    // A plain std server: the client side is all tokio.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().unwrap();
        let mut ping = [0; 4];
        socket.read_exact(&mut ping).unwrap();
        socket.write_all(b"pong").unwrap();
    });
    let rt = baton_rt();
    let (reply, before, after) = rt.block_on(async move {
        let _token = REQUEST_ID.set("req-io".into());
        spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let before = REQUEST_ID.get();
            let reply = baton::tokio::compat(async move {
                let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                assert_eq!(REQUEST_ID.get().as_deref(), Some("req-io"));
                stream.write_all(b"ping").await.unwrap();
                tokio::time::sleep(Duration::from_millis(1)).await;
                let mut reply = [0; 4];
                stream.read_exact(&mut reply).await.unwrap();
                assert_eq!(REQUEST_ID.get().as_deref(), Some("req-io"));
                reply
            })
            .await;
            (reply, before, REQUEST_ID.get())
        })
        .await
        .unwrap()
    });
    server.join().unwrap();
    assert_eq!(&reply, b"pong");
    assert_eq!(before.as_deref(), Some("req-io"));
    assert_eq!(after.as_deref(), Some("req-io"));
}

#[test]
fn compat_sets_land_in_the_baton_task() {
    let rt = baton_rt();
    let seen = rt.block_on(rt.spawn(async {
        baton::tokio::compat(async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            let _ = STEP.set(3);
        })
        .await;
        baton::sleep(Duration::from_millis(1)).await;
        STEP.get()
    }));
    assert_eq!(seen.unwrap(), Some(3));
}

#[test]
fn a_compat_future_dropped_midway_is_dropped_inside_the_runtime() {
    struct NeedsRuntime;
    impl Drop for NeedsRuntime {
        fn drop(&mut self) {
            // What a pooled connection's drop does: hand itself back on a task.
            tokio::spawn(async {});
        }
    }
    let rt = baton_rt();
    let timed_out = rt.block_on(async {
        baton::timeout(
            Duration::from_millis(10),
            baton::tokio::compat(async {
                let _guard = NeedsRuntime;
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }),
        )
        .await
        .is_err()
    });
    assert!(timed_out);
}

/// A multi-thread tokio runtime whose threads are named `name`.
fn named_tokio_rt(name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(name)
        .enable_all()
        .build()
        .unwrap()
}

/// The name of the threads of the runtime that `tokio::spawn` uses here.
async fn spawned_on() -> String {
    tokio::spawn(async { std::thread::current().name().unwrap().to_owned() })
        .await
        .unwrap()
}

#[test]
fn compat_with_uses_the_given_runtime() {
    let given = named_tokio_rt("given-rt");
    let handle = given.handle().clone();
    let used = baton_rt().block_on(baton::tokio::compat_with(handle, async {
        tokio::time::sleep(Duration::from_millis(1)).await;
        spawned_on().await
    }));
    assert_eq!(used, "given-rt");
}

#[test]
fn compat_uses_the_current_runtime_or_the_background_one() {
    let outer = named_tokio_rt("outer-rt");
    // Called inside a tokio runtime: `compat` picks it up.
    let used = outer.block_on(async { baton::tokio::compat(spawned_on()).await });
    assert_eq!(used, "outer-rt");
    // Called in a baton task: baton's background runtime, sealed.
    let (used, sealed) = baton_rt().block_on(baton::tokio::compat(async {
        let sealed = tokio::spawn(async { is_thread_sealed() }).await.unwrap();
        (spawned_on().await, sealed)
    }));
    assert_eq!(used, "baton-tokio");
    assert!(sealed);
}

/// The server side of the hyper tests: answers `hello <x-request-id>`.
async fn hello(
    request: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<http_body_util::Full<bytes::Bytes>>, std::convert::Infallible> {
    let id = request.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    Ok(http::Response::new(http_body_util::Full::new(
        bytes::Bytes::from(format!("hello {id}")),
    )))
}

/// Four baton tasks, each with its own `REQUEST_ID`, each sending three
/// requests to `addr` through a tokio-only hyper client (tokio's
/// `TcpStream` under hyper, through hyper-util's `TokioIo`) run by
/// `compat`; checks the baton context after every await.
async fn tokio_only_clients(addr: std::net::SocketAddr) {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::TokioIo;

    let mut clients = Vec::new();
    for i in 0..4 {
        clients.push(spawn(async move {
            let _token = REQUEST_ID.set(format!("req-{i}"));
            let (mut sender, connection) = baton::tokio::compat(async move {
                let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .unwrap()
            })
            .await;
            assert_eq!(REQUEST_ID.get(), Some(format!("req-{i}")));
            // The connection's driver: a baton task too, polled through compat.
            let connection = spawn(baton::tokio::compat(connection));
            let mut replies = Vec::new();
            for _ in 0..3 {
                let id = REQUEST_ID.get().unwrap();
                let body = baton::tokio::compat(async {
                    sender.ready().await.unwrap();
                    let request = http::Request::get("/")
                        .header("host", "test")
                        .header("x-request-id", &id)
                        .body(Empty::<Bytes>::new())
                        .unwrap();
                    let response = sender.send_request(request).await.unwrap();
                    assert_eq!(REQUEST_ID.get().as_deref(), Some(id.as_str()));
                    response.into_body().collect().await.unwrap().to_bytes()
                })
                .await;
                // The baton context is intact after each await.
                assert_eq!(REQUEST_ID.get(), Some(format!("req-{i}")));
                replies.push(String::from_utf8(body.to_vec()).unwrap());
            }
            drop(sender);
            connection.await.unwrap().unwrap();
            replies
        }));
    }
    for (i, client) in clients.into_iter().enumerate() {
        assert_eq!(client.await.unwrap(), vec![format!("hello req-{i}"); 3]);
    }
}

#[test]
fn compat_runs_a_tokio_only_hyper_client_against_a_tokio_server() {
    use hyper_util::rt::TokioIo;

    // A tiny hyper server on a tokio runtime of its own.
    let server_rt = tokio_rt(false);
    let listener = server_rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    server_rt.spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), hyper::service::service_fn(hello)),
            );
        }
    });
    baton_rt().block_on(tokio_only_clients(addr));
}

#[cfg(feature = "http")]
#[test]
fn compat_runs_a_tokio_only_hyper_client_against_a_baton_server() {
    let rt = baton_rt();
    rt.block_on(async {
        let listener = baton::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server =
            spawn(async move { baton::http::serve(listener, tower::service_fn(hello)).await });
        tokio_only_clients(addr).await;
        server.abort();
    });
}

// ---------------------------------------------------------------------------
// baton's sockets through tokio's I/O traits

#[test]
fn baton_tcp_streams_work_through_tokios_io_traits() {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    let rt = baton_rt();
    let (echoed, lines) = rt.block_on(async {
        let listener = baton::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            // Until the client shuts its side down.
            socket.read_to_end(&mut request).await.unwrap();
            socket.write_all(&request).await.unwrap();
            socket.write_all(b"line one\nline two\n").await.unwrap();
            AsyncWriteExt::shutdown(&mut socket).await.unwrap();
        });
        let mut client = baton::net::TcpStream::connect(addr).await.unwrap();
        // A large write and read, through `&TcpStream` on the way out.
        let payload: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        (&client).write_all(&payload).await.unwrap();
        AsyncWriteExt::shutdown(&mut client).await.unwrap();
        let mut echoed = vec![0; payload.len()];
        client.read_exact(&mut echoed).await.unwrap();
        assert_eq!(echoed, payload);
        let mut lines = Vec::new();
        let mut reader = BufReader::new(client).lines();
        while let Some(line) = reader.next_line().await.unwrap() {
            lines.push(line);
        }
        server.await.unwrap();
        (echoed.len(), lines)
    });
    assert_eq!(echoed, 200_000);
    assert_eq!(lines, ["line one", "line two"]);
}

#[cfg(unix)]
#[test]
fn baton_unix_streams_work_through_tokios_io_traits() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = std::env::temp_dir().join(format!("baton-tokio-io-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("sock");
    let rt = baton_rt();
    let reply = rt.block_on(async {
        let listener = baton::net::UnixListener::bind(&path).unwrap();
        let server = spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut ping = [0; 4];
            socket.read_exact(&mut ping).await.unwrap();
            socket.write_all(b"pong").await.unwrap();
        });
        let mut client = baton::net::UnixStream::connect(&path).await.unwrap();
        client.write_all(b"ping").await.unwrap();
        let mut reply = [0; 4];
        client.read_exact(&mut reply).await.unwrap();
        server.await.unwrap();
        reply
    });
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(&reply, b"pong");
}

#[test]
fn baton_sockets_carry_tokio_codecs_in_the_tasks_context() {
    // A tokio-traits consumer (copy_bidirectional-like) inside a task that
    // set a value: still the task's after every I/O await.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let rt = baton_rt();
    rt.block_on(async {
        let listener = baton::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = spawn(async move {
            let _token = STEP.set(7);
            let (socket, _) = listener.accept().await.unwrap();
            let (mut reader, mut writer) = tokio::io::split(socket);
            let copied = tokio::io::copy(&mut reader, &mut writer).await.unwrap();
            assert_eq!(STEP.get(), Some(7));
            copied
        });
        let mut client = baton::net::TcpStream::connect(addr).await.unwrap();
        client.write_all(b"hello").await.unwrap();
        let mut back = [0; 5];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"hello");
        AsyncWriteExt::shutdown(&mut client).await.unwrap();
        assert_eq!(server.await.unwrap(), 5);
        assert_eq!(STEP.get(), None);
    });
}
