//! `extract` and `inject`: W3C headers to and from `CURRENT` and `BAGGAGE`.

use std::time::Duration;

use baton_context::Context;
use baton_http::trace::{BAGGAGE, Baggage, CURRENT, TraceContext, extract, inject};
use http::{HeaderMap, HeaderValue};

const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

/// Runs `f` after `extract(request)` in a fresh context.
fn in_request<R>(request: &HeaderMap, f: impl FnOnce() -> R) -> R {
    Context::new().run(|| {
        extract(request);
        f()
    })
}

#[test]
fn extract_continues_a_valid_traceparent() {
    let request = headers(&[("traceparent", TP), ("tracestate", "congo=t61rcWkgMzE")]);
    let current = in_request(&request, || CURRENT.get().unwrap());
    assert_eq!(
        current,
        TraceContext::parse(TP, Some("congo=t61rcWkgMzE")).unwrap()
    );
    assert_eq!(
        current.parent_id_hex(),
        "b7ad6b7169203331",
        "the caller's span"
    );
    assert!(current.sampled());
}

#[test]
fn extract_combines_tracestate_headers_in_order() {
    let request = headers(&[
        ("traceparent", TP),
        ("tracestate", "rojo=1"),
        ("tracestate", ""),
        ("tracestate", "congo=2 , baz=3"),
    ]);
    let current = in_request(&request, || CURRENT.get().unwrap());
    assert_eq!(current.tracestate(), "rojo=1,congo=2,baz=3");
}

#[test]
fn extract_drops_an_invalid_tracestate_and_keeps_the_trace() {
    let request = headers(&[
        ("traceparent", TP),
        ("tracestate", "rojo=1"),
        ("tracestate", "Congo=2"),
    ]);
    let current = in_request(&request, || CURRENT.get().unwrap());
    assert_eq!(current.trace_id_hex(), "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(current.tracestate(), "");
}

#[test]
fn extract_starts_an_unsampled_root_without_a_valid_traceparent() {
    for request in [
        headers(&[]),
        headers(&[("tracestate", "foo=1")]),
        headers(&[("traceparent", "garbage"), ("tracestate", "foo=1")]),
        headers(&[("traceparent", TP), ("traceparent", TP)]),
    ] {
        let current = in_request(&request, || CURRENT.get().unwrap());
        assert_ne!(current.trace_id_hex(), "0af7651916cd43dd8448eb211c80319c");
        assert!(!current.sampled());
        assert!(current.random_trace_id());
        assert_eq!(current.tracestate(), "", "tracestate dropped on restart");
    }
}

#[test]
fn extract_rejects_non_ascii_values() {
    let mut request = HeaderMap::new();
    request.insert(
        "traceparent",
        HeaderValue::from_bytes(format!("{TP}\u{e9}").as_bytes()).unwrap(),
    );
    let current = in_request(&request, || CURRENT.get().unwrap());
    assert_ne!(current.trace_id_hex(), "0af7651916cd43dd8448eb211c80319c");

    let mut request = headers(&[("traceparent", TP), ("tracestate", "foo=1")]);
    request.append(
        "tracestate",
        HeaderValue::from_bytes("bar=\u{e9}".as_bytes()).unwrap(),
    );
    let current = in_request(&request, || CURRENT.get().unwrap());
    assert_eq!(current.trace_id_hex(), "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(current.tracestate(), "");
}

#[test]
fn extract_combines_baggage_headers() {
    let request = headers(&[
        ("baggage", "userId=alice"),
        ("baggage", "serverNode=DF%2028, isProduction=false"),
    ]);
    let baggage = in_request(&request, || BAGGAGE.get().unwrap());
    assert_eq!(baggage.get("userId"), Some("alice"));
    assert_eq!(baggage.get("serverNode"), Some("DF 28"));
    assert_eq!(baggage.get("isProduction"), Some("false"));
}

#[test]
fn extract_without_or_with_invalid_baggage_leaves_it_empty() {
    let outer = Context::new();
    outer.run(|| {
        let _ = BAGGAGE.set(Baggage::new().with("stale", "yes"));
    });
    for request in [
        headers(&[]),
        headers(&[("baggage", "not a member")]),
        headers(&[("baggage", "a=1"), ("baggage", "b=a b")]),
    ] {
        let baggage = outer.copy().run(|| {
            extract(&request);
            BAGGAGE.get()
        });
        assert!(baggage.unwrap_or_default().is_empty(), "{request:?}");
    }
}

#[test]
fn inject_writes_a_child_of_current() {
    let request = headers(&[("traceparent", TP), ("tracestate", "congo=t61rcWkgMzE")]);
    let out = in_request(&request, || {
        let mut out = HeaderMap::new();
        inject(&mut out);
        out
    });
    let sent = TraceContext::parse(
        out["traceparent"].to_str().unwrap(),
        Some(out["tracestate"].to_str().unwrap()),
    )
    .unwrap();
    assert_eq!(sent.trace_id_hex(), "0af7651916cd43dd8448eb211c80319c");
    assert_ne!(sent.parent_id_hex(), "b7ad6b7169203331");
    assert!(sent.sampled());
    assert_eq!(sent.tracestate(), "congo=t61rcWkgMzE");
    assert!(out.get("baggage").is_none(), "no baggage to send");
}

#[test]
fn inject_does_not_change_current() {
    let request = headers(&[("traceparent", TP)]);
    in_request(&request, || {
        let before = CURRENT.get();
        inject(&mut HeaderMap::new());
        assert_eq!(CURRENT.get(), before);
    });
}

#[test]
fn inject_without_current_starts_a_trace() {
    let (a, b) = Context::new().run(|| {
        assert!(CURRENT.get().is_none());
        let mut a = HeaderMap::new();
        let mut b = HeaderMap::new();
        inject(&mut a);
        inject(&mut b);
        assert!(CURRENT.get().is_none(), "inject sets nothing");
        (a, b)
    });
    let a = TraceContext::parse(a["traceparent"].to_str().unwrap(), None).unwrap();
    let b = TraceContext::parse(b["traceparent"].to_str().unwrap(), None).unwrap();
    assert_ne!(a.trace_id(), b.trace_id());
    assert!(!a.sampled());
}

#[test]
fn inject_replaces_existing_headers() {
    let mut out = headers(&[
        (
            "traceparent",
            "00-11111111111111111111111111111111-1111111111111111-01",
        ),
        (
            "traceparent",
            "00-22222222222222222222222222222222-2222222222222222-01",
        ),
        ("tracestate", "stale=1"),
        ("baggage", "stale=1"),
    ]);
    Context::new().run(|| {
        let _ = CURRENT.set(TraceContext::parse(TP, None).unwrap());
        let _ = BAGGAGE.set(Baggage::new().with("fresh", "1"));
        inject(&mut out);
    });
    assert_eq!(out.get_all("traceparent").iter().count(), 1);
    assert!(
        out["traceparent"]
            .to_str()
            .unwrap()
            .contains("0af7651916cd43dd8448eb211c80319c")
    );
    assert!(
        out.get("tracestate").is_none(),
        "a stale tracestate is removed"
    );
    assert_eq!(
        out.get_all("baggage").iter().collect::<Vec<_>>(),
        ["fresh=1"]
    );
}

#[test]
fn inject_leaves_a_baggage_header_alone_without_baggage() {
    let mut out = headers(&[("baggage", "manual=1")]);
    Context::new().run(|| inject(&mut out));
    assert_eq!(out["baggage"], "manual=1");
    Context::new().run(|| {
        let _ = BAGGAGE.set(Baggage::new());
        inject(&mut out);
    });
    assert_eq!(out["baggage"], "manual=1");
}

#[test]
fn baggage_round_trips_through_inject_and_extract() {
    let sent = Context::new().run(|| {
        let _ = BAGGAGE.set(
            Baggage::parse("userId=Am%C3%A9lie;private")
                .unwrap()
                .with("note", "a, b; c"),
        );
        let mut out = HeaderMap::new();
        inject(&mut out);
        out
    });
    let received = in_request(&sent, || BAGGAGE.get().unwrap());
    assert_eq!(
        received.iter().collect::<Vec<_>>(),
        [("userId", "Amélie", "private"), ("note", "a, b; c", "")]
    );
}

#[test]
fn each_request_keeps_its_own_trace_on_the_runtime() {
    let rt = baton_executor::Runtime::new();
    let results = rt.block_on(async {
        let tasks: Vec<_> = (1..=32u8)
            .map(|i| {
                let trace_id = format!("{i:032x}");
                let request = headers(&[
                    ("traceparent", &format!("00-{trace_id}-00f067aa0ba902b7-01")),
                    ("baggage", &format!("request={i}")),
                ]);
                baton_executor::spawn(async move {
                    extract(&request);
                    for _ in 0..4 {
                        baton_executor::sleep(Duration::from_millis(1)).await;
                        baton_executor::yield_now().await;
                    }
                    let mut out = HeaderMap::new();
                    inject(&mut out);
                    (trace_id, i, out)
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.unwrap());
        }
        results
    });
    for (trace_id, i, out) in results {
        assert!(out["traceparent"].to_str().unwrap().contains(&trace_id));
        assert_eq!(out["baggage"].to_str().unwrap(), format!("request={i}"));
    }
    assert!(CURRENT.get().is_none(), "nothing leaked to the caller");
}
