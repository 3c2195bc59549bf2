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
//!
//! # Copies that share a capture
//!
//! A copy whose mirrors capture gets bindings of its own: the caller's,
//! plus the captured values — a new root node per copy, allocated by the
//! spawning thread and freed by a worker, and read by every poll of the
//! task. Copies made in a row under one span would all get equal ones. So
//! the thread remembers, in a [`Memo`], the bindings a copy was made from
//! (`parent`) and what it held after capturing (`derived`), and the next
//! copy made from the same `parent` gets `derived` itself
//! ([`shared_capture`]) if every installed hook's value in it is still
//! current — exactly what capturing anew would store.
//!
//! * *Same bindings.* The memo holds `parent`, so a root at that address is
//!   that root, unchanged: a shared root is never updated in place (a `set`
//!   in between copies the path, and the next copy's root differs). The
//!   price: a `set` after such a copy may copy a root it could otherwise
//!   have updated in place (once per memo).
//! * *Same values.* Each hook's `is_current` is asked about its value in
//!   `derived` (with no borrow held: it is user code).
//! * *Bounded lifetime.* A memo belongs to the innermost context entered
//!   with the hooks ([`push`] records it in `entered`; [`leave`] restores
//!   the outer one and drops that context's memo, after its exits). A
//!   captured value therefore outlives its last copy by at most the rest
//!   of the run that made it. Contexts entered without the hooks (a cell's
//!   drop, a capture, one entered before the first hook was installed) are
//!   not recorded, and with no context recorded (a thread's base context,
//!   which is never left) nothing is remembered.

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
    /// Whether `value`, a value of this hook's variable, is the third-party
    /// value current now (the mirror's `is_current`).
    fn is_current(&self, value: &(dyn Any + Send + Sync)) -> bool;
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

/// The bindings copies were given by a capture made in the innermost
/// context entered with the hooks (see [`shared_capture`]).
struct Memo {
    /// That context's key: the memo is dropped when it is left.
    key: usize,
    /// The bindings the copy was made from. Held, so that a root at the
    /// same address is the same root, unchanged (a shared root is never
    /// updated in place).
    parent: Map,
    /// What the copy held once it had captured.
    derived: Map,
}

/// What this module keeps per thread.
struct Frames {
    /// The values mirrored in for the contexts entered on this thread,
    /// innermost last.
    stack: Vec<Frame>,
    /// The key of the innermost context entered with the hooks
    /// ([`push`]), or 0.
    entered: usize,
    /// At most one memo per entered context, innermost last; the top one
    /// belongs to `entered`, if any does.
    memos: Vec<Memo>,
}

/// [`Pushed::outer`] when [`push`] did not record the context.
const UNRECORDED: usize = usize::MAX;

thread_local! {
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
    /// Kept here rather than in the entry guard, so that the guard
    /// (returned on every entry) does not grow.
    static FRAMES: RefCell<Frames> = const {
        RefCell::new(Frames {
            stack: Vec::new(),
            entered: 0,
            memos: Vec::new(),
        })
    };
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

/// What [`push`] did, for [`enter_pushed`] and [`leave`].
pub(crate) struct Pushed {
    /// Where the frames are.
    pub(crate) frames: Range<usize>,
    /// The innermost entered context before this one, to restore on
    /// leaving; [`UNRECORDED`] if this one was not recorded.
    pub(crate) outer: usize,
}

/// Pushes the frames of the context `key` just entered, whose published
/// bindings are `published`: a borrowed value for each hook whose variable
/// it binds (none while hooks are suspended), and records it as the
/// innermost context entered with the hooks. Runs no user code.
///
/// # Safety
/// `published` are the bindings the cell entered as `key` has published,
/// and the frames are popped by [`leave`] before the cell is left.
pub(crate) unsafe fn push(key: usize, published: &Map) -> Pushed {
    const NOTHING: Pushed = Pushed {
        frames: 0..0,
        outer: UNRECORDED,
    };
    if IN_HOOK.try_with(Cell::get).unwrap_or(true) {
        return NOTHING;
    }
    FRAMES
        .try_with(|frames| {
            let frames = &mut *frames.borrow_mut();
            let outer = std::mem::replace(&mut frames.entered, key);
            let frames = &mut frames.stack;
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
            Pushed {
                frames: start..frames.len(),
                outer,
            }
        })
        .unwrap_or(NOTHING)
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
                let frame = &frames.borrow().stack[at];
                // SAFETY: the frame stays on the stack during the call (user
                // code pops only frames it pushed).
                (frame.hook(), unsafe { frame.get() })
            });
            if let Some(hook) = hook {
                hook.enter(value);
            }
            FRAMES.with(|frames| frames.borrow_mut().stack[at].state |= ENTERED);
        }
    });
}

/// The context `key` is being left: pops its frames, calling `exit` on the
/// hooks that entered a value, innermost first, with that value, then drops
/// its memo, if it has one; `outer` ([`Pushed::outer`]) is the innermost
/// entered context again. Every hook is called even if some panic; returns
/// the first panic, for the caller to resume once it has left the context.
pub(crate) fn leave(key: usize, outer: usize) -> Option<Box<dyn Any + Send>> {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = IN_HOOK.try_with(|h| h.set(self.0));
        }
    }
    // The top frame, if it is one of `key`'s: its hook if it entered, and
    // its value.
    type Top = Option<(Option<&'static dyn Hook>, &'static (dyn Any + Send + Sync))>;
    fn top_of(frames: &Frames, key: usize) -> Top {
        let frame = frames.stack.last().filter(|f| f.key == key)?;
        let hook = (frame.state & ENTERED != 0).then(|| frame.hook()).flatten();
        // SAFETY: the frame stays on the stack during the call.
        Some((hook, unsafe { frame.get() }))
    }
    let top = || -> Top {
        FRAMES
            .try_with(|frames| top_of(&frames.borrow(), key))
            .ok()
            .flatten()
    };
    let (mut next, memo) = FRAMES
        .try_with(|frames| {
            let frames = &mut *frames.borrow_mut();
            if outer != UNRECORDED {
                frames.entered = outer;
            }
            let memo = match frames.memos.last() {
                Some(memo) if memo.key == key => frames.memos.pop(),
                _ => None,
            };
            (top_of(frames, key), memo)
        })
        .unwrap_or((None, None));
    // Nothing to exit nor drop (the usual context): done.
    if next.is_none() && memo.is_none() {
        return None;
    }
    let outer = IN_HOOK.try_with(|h| h.replace(true)).unwrap_or(true);
    let _restore = Restore(outer);
    let mut first = None;
    while let Some((hook, value)) = next {
        if let Some(hook) = hook {
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| hook.exit(value))) {
                first.get_or_insert(panic);
            }
        }
        let popped = FRAMES.with(|frames| frames.borrow_mut().stack.pop());
        // An owned value's drop may run user code: outside the borrow.
        if let Err(panic) = catch_unwind(AssertUnwindSafe(move || drop(popped))) {
            first.get_or_insert(panic);
        }
        next = top();
    }
    // Then what the run kept for the copies it made (user code: values'
    // destructors), still inside the context, hooks suspended.
    if let Err(panic) = catch_unwind(AssertUnwindSafe(move || drop(memo))) {
        first.get_or_insert(panic);
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
        for frame in frames.borrow_mut().stack.iter_mut() {
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

/// The bindings a copy of the current context, made from `parent`, is to
/// be given, if a copy made earlier in this run of the innermost context
/// entered with the hooks was made from those very bindings and captured
/// values that are all still current: then capturing anew would store the
/// same (equal spans, the one value kept by `LAST_CAPTURED` in `mirror.rs`),
/// and copies made in a row share one set of bindings — no allocation, no
/// entering, and one root that every task's lookups read.
///
/// Every installed hook must have its variable bound there, to a value
/// its `is_current` accepts (user code: called with no borrow held, hooks
/// suspended by the caller).
pub(crate) fn shared_capture(parent: &Map) -> Option<Map> {
    let derived = FRAMES
        .try_with(|frames| {
            let frames = frames.try_borrow().ok()?;
            let memo = frames.memos.last()?;
            (memo.key == frames.entered && memo.parent.ptr_eq(parent)).then(|| memo.derived.clone())
        })
        .ok()
        .flatten()?;
    all_current(&derived).then_some(derived)
}

/// Whether every installed hook's variable is bound in `map` to a value
/// that is current ([`Hook::is_current`]).
fn all_current(map: &Map) -> bool {
    let n = COUNT.load(Ordering::Acquire);
    HOOKS[..n].iter().all(|hook| {
        hook.get().is_some_and(|hook| {
            map.get(hook.key())
                .is_some_and(|value| hook.is_current(&**value))
        })
    })
}

/// Remembers that a copy made from `parent` captured `derived`, for
/// [`shared_capture`], while the innermost context entered with the hooks
/// runs (none: nothing is remembered; a thread's base context is never
/// left). Returns the memo it replaces, for the caller to drop (values'
/// destructors are user code) — also when `derived` is not worth keeping,
/// because some hook's variable is unbound in it.
pub(crate) fn remember_capture(parent: Map, derived: Map) -> impl Sized {
    let keep = all_bound(&derived);
    let mut unused = Some((parent, derived));
    let replaced = FRAMES
        .try_with(|frames| {
            let frames = &mut *frames.try_borrow_mut().ok()?;
            let key = frames.entered;
            let top = frames.memos.last().is_some_and(|memo| memo.key == key);
            let replaced = if top { frames.memos.pop() } else { None };
            if key != 0 && keep {
                let (parent, derived) = unused.take()?;
                frames.memos.push(Memo {
                    key,
                    parent,
                    derived,
                });
            }
            replaced
        })
        .ok()
        .flatten();
    (replaced, unused)
}

/// Whether every installed hook's variable is bound in `map`.
fn all_bound(map: &Map) -> bool {
    let n = COUNT.load(Ordering::Acquire);
    HOOKS[..n]
        .iter()
        .all(|hook| hook.get().is_some_and(|hook| map.get(hook.key()).is_some()))
}
