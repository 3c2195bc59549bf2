//! HTTP services on baton (the facade's `baton::http` and `baton::trace`,
//! feature `http`).
//!
//! * [`serve`]: hyper 1 on baton's own sockets — HTTP/1.1 with keep-alive
//!   and HTTP/2 with prior knowledge — one task per connection and **one
//!   context per request**, graceful shutdown, and the limits a public
//!   server needs (`serve.rs`, `request.rs`).
//! * [`ContextLayer`]: the same per-request context as a tower layer, for
//!   servers baton does not run (`layer.rs`).
//! * [`Executor`] and [`Timer`]: hyper's runtime traits on baton (`rt.rs`).
//! * [`trace`]: W3C Trace Context and W3C Baggage — parsing, the processing
//!   model, serialisation — and `extract`/`inject` between HTTP headers and
//!   the current context.

#![forbid(unsafe_code)]

mod layer;
mod request;
mod rt;
mod serve;
pub mod trace;

pub use layer::{ContextLayer, ContextService};
pub use rt::{Executor, Timer};
pub use serve::{BoxError, Serve, serve};
