//! The registry of mirror hooks and the calls the thread layer makes into
//! them on entering and leaving a context (`current.rs`).
//!
//! A leaf: it knows nothing of variables or maps. Each hook is a
//! `&'static dyn Hook` (the typed adapter is in `mirror.rs`, the API
//! layer), installed once and never removed, in a fixed array, so reading
//! the registry on the hot path is one acquire load of the count (nothing
//! else when it is zero).
//!
//! Hooks are user code running inside the context being entered or left.
//! They do not nest: while a hook runs on a thread (or a copy captures), no
//! hook runs for the contexts it enters in turn (`IN_HOOK`), so a hook that
//! runs code in another context cannot recurse into itself.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A registered hook, type-erased (see `mirror.rs` for the typed side).
pub(crate) trait Hook: Sync {
    /// The context was just entered: mirror its value in, if it has one.
    /// True if it did (then [`Hook::exit`] follows).
    fn enter(&self) -> bool;
    /// The context is about to be left: take the value out again.
    fn exit(&self);
    /// A copy of the current context is being made (and is entered now):
    /// store the third-party value current in the caller into it.
    fn capture(&self);
}

/// At most this many hooks (a process installs one per integration).
pub(crate) const MAX_HOOKS: usize = 8;

static HOOKS: [OnceLock<&'static dyn Hook>; MAX_HOOKS] = [const { OnceLock::new() }; MAX_HOOKS];
static COUNT: AtomicUsize = AtomicUsize::new(0);
static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());

thread_local! {
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
    /// The contexts entered on this thread with hooks run, innermost last:
    /// each context's key (its cell's address: a context is entered at most
    /// once per thread) and a bit per hook that mirrored a value in. Kept
    /// here rather than in the entry guard, so that the guard (returned on
    /// every entry) does not grow.
    static MIRRORED: std::cell::RefCell<Vec<(usize, u8)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Installs `hook` for good.
///
/// # Panics
///
/// With [`MAX_HOOKS`] installed already.
pub(crate) fn install(hook: &'static dyn Hook) {
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let n = COUNT.load(Ordering::Relaxed);
    assert!(n < MAX_HOOKS, "baton: at most {MAX_HOOKS} context mirrors");
    if HOOKS[n].set(hook).is_err() {
        unreachable!("baton: hook slot {n} taken");
    }
    COUNT.store(n + 1, Ordering::Release);
}

/// Whether any hook is installed: the only cost of this module when none is.
#[inline(always)]
pub(crate) fn any() -> bool {
    COUNT.load(Ordering::Acquire) != 0
}

/// Runs `f` with hooks suspended on this thread (inside a hook, or while a
/// copy captures). Returns `None` if they were suspended already.
pub(crate) fn suspended<R>(f: impl FnOnce() -> R) -> Option<R> {
    struct Resume;
    impl Drop for Resume {
        fn drop(&mut self) {
            let _ = IN_HOOK.try_with(|h| h.set(false));
        }
    }
    if IN_HOOK.try_with(|h| h.replace(true)).unwrap_or(true) {
        return None;
    }
    let _resume = Resume;
    Some(f())
}

/// Calls every hook's `enter` for the context `key` just entered, and
/// records which mirrored a value in. A hook that panics unwinds from here
/// with the hooks before it recorded, so leaving (the guard's drop, during
/// the unwind) takes theirs out.
pub(crate) fn enter_all(key: usize) {
    MIRRORED.with(|m| m.borrow_mut().push((key, 0)));
    suspended(|| {
        let n = COUNT.load(Ordering::Acquire);
        for (i, hook) in HOOKS[..n].iter().enumerate() {
            if let Some(hook) = hook.get() {
                if hook.enter() {
                    MIRRORED.with(|m| {
                        if let Some(top) = m.borrow_mut().last_mut() {
                            top.1 |= 1 << i;
                        }
                    });
                }
            }
        }
    });
}

/// The context `key` is being left: if hooks ran when it was entered, calls
/// `exit` on those that mirrored a value in (see [`exit_all`]). Returns the
/// first panic of an exit hook, and whether `key`'s record was there.
pub(crate) fn leave(key: usize) -> (Option<Box<dyn std::any::Any + Send>>, bool) {
    let top = MIRRORED
        .try_with(|m| {
            let mut m = m.borrow_mut();
            match m.last() {
                Some(&(k, bits)) if k == key => {
                    m.pop();
                    Some(bits)
                }
                _ => None,
            }
        })
        .ok()
        .flatten();
    match top {
        None => (None, false),
        Some(0) => (None, true),
        Some(bits) => (exit_all(bits), true),
    }
}

/// Calls `exit` on the hooks in `entered`, in reverse order. Every one is
/// called even if some panic; the first panic is returned, for the caller
/// to resume once it has left the context.
fn exit_all(entered: u8) -> Option<Box<dyn std::any::Any + Send>> {
    suspended(|| {
        let mut first = None;
        for i in (0..MAX_HOOKS).rev() {
            if entered & (1 << i) == 0 {
                continue;
            }
            if let Some(hook) = HOOKS[i].get() {
                if let Err(panic) = catch_unwind(AssertUnwindSafe(|| hook.exit())) {
                    first.get_or_insert(panic);
                }
            }
        }
        first
    })
    .flatten()
}

/// Resumes a hook's panic, unless the thread is unwinding already (then it
/// is dropped: the panic hook has printed it, and a second panic out of a
/// destructor would abort).
pub(crate) fn resume(panic: Option<Box<dyn std::any::Any + Send>>) {
    if let Some(panic) = panic {
        if !std::thread::panicking() {
            resume_unwind(panic);
        }
    }
}

/// How many hooks are installed.
pub(crate) fn count() -> usize {
    COUNT.load(Ordering::Acquire)
}

/// Calls the `capture` of the first `n` hooks (inside the copy being made,
/// hooks suspended by the caller).
pub(crate) fn capture_first(n: usize) {
    for hook in HOOKS[..n.min(MAX_HOOKS)].iter() {
        if let Some(hook) = hook.get() {
            hook.capture();
        }
    }
}
