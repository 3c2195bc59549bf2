//! One request, one context: the per-call wrapper shared by [`serve`] and
//! [`ContextLayer`].
//!
//! hyper polls every request of a keep-alive connection inside that
//! connection's task, so without this they would share one context: a
//! handler that sets a value and never resets it would leak it into the
//! next request on the connection. Each call therefore gets a **fresh copy
//! of the context current when the request arrives** (the connection
//! task's), the request's W3C trace headers are extracted into that copy
//! ([`trace::extract`](crate::trace::extract)), and the service is called
//! and its future polled and dropped inside it.
//!
//! [`serve`]: crate::serve
//! [`ContextLayer`]: crate::ContextLayer

use std::future::Future;

use baton_context::{Attached, copy_context};
use http::Request;

use crate::trace;

/// Calls `call(request)` in a fresh copy of the current context with the
/// request's trace headers extracted into it; the returned future runs
/// (and is dropped) inside that copy.
pub(crate) fn in_request_context<B, F>(
    request: Request<B>,
    call: impl FnOnce(Request<B>) -> F,
) -> Attached<F>
where
    F: Future,
{
    let context = copy_context();
    let future = context.run(|| {
        trace::extract(request.headers());
        call(request)
    });
    // The copy's only handle now belongs to the future: its polls enter
    // with plain loads and stores (no compare-and-swap).
    context.attach(future)
}
