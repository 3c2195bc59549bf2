//! Mirrors: a [`ContextVar`] whose value is copied into a third-party
//! thread-local while its context is entered — how a tracing span, or an
//! OpenTelemetry context, follows the work into tasks, blocking closures and
//! rayon jobs with no special case for any of them.
//!
//! A [`Mirror`] names a variable and three operations:
//!
//! * **capture**, when a copy of the current context is made
//!   ([`copy_context`](crate::copy_context), [`ContextCell::copy_current`]:
//!   what `spawn`, `spawn_blocking`, `run_blocking` and the bridge's
//!   closures do): the third-party value current in the caller (e.g.
//!   `Span::current()`) is stored into the copy;
//! * **enter**, each time a context holding a value is entered (a task's
//!   poll, a closure's run, `Context::run`): the value is put into the
//!   third-party thread-local (e.g. the span is entered);
//! * **exit**, when that context is left: taken out again.
//!
//! They are user code running inside the context being entered, left or
//! made (the "Where user code runs" table of the crate docs): a hook that
//! panics unwinds like the code it surrounds, after the context has been
//! left (or, if the thread is unwinding already, is dropped); hooks do not
//! nest — while one runs, contexts it enters run no hooks.
//!
//! With no mirror installed, entering costs one load more; with the
//! `tracing` feature, the span mirror installs itself the first time a copy
//! is made while a span is current.
//!
//! What keeps a mirror cheap when one is installed:
//!
//! * a copy whose inherited value is current in the caller
//!   ([`Mirror::is_current`]) is not entered and captures nothing (a task
//!   spawning in its request's span);
//! * copies made in a row under one value share the value captured first,
//!   which each thread remembers weakly (it keeps nothing alive);
//! * copies made in one run of a context (a task's poll, a closure's run),
//!   from the same bindings and under the same current values, share the
//!   very bindings the first one captured into: no allocation and no entry
//!   per copy, and one node that every task's lookups read. The run keeps
//!   those bindings, and the ones they were made from, until it ends (or
//!   a copy captures something else), so a value in them outlives its last
//!   copy, or a `set` that replaced it, by at most the rest of that run —
//!   the only way a mirror delays a value's drop. A thread's base context
//!   keeps nothing: it never ends. Only mirrors whose
//!   [`Mirror::is_current`] can tell take part;
//! * entering and leaving borrow the value from the context's bindings
//!   rather than cloning it (`hook.rs`).

use std::any::Any;
use std::cell::RefCell;
use std::sync::{Arc, Weak};

use crate::cell::ContextCell;
use crate::context::Context;
use crate::current;
use crate::hook::{self, Hook};
use crate::map::Value;
use crate::var::ContextVar;

/// A third-party thread-local that follows the context (see the module
/// docs).
///
/// ```
/// use std::cell::Cell;
/// use baton_context::{ContextVar, Mirror, copy_context, install_mirror};
///
/// thread_local! { static LEGACY_ID: Cell<u32> = const { Cell::new(0) }; }
/// static ID: ContextVar<u32> = ContextVar::new("legacy_id");
///
/// struct LegacyId;
/// impl Mirror for LegacyId {
///     type Value = u32;
///     fn var(&self) -> &'static ContextVar<u32> { &ID }
///     fn capture(&self) -> Option<u32> {
///         Some(LEGACY_ID.with(Cell::get)).filter(|id| *id != 0)
///     }
///     fn enter(&self, id: &u32) { LEGACY_ID.with(|c| c.set(*id)) }
///     fn exit(&self, _: &u32) { LEGACY_ID.with(|c| c.set(0)) }
/// }
/// static MIRROR: LegacyId = LegacyId;
/// install_mirror(&MIRROR);
///
/// LEGACY_ID.with(|c| c.set(7)); // set by code that knows no contexts
/// let ctx = copy_context(); // captures 7
/// LEGACY_ID.with(|c| c.set(0));
/// std::thread::spawn(move || {
///     ctx.run(|| assert_eq!(LEGACY_ID.with(Cell::get), 7)); // entered
///     assert_eq!(LEGACY_ID.with(Cell::get), 0); // taken out again
/// })
/// .join()
/// .unwrap();
/// ```
pub trait Mirror: Send + Sync + 'static {
    /// What the variable holds.
    type Value: Clone + Send + Sync + 'static;

    /// The variable that carries the value in contexts (one per mirror, set
    /// only by the mirror).
    fn var(&self) -> &'static ContextVar<Self::Value>;

    /// The third-party value current now, to store in a copy of the
    /// context being made; `None` leaves the copy's value as inherited.
    fn capture(&self) -> Option<Self::Value>;

    /// Puts `value` into the third-party thread-local: a context holding it
    /// was entered on this thread.
    fn enter(&self, value: &Self::Value);

    /// Takes `value` out again: its context is being left. `value` is the
    /// one the matching [`enter`](Mirror::enter) was given, even if the run
    /// set the variable meanwhile. Calls nest: the exit matches the latest
    /// enter not yet exited on this thread.
    fn exit(&self, value: &Self::Value);

    /// Whether two values are the same (then a capture equal to what the
    /// copy inherited is not stored again). `false` by default.
    fn same(&self, _a: &Self::Value, _b: &Self::Value) -> bool {
        false
    }

    /// Whether `inherited` — the value a copy being made inherited — is the
    /// third-party value current now. Then nothing is captured: the copy
    /// keeps it, and [`capture`](Mirror::capture) is not called. A cheap
    /// test here (an id compared, nothing cloned) is what makes copies made
    /// inside a mirrored context cheap: a task spawning in its request's
    /// span. `false` by default.
    ///
    /// It also decides whether a copy may share the bindings an earlier copy
    /// of the same run captured into (see the module docs): then it is
    /// asked about each value those bindings hold.
    ///
    /// It may run while the copy's bindings are being read: setting a
    /// variable, or entering or copying a context, from it panics.
    fn is_current(&self, _inherited: &Self::Value) -> bool {
        false
    }
}

/// Installs `mirror` for the rest of the process (at most 8, counting the
/// built-in ones).
///
/// # Panics
///
/// When 8 mirrors are installed already.
pub fn install_mirror<M: Mirror>(mirror: &'static M) {
    hook::install(Box::leak(Box::new(Adapter(mirror))));
}

/// A [`Mirror`] behind the type-erased [`Hook`].
struct Adapter<M: 'static>(&'static M);

impl<M: Mirror> Adapter<M> {
    /// A value of this mirror's variable, as the registry hands it back.
    fn typed(value: &(dyn Any + Send + Sync)) -> &M::Value {
        value
            .downcast_ref()
            .expect("baton: a mirror was given a value of another type")
    }
}

impl<M: Mirror> Hook for Adapter<M> {
    fn key(&self) -> u64 {
        self.0.var().key()
    }

    fn enter(&self, value: &(dyn Any + Send + Sync)) {
        self.0.enter(Self::typed(value));
    }

    fn exit(&self, value: &(dyn Any + Send + Sync)) {
        self.0.exit(Self::typed(value));
    }

    fn keeps_inherited(&self) -> bool {
        // Inherited and still current: nothing to capture, nothing cloned.
        let key = self.0.var().key();
        current::with_map(|map| {
            map.get(key)
                .is_some_and(|inherited| self.0.is_current(Self::typed(&**inherited)))
        })
    }

    fn is_current(&self, value: &(dyn Any + Send + Sync)) -> bool {
        self.0.is_current(Self::typed(value))
    }

    fn capture(&self) {
        if self.keeps_inherited() {
            return;
        }
        let var = self.0.var();
        // The value this thread captured last, if it is still alive and
        // current: shared rather than captured again — no allocation, no
        // clone of the third-party value.
        let me = self as *const Self as usize;
        if let Some(value) = last_captured(me) {
            if self.0.is_current(Self::typed(&*value)) {
                var.bind_shared(value);
                return;
            }
        }
        if let Some(value) = self.0.capture() {
            let inherited = var.with(|old| old.is_some_and(|old| self.0.same(old, &value)));
            if !inherited {
                // Bound in the copy, which the caller has entered; no token
                // is needed: the copy is new.
                let value: Value = Arc::new(value);
                remember_captured(me, &value);
                var.bind_shared(value);
            }
        }
    }
}

thread_local! {
    /// Per mirror (by its adapter's address), the value this thread
    /// captured last, held weakly: it neither keeps the value alive (a
    /// span still closes when its last context lets it go) nor is used once
    /// it is gone. Copies made in a row under one span share one value.
    static LAST_CAPTURED: RefCell<Vec<(usize, Weak<dyn Any + Send + Sync>)>> =
        const { RefCell::new(Vec::new()) };
}

/// The value mirror `me` captured last on this thread, if still alive.
fn last_captured(me: usize) -> Option<Value> {
    LAST_CAPTURED
        .try_with(|last| {
            let last = last.borrow();
            last.iter().find(|(m, _)| *m == me)?.1.upgrade()
        })
        .ok()
        .flatten()
}

/// Remembers `value` as what mirror `me` captured last on this thread.
fn remember_captured(me: usize, value: &Value) {
    let weak = Arc::downgrade(value);
    let _ = LAST_CAPTURED.try_with(|last| {
        let mut last = last.borrow_mut();
        match last.iter_mut().find(|(m, _)| *m == me) {
            Some(slot) => slot.1 = weak,
            None => last.push((me, weak)),
        }
    });
}

/// Whether a copy being made must capture (cheap: one or two loads).
#[inline(always)]
pub(crate) fn capturing() -> bool {
    hook::any() || builtin_may_capture()
}

#[inline(always)]
fn builtin_may_capture() -> bool {
    #[cfg(feature = "tracing")]
    let span = crate::span::may_capture();
    #[cfg(not(feature = "tracing"))]
    let span = false;
    #[cfg(feature = "opentelemetry")]
    let otel = crate::otel::may_capture();
    #[cfg(not(feature = "opentelemetry"))]
    let otel = false;
    span || otel
}

/// Stores every mirror's capture into `copy` (entered for it, with hooks
/// suspended, so the caller's third-party state is what is read). By value
/// and out of line, so that the copy's fast path stays inlined.
///
/// Copies made in a row, in one run of a context, from the same bindings
/// and under the same current values, share the bindings the first one
/// captured into (`hook::shared_capture`).
#[cold]
#[inline(never)]
pub(crate) fn captured_cell(mut copy: ContextCell) -> ContextCell {
    hook::suspended(|| {
        if keeps_all() {
            return;
        }
        if !builtin_may_capture() {
            if let Some(shared) = copy.with_published(hook::shared_capture) {
                copy = ContextCell::from_map(shared);
                return;
            }
        }
        let parent = copy.published();
        // Hooks are suspended: entering the copy runs none.
        copy.try_run_unmirrored(capture_all)
            .expect("a new copy is not entered");
        drop(hook::remember_capture(parent, copy.published()));
    });
    copy
}

/// [`captured_cell`] for a shared [`Context`].
#[cold]
#[inline(never)]
pub(crate) fn captured(mut copy: Context) -> Context {
    hook::suspended(|| {
        if keeps_all() {
            return;
        }
        // Counted: a memo may keep it (the copy's own may be lent).
        let parent = copy.bindings();
        if !builtin_may_capture() {
            if let Some(shared) = hook::shared_capture(&parent) {
                copy = Context::from_map(shared);
                return;
            }
        }
        copy.run(capture_all);
        drop(hook::remember_capture(parent, copy.bindings()));
    });
    copy
}

/// Whether the copy being made would capture nothing: every mirror keeps
/// what it inherits (its value is current in the caller, whose bindings
/// the copy has), and no built-in one is still to install itself. Then
/// the copy is not entered at all — the usual case for a task spawned by
/// a task in a span.
fn keeps_all() -> bool {
    !builtin_may_capture() && hook::all_keep_inherited()
}

fn capture_all() {
    // The hooks installed before this copy capture; a built-in mirror that
    // installs itself now captures on its own, once.
    let installed = hook::count();
    #[cfg(feature = "tracing")]
    crate::span::capture();
    #[cfg(feature = "opentelemetry")]
    crate::otel::capture();
    hook::capture_first(installed);
}
