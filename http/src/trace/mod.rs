//! W3C Trace Context and W3C Baggage: the context crosses machines by the
//! existing standards.
//!
//! * [`TraceContext`]: the `traceparent` and `tracestate` headers, parsed by
//!   the specification's processing model (Trace Context Level 1, with
//!   Level 2's `random-trace-id` flag kept).
//! * [`Baggage`]: the `baggage` header, percent-encoding included.

mod baggage;
mod context;
mod error;
mod hex;
mod id;
mod percent;
mod traceparent;
mod tracestate;

pub use baggage::Baggage;
pub use context::TraceContext;
pub use error::TraceError;
