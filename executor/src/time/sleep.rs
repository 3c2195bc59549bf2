//! [`sleep`], [`sleep_until`] and [`Sleep`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::coop;
use crate::current;
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
    Sleep::new(now.checked_add(duration).unwrap_or_else(far_future), now)
}

/// Waits until `deadline`; never completes before it. See [`sleep`].
pub fn sleep_until(deadline: Instant) -> Sleep {
    Sleep::new(deadline, Instant::now())
}

pub(crate) fn far_future() -> Instant {
    // About 30 years: effectively never.
    Instant::now() + Duration::from_secs(86400 * 365 * 30)
}

/// The future returned by [`sleep`] and [`sleep_until`].
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct Sleep {
    deadline: Instant,
    /// A clock reading from when the sleep was made (or reset): if the
    /// deadline is not after it, the sleep is over without registering.
    /// Polls read no clock: a registered sleep completes when the driver
    /// fires it (the driver reads the clock for every timer at once).
    read_at: Instant,
    entry: Option<Arc<TimerEntry>>,
}

impl Sleep {
    fn new(deadline: Instant, read_at: Instant) -> Sleep {
        Sleep {
            deadline,
            read_at,
            entry: None,
        }
    }

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
        self.read_at = Instant::now();
    }

    fn cancel(&mut self) {
        if let Some(entry) = self.entry.take() {
            entry.cancel();
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        match &this.entry {
            Some(entry) if entry.is_fired() => {}
            Some(entry) => {
                if entry.is_shut_down() {
                    panic!("baton: a sleep or timeout was polled after its runtime shut down")
                }
                // The driver sets FIRED before it takes the waker: store
                // ours, then look again (`time/entry.rs`).
                entry.register(cx.waker());
                if !entry.is_fired() {
                    return Poll::Pending;
                }
            }
            None if this.deadline > this.read_at => {
                let deadline = this.deadline;
                let entry = current::with_shared(|s| {
                    s.map(|s| {
                        s.driver()
                            .insert_timer(deadline, s.timer_shard(), cx.waker())
                    })
                })
                .unwrap_or_else(|| panic!("baton: sleep/timeout {}", current::OUTSIDE));
                let shut_down = entry.is_shut_down();
                this.entry = Some(entry);
                if shut_down {
                    panic!("baton: a sleep or timeout was polled after its runtime shut down");
                }
                return Poll::Pending;
            }
            // Over before it was first polled.
            None => {}
        }
        std::task::ready!(coop::poll_proceed(cx));
        this.cancel();
        Poll::Ready(())
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
