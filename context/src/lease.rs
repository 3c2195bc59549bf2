//! Lending the current bindings without counting them: how `copy_context()`
//! stays free of atomic read-modify-writes.
//!
//! A copy of a persistent map is one reference-count increment, and dropping
//! the copy one decrement. Those are atomic read-modify-writes, which cost
//! 5–10 ns each on today's servers: two of them are most of what
//! `copy_context()` would cost, and the most common pattern — copy the
//! current context, run something in the copy, drop it, all on one thread —
//! needs neither. This module makes that pattern free of them, in the spirit
//! of *biased reference counting* (Choi, Shull and Torrellas, PACT 2018; the
//! scheme free-threaded CPython uses for its objects): a thread counts its own
//! references with plain arithmetic, and only references that cross threads
//! pay for atomics.
//!
//! # Leases and loans
//!
//! Each thread keeps a *ledger* (a thread-local of this module): an open
//! [`Lease`] and `lent`, a plain count. `copy_context()` does not clone the
//! current root: it hands out a *loan* — a non-owning copy of the root
//! pointer, plus a [`Loan`] naming the lease — and adds one to `lent`. The
//! loans are backed by whatever owns the current bindings (the slot's private
//! map, or the entered context's cell), which keeps the root alive and
//! unchanged as long as the thread does not write or leave the context.
//!
//! A loan comes back when the context that holds it lets go of its bindings
//! (it is dropped, or a `run` inside it publishes new ones):
//!
//! * on the thread whose ledger holds the lease, by `lent -= 1`: no atomic;
//! * anywhere else — another thread, a later lease of the same thread, or a
//!   moment when the ledger is borrowed — by one `fetch_sub` on the lease's
//!   `balance`.
//!
//! While a lease is open, `balance` is minus the number of loans that came
//! back the second way, so the loans still out number `lent + balance`.
//!
//! # Settling
//!
//! Before the thread changes what backs its loans — a write to the current
//! bindings (which may update the root in place), or leaving a context — the
//! thread layer (`current.rs`) has it *settle* its ledger ([`settle`]), if
//! `lent` is not zero:
//!
//! * If `lent + balance == 0` (an Acquire load), every loan is back: nobody
//!   else can reach the lease, and it is reset for reuse. No atomic RMW.
//! * Otherwise the lease is *closed*: it takes a counted reference to the
//!   root (its own, `own`), so the loans no longer depend on the thread —
//!   before a write to the slot's private map, the slot's own reference,
//!   the slot moving on to a copy of the root branch (which the write would
//!   have made anyway, the root being shared), else a new one — and
//!   adds `CLOSED + lent` to `balance` in one `fetch_add`. From then on
//!   `balance - CLOSED` is the number of loans still out; whoever brings it
//!   to exactly `CLOSED` (the closer, if the last loan came back in between,
//!   or the last loan's `fetch_sub`) drops `own` and frees the lease. The
//!   ledger forgets the lease and opens a new one on the next copy.
//!
//! Entering a context while loans are out sets the ledger aside instead (on
//! the entered guard's stack frame): the outer context stays entered, so
//! nothing can change its bindings until the inner `run` returns and the
//! ledger is restored.
//!
//! # Why this is sound
//!
//! * *A lent root stays alive and unchanged while a loan of it is out.*
//!   While the lease is open, the thread settles before anything could
//!   replace or mutate its backing; once closed, `own` keeps the root alive,
//!   and it is dropped only when `balance` says no loan is left.
//! * *Exactly one party frees a closed lease.* `balance` reaches `CLOSED`
//!   exactly once: before closing it is at most 0, and `CLOSED` is far above
//!   any count of loans; afterwards it only decreases, one loan at a time.
//! * *Local returns cannot be confused with another lease's.* A loan is
//!   returned locally only if its lease is the one in the thread's ledger.
//!   A lease's memory is reused only once all its loans are back, so a loan
//!   in hand names a lease that is still the one it was lent from; and a
//!   ledger holds only its own thread's open lease.
//! * *Orderings.* Every `fetch_sub` is a Release that the freeing party's
//!   Acquire (its `fetch_add`/`fetch_sub` is AcqRel, the settle's check an
//!   Acquire load) sees: a loan's last use happens before the root is dropped
//!   or mutated. The closer writes `own` before its `fetch_add` (Release), and
//!   the freeing `fetch_sub` (Acquire) reads it after.
//!
//! What this costs elsewhere: a copy that outlives a `run` boundary on its
//! thread pays, at the settle, one increment and one `fetch_add`, and its
//! return the `fetch_sub` and, for the last one, the decrement: two atomics
//! more than a counted copy. One that outlives a write pays the `fetch_add`
//! and the `fetch_sub` instead of a counted copy's increment and the
//! write's decrement of the shared root: the same count.

use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use crate::map::Map;
use baton_sync::{AtomicIsize, Ordering, UnsafeCell, baton_thread_local};

/// Added to `balance` when a lease is closed: far above any number of loans.
const CLOSED: isize = 1 << 62;

/// A thread's permission to lend its current root; see the module docs.
pub(crate) struct Lease {
    /// Open: minus the loans given back through it. Closed: `CLOSED` plus
    /// the loans still out.
    balance: AtomicIsize,
    /// The lease's own counted reference to the lent root, taken when it is
    /// closed with loans out; dropped by whoever frees the lease.
    own: UnsafeCell<Map>,
}

impl Lease {
    /// A new, open lease with no loans, owned by the calling thread's ledger.
    pub(crate) fn open() -> NonNull<Lease> {
        NonNull::from(Box::leak(Box::new(Lease {
            balance: AtomicIsize::new(0),
            own: UnsafeCell::new(Map::new()),
        })))
    }

    /// Whether all loans of an open lease are back, given the `lent` that the
    /// ledger counts as out. If so, the lease is reset: nobody else can reach
    /// it, and the caller may reuse it with `lent = 0`.
    ///
    /// # Safety
    /// `lease` is open, and the caller's thread holds it in its ledger.
    pub(crate) unsafe fn all_back(lease: NonNull<Lease>, lent: usize) -> bool {
        // SAFETY: an open lease is alive (it is freed only once closed, or
        // by its ledger).
        let balance = unsafe { &lease.as_ref().balance };
        // Acquire: every loan given back through the balance was last used
        // before its Release decrement.
        let back = balance.load(Ordering::Acquire);
        if lent as isize + back == 0 {
            // No loan is out: no other thread can reach the lease.
            balance.store(0, Ordering::Relaxed);
            true
        } else {
            false
        }
    }

    /// Closes an open lease with loans out: `own` (a counted reference to the
    /// lent root) keeps the root alive from now on, and the last loan to
    /// come back frees the lease.
    ///
    /// # Safety
    /// `lease` is open and the caller's ledger holds it, with `lent` loans
    /// counted as out; the caller forgets the lease after this call.
    pub(crate) unsafe fn close(lease: NonNull<Lease>, own: Map, lent: usize) {
        // SAFETY: alive (open); `own` is written by the ledger's thread only,
        // before the Release below, and read by the freeing party after its
        // Acquire.
        unsafe {
            lease.as_ref().own.with_mut(|slot| *slot = own);
        }
        // SAFETY: alive (open).
        let balance = unsafe { &lease.as_ref().balance };
        let added = CLOSED + lent as isize;
        if balance.fetch_add(added, Ordering::AcqRel) + added == CLOSED {
            // Every loan came back since the caller looked.
            // SAFETY: closed with no loan out: nobody else can reach it.
            unsafe { Lease::free(lease) };
        }
    }

    /// Gives one loan back through the balance, freeing a closed lease if it
    /// was the last loan out.
    ///
    /// # Safety
    /// The caller holds a loan of `lease` and gives it up with this call.
    unsafe fn give_back(lease: NonNull<Lease>) {
        // SAFETY: alive while a loan of it is out.
        let balance = unsafe { &lease.as_ref().balance };
        if balance.fetch_sub(1, Ordering::AcqRel) - 1 == CLOSED {
            // SAFETY: closed, and that was the last loan.
            unsafe { Lease::free(lease) };
        }
    }

    /// Drops the lease's own reference (if it took one) and its memory.
    ///
    /// # Safety
    /// Nobody else can reach `lease`: it is closed with no loan out, or open
    /// with no loan out and the caller's ledger forgets it.
    pub(crate) unsafe fn free(lease: NonNull<Lease>) {
        // SAFETY: unreachable by anyone else (contract); it came from
        // `Box::leak` in `open`. The reference is taken out through the cell
        // so that loom checks this access against the closer's write.
        let lease = unsafe { Box::from_raw(lease.as_ptr()) };
        let own = lease.own.with_mut(|slot| {
            // SAFETY: as above, nobody else can reach the lease, so nobody
            // else touches its slot.
            unsafe { std::mem::take(&mut *slot) }
        });
        drop(lease);
        drop(own);
    }
}

/// A claim on a [`Lease`]: the right to use one lent root until it is given
/// back, which dropping the loan does.
pub(crate) struct Loan {
    lease: NonNull<Lease>,
}

// SAFETY: a loan may be given back from any thread: through the ledger only
// on the thread whose ledger holds the lease, through the atomic balance
// otherwise.
unsafe impl Send for Loan {}
// SAFETY: a shared reference to a loan gives no access to the lease.
unsafe impl Sync for Loan {}

impl Loan {
    /// A loan of `lease`, which the caller's ledger has just counted.
    fn new(lease: NonNull<Lease>) -> Loan {
        Loan { lease }
    }
}

impl Drop for Loan {
    #[inline]
    fn drop(&mut self) {
        if !take_back(self.lease) {
            // SAFETY: this loan is out, and is given up here.
            unsafe { Lease::give_back(self.lease) };
        }
    }
}

/// Bindings as a context cell holds them: counted, or lent under a loan. A
/// lent root is never dropped: dropping `Bindings` drops counted ones and
/// gives a loan back. This is the one place that rule lives; a cell takes
/// its bindings apart to store them ([`Bindings::into_parts`]) and puts them
/// back together to let go of them ([`Bindings::from_parts`]).
pub(crate) struct Bindings {
    /// The map; a non-owning copy of the root if `loan` is `Some`.
    map: ManuallyDrop<Map>,
    loan: Option<Loan>,
}

impl Bindings {
    /// Counted bindings.
    pub(crate) fn owned(map: Map) -> Bindings {
        Bindings::from_parts(map, None)
    }

    /// A lent root: `alias` is valid while `loan` is out.
    fn lent(alias: ManuallyDrop<Map>, loan: Loan) -> Bindings {
        Bindings {
            map: alias,
            loan: Some(loan),
        }
    }

    /// `map`, lent under `loan` if that is `Some` (then `map` is an alias,
    /// which this never drops).
    pub(crate) fn from_parts(map: Map, loan: Option<Loan>) -> Bindings {
        Bindings {
            map: ManuallyDrop::new(map),
            loan,
        }
    }

    /// Whether the root is lent (then dropping these bindings drops no value
    /// unless the loan is the last of a closed lease).
    pub(crate) fn is_lent(&self) -> bool {
        self.loan.is_some()
    }

    /// The map and the loan, for a cell to store; the caller takes over the
    /// rule above.
    pub(crate) fn into_parts(self) -> (Map, Option<Loan>) {
        let mut this = ManuallyDrop::new(self);
        // SAFETY: both fields are moved out once, and `this` is never
        // dropped.
        unsafe { (ManuallyDrop::take(&mut this.map), this.loan.take()) }
    }
}

impl Drop for Bindings {
    #[inline]
    fn drop(&mut self) {
        if self.loan.take().is_none() {
            // SAFETY: counted bindings, dropped once, here.
            unsafe { ManuallyDrop::drop(&mut self.map) };
        }
        // A lent root is not dropped; the loan was given back just above.
    }
}

// ---------------------------------------------------------------------------
// The thread's ledger.

/// A thread's open lease and how many of its loans it counts as out (loans
/// made, less those given back through the ledger).
#[derive(Clone, Copy)]
pub(crate) struct Ledger {
    lease: Option<NonNull<Lease>>,
    lent: usize,
}

impl Ledger {
    /// No lease, no loan.
    pub(crate) const EMPTY: Ledger = Ledger {
        lease: None,
        lent: 0,
    };
}

baton_thread_local! {
    /// This thread's ledger. No destructor: the thread layer retires it at
    /// thread exit ([`retire`]).
    static LEDGER: Cell<Ledger> = Cell::new(Ledger::EMPTY);
}

/// Lends `root`, the calling thread's current bindings, for a copy: a loan
/// on the ledger's lease, opening one if `may_open()` allows (the thread
/// layer says no once the thread is exiting: nobody would free a lease
/// opened then). `None`: the caller counts the copy instead.
#[inline]
pub(crate) fn lend(root: &Map, may_open: impl FnOnce() -> bool) -> Option<Bindings> {
    LEDGER
        .try_with(|ledger| {
            let mut now = ledger.get();
            let lease = match now.lease {
                Some(lease) => lease,
                None if may_open() => {
                    let lease = Lease::open();
                    now.lease = Some(lease);
                    lease
                }
                None => return None,
            };
            now.lent += 1;
            ledger.set(now);
            Some(Bindings::lent(root.alias(), Loan::new(lease)))
        })
        .ok()
        .flatten()
}

/// Makes sure no loan depends on the current bindings' owner any more,
/// before that owner changes: the thread layer calls it before a write and
/// before leaving a context. If loans are out and not all back, the lease
/// closes with `own()` — a counted reference to the lent root — as its own.
#[inline(always)]
pub(crate) fn settle(own: impl FnOnce() -> Map) {
    let _ = LEDGER.try_with(|ledger| {
        if ledger.get().lent != 0 {
            settle_loans(ledger, own);
        }
    });
}

/// `settle`'s work.
#[cold]
#[inline(never)]
fn settle_loans(ledger: &Cell<Ledger>, own: impl FnOnce() -> Map) {
    let Ledger { lease, lent } = ledger.get();
    let lease = lease.expect("loans out without a lease");
    // SAFETY: the ledger's lease is open and this thread's.
    if unsafe { Lease::all_back(lease, lent) } {
        ledger.set(Ledger {
            lease: Some(lease),
            lent: 0,
        });
        return;
    }
    // Some loans are out: the lease takes its own reference to the root and
    // leaves the ledger. If `close` finds every loan back and drops `own`
    // right here, no value's destructor runs: the current bindings hold
    // every value of the old root.
    let own = own();
    ledger.set(Ledger::EMPTY);
    // SAFETY: open, this thread's, `lent` as counted; forgotten above.
    unsafe { Lease::close(lease, own, lent) };
}

/// Entering a context: the outer context's ledger, if it has loans out, is
/// set aside (the outer context stays entered by this thread meanwhile, so
/// nothing can change what backs them) and the inner context starts with an
/// empty one; otherwise the inner context goes on with the same lease.
#[inline(always)]
pub(crate) fn set_aside() -> Ledger {
    LEDGER
        .try_with(|ledger| {
            if ledger.get().lent != 0 {
                ledger.replace(Ledger::EMPTY)
            } else {
                Ledger::EMPTY
            }
        })
        .unwrap_or(Ledger::EMPTY)
}

/// Leaving a context, after [`settle`]: restores what [`set_aside`] set
/// aside, freeing the inner context's (idle) lease.
#[inline(always)]
pub(crate) fn restore(outer: Ledger) {
    if outer.lease.is_some() {
        let _ = LEDGER.try_with(|ledger| {
            if let Some(lease) = ledger.replace(outer).lease {
                // SAFETY: open with no loan out (settled), and no longer in
                // the ledger.
                unsafe { Lease::free(lease) };
            }
        });
    }
}

/// Thread exit, after [`settle`]: frees the idle lease.
pub(crate) fn retire() {
    let _ = LEDGER.try_with(|ledger| {
        if let Some(lease) = ledger.replace(Ledger::EMPTY).lease {
            // SAFETY: open with no loan out (settled), and forgotten by the
            // ledger.
            unsafe { Lease::free(lease) };
        }
    });
}

/// Takes a loan of `lease` back through this thread's ledger, if the ledger
/// holds that lease; `false` otherwise, and the caller gives it back through
/// the lease.
#[inline]
fn take_back(lease: NonNull<Lease>) -> bool {
    LEDGER
        .try_with(|ledger| {
            let mut now = ledger.get();
            if now.lease != Some(lease) {
                return false;
            }
            debug_assert!(now.lent > 0, "a loan back that was not out");
            now.lent -= 1;
            ledger.set(now);
            true
        })
        .unwrap_or(false)
}

/// This thread's ledger: its open lease's address (if any) and `lent`.
#[cfg(all(test, not(baton_loom)))]
pub(crate) fn ledger() -> (Option<usize>, usize) {
    let now = LEDGER.with(Cell::get);
    (now.lease.map(|lease| lease.as_ptr() as usize), now.lent)
}

#[cfg(all(test, not(baton_loom)))]
mod tests {
    //! The ledger's bookkeeping, and that every lent value is dropped exactly
    //! once, whichever way its loans come back.
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::thread;

    use super::ledger;
    use crate::{Context, ContextVar, copy_context};

    static V: ContextVar<u32> = ContextVar::new("v");
    static TRACKED: ContextVar<Arc<Tracked>> = ContextVar::new("tracked");

    /// Counts its drops.
    struct Tracked(Arc<AtomicUsize>);

    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn tracked() -> (Arc<Tracked>, Arc<AtomicUsize>) {
        let drops = Arc::new(AtomicUsize::new(0));
        (Arc::new(Tracked(drops.clone())), drops)
    }

    #[test]
    fn copies_dropped_on_their_thread_are_taken_back_by_the_ledger() {
        thread::spawn(|| {
            let _t = V.set(1);
            let a = copy_context();
            let b = copy_context();
            let (lease, lent) = ledger();
            assert!(lease.is_some());
            assert_eq!(lent, 2);
            assert_eq!(a.get(&V), Some(1));
            drop(a);
            drop(b);
            // Same lease, nothing out: the next copy reuses it.
            assert_eq!(ledger(), (lease, 0));
            let c = copy_context();
            assert_eq!(ledger(), (lease, 1));
            drop(c);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_copy_of_the_empty_context_is_not_lent() {
        thread::spawn(|| {
            let c = copy_context();
            assert_eq!(ledger(), (None, 0));
            assert!(c.is_empty());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_dropped_copy_no_longer_holds_the_value() {
        let (value, _) = tracked();
        let token = TRACKED.set(value.clone());
        let copy = copy_context();
        assert_eq!(Arc::strong_count(&value), 2);
        drop(copy);
        TRACKED.reset(token).unwrap();
        assert_eq!(Arc::strong_count(&value), 1);
    }

    #[test]
    fn a_write_settles_and_the_copy_keeps_the_old_value() {
        let (value, drops) = tracked();
        let first = TRACKED.set(value);
        let copy = copy_context();
        // The write may not update the lent root in place.
        let second = TRACKED.set(tracked().0);
        assert_eq!(ledger().1, 0, "settled");
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        TRACKED.reset(second).unwrap();
        TRACKED.reset(first).unwrap();
        // The copy, alone now, still reads the first value.
        let seen = copy.get(&TRACKED).expect("bound in the copy");
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(seen);
        thread::spawn(move || drop(copy)).join().unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn copies_given_back_by_other_threads_then_a_write_reuses_the_lease() {
        thread::spawn(|| {
            let _t = V.set(1);
            let copies: Vec<Context> = (0..4).map(|_| copy_context()).collect();
            let (lease, lent) = ledger();
            assert_eq!(lent, 4);
            thread::spawn(move || {
                for copy in copies {
                    assert_eq!(copy.run(|| V.get()), Some(1));
                }
            })
            .join()
            .unwrap();
            // All four came back through the balance: the write finds them
            // back and keeps the lease.
            let _u = V.set(2);
            assert_eq!(ledger(), (lease, 0));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_copy_outlives_the_context_it_was_made_in() {
        let (value, drops) = tracked();
        let ctx = Context::new();
        let copy = ctx.run(|| {
            let _ = TRACKED.set(value);
            copy_context()
        });
        // Leaving `ctx` closed the lease; `ctx` goes away.
        drop(ctx);
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        assert!(copy.run(|| TRACKED.get()).is_some());
        drop(copy);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_copy_outlives_its_thread() {
        let (value, drops) = tracked();
        let copy = thread::spawn(move || {
            let _ = TRACKED.set(value);
            copy_context()
        })
        .join()
        .unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        assert!(copy.get(&TRACKED).is_some());
        drop(copy);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn running_a_copy_sets_the_outer_ledger_aside_and_restores_it() {
        thread::spawn(|| {
            let _t = V.set(1);
            let copy = copy_context();
            let (outer, _) = ledger();
            copy.run(|| {
                // Inside, a fresh ledger: the outer one had a loan out.
                assert_eq!(ledger().1, 0);
                let inner = copy_context();
                assert_eq!(ledger().1, 1);
                assert_eq!(inner.get(&V), Some(1));
                let _ = V.set(2);
                drop(inner);
            });
            // The run published into the copy on its way out, after the
            // outer ledger was restored: the copy's loan came back to it.
            assert_eq!(ledger(), (outer, 0));
            assert_eq!(copy.get(&V), Some(2));
            assert_eq!(V.get(), Some(1));
            drop(copy);
            assert_eq!(ledger(), (outer, 0));

            // A loan given back while the ledger is set aside goes through
            // the balance, and the ledger, restored, still counts it.
            let a = copy_context();
            let b = copy_context();
            a.run(|| drop(b));
            assert_eq!(ledger(), (outer, 2));
            drop(a);
            assert_eq!(ledger(), (outer, 1));
            // The write finds both back (one through each way): no close.
            let _u = V.set(3);
            assert_eq!(ledger(), (outer, 0));
        })
        .join()
        .unwrap();
    }

    #[test]
    fn many_copies_returned_in_every_way_drop_the_value_once() {
        let (value, drops) = tracked();
        thread::spawn(move || {
            let _t = TRACKED.set(value);
            let mut keep = Vec::new();
            let mut away = Vec::new();
            for i in 0..64 {
                match i % 3 {
                    0 => drop(copy_context()),
                    1 => keep.push(copy_context()),
                    _ => away.push(copy_context()),
                }
                if i % 16 == 15 {
                    // A write settles the ledger with loans out.
                    let _ = V.set(i);
                }
            }
            let sender = thread::spawn(move || drop(away));
            drop(keep);
            sender.join().unwrap();
        })
        .join()
        .unwrap();
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }
}
