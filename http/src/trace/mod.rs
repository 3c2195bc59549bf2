//! W3C Trace Context and W3C Baggage: the context crosses machines by the
//! existing standards.
//!
//! * [`TraceContext`]: the `traceparent` and `tracestate` headers, parsed by
//!   the specification's processing model (Trace Context Level 1, with
//!   Level 2's `random-trace-id` flag kept).
//! * [`Baggage`]: the `baggage` header, percent-encoding included.
//! * [`CURRENT`] and [`BAGGAGE`]: the context variables that hold them for
//!   the work running now.
//! * [`extract`] reads an incoming request's headers into the current
//!   context; [`inject`] writes them for an outgoing call.
//!
//! ```
//! use baton_context::Context;
//! use baton_http::trace::{extract, inject, CURRENT};
//! use http::HeaderMap;
//!
//! let mut incoming = HeaderMap::new();
//! incoming.insert("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".parse()?);
//!
//! // Each request runs in its own context (the server gives it a copy).
//! Context::new().run(|| {
//!     extract(&incoming);
//!     assert_eq!(CURRENT.get().unwrap().to_string(), "0af7651916cd43dd8448eb211c80319c");
//!
//!     let mut outgoing = HeaderMap::new();
//!     inject(&mut outgoing);
//!     assert!(outgoing["traceparent"].to_str()?.starts_with("00-0af7651916cd43dd8448eb211c80319c-"));
//!     Ok::<(), Box<dyn std::error::Error>>(())
//! })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Where the specifications leave a choice, this module does what the W3C
//! Trace Context validation suite expects: a `tracestate` with more than 32
//! list-members is dropped whole; of repeated `tracestate` keys the first
//! is kept; `tracestate` keys follow the current grammar (a lowercase
//! letter or digit, then up to 255 of `a-z 0-9 _ - * / @`). Baggage larger
//! than the specification's limits (64 list-members, 8192 bytes) is kept
//! whole, since those limits are minimums to propagate, not caps.

mod baggage;
mod context;
mod error;
mod hex;
mod id;
mod percent;
mod propagate;
mod traceparent;
mod tracestate;

pub use baggage::Baggage;
pub use context::TraceContext;
pub use error::TraceError;
pub use propagate::{BAGGAGE, CURRENT, extract, inject};
