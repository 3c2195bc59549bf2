//! HTTP services on baton (the facade's `baton::http` and `baton::trace`,
//! feature `http`).
//!
//! * [`trace`]: W3C Trace Context and W3C Baggage — parsing, the processing
//!   model, serialisation — and `extract`/`inject` between HTTP headers and
//!   the current context.

#![forbid(unsafe_code)]

pub mod trace;
