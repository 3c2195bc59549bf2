//! The thread layer: the current context of each thread (S1), entering and
//! leaving contexts, and what the thread owns until it exits.
//!
//! A thread-local slot, [`Current`], names the context the thread is running
//! in and holds — or borrows — its bindings:
//!
//! * A thread starts in its own *base* context: empty, never reachable from
//!   another thread (S1). Its bindings live in the slot, and in a cell of its
//!   own once they have to be set aside (below), created on first need.
//! * The slot *borrows* the current context's map from its cell rather than
//!   cloning it (see `state.rs` for why that is sound). The first write makes
//!   a private copy, held in the slot.
//! * Entering a [`Context`](crate::Context) first publishes the outer
//!   context's private copy into the outer context's cell, if it has one (a
//!   rare, cold step), so that the only state to set aside is two words: the
//!   outer cell and its identity. The [`Entered`] guard keeps those on the
//!   entering stack frame; leaving publishes the inner context's writes into
//!   it and restores the two words, whether the closure returned or panicked
//!   (S4). No map moves on the way in or out: a map is three words that the
//!   compiler copies in pieces, and reading them back in one piece stalls the
//!   store buffer.
//! * The slot also keeps a *view*: a non-owning copy of the root pointer of
//!   whichever map is current, so that a read does not have to find out where
//!   the bindings are.
//! * The thread's *ledger* of loans (`lease.rs`) is settled before the
//!   owner of the bindings that back the loans changes, or set aside on the
//!   entering stack frame while an inner context runs.
//! * `Current` has no destructor, so `CURRENT` is a thread-local that the
//!   standard library never has to check or register; what the slot owns is
//!   freed at thread exit by a second thread-local, [`Cleanup`].
//!
//! User code — a value's destructor or `Clone` — never runs while the slot is
//! borrowed for writing, half switched, or while a context is claimed
//! without the guard that gives it back (see [`enter`] and [`Entered`]'s
//! drop; the crate docs list every point where user code runs).
//!
//! `VAR.get()` is therefore: one thread-local access, a `RefCell` borrow
//! flag, one pointer load, and a lookup in the map — no atomic operation at
//! all.

use std::any::Any;
use std::cell::RefCell;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::ptr::NonNull;

use crate::cell::{CellPtr, Claim, ContextCell};
use crate::error::ContextError;
use crate::hook;
use crate::id;
use crate::lease::{self, Bindings, Ledger};
use crate::map::Map;
use baton_sync::baton_thread_local;

/// A thread's current-context slot.
///
/// # Invariants
///
/// * `view` is a non-owning copy of the current root: `owner.map` if it is
///   set, else `owner.ctx`'s cell's map, else the empty map. It is never
///   dropped nor written through, and read only while that owner keeps the
///   root alive.
/// * Every change of `owner` goes through [`Current::rebind`], which settles
///   the ledger first (when loans could be invalidated: a write, or leaving
///   the owner) and returns the only handle on `owner` there is, a guard
///   that refreshes `view` when it drops: an operation cannot forget either.
/// * `owner.ctx` is a cell this thread has entered (until its `Entered` guard
///   drops; the guard borrows it, so it is alive) or the thread's base cell;
///   `None` only for a base context without a cell yet.
/// * After [`Cleanup`] has run ([`ORPHAN`]), nothing frees a private map of
///   the base context: `with_mut` drops it as soon as it is made.
pub(crate) struct Current {
    /// Who holds the current bindings; changed only by `rebind`.
    owner: Owner,
    /// What reads read (see the invariants).
    view: ManuallyDrop<Map>,
    /// [`ORPHAN`] and [`SEALED`]: what sends a write the slow way. One
    /// byte, so that a write on a thread with neither tests one byte, as
    /// it did when the only flag was `ORPHAN`.
    flags: u8,
}

/// The thread is exiting and [`Cleanup`] has run (or is running).
const ORPHAN: u8 = 1;
/// [`seal`] was called: a `set` in the thread's own base context panics.
const SEALED: u8 = 2;

/// Where the current bindings live.
struct Owner {
    /// The cell of the current context: the entered context's, or the
    /// thread's base cell; `None` for a base context that has no cell yet.
    ctx: Option<CellPtr>,
    /// Identity of the current context, for tokens; 0 = not assigned yet.
    id: u64,
    /// Private writes not yet published into `ctx` (for a base context
    /// without a cell: all its bindings); `None` = read `ctx`'s cell.
    /// Dropped by [`Cleanup`] (see there for why not by `Current`).
    map: ManuallyDrop<Option<Map>>,
    /// The base context's cell, once it exists (from `Box::into_raw`, freed
    /// by [`Cleanup`]). Never shared: no handle to it exists, so only this
    /// thread ever touches it. A raw pointer, not a `Box`: `ctx` points
    /// into it, and a `Box` asserts it is unaliased.
    base: Option<NonNull<ContextCell>>,
}

/// What a change of the current bindings' owner does to the ledger's loans
/// before it happens (see [`Current::rebind`]).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Settle {
    /// A write: the root may be updated in place, so no loan may alias it.
    /// The slot's own reference goes to the lease and the slot moves on to
    /// a copy of the root branch, which the write would have made anyway.
    ForWrite,
    /// The owner is left (and may be dropped): the lease takes a counted
    /// reference of its own.
    ForLeave,
    /// The root and its owner stay alive and unchanged while loans are out
    /// (publishing moves the root into the cell; entering sets the ledger
    /// aside).
    Keep,
}

impl Owner {
    /// Runs `f` on the current bindings where they are owned.
    #[inline]
    fn bindings<R>(&self, f: impl FnOnce(&Map) -> R) -> R {
        match (&*self.map, self.ctx) {
            (Some(map), _) => f(map),
            (None, None) => f(&Map::new()),
            // SAFETY: `ctx` is a cell this thread has entered or owns (see
            // `Current`'s invariants); `f` only reads.
            (None, Some(ctx)) => unsafe { ctx.with_map(f) },
        }
    }

    /// A non-owning copy of the current root (what `view` must be).
    #[inline(always)]
    fn view(&self) -> ManuallyDrop<Map> {
        match (&*self.map, self.ctx) {
            (Some(map), _) => map.alias(),
            (None, None) => ManuallyDrop::new(Map::new()),
            // SAFETY: alive, entered or owned by this thread (see above).
            (None, Some(ctx)) => unsafe { ctx.alias() },
        }
    }

    /// Publishes the private writes into the current context's cell
    /// (creating the base cell if this is a base context without one).
    /// Returns the replaced bindings, for the caller to drop outside the
    /// borrow.
    #[cold]
    #[inline(never)]
    fn publish(&mut self) -> Option<Bindings> {
        let map = self.map.take()?;
        let ctx = match self.ctx {
            Some(ctx) => ctx,
            None => {
                let base = NonNull::from(Box::leak(Box::new(ContextCell::new_base())));
                self.base = Some(base);
                let ctx = CellPtr::base(base);
                self.ctx = Some(ctx);
                ctx
            }
        };
        // SAFETY: alive, and this thread is the one entitled to publish into
        // it: it has it entered, or it is its own base cell (marked entered
        // for good).
        Some(unsafe { ctx.publish(map) })
    }
}

impl Current {
    const BASE: Current = Current {
        owner: Owner {
            ctx: None,
            id: 0,
            map: ManuallyDrop::new(None),
            base: None,
        },
        view: ManuallyDrop::new(Map::new()),
        flags: 0,
    };

    /// The one way to change who holds the current bindings: settles the
    /// ledger as `settle` says, and returns a guard through which the owner
    /// changes; the guard points `view` at the result when it drops (also
    /// if the change panics).
    ///
    /// A guard rather than a closure: a write's closure would carry the key,
    /// the name and the value through two layers of calls, moved in pieces
    /// and read back whole, and that store-forwarding stall costs more than
    /// the write.
    #[inline(always)]
    fn rebind(&mut self, settle: Settle) -> Rebind<'_> {
        let owner = &mut self.owner;
        match settle {
            Settle::ForWrite => lease::settle(|| match owner.map.as_mut() {
                Some(map) => map.detach_root(),
                None => owner.bindings(Map::clone),
            }),
            Settle::ForLeave => lease::settle(|| owner.bindings(Map::clone)),
            Settle::Keep => {}
        }
        Rebind { current: self }
    }

    /// Runs `f` on the current bindings (through `view`).
    #[inline]
    fn with_map<R>(&self, f: impl FnOnce(&Map) -> R) -> R {
        // Under loom the read goes the long way, so that the model checker
        // sees every access to an entered context's cell; there, and with
        // debug assertions, the two ways are checked to agree.
        #[cfg(baton_loom)]
        {
            self.owner
                .bindings(|map| assert!(map.ptr_eq(&self.view), "stale view"));
            self.owner.bindings(f)
        }
        #[cfg(not(baton_loom))]
        {
            #[cfg(debug_assertions)]
            self.owner
                .bindings(|map| debug_assert!(map.ptr_eq(&self.view), "stale view"));
            f(&self.view)
        }
    }

    /// The bindings, for writing: on the first write after entering, this
    /// takes a private copy (an `Arc` clone) of the context's map.
    #[inline(always)]
    pub(crate) fn map_mut(&mut self) -> MapWriter<'_> {
        let mut rebind = self.rebind(Settle::ForWrite);
        if rebind.map.is_none() {
            private_copy(&mut rebind);
        }
        MapWriter(rebind)
    }

    /// The identity tokens record; assigned on first use, since most
    /// contexts (a task's copy, say) never make a token.
    #[inline]
    pub(crate) fn id(&mut self) -> u64 {
        let owner = &mut self.owner;
        if owner.id == 0 {
            owner.id = match owner.ctx {
                None => id::next_context_id(),
                // SAFETY: entered by this thread or its own (invariants).
                Some(ctx) => unsafe { ctx.id() },
            };
        }
        owner.id
    }

    /// A copy of the current bindings for `copy_context()`: lent if the
    /// ledger can lend (see `lease.rs`), else counted.
    #[inline]
    fn lend(&mut self) -> Bindings {
        if self.with_map(Map::is_empty) {
            return Bindings::owned(Map::new());
        }
        lease::lend(&self.view, may_open_lease)
            .unwrap_or_else(|| Bindings::owned(self.with_map(Map::clone)))
    }

    /// Publishes the private writes into the current cell; see
    /// [`Owner::publish`].
    fn publish(&mut self) -> Option<Bindings> {
        // The root moves from the slot to the cell, unchanged: loans of it
        // stay valid.
        self.rebind(Settle::Keep).publish()
    }

    /// Makes `inner` (claimed, alive, with identity `id` so far) the current
    /// context, setting the outer
    /// one aside in the returned guard. Plain stores: no user code runs.
    ///
    /// Inlined into `enter` always: returned from a call, the guard is
    /// stored in pieces and copied in 16-byte ones, which stalls store
    /// forwarding and costs as much as the rest of a `run`.
    #[inline(always)]
    fn switch_to(&mut self, inner: CellPtr, id: u64) -> Entered {
        debug_assert!(
            self.owner.map.is_none(),
            "the outer writes are published first"
        );
        // The outer bindings stay in their cell, entered by this thread, so
        // their loans stay valid: the ledger is set aside instead.
        let outer_ledger = lease::set_aside();
        let mut owner = self.rebind(Settle::Keep);
        let outer = (owner.ctx, owner.id);
        owner.ctx = Some(inner);
        owner.id = id;
        drop(owner);
        Entered {
            inner,
            outer,
            outer_ledger,
        }
    }

    /// Restores the context that `entered` set aside. Plain stores and no
    /// user code: nothing the settle or the lease frees holds a value that
    /// the bindings kept here do not hold too.
    #[inline(always)]
    fn switch_back(&mut self, entered: &Entered) {
        debug_assert!(
            self.owner.map.is_none(),
            "the inner writes are published first"
        );
        let mut owner = self.rebind(Settle::ForLeave);
        (owner.ctx, owner.id) = entered.outer;
        drop(owner);
        lease::restore(entered.outer_ledger);
    }

    /// Whether the thread runs in its own base context: no context entered
    /// (the base context's cell, once it exists, is current only there).
    #[inline(always)]
    fn in_base(&self) -> bool {
        match (self.owner.ctx, self.owner.base) {
            (None, _) => true,
            (Some(ctx), Some(base)) => ctx.is(base.as_ptr()),
            (Some(_), None) => false,
        }
    }

    /// At thread exit, what a write to the base context left in the slot,
    /// for the caller to drop (see [`ORPHAN`]). Writes inside an entered
    /// context are kept: leaving it publishes them as usual.
    #[cold]
    #[inline(never)]
    fn orphaned(&mut self) -> Option<Map> {
        if self.owner.ctx.is_some() {
            return None;
        }
        self.rebind(Settle::ForLeave).map.take()
    }

    /// Thread exit: marks the slot orphaned and takes out what it owns, for
    /// [`Cleanup`] to drop outside the borrow.
    fn retire(&mut self) -> (Option<Map>, Option<NonNull<ContextCell>>) {
        self.flags |= ORPHAN;
        let mut owner = self.rebind(Settle::ForLeave);
        let map = owner.map.take();
        let base = owner.base.take();
        if let (Some(ctx), Some(base)) = (owner.ctx, base) {
            if ctx.is(base.as_ptr()) {
                owner.ctx = None;
            }
        }
        drop(owner);
        // Loans out now rest on their leases alone; the idle one is freed.
        lease::retire();
        (map, base)
    }
}

/// A change of the current bindings' owner in progress; see
/// [`Current::rebind`].
struct Rebind<'a> {
    current: &'a mut Current,
}

impl Deref for Rebind<'_> {
    type Target = Owner;
    #[inline(always)]
    fn deref(&self) -> &Owner {
        &self.current.owner
    }
}

impl DerefMut for Rebind<'_> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut Owner {
        &mut self.current.owner
    }
}

impl Drop for Rebind<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        self.current.view = self.current.owner.view();
    }
}

/// Write access to the slot's private map; see [`Current::map_mut`].
pub(crate) struct MapWriter<'a>(Rebind<'a>);

impl Deref for MapWriter<'_> {
    type Target = Map;
    #[inline(always)]
    fn deref(&self) -> &Map {
        self.0.map.as_ref().expect("made by map_mut")
    }
}

impl DerefMut for MapWriter<'_> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut Map {
        self.0.map.as_mut().expect("made by map_mut")
    }
}

/// Makes the slot's private copy of the current bindings.
#[cold]
#[inline(never)]
fn private_copy(owner: &mut Owner) {
    // Whatever the slot holds from now on must be dropped with the thread:
    // have `Cleanup` registered first. It is gone only once it has run,
    // which marked the slot an orphan's: then `with_mut` drops this copy
    // right after the write.
    let _ = CLEANUP.try_with(|_| ());
    let copy = owner.bindings(Map::clone);
    *owner.map = Some(copy);
}

baton_thread_local! {
    static CURRENT: RefCell<Current> = RefCell::new(Current::BASE);
}

/// Frees what the thread's slot holds, when the thread exits.
///
/// `Current` itself has no destructor, so that `CURRENT` is a thread-local
/// without one: the standard library then registers nothing and checks no
/// state when it is accessed, and `VAR.get()` saves a load and a branch.
/// (It also stays readable to the very end of the thread, for destructors
/// of other thread-locals that read context variables.) Its owned parts are
/// freed by this guard instead, a second thread-local that is touched
/// (registering its destructor) whenever the slot takes a private map —
/// the only way it comes to own anything.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        let owned = CURRENT.try_with(|current| current.borrow_mut().retire());
        if let Ok((map, base)) = owned {
            // Dropped outside the borrow: a value's destructor may read and
            // set context variables (it runs in an empty context, and what it
            // sets goes nowhere). A destructor that panics here has nowhere
            // to unwind to — a panic out of a thread-local's destructor
            // aborts the process — so its panic is reported by the panic
            // hook, as always, and then dropped.
            let _ = catch_unwind(AssertUnwindSafe(move || {
                drop(map);
                if let Some(base) = base {
                    // SAFETY: `base` came from `Box::leak` in
                    // `Owner::publish`, and the slot no longer points to it:
                    // this is the only owner left.
                    drop(unsafe { Box::from_raw(base.as_ptr()) });
                }
            }));
        }
    }
}

baton_thread_local! {
    static CLEANUP: Cleanup = Cleanup;
}

/// Whether a new lease may be opened: not once the thread is exiting (then
/// `Cleanup` could not free it, and copies are counted instead).
#[cold]
#[inline(never)]
fn may_open_lease() -> bool {
    CLEANUP.try_with(|_| ()).is_ok()
}

/// The bindings for a new copy of the current context; see `Current::lend`.
#[inline]
pub(crate) fn lend() -> Bindings {
    CURRENT
        .try_with(|current| current.try_borrow_mut().expect(REENTRANT).lend())
        .unwrap_or_else(|_| Bindings::owned(Map::new()))
}

const REENTRANT: &str = "baton: the current context was modified while it was being read \
     (a ContextVar was set from inside the Clone of a context value?)";

/// Runs `f` on the current bindings. A thread that is being torn down reads
/// as an empty context.
#[inline]
pub(crate) fn with_map<R>(f: impl FnOnce(&Map) -> R) -> R {
    let mut f = Some(f);
    let found = CURRENT.try_with(|current| {
        let current = current.try_borrow().expect(REENTRANT);
        current.with_map(f.take().expect("called once"))
    });
    match found {
        Ok(r) => r,
        Err(_) => (f.take().expect("not called"))(&Map::new()),
    }
}

/// What a write through [`with_mut`] is, for a sealed thread (see [`seal`]).
#[derive(Clone, Copy)]
pub(crate) enum Write<'a> {
    /// `VAR.set`, of the variable named so: refused in a sealed thread's
    /// own base context. (The name is read only then: a reference to it
    /// is one word, the name two.)
    Set(&'a &'static str),
    /// `VAR.reset(token)`: allowed everywhere. A set in a sealed base
    /// context never succeeds, so a token of that context was made before
    /// the thread was sealed, and its reset only undoes what that set did.
    Reset,
}

/// Runs `f` on the current slot, for writing.
///
/// At thread exit, once [`Cleanup`] has started, a write to the base context
/// goes nowhere: what it left in the slot is dropped on the way out (after
/// the borrow ends, so that destructors may use context variables too).
///
/// On a sealed thread, a [`Write::Set`] in the thread's own base context
/// panics (see [`seal`]) before `f` runs. Both checks hide behind one test
/// of one byte, `flags`, which is all a write on any other thread pays; on
/// a sealed thread, a write in a task's or an entered context pays a look
/// at which context is current, and stays on the fast path.
#[inline(always)]
pub(crate) fn with_mut<R>(write: Write<'_>, f: impl FnOnce(&mut Current) -> R) -> R {
    CURRENT
        .try_with(move |slot| {
            let mut current = slot.try_borrow_mut().expect(REENTRANT);
            if current.flags != 0 && current.is_special(write) {
                drop(current);
                return write_special(slot, write, f);
            }
            f(&mut current)
        })
        .unwrap_or_else(|_| panic!("baton: cannot set a ContextVar while the thread is exiting"))
}

impl Current {
    /// Whether `write` is not an ordinary one: the thread is exiting, or
    /// this is a set in a sealed thread's own base context.
    #[inline(always)]
    fn is_special(&self, write: Write<'_>) -> bool {
        self.flags & ORPHAN != 0
            || (self.flags & SEALED != 0 && matches!(write, Write::Set(_)) && self.in_base())
    }
}

/// `with_mut` for a write that [`Current::is_special`]: at thread exit,
/// or refused by a sealed thread.
#[cold]
#[inline(never)]
fn write_special<R>(
    slot: &RefCell<Current>,
    write: Write<'_>,
    f: impl FnOnce(&mut Current) -> R,
) -> R {
    let mut current = slot.try_borrow_mut().expect(REENTRANT);
    if current.flags & ORPHAN != 0 {
        // Exiting: the write goes nowhere, so it leaks nothing either.
        let r = f(&mut current);
        let orphaned = current.orphaned();
        drop(current);
        drop(orphaned);
        return r;
    }
    drop(current);
    // The value is dropped first, and a panic of its destructor is left to
    // the panic hook: out of the unwind below, it would abort the process.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(f)));
    match write {
        Write::Set(name) => sealed_set(name),
        Write::Reset => unreachable!("a reset is never refused"),
    }
}

/// The message of a `set` refused by a sealed thread (see [`seal`]).
pub(crate) const SEALED_SET: &str = "baton: this thread is sealed: a ContextVar set here would \
     land in the thread's own context and leak into everything that later runs on it; run the \
     code in a task's context — spawn it with baton::tokio::spawn, or wrap the future with \
     Context::attach / copy_context().run(..)";

#[cold]
#[inline(never)]
fn sealed_set(name: &str) -> ! {
    panic!("{SEALED_SET} (the variable: \"{name}\")")
}

/// Seals the calling thread, for good: from now on a `set` in its own base
/// context panics (`seal_thread`'s docs say why). A thread that is
/// exiting is left alone.
pub(crate) fn seal() {
    let _ = CURRENT.try_with(|slot| slot.try_borrow_mut().expect(REENTRANT).flags |= SEALED);
}

/// Whether [`seal`] was called on this thread.
pub(crate) fn is_sealed() -> bool {
    CURRENT
        .try_with(|slot| slot.try_borrow().expect(REENTRANT).flags & SEALED != 0)
        .unwrap_or(false)
}

/// If `ctx` is this thread's current context, runs `f` on its live bindings.
pub(crate) fn with_map_if_current<R>(
    ctx: *const ContextCell,
    f: impl FnOnce(&Map) -> R,
) -> Option<R> {
    CURRENT
        .try_with(|current| {
            let current = current.try_borrow().expect(REENTRANT);
            let here = current.owner.ctx.is_some_and(|here| here.is(ctx));
            here.then(|| current.with_map(f))
        })
        .ok()
        .flatten()
}

/// The guard of an entered context: restores the outer context when dropped.
pub(crate) struct Entered {
    /// The entered cell.
    inner: CellPtr,
    /// The outer context's cell and identity (its writes are in its cell).
    outer: (Option<CellPtr>, u64),
    /// The outer context's ledger, if it had loans out; else empty (and the
    /// inner context goes on with the same lease).
    outer_ledger: Ledger,
}

/// Enters `inner` on this thread (S4).
///
/// No user code runs between claiming `inner` and returning the guard that
/// gives it back, nor while the slot is half switched. In order:
///
/// 1. The slot is borrowed first: re-entering from inside a read of the
///    slot (a value's `Clone` inside `VAR.get()`) panics here, before
///    anything is claimed.
/// 2. The outer context's private writes are published into its cell, and
///    the bindings they replace are dropped — in the outer context, where
///    they belong, with the slot consistent. A destructor that panics
///    unwinds out of `enter` with nothing claimed; one that writes again is
///    published again.
/// 3. `inner` is claimed, then the slot is switched to it: plain stores.
///
/// # Safety
/// `inner` is alive and outlives the returned guard; with
/// [`Claim::Exclusive`], no other thread can reach it.
#[inline(always)]
pub(crate) unsafe fn enter(inner: CellPtr, claim: Claim) -> Result<Entered, ContextError> {
    let slot = slot().expect("baton: cannot enter a context while the thread is exiting");
    let mut current = slot.try_borrow_mut().expect(REENTRANT);
    if current.owner.map.is_some() {
        drop(current);
        publish_before_entering(slot);
        current = slot.try_borrow_mut().expect(REENTRANT);
    }
    // SAFETY: alive, and exclusive if so claimed (caller's contract).
    let id = unsafe { inner.try_enter(claim)? };
    Ok(current.switch_to(inner, id))
}

/// Runs `f` in the context `entered` has just entered, with the mirror
/// hooks (`hook.rs`) around it — the callers of [`enter`] come here, out of
/// line, only when hooks are installed, so the usual path stays as it was:
///
/// 1. The hooks mirror the context's values in (user code, inside it).
/// 2. `f` runs.
/// 3. The hooks that mirrored a value take that same value out, still
///    inside, even if a hook or `f` panicked.
/// 4. The context is left (`entered` dropped).
/// 5. A panic is resumed: `f`'s or an enter hook's first; an exit hook's
///    only if nothing else panicked (it is dropped otherwise, the panic hook
///    having printed it).
#[cold]
#[inline(never)]
pub(crate) fn run_mirrored<R>(entered: Entered, f: impl FnOnce() -> R) -> R {
    let key = entered.inner.addr();
    // SAFETY: `entered` has the cell entered and keeps it alive; the frames
    // are popped by `leave` below, before `entered` is dropped.
    let pushed = unsafe {
        entered
            .inner
            .with_map(|published| hook::push(key, published))
    };
    let outer = pushed.outer;
    let result = catch_unwind(AssertUnwindSafe(|| {
        hook::enter_pushed(pushed.frames);
        f()
    }));
    let exit_panic = hook::leave(key, outer);
    drop(entered);
    match result {
        Ok(r) => {
            hook::resume(exit_panic);
            r
        }
        Err(panic) => resume_unwind(panic),
    }
}

/// This thread's slot, for `enter` and `Entered::drop`.
///
/// A reference rather than a closure under `CURRENT.with`: the guard built
/// or read under it would be returned from the closure through memory, in
/// pieces, and reading it back whole stalls store forwarding — that cost
/// more than the compare-and-swap of a shared context's entry.
#[inline(always)]
fn slot<'a>() -> Option<&'a RefCell<Current>> {
    let slot = CURRENT
        .try_with(|slot| slot as *const RefCell<Current>)
        .ok()?;
    // SAFETY: `CURRENT` has no destructor, so it lives as long as its thread
    // (under loom, until the model thread ends); the callers use the
    // reference only on this thread, within one call.
    Some(unsafe { &*slot })
}

/// Step 2 of [`enter`]: publishes the outer context's writes; a destructor's
/// panic unwinds from here, with nothing claimed.
#[cold]
#[inline(never)]
fn publish_before_entering(slot: &RefCell<Current>) {
    if let Some(panic) = publish_before_switching(slot, false).panic {
        resume_unwind(panic);
    }
}

/// What [`publish_before_switching`] leaves for after the switch.
#[derive(Default)]
struct Published {
    /// The first panic of a destructor, resumed once the slot is consistent.
    panic: Option<Box<dyn Any + Send>>,
    /// Replaced bindings that were lent by an outer context (kept when
    /// leaving; see `Entered::drop`).
    lent: Option<Bindings>,
}

/// Publishes the current context's private writes into its cell and drops
/// the bindings they replace, in that context and outside the slot's borrow,
/// until no private write is left (a destructor may write again).
///
/// With `keep_lent`, replaced bindings that are a lent root are not dropped
/// but handed back: dropping them gives their loan back, which is a plain
/// decrement through the lender's ledger once that ledger is current again
/// (and an atomic one now), and the values behind a lent root are the
/// lender's — the outer context's — anyway.
#[cold]
#[inline(never)]
fn publish_before_switching(slot: &RefCell<Current>, keep_lent: bool) -> Published {
    if hook::any() {
        // Mirror hooks may be holding values borrowed from the bindings
        // about to be replaced (`hook.rs`).
        hook::own_borrowed();
    }
    let mut published = Published::default();
    loop {
        let replaced = slot.try_borrow_mut().expect(REENTRANT).publish();
        let Some(replaced) = replaced else { break };
        if keep_lent && replaced.is_lent() && published.lent.is_none() {
            published.lent = Some(replaced);
            continue;
        }
        if let Err(panic) = catch_unwind(AssertUnwindSafe(move || drop(replaced))) {
            published.panic.get_or_insert(panic);
        }
    }
    published
}

impl Drop for Entered {
    /// Leaves the context. First, still inside it, the run's writes are
    /// published into its cell and the bindings they replace are dropped
    /// there (their destructors see and write this context, which is still
    /// claimed, so nobody else sees it half done). Then the slot switches
    /// back and the context is given up, with no user code in between.
    /// Replaced bindings that were lent by the outer context are given back
    /// after that, to the outer context's ledger. A destructor's panic is
    /// resumed last — unless the run itself is unwinding, when it is dropped
    /// (the panic hook has printed it), as a second panic out of a destructor
    /// would abort the process.
    #[inline]
    fn drop(&mut self) {
        if let Some(slot) = slot() {
            let mut current = slot.borrow_mut();
            if current.owner.map.is_some() {
                drop(current);
                return leave_after_writes(slot, self);
            }
            current.switch_back(self);
        }
        // SAFETY: the cell outlives the guard (see `enter`), and this thread
        // has it entered; the slot no longer points to it (or is gone with
        // its thread).
        unsafe { self.inner.exit() };
    }
}

/// Leaving a context that the run wrote to (see `Entered::drop`).
#[cold]
#[inline(never)]
fn leave_after_writes(slot: &RefCell<Current>, entered: &Entered) {
    let published = publish_before_switching(slot, true);
    slot.borrow_mut().switch_back(entered);
    // SAFETY: the cell outlives the guard (see `enter`), and this thread has
    // it entered; the slot no longer points to it.
    unsafe { entered.inner.exit() };
    finish_leaving(published);
}

/// The rest of leaving a context that a run wrote to: gives back a lent root
/// it replaced, then resumes a destructor's panic (see `Entered::drop`).
#[cold]
#[inline(never)]
fn finish_leaving(published: Published) {
    let Published { mut panic, lent } = published;
    if let Err(p) = catch_unwind(AssertUnwindSafe(move || drop(lent))) {
        panic.get_or_insert(p);
    }
    if let Some(panic) = panic {
        if !std::thread::panicking() {
            resume_unwind(panic);
        }
    }
}
