//! Offload workloads: one round trip, 10,000 concurrent offloads, and a
//! parallel sum — for baton's bridge and its peers.
//!
//! Every offload is awaited the same way, from `futures::executor::block_on`
//! on the benchmark thread, so that only the offload mechanism differs:
//!
//! * tokio: `Handle::spawn_blocking` (tokio's blocking pool, default size);
//! * bare rayon: `rayon::spawn` + `futures::channel::oneshot`, no context;
//! * baton: `baton_bridge::run_blocking` (rayon's global pool, in a copy of
//!   the current context).

use std::future::Future;

use baton_bridge::ParallelIteratorExt;
use baton_context::ContextVar;
use futures::channel::oneshot;
use futures::future::join_all;
use rayon::prelude::*;

/// Concurrent offloads in the throughput workloads.
pub const CONCURRENT: usize = 10_000;
/// Items in the parallel-iterator sums.
pub const PAR_ITEMS: u64 = 10_000_000;

/// The job every offload runs: cheap, but not free, and checkable.
#[inline]
pub fn job(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) ^ i
}

/// The sum of [`job`] over `0..n`, to check throughput workloads.
pub fn expected_sum(n: u64) -> u64 {
    (0..n).map(job).fold(0, u64::wrapping_add)
}

/// `rayon::spawn` + a oneshot: the bare offload, without any context.
pub fn rayon_offload<R, F>(f: F) -> impl Future<Output = R> + Send
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    rayon::spawn(move || {
        let _ = tx.send(f());
    });
    async move { rx.await.expect("rayon job lost") }
}

/// `tokio::task::spawn_blocking` on `handle`'s blocking pool.
pub fn tokio_offload<R, F>(handle: &tokio::runtime::Handle, f: F) -> impl Future<Output = R> + Send
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let jh = handle.spawn_blocking(f);
    async move { jh.await.expect("spawn_blocking failed") }
}

/// One round trip: `offload(i)` (which must compute [`job`]`(i)` somewhere
/// else) awaited with `futures::executor::block_on`, checked.
///
/// # Panics
///
/// If the result is wrong.
pub fn round_trip<Fut, O>(i: u64, offload: O)
where
    O: FnOnce(u64) -> Fut,
    Fut: Future<Output = u64>,
{
    let got = futures::executor::block_on(offload(i));
    assert_eq!(got, job(i), "offload returned a wrong result");
}

/// [`CONCURRENT`] offloads `offload(0..CONCURRENT)` issued at once and
/// awaited together, checked.
///
/// # Panics
///
/// If a result is lost or wrong.
pub fn many<Fut, O>(offload: O)
where
    O: Fn(u64) -> Fut,
    Fut: Future<Output = u64>,
{
    let futs: Vec<Fut> = (0..CONCURRENT as u64).map(offload).collect();
    let results = futures::executor::block_on(join_all(futs));
    let sum = results.into_iter().fold(0, u64::wrapping_add);
    assert_eq!(sum, expected_sum(CONCURRENT as u64), "offloads lost");
}

/// The map closure of the parallel sums (small results, so `sum` cannot
/// overflow).
#[inline]
pub fn par_item(i: u64) -> u64 {
    job(i) & 0xFFFF
}

/// The expected result of the parallel sums over `0..n`.
pub fn par_expected(n: u64) -> u64 {
    (0..n).map(par_item).sum()
}

/// Plain rayon: `(0..n).into_par_iter().map(par_item).sum()`.
pub fn par_sum_plain(n: u64) -> u64 {
    (0..n).into_par_iter().map(par_item).sum()
}

/// baton: `(0..n).into_par_iter().in_context().map(par_item).sum()`.
pub fn par_sum_in_context(n: u64) -> u64 {
    (0..n).into_par_iter().in_context().map(par_item).sum()
}

/// A variable the context-reading sums multiply by (bind it to 1).
pub static FACTOR: ContextVar<u64> = ContextVar::new("factor");

/// baton, and every item reads a context variable:
/// `in_context().map(|x| par_item(x) * FACTOR.get()).sum()`.
pub fn par_sum_in_context_reading(n: u64) -> u64 {
    (0..n)
        .into_par_iter()
        .in_context()
        .map(|x| par_item(x) * FACTOR.get().expect("FACTOR unbound on a rayon thread"))
        .sum()
}

/// baton's offload: `baton_bridge::run_blocking` (rayon's global pool, a
/// copy of the current context).
pub fn baton_offload<R, F>(f: F) -> impl Future<Output = R> + Send
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    baton_bridge::run_blocking(f)
}
