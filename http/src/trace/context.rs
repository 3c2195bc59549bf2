//! [`TraceContext`]: one position in a distributed trace (`traceparent` and
//! `tracestate`).

use std::fmt;
use std::sync::Arc;

use super::error::TraceError;
use super::traceparent::{self, RANDOM, SAMPLED};
use super::{hex, id, tracestate};

/// A position in a distributed trace: the W3C `traceparent` (trace-id,
/// parent-id, trace-flags) with its companion `tracestate`.
///
/// Parse an incoming one with [`parse`](TraceContext::parse), start a trace
/// with [`new_root`](TraceContext::new_root), make the context of an outgoing
/// call with [`child`](TraceContext::child), and write it back with
/// [`traceparent`](TraceContext::traceparent) and
/// [`tracestate`](TraceContext::tracestate). [`extract`](super::extract) and
/// [`inject`](super::inject) do all of this between HTTP headers and
/// [`CURRENT`](super::CURRENT).
///
/// Only the flags this implementation knows are kept — `sampled` (`0x01`) and
/// Level 2's `random-trace-id` (`0x02`) — the others are set to zero, as the
/// specification requires. Cloning is cheap: the `tracestate` is shared.
///
/// `Display` writes the trace-id as 32 lowercase hex digits, the form logs
/// use to tie lines to a trace; [`traceparent`](TraceContext::traceparent)
/// is the whole header value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TraceContext {
    trace_id: [u8; 16],
    parent_id: [u8; 8],
    flags: u8,
    /// The canonical, validated list; `None` when empty.
    tracestate: Option<Arc<str>>,
}

impl TraceContext {
    /// Parses a `traceparent` header value and its `tracestate`, following
    /// the W3C Trace Context processing model.
    ///
    /// Optional whitespace around either value is ignored. A version `00`
    /// `traceparent` must be exactly `00-<32 hex>-<16 hex>-<2 hex>` in
    /// lowercase hex; a higher version (except the forbidden `ff`) is read as
    /// far as version `00` goes, provided it is at least 55 characters long
    /// and the flags are followed by the end or by `-`. All-zero trace-ids
    /// and parent-ids are invalid.
    ///
    /// `tracestate` (several headers combined with `,`) never makes the
    /// result an error: if it is invalid — a malformed list-member, or more
    /// than 32 of them — it is dropped whole and the `traceparent` is kept.
    /// Empty list-members are skipped, and of repeated keys only the first
    /// (left-most) is kept.
    ///
    /// ```
    /// use baton_http::trace::{TraceContext, TraceError};
    ///
    /// let tc = TraceContext::parse(
    ///     "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    ///     Some("congo=t61rcWkgMzE, rojo=00f067aa0ba902b7"),
    /// )?;
    /// assert_eq!(tc.trace_id_hex(), "0af7651916cd43dd8448eb211c80319c");
    /// assert_eq!(tc.parent_id(), [0xb7, 0xad, 0x6b, 0x71, 0x69, 0x20, 0x33, 0x31]);
    /// assert!(tc.sampled());
    /// assert_eq!(tc.tracestate(), "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    ///
    /// // An invalid tracestate is dropped; the traceparent stands.
    /// let tc = TraceContext::parse(
    ///     "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
    ///     Some("Congo=1"),
    /// )?;
    /// assert_eq!(tc.tracestate(), "");
    ///
    /// // Uppercase hex is not lowercase hex.
    /// assert_eq!(
    ///     TraceContext::parse("00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", None),
    ///     Err(TraceError::TraceId),
    /// );
    /// # Ok::<(), TraceError>(())
    /// ```
    pub fn parse(traceparent: &str, tracestate: Option<&str>) -> Result<TraceContext, TraceError> {
        let tp = traceparent::parse(traceparent)?;
        let tracestate = tracestate
            .and_then(tracestate::canonical)
            .filter(|list| !list.is_empty())
            .map(Arc::from);
        Ok(TraceContext {
            trace_id: tp.trace_id,
            parent_id: tp.parent_id,
            flags: tp.flags,
            tracestate,
        })
    }

    /// Starts a new trace: a random trace-id and parent-id (never all
    /// zeroes), no `tracestate`, and the given `sampled` flag.
    ///
    /// The `random-trace-id` flag (Trace Context Level 2) is set, since the
    /// whole trace-id is pseudo-random.
    ///
    /// ```
    /// use baton_http::trace::TraceContext;
    ///
    /// let root = TraceContext::new_root(true);
    /// assert!(root.sampled());
    /// assert_ne!(root.trace_id(), [0; 16]);
    /// assert_eq!(root.tracestate(), "");
    /// ```
    pub fn new_root(sampled: bool) -> TraceContext {
        TraceContext {
            trace_id: id::trace_id(),
            parent_id: id::parent_id(),
            flags: RANDOM | if sampled { SAMPLED } else { 0 },
            tracestate: None,
        }
    }

    /// The context of an outgoing call from this one: the same trace-id,
    /// flags and `tracestate`, and a new random parent-id.
    ///
    /// ```
    /// use baton_http::trace::TraceContext;
    ///
    /// let parent = TraceContext::new_root(false);
    /// let child = parent.child();
    /// assert_eq!(child.trace_id(), parent.trace_id());
    /// assert_ne!(child.parent_id(), parent.parent_id());
    /// ```
    pub fn child(&self) -> TraceContext {
        let mut parent_id = id::parent_id();
        while parent_id == self.parent_id {
            parent_id = id::parent_id();
        }
        TraceContext {
            parent_id,
            ..self.clone()
        }
    }

    /// The trace-id: the identity of the whole trace.
    pub fn trace_id(&self) -> [u8; 16] {
        self.trace_id
    }

    /// The parent-id: the id of the caller's request (its span).
    pub fn parent_id(&self) -> [u8; 8] {
        self.parent_id
    }

    /// The trace-flags this implementation knows (`0x01` sampled, `0x02`
    /// random-trace-id); the other bits are always zero.
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Whether the caller may have recorded trace data (the `sampled` flag).
    pub fn sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }

    /// Whether at least the right-most 7 bytes of the trace-id are random
    /// (Trace Context Level 2's `random-trace-id` flag).
    pub fn random_trace_id(&self) -> bool {
        self.flags & RANDOM != 0
    }

    /// The trace-id as 32 lowercase hex digits (for logs).
    pub fn trace_id_hex(&self) -> String {
        hex::encode(&self.trace_id)
    }

    /// The parent-id as 16 lowercase hex digits.
    pub fn parent_id_hex(&self) -> String {
        hex::encode(&self.parent_id)
    }

    /// The `traceparent` header value, always in version `00` format (the
    /// highest version this implementation knows).
    ///
    /// ```
    /// use baton_http::trace::TraceContext;
    ///
    /// let tc = TraceContext::parse(
    ///     "cc-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future",
    ///     None,
    /// ).unwrap();
    /// assert_eq!(tc.traceparent(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    /// ```
    pub fn traceparent(&self) -> String {
        traceparent::format(&self.trace_id, &self.parent_id, self.flags)
    }

    /// The `tracestate` header value: the validated list-members joined by
    /// `,` without optional whitespace; the empty string when there is none.
    pub fn tracestate(&self) -> &str {
        self.tracestate.as_deref().unwrap_or("")
    }
}

impl fmt::Debug for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TraceContext")
            .field("trace_id", &format_args!("{}", self.trace_id_hex()))
            .field("parent_id", &format_args!("{}", self.parent_id_hex()))
            .field("flags", &format_args!("{:02x}", self.flags))
            .field("tracestate", &self.tracestate())
            .finish()
    }
}

/// The trace-id as 32 lowercase hex digits.
impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.trace_id_hex())
    }
}
