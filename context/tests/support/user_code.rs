//! User code for the soundness tests: values that panic or re-enter when
//! dropped, and the checks that follow (shared by the context, executor and
//! bridge crates' `tests/soundness.rs`, which include it with `#[path]`).
#![allow(dead_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::thread;

use baton_context::{Context, ContextVar, copy_context};

/// Set by the re-entrant action: where it lands shows which context the
/// user code ran in.
pub(crate) static MARK: ContextVar<&'static str> = ContextVar::new("mark");
/// Set inside the context that the re-entrant action enters.
pub(crate) static SCRATCH: ContextVar<u32> = ContextVar::new("scratch");

pub(crate) const NOTHING: u8 = 0;
pub(crate) const PANIC: u8 = 1;
pub(crate) const REENTER: u8 = 2;

/// Does what its action says when dropped (nothing until armed).
pub(crate) struct OnDrop(Arc<AtomicU8>);

impl OnDrop {
    /// A value that does nothing when dropped until its trigger is set.
    pub(crate) fn new() -> (OnDrop, Arc<AtomicU8>) {
        let action = Arc::new(AtomicU8::new(NOTHING));
        (OnDrop(action.clone()), action)
    }

    /// A value that does `action` when dropped.
    pub(crate) fn armed(action: u8) -> OnDrop {
        OnDrop(Arc::new(AtomicU8::new(action)))
    }

    /// A value that does nothing when dropped.
    pub(crate) fn inert() -> OnDrop {
        OnDrop::new().0
    }
}

impl Drop for OnDrop {
    fn drop(&mut self) {
        act(self.0.load(Ordering::SeqCst));
    }
}

pub(crate) fn act(action: u8) {
    match action {
        PANIC => panic!("a destructor panics (on purpose)"),
        REENTER => reenter(),
        _ => {}
    }
}

/// What re-entrant user code does: enters a context, sets a variable,
/// copies the current context.
pub(crate) fn reenter() {
    let ctx = Context::new();
    ctx.run(|| {
        let _ = SCRATCH.set(7);
    });
    assert_eq!(ctx.get(&SCRATCH), Some(7));
    let _ = MARK.set("user code");
    let copy = copy_context();
    assert_eq!(copy.get(&MARK), Some("user code"));
    assert_eq!(SCRATCH.get(), None);
}

/// Nobody has `ctx` entered: another thread can enter it.
pub(crate) fn assert_free(ctx: &Context) {
    assert!(!ctx.is_entered(), "a context was left claimed");
    let other = ctx.clone();
    let entered = thread::spawn(move || other.try_run(|| ()).is_ok())
        .join()
        .expect("the probe thread panicked");
    assert!(entered, "another thread could not enter the context");
}

/// Runs `f`, which must panic; returns the panic message.
pub(crate) fn panics<R>(f: impl FnOnce() -> R) -> String {
    let payload = match catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic"),
        Err(payload) => payload,
    };
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}
