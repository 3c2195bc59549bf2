//! The registry of mirror hooks and the calls the thread layer makes into
//! them on entering and leaving a context (`current.rs`).
//!
//! Each hook is a `&'static dyn Hook` (the typed adapter is in `mirror.rs`,
//! the API layer), installed once and never removed, in a fixed array, so
//! reading the registry on the hot path is one acquire load of the count
//! (nothing else when it is zero). It knows the map layer (a hook mirrors
//! the value bound under one key) and nothing above it.
//!
//! Hooks are user code running inside the context being entered or left.
//! They do not nest: while a hook runs on a thread (or a copy captures), no
//! hook runs for the contexts it enters in turn (`IN_HOOK`), so a hook that
//! runs code in another context cannot recurse into itself.
//!
//! # The values a hook holds between enter and exit
//!
//! Entering a context with hooks installed pushes, on a stack of this
//! thread (`FRAMES`), a frame for each hook whose variable the context
//! binds, keyed by the context; leaving pops them, calling the hooks'
//! `exit` with the very values their `enter` was given (innermost first).
//! A frame *borrows* the value from the bindings the cell had published
//! when it was entered: no reference count is touched, which
//! matters because every task spawned in one span shares that value — a
//! clone and a drop per poll are two read-modify-writes on one cache line
//! that every worker bounces.
//!
//! The borrow is sound because those bindings outlive it:
//!
//! * the entered cell keeps its published bindings until it publishes
//!   again, and it cannot be dropped while entered;
//! * a cell publishes only in `current::publish_before_switching`, which
//!   first calls [`own_borrowed`]: every borrowed frame of the thread takes
//!   a reference of its own (a clone, while the old bindings still hold the
//!   value) before anything is replaced or dropped;
//! * what a hook receives is a reference into the value's own allocation
//!   (the `Arc`), not into the map's node, so a frame that becomes owned in
//!   the middle of a call keeps that reference valid;
//! * frames are popped only by the `leave` of their own context (user code
//!   in between pushes and pops only its own, above them).
//!
//! The lookups read the cell's *published* bindings, never the thread's
//! private copy, which a `set` could change in place.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::ptr::NonNull;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::map::{Map, Value};

/// A registered hook, type-erased (see `mirror.rs` for the typed side).
pub(crate) trait Hook: Sync {
    /// The key of the variable whose value this hook mirrors.
    fn key(&self) -> u64;
    /// A context binding `value` under [`Hook::key`] was just entered:
    /// mirror it in.
    fn enter(&self, value: &(dyn Any + Send + Sync));
    /// That context is about to be left: take `value` (the one `enter` was
    /// given) out again.
    fn exit(&self, value: &(dyn Any + Send + Sync));
    /// A copy of the current context is being made (and is entered now):
    /// store the third-party value current in the caller into it.
    fn capture(&self);
    /// Whether a copy of the current context, about to be made, would keep
    /// what it inherits: [`Hook::capture`] would store nothing. Runs in the
    /// caller's context, while it is being read.
    fn keeps_inherited(&self) -> bool;
}

/// At most this many hooks (a process installs one per integration).
pub(crate) const MAX_HOOKS: usize = 8;

static HOOKS: [OnceLock<&'static dyn Hook>; MAX_HOOKS] = [const { OnceLock::new() }; MAX_HOOKS];
static COUNT: AtomicUsize = AtomicUsize::new(0);
static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A value a hook was given for a context entered on this thread (see
/// the module docs). A context's frames are contiguous, in hook order, and
/// a context whose variables no hook mirrors has none.
struct Frame {
    /// The context's key: its cell's address (a context is entered at most
    /// once per thread at a time, so the keys on the stack are distinct).
    key: usize,
    /// The value, in the entered cell's published bindings; not read once
    /// `owned` is set.
    value: NonNull<Value>,
    /// A reference of the frame's own, taken by [`own_borrowed`] before
    /// those bindings may be dropped.
    owned: Option<Value>,
    /// The hook's index, and whether its `enter` returned (then `exit`
    /// follows): `hook | ENTERED`.
    state: usize,
}

/// `Frame::state`: the hook's `enter` returned.
const ENTERED: usize = 1 << 8;

impl Frame {
    /// The value, as hooks receive it: a reference into its allocation.
    ///
    /// # Safety
    /// The frame stays on the stack while the reference is used (so that
    /// [`own_borrowed`] can keep the allocation alive).
    unsafe fn get<'a>(&self) -> &'a (dyn Any + Send + Sync) {
        let value: *const (dyn Any + Send + Sync) = match &self.owned {
            Some(value) => &**value,
            // SAFETY: a borrowed value is alive until `own_borrowed` gives
            // the frame its own reference (module docs).
            None => &**unsafe { self.value.as_ref() },
        };
        // SAFETY: the allocation lives as long as some frame or map holds a
        // reference, which the frame does or gets before the map lets go
        // (contract, module docs).
        unsafe { &*value }
    }

    fn hook(&self) -> Option<&'static dyn Hook> {
        HOOKS[self.state & (ENTERED - 1)].get().copied()
    }
}

thread_local! {
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
    /// The values mirrored in for the contexts entered on this thread,
    /// innermost last. Kept here rather than in the entry guard, so that the
    /// guard (returned on every entry) does not grow.
    static FRAMES: RefCell<Vec<Frame>> = const { RefCell::new(Vec::new()) };
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

/// Pushes the frames of the context `key` just entered, whose published
/// bindings are `published`: a borrowed value for each hook whose variable
/// it binds (none while hooks are suspended). Returns where they are, for
/// [`enter_pushed`]. Runs no user code.
///
/// # Safety
/// `published` are the bindings the cell entered as `key` has published,
/// and the frames are popped by [`leave`] before the cell is left.
pub(crate) unsafe fn push(key: usize, published: &Map) -> Range<usize> {
    if IN_HOOK.try_with(Cell::get).unwrap_or(true) {
        return 0..0;
    }
    FRAMES
        .try_with(|frames| {
            let mut frames = frames.borrow_mut();
            let start = frames.len();
            let n = COUNT.load(Ordering::Acquire);
            for (i, hook) in HOOKS[..n].iter().enumerate() {
                let Some(hook) = hook.get() else { continue };
                if let Some(value) = published.get(hook.key()) {
                    frames.push(Frame {
                        key,
                        value: NonNull::from(value),
                        owned: None,
                        state: i,
                    });
                }
            }
            start..frames.len()
        })
        .unwrap_or(0..0)
}

/// Calls the `enter` of every hook [`push`] gave a value (`pushed`), in
/// order. A hook that panics unwinds from here; the frames stay, for
/// [`leave`] to exit the hooks entered before it.
pub(crate) fn enter_pushed(pushed: Range<usize>) {
    if pushed.is_empty() {
        return;
    }
    suspended(|| {
        for at in pushed {
            let (hook, value) = FRAMES.with(|frames| {
                let frame = &frames.borrow()[at];
                // SAFETY: the frame stays on the stack during the call (user
                // code pops only frames it pushed).
                (frame.hook(), unsafe { frame.get() })
            });
            if let Some(hook) = hook {
                hook.enter(value);
            }
            FRAMES.with(|frames| frames.borrow_mut()[at].state |= ENTERED);
        }
    });
}

/// The context `key` is being left: pops its frames, calling `exit` on the
/// hooks that entered a value, innermost first, with that value. Every one
/// is called even if some panic; returns the first panic, for the caller to
/// resume once it has left the context.
pub(crate) fn leave(key: usize) -> Option<Box<dyn Any + Send>> {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = IN_HOOK.try_with(|h| h.set(self.0));
        }
    }
    // The top frame, if it is one of `key`'s: its hook if it entered, and
    // its value.
    type Top = Option<(Option<&'static dyn Hook>, &'static (dyn Any + Send + Sync))>;
    let top = || -> Top {
        FRAMES
            .try_with(|frames| {
                let frames = frames.borrow();
                let frame = frames.last().filter(|f| f.key == key)?;
                let hook = (frame.state & ENTERED != 0).then(|| frame.hook()).flatten();
                // SAFETY: the frame stays on the stack during the call.
                Some((hook, unsafe { frame.get() }))
            })
            .ok()
            .flatten()
    };
    // Nothing to exit (the usual context, with no mirrored value): done.
    let mut next = Some(top()?);
    let outer = IN_HOOK.try_with(|h| h.replace(true)).unwrap_or(true);
    let _restore = Restore(outer);
    let mut first = None;
    while let Some((hook, value)) = next {
        if let Some(hook) = hook {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| hook.exit(value))) {
                first.get_or_insert(panic);
            }
        }
        let popped = FRAMES.with(|frames| frames.borrow_mut().pop());
        // An owned value's drop may run user code: outside the borrow.
        if let Err(panic) = catch_unwind(AssertUnwindSafe(move || drop(popped))) {
            first.get_or_insert(panic);
        }
        next = top();
    }
    first
}

/// Gives every borrowed value frame of this thread a reference of its own:
/// a cell is about to publish, which may drop the bindings they borrow from
/// (see the module docs). Runs no user code.
#[cold]
#[inline(never)]
pub(crate) fn own_borrowed() {
    let _ = FRAMES.try_with(|frames| {
        for frame in frames.borrow_mut().iter_mut() {
            if frame.owned.is_none() {
                // SAFETY: still alive: the publish that may drop it has not
                // happened yet (module docs).
                frame.owned = Some(unsafe { frame.value.as_ref() }.clone());
            }
        }
    });
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

/// Whether every installed hook would keep what a copy of the current
/// context inherits ([`Hook::keeps_inherited`]): then the copy need not be
/// entered to capture.
pub(crate) fn all_keep_inherited() -> bool {
    let n = COUNT.load(Ordering::Acquire);
    HOOKS[..n]
        .iter()
        .all(|hook| hook.get().is_some_and(|hook| hook.keeps_inherited()))
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
