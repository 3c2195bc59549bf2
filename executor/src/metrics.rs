//! [`Metrics`]: counters of a runtime.

/// A snapshot of a runtime's counters, from [`Runtime::metrics`](crate::Runtime::metrics)
/// or [`Handle::metrics`](crate::Handle::metrics).
///
/// Counters are read without stopping the workers, so a snapshot taken
/// while tasks run is approximate (each counter is exact, they are just not
/// read at the same instant).
///
/// ```
/// let rt = baton_executor::Builder::new().worker_threads(2).build().unwrap();
/// rt.block_on(async { baton_executor::spawn(async {}).await.unwrap() });
/// let m = rt.metrics();
/// assert_eq!(m.workers, 2);
/// assert_eq!(m.spawned, 1);
/// assert!(format!("{m:?}").contains("migrations"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Number of worker threads.
    pub workers: usize,
    /// Tasks spawned and accepted (a runtime that is shut down accepts
    /// none: their handles resolve to cancelled at once).
    pub spawned: u64,
    /// Tasks finished: returned, panicked or cancelled.
    pub completed: u64,
    /// Task polls by the workers (including polls that only dropped an
    /// aborted future).
    pub polls: u64,
    /// Successful steal operations (each moves a batch of tasks from another
    /// worker's queue).
    pub steals: u64,
    /// Polls of a task on a different worker than its previous poll.
    pub migrations: u64,
    /// Times a worker went to sleep for lack of work.
    pub parks: u64,
    /// Threads of the blocking pool ([`spawn_blocking`](crate::spawn_blocking))
    /// alive now, busy or idle.
    pub blocking_threads: usize,
    /// Of those, the ones waiting for a job.
    pub idle_blocking_threads: usize,
    /// Blocking jobs waiting for a thread.
    pub blocking_queue_depth: usize,
}
