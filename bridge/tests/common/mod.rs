//! Helpers shared by the bridge's test binaries: pools whose threads carry a
//! marker in their own context, and the check that jobs left every pool
//! thread's context exactly as it was (S8).
#![allow(dead_code)]

use baton_context::ContextVar;
use rayon::{ThreadPool, ThreadPoolBuilder};

/// The request-scoped value jobs carry.
pub(crate) static ID: ContextVar<u32> = ContextVar::new("id");
/// Each pool thread's own marker: its index.
pub(crate) static MARK: ContextVar<usize> = ContextVar::new("mark");

/// A pool of `n` threads, unmarked.
pub(crate) fn pool(n: usize) -> ThreadPool {
    ThreadPoolBuilder::new().num_threads(n).build().unwrap()
}

/// A pool of `n` threads, each marked.
pub(crate) fn marked_pool(n: usize) -> ThreadPool {
    let pool = pool(n);
    mark_pool_threads(&pool);
    pool
}

/// Gives every pool thread's own context a distinct marker.
pub(crate) fn mark_pool_threads(pool: &ThreadPool) {
    pool.broadcast(|b| {
        assert_eq!(MARK.get(), None, "a pool thread starts empty");
        let _ = MARK.set(b.index());
    });
}

/// Every pool thread's own context still holds its marker and nothing else.
pub(crate) fn assert_pool_threads_unchanged(pool: &ThreadPool) {
    let seen = pool.broadcast(|b| (b.index(), MARK.get(), ID.get()));
    for (index, mark, id) in seen {
        assert_eq!(mark, Some(index), "pool thread {index} lost its own value");
        assert_eq!(id, None, "a job's value leaked into pool thread {index}");
    }
}
