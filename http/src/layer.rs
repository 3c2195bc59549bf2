//! [`ContextLayer`]: one context per request for servers run by someone
//! else (tokio + `axum::serve`, hyper-util).

use std::task::{Context, Poll};

use baton_context::Attached;
use http::Request;

use crate::request::in_request_context;

/// A tower [`Layer`](tower_layer::Layer) that runs each call of the
/// service it wraps in a fresh copy of the context current at call time,
/// with the request's W3C trace headers extracted into it — what
/// [`serve`](crate::serve) does for every request, for a server that
/// baton does not run (axum on tokio, hyper-util's server).
///
/// ```
/// use baton_http::ContextLayer;
/// use tower_layer::Layer;
///
/// # #[derive(Clone)] struct MyService;
/// # impl tower_service::Service<http::Request<()>> for MyService {
/// #     type Response = (); type Error = std::convert::Infallible;
/// #     type Future = std::future::Ready<Result<(), std::convert::Infallible>>;
/// #     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> { std::task::Poll::Ready(Ok(())) }
/// #     fn call(&mut self, _: http::Request<()>) -> Self::Future { std::future::ready(Ok(())) }
/// # }
/// // axum: Router::new().route(..).layer(ContextLayer::new())
/// let service = ContextLayer::new().layer(MyService);
/// # let _ = service;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ContextLayer {
    _private: (),
}

impl ContextLayer {
    /// The layer.
    pub fn new() -> ContextLayer {
        ContextLayer { _private: () }
    }
}

impl<S> tower_layer::Layer<S> for ContextLayer {
    type Service = ContextService<S>;

    fn layer(&self, inner: S) -> ContextService<S> {
        ContextService { inner }
    }
}

/// The service [`ContextLayer`] makes: `S`, with each call in its own copy
/// of the context.
#[derive(Clone, Debug)]
pub struct ContextService<S> {
    inner: S,
}

impl<S, B> tower_service::Service<Request<B>> for ContextService<S>
where
    S: tower_service::Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Attached<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        in_request_context(request, |request| self.inner.call(request))
    }
}
