//! The baseline: the request-scoped values in a plain `thread_local!`, the
//! `threading.local()` mistake of the API-gateway story (`shared/seeds/`).
//!
//! Every task, child and rayon job that runs on a thread shares these cells,
//! so under the same workload the checker must find leaks: a request that
//! awaits and resumes (on the same worker after others ran, or on another
//! worker) reads whatever the last request on that thread set, and a rayon
//! job sees the pool thread's cells rather than its request's values.

use std::cell::Cell;

use crate::vars::{Snapshot, Var};

thread_local! {
    static REQUEST_ID: Cell<Option<u64>> = const { Cell::new(None) };
    static USER: Cell<Option<u64>> = const { Cell::new(None) };
    static STEP: Cell<Option<u64>> = const { Cell::new(None) };
}

fn cell(var: Var) -> &'static std::thread::LocalKey<Cell<Option<u64>>> {
    match var {
        Var::Id => &REQUEST_ID,
        Var::User => &USER,
        Var::Step => &STEP,
    }
}

/// The calling thread's values.
pub(crate) fn read() -> Snapshot {
    Snapshot {
        id: REQUEST_ID.with(Cell::get),
        user: USER.with(Cell::get),
        step: STEP.with(Cell::get),
    }
}

/// Stores `value` in the calling thread's cell of `var`; returns the old one.
pub(crate) fn set(var: Var, value: Option<u64>) -> Option<u64> {
    cell(var).with(|c| c.replace(value))
}
