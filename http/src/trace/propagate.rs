//! [`extract`] and [`inject`]: W3C headers to and from the current context,
//! through [`CURRENT`] and [`BAGGAGE`].

use baton_context::ContextVar;
use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::baggage::Baggage;
use super::context::TraceContext;

/// The trace context of the work running now.
///
/// [`extract`] sets it from an incoming request; [`inject`] writes a child of
/// it into an outgoing one. Its `Display` is the trace-id (32 hex digits),
/// so `baton::tracing`/`baton::log` fields show it as `trace_id=…`.
pub static CURRENT: ContextVar<TraceContext> = ContextVar::new("trace_id");

/// The baggage of the work running now.
///
/// [`extract`] sets it from an incoming request's `baggage` headers;
/// [`inject`] writes it into an outgoing one.
pub static BAGGAGE: ContextVar<Baggage> = ContextVar::new("baggage");

const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
const BAGGAGE_HEADER: HeaderName = HeaderName::from_static("baggage");

/// Reads the W3C headers of an incoming request into the current context:
/// sets [`CURRENT`] and [`BAGGAGE`].
///
/// * A single valid `traceparent` is continued: `CURRENT` gets its trace-id,
///   parent-id (the caller's span) and flags, with the `tracestate` headers
///   combined in order with `,` (an invalid `tracestate` is dropped, the
///   `traceparent` kept).
/// * A missing or invalid `traceparent` — and, as the specification says,
///   more than one — starts a new trace: `CURRENT` is
///   [`TraceContext::new_root(false)`](TraceContext::new_root) (not sampled,
///   as a trace this component starts defaults to in the specification and
///   in OpenTelemetry), and any `tracestate` is dropped.
/// * The `baggage` headers, combined with `,`, become `BAGGAGE`; without
///   them, or if they are malformed, `BAGGAGE` is set empty, so nothing
///   from an enclosing context passes for the request's baggage.
///
/// Header names are case-insensitive (`http::HeaderMap` stores them in
/// lowercase). The values stay set until the context ends — each request
/// runs in its own copy of the context, so nothing reaches another request.
///
/// ```
/// use baton_context::Context;
/// use baton_http::trace::{extract, BAGGAGE, CURRENT};
/// use http::HeaderMap;
///
/// let mut headers = HeaderMap::new();
/// headers.insert("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".parse()?);
/// headers.insert("baggage", "userId=alice".parse()?);
///
/// Context::new().run(|| {
///     extract(&headers);
///     let trace = CURRENT.get().unwrap();
///     assert_eq!(trace.trace_id_hex(), "0af7651916cd43dd8448eb211c80319c");
///     assert!(trace.sampled());
///     assert_eq!(BAGGAGE.get().unwrap().get("userId"), Some("alice"));
/// });
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn extract(headers: &HeaderMap) {
    let trace = incoming_trace(headers).unwrap_or_else(|| TraceContext::new_root(false));
    drop(CURRENT.set(trace));
    let baggage = combined(headers, &BAGGAGE_HEADER)
        .and_then(|value| Baggage::parse(&value).ok())
        .unwrap_or_default();
    drop(BAGGAGE.set(baggage));
}

/// The incoming trace, if there is exactly one valid `traceparent`.
fn incoming_trace(headers: &HeaderMap) -> Option<TraceContext> {
    let mut traceparents = headers.get_all(TRACEPARENT).iter();
    let traceparent = traceparents.next()?.to_str().ok()?;
    if traceparents.next().is_some() {
        return None;
    }
    let tracestate = combined(headers, &TRACESTATE);
    TraceContext::parse(traceparent, tracestate.as_deref()).ok()
}

/// All values of `name` joined with `,` (RFC 9110's combination of field
/// lines), or `None` if there is none or one is not visible ASCII.
fn combined(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut values = headers.get_all(name).iter();
    let mut out = values.next()?.to_str().ok()?.to_owned();
    for value in values {
        out.push(',');
        out.push_str(value.to_str().ok()?);
    }
    Some(out)
}

/// Writes the W3C headers for an outgoing call made from the current
/// context.
///
/// * `traceparent`: a [`child`](TraceContext::child) of [`CURRENT`] — the
///   same trace-id and flags, a new parent-id for this call. If `CURRENT`
///   is unset, a new trace ([`TraceContext::new_root(false)`](TraceContext::new_root));
///   set `CURRENT` to group several calls in one trace.
/// * `tracestate`: `CURRENT`'s, if not empty; otherwise any `tracestate`
///   already in `headers` is removed, since it would belong to another
///   trace.
/// * `baggage`: [`BAGGAGE`], if set and not empty; otherwise `headers`'
///   `baggage` is left as it is.
///
/// Headers of the same names already in `headers` are replaced.
///
/// ```
/// use baton_context::Context;
/// use baton_http::trace::{extract, inject, Baggage, BAGGAGE, CURRENT, TraceContext};
/// use http::HeaderMap;
///
/// Context::new().run(|| {
///     let incoming = TraceContext::parse(
///         "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
///         Some("congo=t61rcWkgMzE"),
///     ).unwrap();
///     let _ = CURRENT.set(incoming);
///     let _ = BAGGAGE.set(Baggage::new().with("userId", "alice"));
///
///     let mut outgoing = HeaderMap::new();
///     inject(&mut outgoing);
///     let traceparent = outgoing["traceparent"].to_str().unwrap();
///     assert!(traceparent.starts_with("00-0af7651916cd43dd8448eb211c80319c-"));
///     assert!(!traceparent.contains("b7ad6b7169203331")); // a new parent-id
///     assert!(traceparent.ends_with("-01"));
///     assert_eq!(outgoing["tracestate"], "congo=t61rcWkgMzE");
///     assert_eq!(outgoing["baggage"], "userId=alice");
/// });
/// ```
pub fn inject(headers: &mut HeaderMap) {
    let trace = match CURRENT.get() {
        Some(current) => current.child(),
        None => TraceContext::new_root(false),
    };
    if let Ok(value) = HeaderValue::try_from(trace.traceparent()) {
        headers.insert(TRACEPARENT, value);
    }
    match HeaderValue::try_from(trace.tracestate()) {
        Ok(value) if !value.is_empty() => {
            headers.insert(TRACESTATE, value);
        }
        _ => {
            headers.remove(TRACESTATE);
        }
    }
    if let Some(baggage) = BAGGAGE.get().filter(|b| !b.is_empty()) {
        if let Ok(value) = HeaderValue::try_from(baggage.to_string()) {
            headers.insert(BAGGAGE_HEADER, value);
        }
    }
}
