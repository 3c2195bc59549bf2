//! Loom models of the readiness protocol (`scheduled_io.rs`,
//! `waker_slot.rs`) and of a timer firing while its sleep re-registers
//! (`time/entry.rs`): the real code, no reactor around it. Run with
//!
//! ```text
//! RUSTFLAGS="--cfg baton_loom" LOOM_MAX_PREEMPTIONS=2 CARGO_TARGET_DIR=target/loom \
//!     cargo test -p baton-executor --release --lib io::tests::loom
//! ```

use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;

use crate::io::scheduled_io::{Direction, READABLE, ScheduledIo};
use crate::time::TimerEntry;

/// A waker that counts its wakes.
struct CountingWaker(AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn counting() -> (Arc<CountingWaker>, Waker) {
    let count = Arc::new(CountingWaker(AtomicUsize::new(0)));
    let waker = Waker::from(count.clone());
    (count, waker)
}

/// A readiness event races a poll that finds the source not ready and
/// stores its waker: the poll either returns `Ready`, or its waker is
/// woken. Never both missed (a lost wake-up: the task would sleep forever
/// with data waiting).
#[test]
fn an_event_racing_a_waker_being_stored_is_never_lost() {
    loom::model(|| {
        let io = Arc::new(ScheduledIo::new());
        let (count, waker) = counting();
        let driver = {
            let io = io.clone();
            thread::spawn(move || io.set_readiness(1, READABLE))
        };
        let mut cx = Context::from_waker(&waker);
        let polled = io.poll_ready(&mut cx, Direction::Read);
        driver.join().unwrap();
        if polled.is_pending() {
            assert_eq!(
                count.0.load(Ordering::SeqCst),
                1,
                "the event was missed: pending, and never woken"
            );
            // Woken: the next poll sees the readiness.
            assert!(io.poll_ready(&mut cx, Direction::Read).is_ready());
        }
    });
}

/// A task clears the readiness it acted on (its read returned
/// `WouldBlock`) while the driver reports a new event: the new readiness
/// survives (the tick differs) or the task is woken, so the data that
/// arrived is read.
#[test]
fn clearing_stale_readiness_never_hides_a_new_event() {
    loom::model(|| {
        let io = Arc::new(ScheduledIo::new());
        io.set_readiness(1, READABLE);
        let (count, waker) = counting();
        let mut cx = Context::from_waker(&waker);
        let Poll::Ready(Ok(seen)) = io.poll_ready(&mut cx, Direction::Read) else {
            panic!("readiness set before the poll was not seen");
        };
        let driver = {
            let io = io.clone();
            thread::spawn(move || io.set_readiness(2, READABLE))
        };
        // The read "returned WouldBlock": forget what it acted on, then
        // wait again.
        io.clear_readiness(seen);
        let polled = io.poll_ready(&mut cx, Direction::Read);
        driver.join().unwrap();
        if polled.is_pending() {
            assert_eq!(count.0.load(Ordering::SeqCst), 1, "the new event was lost");
        }
    });
}

/// Shutdown racing a poll: the poll fails or the task is woken (and its
/// next poll fails), so a task waiting on a socket never hangs when the
/// runtime goes away.
#[test]
fn shutdown_racing_a_poll_always_reaches_the_task() {
    loom::model(|| {
        let io = Arc::new(ScheduledIo::new());
        let (count, waker) = counting();
        let closer = {
            let io = io.clone();
            thread::spawn(move || io.shutdown())
        };
        let mut cx = Context::from_waker(&waker);
        let polled = io.poll_ready(&mut cx, Direction::Write);
        closer.join().unwrap();
        match polled {
            Poll::Ready(result) => assert!(result.is_err(), "ready without any event"),
            Poll::Pending => {
                assert_eq!(count.0.load(Ordering::SeqCst), 1, "shutdown never woke it");
                assert!(matches!(
                    io.poll_ready(&mut cx, Direction::Write),
                    Poll::Ready(Err(_))
                ));
            }
        }
    });
}

/// The driver fires a timer while its sleep, polled again, stores a new
/// waker and re-reads the state: the sleep sees FIRED or its newest waker
/// is woken.
#[test]
fn a_timer_firing_while_its_sleep_re_registers_is_never_lost() {
    loom::model(|| {
        let (first_count, first) = counting();
        let entry = Arc::new(TimerEntry::new(&first));
        let driver = {
            let entry = entry.clone();
            thread::spawn(move || {
                if let Ok(Some(waker)) = entry.fire() {
                    waker.wake();
                }
            })
        };
        let (second_count, second) = counting();
        entry.register(&second);
        let fired = entry.is_fired();
        driver.join().unwrap();
        assert!(fired || second_count.0.load(Ordering::SeqCst) == 1, "lost");
        // The old waker may be woken too (the driver took it before the
        // new one was stored): a spurious wake of the same task, harmless.
        assert!(first_count.0.load(Ordering::SeqCst) <= 1);
    });
}
