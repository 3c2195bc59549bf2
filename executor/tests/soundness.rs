//! User code that panics or re-enters the context machinery where the
//! executor runs it: a task's poll, the drop of its future on completion,
//! abort and shutdown, the drop of its output, the values its context
//! replaces, and `block_on`'s future. After each: the runtime keeps working,
//! nothing hangs or aborts, and what user code sets lands in the context it
//! ran in — the task's — never in the spawner's or a worker's own context.
//!
//! Each test runs in a child process with a deadline (see the context
//! crate's `tests/soundness.rs`): a hang is a failed test.
#![cfg(not(baton_loom))]

use std::future::{Future, pending};
use std::pin::Pin;
use std::sync::mpsc;
use std::task::{Context as TaskContext, Poll};

use baton_context::{Context, ContextVar};
use baton_executor::{Builder, JoinHandle, Runtime, spawn, yield_now};

#[path = "../../context/tests/support/user_code.rs"]
mod user_code;
use user_code::*;

#[path = "../../context/tests/support/isolated.rs"]
mod isolated;
use isolated::isolated_tests;

/// Holds a value that acts when dropped.
static V: ContextVar<OnDropCell> = ContextVar::new("v");

/// `OnDrop` is not `Clone`; a variable needs nothing more than a place to
/// keep it.
struct OnDropCell(#[allow(dead_code)] OnDrop);

fn rt(workers: usize) -> Runtime {
    Builder::new().worker_threads(workers).build().unwrap()
}

/// The runtime still runs tasks, and what they see of `MARK` is only what
/// they set: a spawned task starts from a copy of the caller's context.
fn assert_works(rt: &Runtime) {
    let seen = rt.block_on(async { spawn(async { MARK.get() }).await.unwrap() });
    assert_eq!(seen, MARK.get(), "a task saw a MARK it did not inherit");
}

/// A future whose every drop does `action`, pending until woken by nothing.
async fn holding(value: OnDrop) {
    let _value = value;
    pending::<()>().await
}

/// Spawns `fut` detached, to start only once its handle is gone: the
/// runtime then drops its output and the task on a worker.
fn detach<T: Send + 'static>(rt: &Runtime, fut: impl Future<Output = T> + Send + 'static) {
    let (open, gate) = futures::channel::oneshot::channel::<()>();
    drop(rt.spawn(async move {
        let _ = gate.await;
        fut.await
    }));
    open.send(()).unwrap();
}

/// An output whose drop reads `MARK` and reports it: where the runtime drops
/// an output nobody awaits, and what that place sees.
struct Witness(mpsc::Sender<Option<&'static str>>);

impl Drop for Witness {
    fn drop(&mut self) {
        let _ = self.0.send(MARK.get());
    }
}

/// Spawns `fut`, whose user code does `action`: panicking, as `spawn` does,
/// into a copy of the caller's context; re-entering, into `ctx`, to see
/// what the user code set there.
fn spawn_for<T: Send + 'static>(
    rt: &Runtime,
    action: u8,
    ctx: &Context,
    fut: impl Future<Output = T> + Send + 'static,
) -> JoinHandle<T> {
    match action {
        PANIC => rt.spawn(fut),
        _ => rt.spawn_with_context(ctx.clone(), fut),
    }
}

/// A task's future holds a value that does `action` when dropped, and
/// completes.
fn completion_drop(action: u8) {
    let rt = rt(1);
    let ctx = Context::new();
    let value = OnDrop::armed(action);
    let result = rt.block_on(spawn_for(&rt, action, &ctx, async move {
        let _value = value;
        yield_now().await;
    }));
    match action {
        PANIC => assert!(result.unwrap_err().is_panic()),
        _ => {
            result.unwrap();
            assert_eq!(ctx.get(&MARK), Some("user code"));
            assert_eq!(MARK.get(), None);
            assert_free(&ctx);
        }
    }
    assert_works(&rt);
}

/// Aborts a task whose future holds a value that does `action` when
/// dropped: panicking, once the task has been polled.
fn abort_drop(action: u8) {
    let rt = rt(1);
    let ctx = Context::new();
    let handle = spawn_for(&rt, action, &ctx, holding(OnDrop::armed(action)));
    if action == PANIC {
        rt.block_on(yield_now());
    }
    handle.abort();
    let err = rt.block_on(handle).unwrap_err();
    match action {
        PANIC => assert!(err.is_panic() || err.is_cancelled()),
        _ => {
            assert!(err.is_cancelled());
            assert_eq!(ctx.get(&MARK), Some("user code"));
            assert_eq!(MARK.get(), None);
        }
    }
    assert_works(&rt);
}

/// A task writes over a value that does `action` when dropped, in its own
/// context.
fn replaced_value(action: u8) {
    let rt = rt(1);
    let ctx = Context::new();
    let result = rt.block_on(spawn_for(&rt, action, &ctx, async move {
        let _ = V.set(OnDropCell(OnDrop::armed(action)));
        yield_now().await;
        let _ = V.set(OnDropCell(OnDrop::inert()));
        yield_now().await;
    }));
    match action {
        PANIC => assert!(result.unwrap_err().is_panic()),
        _ => {
            result.unwrap();
            assert_eq!(ctx.get(&MARK), Some("user code"));
            assert_eq!(MARK.get(), None);
        }
    }
    assert_works(&rt);
}

/// A worker drops what the detached `fut` leaves (its output, or its task's
/// context), then the output of a [`Witness`], which must see nothing user
/// code set.
fn dropped_by_a_worker<T: Send + 'static>(fut: impl Future<Output = T> + Send + 'static) {
    let rt = rt(1);
    let (tx, rx) = mpsc::channel();
    detach(&rt, fut);
    detach(&rt, async move { Witness(tx) });
    assert_eq!(
        rx.recv().unwrap(),
        None,
        "a destructor's write reached the worker"
    );
    assert_works(&rt);
}

/// An output that does `action` when dropped, which nobody awaits.
fn output_drop(action: u8) {
    dropped_by_a_worker(async move { OnDrop::armed(action) });
}

/// A task context, which the task leaves behind, holding a value that does
/// `action` when dropped.
fn task_context_drop(action: u8) {
    dropped_by_a_worker(async move {
        let _ = V.set(OnDropCell(OnDrop::armed(action)));
    });
}

/// `block_on` of a future that holds a value that does `action` when
/// dropped.
fn block_on_drop(action: u8) {
    let rt = rt(1);
    let value = OnDrop::armed(action);
    let run = || {
        rt.block_on(async move {
            let _value = value;
        })
    };
    match action {
        PANIC => {
            panics(run);
        }
        _ => {
            run();
            assert_eq!(MARK.get(), None);
        }
    }
    assert_works(&rt);
}

isolated_tests! {
    /// Issue 14's reproduction 3, as the executor saw it: a context left
    /// claimed by a refused re-entrant `Clone` made a task spawned into it
    /// wait forever, and dropping the runtime hang.
    fn reproduction_3_a_task_in_a_once_refused_context_runs_and_the_runtime_drops() {
        static ENTERS: ContextVar<EntersOnClone> = ContextVar::new("enters");
        #[derive(Debug)]
        struct EntersOnClone(Context);
        impl Clone for EntersOnClone {
            fn clone(&self) -> Self {
                self.0.run(|| ());
                EntersOnClone(self.0.clone())
            }
        }
        let ctx = Context::new();
        let _ = ENTERS.set(EntersOnClone(ctx.clone()));
        panics(|| ENTERS.get());
        let rt = rt(2);
        let handle = rt.spawn_with_context(ctx.clone(), async { 42 });
        assert_eq!(rt.block_on(handle).unwrap(), 42);
        drop(rt);
        assert_free(&ctx);
    }

    /// A task's poll panics: its JoinHandle reports the panic.
    fn poll_panicking() {
        let rt = rt(1);
        let err = rt
            .block_on(rt.spawn(async { panic!("a poll panics (on purpose)") }))
            .unwrap_err();
        assert!(err.is_panic());
        assert_works(&rt);
    }

    fn poll_reentrant() {
        let rt = rt(1);
        let ctx = Context::new();
        let seen = rt
            .block_on(rt.spawn_with_context(ctx.clone(), async {
                reenter();
                yield_now().await;
                MARK.get()
            }))
            .unwrap();
        assert_eq!(seen, Some("user code"));
        assert_eq!(ctx.get(&MARK), Some("user code"));
        assert_eq!(MARK.get(), None);
        assert_works(&rt);
    }

    /// The future is dropped on completion, inside the task's context.
    fn completion_drop_panicking() {
        completion_drop(PANIC);
    }

    fn completion_drop_reentrant() {
        completion_drop(REENTER);
    }

    /// `abort` drops the future inside the task's context.
    fn abort_drop_panicking() {
        abort_drop(PANIC);
    }

    fn abort_drop_reentrant() {
        abort_drop(REENTER);
    }

    /// Dropping the runtime drops every pending task's future.
    fn shutdown_drop_panicking() {
        let rt = rt(2);
        let handles: Vec<_> = (0..8).map(|_| rt.spawn(holding(OnDrop::armed(PANIC)))).collect();
        rt.block_on(yield_now());
        drop(rt);
        for handle in handles {
            assert!(handle.is_finished());
        }
    }

    fn shutdown_drop_reentrant() {
        let rt = rt(2);
        let ctx = Context::new();
        let handle = rt.spawn_with_context(ctx.clone(), holding(OnDrop::armed(REENTER)));
        drop(rt.spawn(holding(OnDrop::armed(REENTER))));
        drop(rt);
        assert!(handle.is_finished());
        assert_eq!(ctx.get(&MARK), Some("user code"));
        assert_eq!(MARK.get(), None);
        assert_free(&ctx);
    }

    /// A task writes over a value in its own context: leaving the context
    /// after that poll drops the value, inside the task's context.
    fn replaced_value_panicking() {
        replaced_value(PANIC);
    }

    fn replaced_value_reentrant() {
        replaced_value(REENTER);
    }

    /// An output nobody awaits is dropped by the runtime: inside the task's
    /// context, so nothing its destructor sets reaches a worker's own
    /// context (where the next output's destructor would see it).
    fn output_drop_panicking() {
        output_drop(PANIC);
    }

    fn output_drop_reentrant() {
        output_drop(REENTER);
    }

    /// The context a task leaves behind is dropped with the task, inside it.
    fn task_context_drop_reentrant() {
        task_context_drop(REENTER);
    }

    fn task_context_drop_panicking() {
        task_context_drop(PANIC);
    }

    /// `block_on`'s future is dropped inside `block_on`'s copy of the
    /// caller's context.
    fn block_on_drop_panicking() {
        block_on_drop(PANIC);
    }

    fn block_on_drop_reentrant() {
        block_on_drop(REENTER);
    }

    /// A task that yields a poll whose waker re-enters: waking runs no user
    /// code of the task's, and the task finishes in its own context.
    fn wake_from_user_code_inside_a_context() {
        struct WakeInside(bool);
        impl Future for WakeInside {
            type Output = ();
            fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
                if self.0 {
                    return Poll::Ready(());
                }
                self.0 = true;
                let waker = cx.waker().clone();
                Context::new().run(move || {
                    reenter();
                    waker.wake();
                });
                Poll::Pending
            }
        }
        let rt = rt(2);
        rt.block_on(rt.spawn(WakeInside(false))).unwrap();
        assert_works(&rt);
    }
}
