//! The built-in mirror of `tracing`'s current span (feature `tracing`):
//! the span current when work is created — a task spawned, a closure
//! offloaded, any copy of the context made — is the current span while
//! that work runs, on whichever thread runs it.
//!
//! It is a [`Mirror`] like any other: `capture` reads `Span::current()`,
//! `enter` and `exit` enter and exit the span through its subscriber (as
//! `Span::enter` does, with no guard to keep). It installs itself the first
//! time a copy is made while a span is current, so a program that never
//! has one pays one relaxed load per copy (`tracing`'s "a subscriber was
//! ever set") and nothing per entry.

use std::sync::Once;

use tracing::Span;

use crate::mirror::{Mirror, install_mirror};
use crate::var::ContextVar;

/// The span that follows the context.
static SPAN: ContextVar<Span> = ContextVar::new("tracing_span");

struct SpanMirror;

static MIRROR: SpanMirror = SpanMirror;
static INSTALL: Once = Once::new();

impl Mirror for SpanMirror {
    type Value = Span;

    fn var(&self) -> &'static ContextVar<Span> {
        &SPAN
    }

    fn capture(&self) -> Option<Span> {
        let span = Span::current();
        (!span.is_none()).then_some(span)
    }

    fn enter(&self, span: &Span) {
        span.with_subscriber(|(id, dispatch)| dispatch.enter(id));
    }

    fn exit(&self, span: &Span) {
        span.with_subscriber(|(id, dispatch)| dispatch.exit(id));
    }

    fn same(&self, a: &Span, b: &Span) -> bool {
        a.id().is_some() && a.id() == b.id()
    }

    fn is_current(&self, inherited: &Span) -> bool {
        // The current span's id, read without cloning the span.
        let Some(id) = inherited.id() else {
            return false;
        };
        tracing::dispatcher::get_default(|dispatch| dispatch.current_span().id() == Some(&id))
    }
}

/// Whether a copy might have a span to capture.
#[inline(always)]
pub(crate) fn may_capture() -> bool {
    !INSTALL.is_completed() && tracing::dispatcher::has_been_set()
}

/// Before the mirror is installed: installs it if a span is current, and
/// captures that span into the copy being made (entered by the caller).
pub(crate) fn capture() {
    if INSTALL.is_completed() {
        return; // installed: the hooks capture
    }
    let span = Span::current();
    if span.is_none() {
        return;
    }
    INSTALL.call_once(|| install_mirror(&MIRROR));
    let _ = SPAN.set(span);
}
