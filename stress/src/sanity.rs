//! After the run: the runtime and the pool must still work.

use std::panic::{self, AssertUnwindSafe};
use std::time::Instant;

use baton_bridge::run_blocking;
use baton_executor::{Runtime, spawn};

use crate::faults::{Fate, INJECTED, is_injected};
use crate::probe;
use crate::request::{LiveToken, Shared, request};

/// Runs one more request (no fault) on `rt`; it must complete.
pub(crate) fn runtime_ok(rt: &Runtime, sh: &'static Shared, id: u64) -> bool {
    let live = LiveToken::new(&sh.stats);
    let result = rt.block_on(async move {
        spawn(request(sh, id, Fate::Normal, Instant::now(), live, None)).await
    });
    matches!(result, Ok(finish) if !finish.timed_out)
}

/// The pool must still run a job, resume a panicking one at the await, and
/// every thread must answer a probe.
pub(crate) fn pool_ok(sh: &'static Shared) -> bool {
    let normal = futures::executor::block_on(run_blocking(|| 6 * 7)) == 42;
    let panicking = panic::catch_unwind(AssertUnwindSafe(|| {
        futures::executor::block_on(run_blocking(|| -> u32 {
            panic!("{INJECTED}: final pool check")
        }))
    }));
    let resumed = matches!(panicking, Err(ref p) if is_injected(&**p));
    let threads = rayon::broadcast(|_| {
        probe::check_pool_thread(sh);
        1usize
    })
    .into_iter()
    .sum::<usize>();
    normal && resumed && threads == rayon::current_num_threads()
}
