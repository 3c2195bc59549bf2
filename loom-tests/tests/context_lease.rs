//! Model 9: copies lent by their thread (`context/src/lease.rs`).
//!
//! `copy_context()` lends the current root instead of counting it; a loan
//! comes back through the thread's ledger, or through the lease's atomic
//! balance from anywhere else. These models race a copy's return on another
//! thread against its lender settling the ledger — by a write, by leaving the
//! context — and check, in every interleaving, that the copy reads the value
//! it was made with and that the value is dropped exactly once, when the last
//! holder lets go: never early (a use after free would read a dropped value),
//! never twice, never leaked.
#![cfg(baton_loom)]

use std::sync::Arc;

use baton_context::{Context, ContextVar, copy_context};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

mod support;

static TRACKED: ContextVar<Arc<Tracked>> = ContextVar::new("tracked");
static OTHER: ContextVar<u32> = ContextVar::new("other");

/// A value that counts its drops and knows whether it is still alive.
struct Tracked {
    drops: loom::sync::Arc<AtomicUsize>,
}

impl Tracked {
    fn check_alive(&self) {
        assert_eq!(self.drops.load(Ordering::SeqCst), 0, "read after drop");
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

/// Runs `lender` in a fresh context holding a tracked value; `lender` gets a
/// copy to hand to another thread, and returns that thread.
fn lend_and_race(lender: impl FnOnce(Context) -> thread::JoinHandle<()>) {
    let drops = loom::sync::Arc::new(AtomicUsize::new(0));
    let ctx = Context::new();
    let borrower = ctx.run(|| {
        let _ = TRACKED.set(Arc::new(Tracked {
            drops: drops.clone(),
        }));
        lender(copy_context())
    });
    borrower.join().unwrap();
    assert_eq!(drops.load(Ordering::SeqCst), 0, "dropped while bound");
    drop(ctx);
    assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped once, at the end");
}

/// The copy, read and dropped on another thread.
fn borrow(copy: Context) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        copy.run(|| TRACKED.get().expect("bound in the copy").check_alive());
        drop(copy);
    })
}

/// The lender writes (settling its ledger: the loan may or may not be back)
/// while the borrower reads and gives the loan back.
#[test]
fn a_loan_comes_back_while_its_lender_writes() {
    support::model("a_loan_comes_back_while_its_lender_writes", || {
        lend_and_race(|copy| {
            let borrower = borrow(copy);
            let _ = OTHER.set(1);
            TRACKED.get().expect("still bound here").check_alive();
            borrower
        });
    });
}

/// The lender leaves the context (settling its ledger) while the borrower
/// reads and gives the loan back.
#[test]
fn a_loan_comes_back_while_its_lender_leaves() {
    support::model("a_loan_comes_back_while_its_lender_leaves", || {
        lend_and_race(borrow);
    });
}

/// Two loans, one given back on the lender's thread, one on another, while
/// the lender writes.
#[test]
fn loans_come_back_both_ways_while_their_lender_writes() {
    support::model(
        "loans_come_back_both_ways_while_their_lender_writes",
        || {
            lend_and_race(|copy| {
                let kept = copy_context();
                let borrower = borrow(copy);
                let _ = OTHER.set(1);
                kept.run(|| TRACKED.get().expect("bound").check_alive());
                drop(kept);
                borrower
            });
        },
    );
}
