//! Model 5: the bridge hand-off.
//!
//! `run_blocking` is `BlockingJob::new` (capture a copy of the context, make
//! the job/future pair) plus `rayon::spawn(move || job.run())`. Here a loom
//! thread stands in for the rayon worker, so loom explores the real hand-off
//! protocol in `bridge/src/handoff.rs`: the result racing the registration of
//! the waker, a panicking job, and the future dropped while the job runs. The
//! pool thread's own context must be exactly as before after every job.
#![cfg(baton_loom)]

mod support;

use std::panic::{AssertUnwindSafe, catch_unwind};

use baton_bridge::BlockingJob;
use baton_context::{Context, ContextVar};
use loom::sync::Arc;
use loom::sync::atomic::{AtomicUsize, Ordering};
use support::{block_on, model};

static ID: ContextVar<u32> = ContextVar::new("id");
static POOL_MARK: ContextVar<u32> = ContextVar::new("pool_mark");

/// The panicking model's job panics with a `u32` in every interleaving:
/// keep those expected panics out of the log, report all others.
fn quiet_expected_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<u32>().is_none() {
            default(info);
        }
    }));
}

#[test]
fn job_result_races_waker_registration() {
    model("job_result_races_waker_registration", || {
        let _caller = ID.set(1);
        let (job, task) = BlockingJob::new(|| {
            let seen = ID.get();
            let _ = ID.set(2);
            seen
        });
        let pool_thread = loom::thread::spawn(move || {
            let _own = POOL_MARK.set(9);
            job.run();
            (POOL_MARK.get(), ID.get())
        });
        // The job saw the caller's value, in a copy: its set stays there.
        assert_eq!(block_on(task), Some(1));
        assert_eq!(ID.get(), Some(1));
        // The pool thread's own context is exactly as before.
        assert_eq!(pool_thread.join().unwrap(), (Some(9), None));
    });
}

#[test]
fn panicking_job_restores_the_pool_thread_and_resumes_in_the_awaiter() {
    quiet_expected_panics();
    model("panicking_job", || {
        let (job, task) = BlockingJob::new(|| -> u32 {
            let _ = ID.set(2);
            std::panic::panic_any(7u32)
        });
        let pool_thread = loom::thread::spawn(move || {
            job.run();
            ID.get()
        });
        let resumed = catch_unwind(AssertUnwindSafe(|| block_on(task)));
        assert_eq!(resumed.unwrap_err().downcast_ref::<u32>(), Some(&7));
        assert_eq!(pool_thread.join().unwrap(), None);
    });
}

#[test]
fn dropping_the_future_races_the_job_and_the_result_is_dropped_once() {
    model("cancel_races_job", || {
        struct Output(Arc<AtomicUsize>);
        impl Drop for Output {
            fn drop(&mut self) {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let ran = Arc::new(AtomicUsize::new(0));
        let dropped = Arc::new(AtomicUsize::new(0));
        let ctx = Context::new();
        let (job, task) = BlockingJob::with_context(&ctx, {
            let ran = ran.clone();
            let dropped = dropped.clone();
            move || {
                ran.fetch_add(1, Ordering::SeqCst);
                let _ = ID.set(3);
                Output(dropped)
            }
        });
        let pool_thread = loom::thread::spawn(move || {
            job.run();
            ID.get()
        });
        drop(task);
        assert_eq!(pool_thread.join().unwrap(), None);
        let ran = ran.load(Ordering::SeqCst);
        // Skipped if cancelled first; otherwise its result is dropped, once.
        assert!(ran <= 1);
        assert_eq!(dropped.load(Ordering::SeqCst), ran);
        // `ctx.run_blocking`-style jobs write into the given context.
        if ran == 1 {
            assert_eq!(ctx.get(&ID), Some(3));
        }
    });
}
