//! [`seal_thread`]: a thread whose own context refuses writes.

use crate::current;

/// Seals the calling thread for the rest of its life: from now on, a
/// [`ContextVar::set`](crate::ContextVar::set) in the thread's **own base
/// context** — code running in no task's context and no entered context —
/// panics, with a message that names the fix, instead of storing the value.
///
/// A thread's base context is shared by everything that ever runs on it
/// bare. On a pool thread (a tokio worker, a rayon thread) that is every
/// job that was not given a context of its own: a value set there by one
/// request is seen by the next request that lands on the thread — the
/// `threading.local` bug that context variables exist to prevent, and
/// nothing would report it. A sealed thread reports it, at the `set`.
///
/// Code that runs in a context of its own is unaffected: a baton task, a
/// future wrapped with [`Context::attach`](crate::Context::attach), a
/// closure inside [`Context::run`](crate::Context::run) (for example
/// `copy_context().run(f)`). Reading is unaffected everywhere. So is
/// [`ContextVar::reset`](crate::ContextVar::reset): no `set` in a sealed
/// base context succeeds, so a token of that context was made before the
/// thread was sealed, and resetting it only undoes that older `set`. At
/// thread exit, once the thread's own bindings have been dropped, a `set`
/// goes nowhere and is allowed too (one from an earlier thread-local
/// destructor still panics, which aborts the process there).
///
/// baton seals its own runtime's worker and blocking-pool threads. Seal the
/// threads of other pools from their start hook:
///
/// * tokio: `baton::tokio::seal(&mut builder)` (feature `tokio`), which is
///   `builder.on_thread_start(seal_thread)`. tokio keeps one start hook: if
///   you install your own, call `seal_thread()` from it instead.
/// * rayon: `rayon::ThreadPoolBuilder::new().start_handler(|_| seal_thread())`.
/// * a `std::thread` of your own: call it first thing.
///
/// Sealing is idempotent and cannot be undone.
///
/// ```
/// use baton_context::{ContextVar, copy_context, seal_thread};
///
/// static REQUEST_ID: ContextVar<u64> = ContextVar::new("request_id");
///
/// std::thread::spawn(|| {
///     seal_thread();
///     // In the thread's own context: refused.
///     let refused = std::panic::catch_unwind(|| REQUEST_ID.set(7));
///     assert!(refused.is_err());
///     assert_eq!(REQUEST_ID.get(), None);
///     // In a context of its own: as usual.
///     let ctx = copy_context();
///     ctx.run(|| {
///         let _ = REQUEST_ID.set(7);
///         assert_eq!(REQUEST_ID.get(), Some(7));
///     });
/// })
/// .join()
/// .unwrap();
/// ```
pub fn seal_thread() {
    current::seal();
}

/// Whether [`seal_thread`] was called on the calling thread (whatever
/// context it runs in now).
pub fn is_thread_sealed() -> bool {
    current::is_sealed()
}
