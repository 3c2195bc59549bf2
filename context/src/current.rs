//! The current context of each thread (S1).
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
//!   store buffer — that cost more than everything else in `run` together.
//!
//! * The slot also keeps a *view*: a non-owning copy of the root pointer of
//!   whichever map is current (the private copy, else the context's cell's,
//!   else the empty map), refreshed whenever that changes — after a write,
//!   on entering and on leaving — so that a read does not have to find out
//!   where the bindings are.
//! * The slot keeps the thread's *ledger* of loans: `copy_context()` lends the
//!   current root instead of counting a reference to it, and the ledger is
//!   settled before the bindings that back the loans can change — before a
//!   write, and on leaving a context — or set aside on the entering stack
//!   frame while an inner context runs (see `lease.rs`).
//! * `Current` has no destructor, so `CURRENT` is a thread-local that the
//!   standard library never has to check or register; what the slot owns is
//!   freed at thread exit by a second thread-local, [`Cleanup`].
//!
//! `VAR.get()` is therefore: one thread-local access, a `RefCell` borrow
//! flag, one pointer load, and a lookup in the map — no atomic operation at
//! all.

use std::any::Any;
use std::cell::RefCell;
use std::mem::{self, ManuallyDrop};
use std::ops::{Deref, DerefMut};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::ptr::{self, NonNull};

use crate::context::ContextCell;
use crate::error::ContextError;
use crate::id;
use crate::lease::{Bindings, Lease, Loan};
use crate::map::Map;
use crate::sync::current_thread_local;

pub(crate) struct Current {
    /// The cell of the current context: the entered context's, or the
    /// thread's base cell; null for a base context that has no cell yet.
    ctx: *const ContextCell,
    /// Identity of the current context, for tokens; 0 = not assigned yet.
    id: u64,
    /// Private writes not yet published into `ctx` (for a base context
    /// without a cell: all its bindings); `None` = read `ctx`'s cell.
    /// Dropped by [`Cleanup`] (see there for why not by `Current`).
    map: ManuallyDrop<Option<Map>>,
    /// The base context's cell, once it exists (from `Box::into_raw`, freed
    /// when the slot is dropped; null before). Never shared: no handle to it
    /// exists, so only this thread ever touches it. A raw pointer, not a
    /// `Box`: `ctx` points into it, and a `Box` asserts it is unaliased.
    /// Freed by [`Cleanup`].
    base: *mut ContextCell,
    /// What reads read: a copy of the current bindings' root pointer —
    /// `map` if it is set, else `ctx`'s map, else the empty map — that does
    /// not own a reference (never dropped, never written through). Its
    /// owner keeps it alive; every change of owner or of root refreshes it
    /// (`MapWriter`'s drop after a write, `cell_view` on entering, leaving
    /// and cleaning up). A `get` then loads one pointer, not the `map`
    /// discriminant, then `ctx`, then the cell's map.
    view: ManuallyDrop<Map>,
    /// The loans of `view`'s root that `copy_context()` handed out.
    ledger: Ledger,
    /// The thread is exiting and [`Cleanup`] has run (or is running): nothing
    /// would free a private map of the base context any more, so a write
    /// there is dropped as soon as it is made (see [`with_mut`]).
    orphan: bool,
}

/// A thread's open lease and how many of its loans it counts as out (loans
/// made, less those given back through the ledger); see `lease.rs`.
#[derive(Clone, Copy)]
pub(crate) struct Ledger {
    lease: Option<NonNull<Lease>>,
    lent: usize,
}

impl Ledger {
    const EMPTY: Ledger = Ledger {
        lease: None,
        lent: 0,
    };
}

impl Current {
    const BASE: Current = Current {
        ctx: ptr::null(),
        id: 0,
        map: ManuallyDrop::new(None),
        base: ptr::null_mut(),
        view: ManuallyDrop::new(Map::new()),
        ledger: Ledger::EMPTY,
        orphan: false,
    };

    /// Runs `f` on the current bindings (through `view`).
    #[inline]
    pub(crate) fn with_map<R>(&self, f: impl FnOnce(&Map) -> R) -> R {
        // Under loom the read goes the long way, so that the model checker
        // sees every access to an entered context's cell; there, and with
        // debug assertions, the two ways are checked to agree.
        #[cfg(loom)]
        {
            self.bindings(|map| assert!(map.ptr_eq(&self.view), "stale view"));
            self.bindings(f)
        }
        #[cfg(not(loom))]
        {
            #[cfg(debug_assertions)]
            self.bindings(|map| debug_assert!(map.ptr_eq(&self.view), "stale view"));
            f(&self.view)
        }
    }

    /// Runs `f` on the current bindings where they are owned: the private
    /// map, else the current context's cell, else the empty map.
    #[inline]
    fn bindings<R>(&self, f: impl FnOnce(&Map) -> R) -> R {
        match &*self.map {
            Some(map) => f(map),
            None if self.ctx.is_null() => f(&Map::new()),
            // SAFETY: a non-null `ctx` is either a context this thread has
            // entered (until its `Entered` guard drops; the guard borrows it,
            // so it is alive) or this thread's base cell (owned by this slot).
            // Either cell is written only by this thread, in `publish`, which
            // is not reachable from `f` (`f` only reads, and the slot is
            // borrowed meanwhile). Other threads only read an entered cell,
            // and never see the base cell.
            None => unsafe { (*self.ctx).map.with(|map| f(&*map)) },
        }
    }

    /// The bindings, for writing: on the first write after entering, this
    /// takes a private copy (an `Arc` clone) of the context's map. The guard
    /// points `view` at the result when it drops (also if the write panics).
    #[inline]
    pub(crate) fn map_mut(&mut self) -> MapWriter<'_> {
        // A write may update the root in place: no loan may alias it.
        self.settle(true);
        if self.map.is_none() {
            self.private_copy();
        }
        let Current { map, view, .. } = self;
        MapWriter {
            map: map.as_mut().expect("just made"),
            view,
        }
    }

    #[cold]
    #[inline(never)]
    fn private_copy(&mut self) {
        // Whatever the slot holds from now on must be dropped with the
        // thread: have `Cleanup` registered first. If it is gone already (a
        // destructor that sets a variable, run at thread exit), the write is
        // an orphan's: `with_mut` drops it right after it is made.
        if CLEANUP.try_with(|_| ()).is_err() {
            self.orphan = true;
        }
        let copy = self.bindings(Map::clone);
        *self.map = Some(copy);
    }

    /// A copy of the current bindings for `copy_context()`: lent if the
    /// ledger can lend (see `lease.rs`), else counted.
    #[inline]
    fn lend(&mut self) -> Bindings {
        if self.with_map(Map::is_empty) {
            return Bindings::owned(Map::new());
        }
        let lease = match self.ledger.lease {
            Some(lease) => lease,
            None => match open_lease() {
                Some(lease) => {
                    self.ledger.lease = Some(lease);
                    lease
                }
                None => return Bindings::owned(self.with_map(Map::clone)),
            },
        };
        self.ledger.lent += 1;
        Bindings::lent(self.with_map(alias), Loan::new(lease))
    }

    /// Makes sure no loan depends on the current bindings' owner any more,
    /// before that owner is written (`for_write`) or left (see `lease.rs`).
    #[inline(always)]
    fn settle(&mut self, for_write: bool) {
        if self.ledger.lent != 0 {
            self.settle_loans(for_write);
        }
    }

    /// `settle`'s work.
    #[cold]
    #[inline(never)]
    fn settle_loans(&mut self, for_write: bool) {
        let Ledger { lease, lent } = self.ledger;
        let lease = lease.expect("loans out without a lease");
        // SAFETY: the ledger's lease is open and this thread's.
        if unsafe { Lease::all_back(lease, lent) } {
            self.ledger.lent = 0;
            return;
        }
        // Some loans are out: the lease takes its own reference to the root
        // and leaves the ledger. Before a write to the slot's private map,
        // that is the slot's own reference, and the slot moves on to a copy
        // of the root: the write would copy the shared root anyway, and this
        // way it neither counts the lease's reference nor drops the slot's.
        // Otherwise a clone. Either way, if `close` finds every loan back and
        // drops `own` right here, inside the slot's borrow, no value's
        // destructor runs: the current bindings (the owner's, or the copy's
        // slots, which hold every value of the old root) keep them all.
        let own = match self.map.as_mut() {
            Some(map) if for_write => {
                let own = map.detach_root();
                self.view = alias(map);
                own
            }
            _ => self.with_map(Map::clone),
        };
        self.ledger = Ledger::EMPTY;
        // SAFETY: open, this thread's, `lent` as counted; forgotten above.
        unsafe { Lease::close(lease, own, lent) };
    }

    /// A view of `ctx`'s map (the empty map if `ctx` is null), for when the
    /// slot has no private map: on entering and on leaving a context, and at
    /// thread exit.
    #[inline(always)]
    fn cell_view(&self) -> ManuallyDrop<Map> {
        debug_assert!(self.map.is_none());
        if self.ctx.is_null() {
            ManuallyDrop::new(Map::new())
        } else {
            // SAFETY: a non-null `ctx` is alive and written only by this
            // thread (see `bindings`).
            unsafe { (*self.ctx).map.with(|map| alias(&*map)) }
        }
    }

    /// The identity tokens record; assigned on first use, since most
    /// contexts (a task's copy, say) never make a token.
    #[inline]
    pub(crate) fn id(&mut self) -> u64 {
        if self.id == 0 {
            self.id = if self.ctx.is_null() {
                id::next_context_id()
            } else {
                // SAFETY: a non-null `ctx` is alive (see `with_map`).
                unsafe { (*self.ctx).id() }
            };
        }
        self.id
    }

    /// Publishes the slot's private writes into the current context's cell
    /// (creating the base cell if this is a base context without one), so
    /// that entering another context sets aside only `ctx` and `id`. Returns
    /// the replaced bindings, for the caller to drop outside the borrow.
    #[cold]
    #[inline(never)]
    fn set_aside(&mut self) -> Option<Bindings> {
        let map = self.map.take()?;
        if self.ctx.is_null() {
            self.base = Box::into_raw(Box::new(ContextCell::new_base()));
            self.ctx = self.base;
        }
        // SAFETY: a non-null `ctx` is alive (see `with_map`), and this thread
        // is the one entitled to publish into it: it has it entered, or it is
        // its own base cell (marked entered for good). A shared cell's
        // pointer came from `Context::cell_ptr` (through `enter`).
        let replaced = unsafe { ContextCell::publish(self.ctx, map) };
        // Same root, now owned by the cell.
        self.view = self.cell_view();
        Some(replaced)
    }

    /// At thread exit, what a write to the base context left in the slot,
    /// for the caller to drop (see `orphan`). Writes inside an entered
    /// context are kept: leaving it publishes them as usual.
    #[cold]
    #[inline(never)]
    fn orphaned(&mut self) -> Option<Map> {
        if !self.ctx.is_null() && !ptr::eq(self.ctx, self.base) {
            return None;
        }
        let map = self.map.take();
        self.view = self.cell_view();
        map
    }
}

/// Write access to the slot's private map; see [`Current::map_mut`].
pub(crate) struct MapWriter<'a> {
    map: &'a mut Map,
    view: &'a mut ManuallyDrop<Map>,
}

impl Deref for MapWriter<'_> {
    type Target = Map;
    #[inline]
    fn deref(&self) -> &Map {
        self.map
    }
}

impl DerefMut for MapWriter<'_> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Map {
        self.map
    }
}

impl Drop for MapWriter<'_> {
    #[inline]
    fn drop(&mut self) {
        *self.view = alias(self.map);
    }
}

/// A copy of `map` that does not own a reference (see `Current::view`).
#[inline(always)]
fn alias(map: &Map) -> ManuallyDrop<Map> {
    // SAFETY: a bitwise copy of the root pointer; wrapped in `ManuallyDrop`
    // it never releases the reference it does not own, and it is only read
    // while the map it copies keeps the root alive (see `Current::view`).
    ManuallyDrop::new(unsafe { ptr::read(map) })
}

current_thread_local! {
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
        let owned = CURRENT.try_with(|current| {
            let mut current = current.borrow_mut();
            // From now on nothing would free a private map of the base
            // context: writes there (by the destructors below, say) are
            // dropped as soon as they are made.
            current.orphan = true;
            // Loans out now rest on the lease alone; an idle lease is freed.
            current.settle(false);
            if let Some(lease) = current.ledger.lease.take() {
                // SAFETY: open with no loan out (settled), and forgotten by
                // the ledger.
                unsafe { Lease::free(lease) };
            }
            let map = current.map.take();
            let base = mem::replace(&mut current.base, ptr::null_mut());
            if ptr::eq(current.ctx, base) {
                current.ctx = ptr::null();
            }
            current.view = current.cell_view();
            (map, base)
        });
        if let Ok((map, base)) = owned {
            // Dropped outside the borrow: a value's destructor may read and
            // set context variables (it runs in an empty context, and what it
            // sets goes nowhere). A destructor that panics here has nowhere
            // to unwind to — a panic out of a thread-local's destructor
            // aborts the process — so its panic is reported by the panic
            // hook, as always, and then dropped.
            let _ = catch_unwind(AssertUnwindSafe(move || {
                drop(map);
                if !base.is_null() {
                    // SAFETY: `base` came from `Box::into_raw` in
                    // `set_aside`, and the slot no longer points to it: this
                    // is the only owner left.
                    drop(unsafe { Box::from_raw(base) });
                }
            }));
        }
    }
}

current_thread_local! {
    static CLEANUP: Cleanup = Cleanup;
}

/// A new lease for this thread's ledger, unless the thread is exiting (then
/// `Cleanup` could not free it, and copies are counted instead).
#[cold]
#[inline(never)]
fn open_lease() -> Option<NonNull<Lease>> {
    CLEANUP.try_with(|_| ()).ok()?;
    Some(Lease::open())
}

/// The bindings for a new copy of the current context; see `Current::lend`.
#[inline]
pub(crate) fn lend() -> Bindings {
    CURRENT
        .try_with(|current| current.try_borrow_mut().expect(REENTRANT).lend())
        .unwrap_or_else(|_| Bindings::owned(Map::new()))
}

/// This thread's ledger: its open lease's address (if any) and `lent`.
#[cfg(all(test, not(loom)))]
pub(crate) fn ledger() -> (Option<usize>, usize) {
    CURRENT.with(|current| {
        let ledger = current.borrow().ledger;
        (
            ledger.lease.map(|lease| lease.as_ptr() as usize),
            ledger.lent,
        )
    })
}

/// Takes a loan of `lease` back through this thread's ledger, if the ledger
/// holds that lease (and is not borrowed right now); `false` otherwise, and
/// the caller gives it back through the lease.
#[inline]
pub(crate) fn take_back(lease: NonNull<Lease>) -> bool {
    CURRENT
        .try_with(|current| match current.try_borrow_mut() {
            Ok(mut current) if current.ledger.lease == Some(lease) => {
                debug_assert!(current.ledger.lent > 0, "a loan back that was not out");
                current.ledger.lent -= 1;
                true
            }
            _ => false,
        })
        .unwrap_or(false)
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

/// Runs `f` on the current slot, for writing.
///
/// At thread exit, once [`Cleanup`] has run, a write to the base context
/// goes nowhere: what it left in the slot is dropped on the way out (after
/// the borrow ends, so that destructors may use context variables too).
#[inline]
pub(crate) fn with_mut<R>(f: impl FnOnce(&mut Current) -> R) -> R {
    CURRENT
        .try_with(|slot| {
            let mut current = slot.try_borrow_mut().expect(REENTRANT);
            let r = f(&mut current);
            if current.orphan {
                let orphaned = current.orphaned();
                drop(current);
                drop(orphaned);
            }
            r
        })
        .unwrap_or_else(|_| panic!("baton: cannot set a ContextVar while the thread is exiting"))
}

/// If `ctx` is this thread's current context, runs `f` on its live bindings.
pub(crate) fn with_map_if_current<R>(
    ctx: *const ContextCell,
    f: impl FnOnce(&Map) -> R,
) -> Option<R> {
    CURRENT
        .try_with(|current| {
            let current = current.try_borrow().expect(REENTRANT);
            ptr::eq(current.ctx, ctx).then(|| current.with_map(f))
        })
        .ok()
        .flatten()
}

/// The guard of an entered context: restores the outer context when dropped.
pub(crate) struct Entered {
    /// The entered cell; a raw pointer, since a shared cell's must keep
    /// addressing its whole `SharedCell` (see `ContextCell::publish`).
    inner: *const ContextCell,
    /// The outer context's cell and identity (its writes are in its cell).
    outer: (*const ContextCell, u64),
    /// The outer context's ledger, if it had loans out; else empty (and the
    /// inner context goes on with the same lease).
    outer_ledger: Ledger,
}

/// How a context is claimed by [`enter`].
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Whoever may reach the cell may race us for it: claim it as its kind
    /// requires (a compare-and-swap for a shared cell).
    Contended,
    /// The caller has proved that no other thread can reach the cell (it
    /// holds the only handle, by `&mut`): a plain load and store.
    Exclusive,
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
/// `inner` points to a live cell that outlives the returned guard; if the
/// cell is shared, the pointer came from `Context::cell_ptr`; with
/// [`Claim::Exclusive`], no other thread can reach the cell.
#[inline(always)]
pub(crate) unsafe fn enter(
    inner: *const ContextCell,
    claim: Claim,
) -> Result<Entered, ContextError> {
    let entered = CURRENT.try_with(|slot| {
        let mut current = slot.try_borrow_mut().expect(REENTRANT);
        if current.map.is_some() {
            drop(current);
            if let Some(panic) = publish_before_switching(slot, false).panic {
                resume_unwind(panic);
            }
            current = slot.try_borrow_mut().expect(REENTRANT);
        }
        // SAFETY: alive, and exclusive if so claimed (caller's contract).
        unsafe {
            match claim {
                Claim::Contended => ContextCell::try_enter(inner)?,
                Claim::Exclusive => ContextCell::try_enter_exclusive(inner)?,
            }
        }
        Ok(current.switch_to(inner))
    });
    match entered {
        Ok(entered) => entered,
        Err(_) => panic!("baton: cannot enter a context while the thread is exiting"),
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
    let mut published = Published::default();
    loop {
        let replaced = slot.try_borrow_mut().expect(REENTRANT).set_aside();
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

impl Current {
    /// Makes `inner` (claimed, alive) the current context, setting the outer
    /// one aside in the returned guard. Plain stores: no user code runs.
    ///
    /// Inlined into `enter` always: returned from a call, the five-word
    /// guard is stored in pieces and copied in 16-byte ones, which stalls
    /// store forwarding and costs as much as the rest of a `run`.
    #[inline(always)]
    fn switch_to(&mut self, inner: *const ContextCell) -> Entered {
        debug_assert!(self.map.is_none(), "the outer writes are published first");
        let outer = (self.ctx, self.id);
        // Loans of the outer bindings stay valid while we are inside: the
        // outer context stays entered by this thread, so nobody can change
        // them. Set its ledger aside until we leave.
        let outer_ledger = if self.ledger.lent != 0 {
            mem::replace(&mut self.ledger, Ledger::EMPTY)
        } else {
            Ledger::EMPTY
        };
        self.ctx = inner;
        // SAFETY: alive (see `enter`).
        self.id = unsafe { (*inner).entry.id() };
        self.view = self.cell_view();
        Entered {
            inner,
            outer,
            outer_ledger,
        }
    }

    /// Restores the context that `entered` set aside. Plain stores, and no
    /// user code: nothing the settle or the lease frees holds a value that
    /// the bindings kept here do not hold too.
    #[inline(always)]
    fn switch_back(&mut self, entered: &Entered) {
        debug_assert!(self.map.is_none(), "the inner writes are published first");
        // The inner bindings' owner is about to be left (and maybe
        // dropped): no loan may depend on it.
        self.settle(false);
        if entered.outer_ledger.lease.is_some() {
            if let Some(lease) = self.ledger.lease {
                // SAFETY: open with no loan out (settled), and replaced in
                // the ledger just below.
                unsafe { Lease::free(lease) };
            }
            self.ledger = entered.outer_ledger;
        }
        (self.ctx, self.id) = entered.outer;
        self.view = self.cell_view();
    }
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
        let left = CURRENT.try_with(|slot| {
            let mut current = slot.borrow_mut();
            let published = if current.map.is_some() {
                drop(current);
                let published = publish_before_switching(slot, true);
                current = slot.borrow_mut();
                Some(published)
            } else {
                None
            };
            current.switch_back(self);
            published
        });
        // SAFETY: the cell outlives the guard (see `enter`), and this thread
        // has it entered; the slot no longer points to it.
        unsafe { ContextCell::exit(self.inner) };
        if let Ok(Some(published)) = left {
            finish_leaving(published);
        }
    }
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
