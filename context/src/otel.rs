//! The built-in mirror of OpenTelemetry's current context (feature
//! `opentelemetry`): the `opentelemetry::Context` current when work is
//! created — and with it the active span — is current while the work runs,
//! as [`span.rs`](crate) does for `tracing`'s span.
//!
//! `capture` takes `Context::current()` when it has an active span; `enter`
//! attaches it, keeping the guard on a stack of this thread (enters and
//! exits nest); `exit` drops the guard, which restores what was current
//! before. It installs itself the first time a copy is made while an
//! OpenTelemetry span is active; until then each copy costs a look at the
//! current OpenTelemetry context, and is entered only when a span is
//! active (the feature is off by default).

use std::cell::RefCell;
use std::sync::Once;

use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Context as OtelContext, ContextGuard};

use crate::mirror::{Mirror, install_mirror};
use crate::var::ContextVar;

/// The OpenTelemetry context that follows the baton context.
static OTEL: ContextVar<OtelContext> = ContextVar::new("otel_context");

thread_local! {
    /// The guards of the contexts attached by `enter`, innermost last.
    static GUARDS: RefCell<Vec<ContextGuard>> = const { RefCell::new(Vec::new()) };
}

struct OtelMirror;

static MIRROR: OtelMirror = OtelMirror;
static INSTALL: Once = Once::new();

impl Mirror for OtelMirror {
    type Value = OtelContext;

    fn var(&self) -> &'static ContextVar<OtelContext> {
        &OTEL
    }

    fn capture(&self) -> Option<OtelContext> {
        let current = OtelContext::current();
        current.has_active_span().then_some(current)
    }

    fn enter(&self, context: &OtelContext) {
        let guard = context.clone().attach();
        GUARDS.with(|g| g.borrow_mut().push(guard));
    }

    fn exit(&self, _: &OtelContext) {
        let guard = GUARDS.with(|g| g.borrow_mut().pop());
        drop(guard);
    }
}

/// Whether a copy might have an OpenTelemetry context to capture: before
/// the mirror is installed, whether a span is active (a look at the
/// current OpenTelemetry context, with no clone). Without that look every
/// copy would be entered to capture nothing, and a lent copy
/// (`lease.rs`) would be counted instead.
#[inline(always)]
pub(crate) fn may_capture() -> bool {
    !INSTALL.is_completed() && OtelContext::map_current(|current| current.has_active_span())
}

/// Before the mirror is installed: installs it if an OpenTelemetry span is
/// active, and captures that context into the copy being made.
pub(crate) fn capture() {
    if INSTALL.is_completed() {
        return;
    }
    if let Some(current) = MIRROR.capture() {
        INSTALL.call_once(|| install_mirror(&MIRROR));
        let _ = OTEL.set(current);
    }
}
