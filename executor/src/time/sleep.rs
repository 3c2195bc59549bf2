//! [`sleep`], [`sleep_until`] and [`Sleep`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::coop;
use crate::current;
use crate::driver::Driver;
use crate::time::entry::TimerEntry;

/// Waits until `duration` has elapsed.
///
/// Works in tasks and in the future given to `block_on`. The task costs
/// nothing while it sleeps: the runtime's driver (a worker with nothing
/// else to do, waiting in epoll until the earliest deadline) wakes it when
/// the deadline has passed. It never completes before the deadline.
///
/// ```
/// use std::time::{Duration, Instant};
///
/// let rt = baton_executor::Runtime::new();
/// let start = Instant::now();
/// rt.block_on(baton_executor::sleep(Duration::from_millis(5)));
/// assert!(start.elapsed() >= Duration::from_millis(5));
/// ```
///
/// # Panics
///
/// When first polled outside a baton runtime, and when polled after the
/// runtime it was first polled in has shut down (it could never complete).
pub fn sleep(duration: Duration) -> Sleep {
    let now = Instant::now();
    sleep_until(now.checked_add(duration).unwrap_or_else(far_future))
}

/// Waits until `deadline`; never completes before it. See [`sleep`].
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep {
        deadline,
        entry: None,
    }
}

pub(crate) fn far_future() -> Instant {
    // About 30 years: effectively never.
    Instant::now() + Duration::from_secs(86400 * 365 * 30)
}

/// The future returned by [`sleep`] and [`sleep_until`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Sleep {
    deadline: Instant,
    entry: Option<(Arc<Driver>, Arc<TimerEntry>)>,
}

impl Sleep {
    /// The instant this sleep completes at (or after).
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Whether the deadline has passed.
    pub fn is_elapsed(&self) -> bool {
        Instant::now() >= self.deadline
    }

    /// Moves the deadline (the sleep becomes pending again if it is later).
    pub fn reset(&mut self, deadline: Instant) {
        self.cancel();
        self.deadline = deadline;
    }

    fn cancel(&mut self) {
        if let Some((driver, entry)) = self.entry.take() {
            driver.timers().cancel(&entry);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let fired = self.entry.as_ref().is_some_and(|(_, e)| e.is_fired());
        if fired || Instant::now() >= self.deadline {
            std::task::ready!(coop::poll_proceed(cx));
            self.cancel();
            return Poll::Ready(());
        }
        let this = &mut *self;
        match &this.entry {
            Some((driver, _)) if driver.timers().is_shut_down() => {
                panic!("baton: a sleep or timeout was polled after its runtime shut down")
            }
            Some((_, entry)) => {
                // The driver sets FIRED before it takes the waker: store
                // ours, then look again (`time/entry.rs`).
                entry.register(cx.waker());
                if entry.is_fired() {
                    std::task::ready!(coop::poll_proceed(cx));
                    this.cancel();
                    return Poll::Ready(());
                }
            }
            None => {
                let (driver, shard) =
                    current::with_shared(|s| s.map(|s| (s.driver().clone(), s.timer_shard())))
                        .unwrap_or_else(|| panic!("baton: sleep/timeout {}", current::OUTSIDE));
                let entry = driver.insert_timer(this.deadline, shard, cx.waker());
                let shut_down = driver.timers().is_shut_down();
                this.entry = Some((driver, entry));
                if shut_down {
                    panic!("baton: a sleep or timeout was polled after its runtime shut down");
                }
            }
        }
        Poll::Pending
    }
}

impl std::fmt::Debug for Sleep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sleep")
            .field("deadline", &self.deadline)
            .field("registered", &self.entry.is_some())
            .finish()
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.cancel();
    }
}
