//! Probes: bare rayon jobs (no context carried) that check a pool thread's
//! own context between jobs is clean — S8 says every job restores it.

use std::sync::atomic::Ordering::Relaxed;

use crate::checks::{Checker, Who};
use crate::request::Shared;
use crate::vars::Snapshot;

/// Checks the calling pool thread's own context holds nothing.
///
/// The workload's rayon closures never wait inside rayon (no nested
/// join/scope), so a bare job never runs on top of another job: whatever it
/// sees is the thread's own context, which nothing may leave values in.
pub(crate) fn check_pool_thread(sh: &'static Shared) {
    sh.stats.probes.fetch_add(1, Relaxed);
    let mut chk = Checker::new(&sh.stats, Who::PoolProbe);
    chk.snapshot(
        "a pool thread's own context between jobs",
        Snapshot::EMPTY,
        sh.mode.read(),
    );
    chk.holds(
        "a pool thread's own context between jobs holds no binding at all",
        !sh.mode.anything_bound(),
    );
}

/// Sends one probe to the pool (whichever thread takes it).
pub(crate) fn spawn_one(sh: &'static Shared) {
    rayon::spawn(move || check_pool_thread(sh));
}

/// Sends a probe to every pool thread.
pub(crate) fn broadcast(sh: &'static Shared) {
    rayon::spawn_broadcast(move |_| check_pool_thread(sh));
}
