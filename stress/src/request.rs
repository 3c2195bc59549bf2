//! One simulated API-gateway request: a task that binds a request id and a
//! user, runs a seeded random sequence of operations (`ops.rs`), checking
//! its values after every await, then resets its tokens.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use baton_executor::timeout;
use futures::channel::oneshot;

use crate::checks::{Checker, Stats, Who};
use crate::faults::Fate;
use crate::ops;
use crate::rng::Rng;
use crate::vars::{Mode, Restore, Snapshot, Var};

/// What every task of the run shares.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Where the values live.
    pub mode: Mode,
    /// The run's seed.
    pub seed: u64,
    /// The counters.
    pub stats: Stats,
    /// One offload in this many also sends a bare probe job to the pool.
    pub probe_every: u64,
}

/// What a request returns when its task completes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Finish {
    /// From spawn to completion, in microseconds.
    pub latency_us: u64,
    /// Its `timeout` elapsed (only for requests given that fault).
    pub timed_out: bool,
}

/// The user of request `id`: unique per request (an odd multiplier is a
/// bijection), so a leaked user is always noticed.
pub(crate) fn user_of(id: u64) -> u64 {
    id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1
}

/// Counts a request as in flight from spawn until its future is dropped
/// (completed, panicked, aborted — even before its first poll).
pub(crate) struct LiveToken(&'static Stats);

impl LiveToken {
    /// Counts one more request in flight.
    pub(crate) fn new(stats: &'static Stats) -> LiveToken {
        stats.enter_live();
        LiveToken(stats)
    }
}

impl Drop for LiveToken {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Relaxed);
    }
}

/// A request's running state: its generator, the values it must see, and
/// its checker.
pub(crate) struct ReqState {
    /// The run's shared state.
    pub sh: &'static Shared,
    /// The request id.
    pub id: u64,
    /// The request's own generator.
    pub rng: Rng,
    /// What the request must see when it reads its variables, kept in step
    /// with every `set` and `reset` (never across an await).
    pub expected: Snapshot,
    /// Counts its observations.
    pub chk: Checker,
}

impl ReqState {
    /// Reads the variables and compares them with [`ReqState::expected`].
    pub(crate) fn check(&mut self, site: &'static str) {
        let got = self.sh.mode.read();
        self.chk.snapshot(site, self.expected, got);
    }

    /// Sets `var`, checking the token's old value.
    pub(crate) fn set(&mut self, var: Var, value: u64) -> Restore {
        let restore = self.sh.mode.set(var, value);
        self.chk.value(
            "old value in the token of a set",
            var,
            self.expected.get(var),
            restore.old_value(),
        );
        self.expected.put(var, Some(value));
        restore
    }

    /// Resets a token made by [`ReqState::set`] (in any order).
    pub(crate) fn reset(&mut self, restore: Restore) {
        let var = restore.var();
        let old = restore.old_value();
        match self.sh.mode.reset(restore) {
            Ok(()) => self.expected.put(var, old),
            Err(e) => self
                .chk
                .fail(|| format!("reset of {} failed: {e}", var.name())),
        }
    }

    /// A step value unique to this request.
    pub(crate) fn fresh_step(&mut self) -> u64 {
        (self.id << 20) | self.rng.below(1 << 20)
    }
}

/// Checks, when a future holding it is dropped while armed (abort, timeout,
/// panic), that the drop runs inside the request's own context (S6).
pub(crate) struct DropCheck {
    sh: &'static Shared,
    id: u64,
    site: &'static str,
    /// Disarmed on the normal path.
    pub armed: bool,
}

impl DropCheck {
    /// An armed check for request `id`.
    pub(crate) fn new(sh: &'static Shared, id: u64, site: &'static str) -> DropCheck {
        DropCheck {
            sh,
            id,
            site,
            armed: true,
        }
    }
}

impl Drop for DropCheck {
    fn drop(&mut self) {
        if self.armed {
            let mut chk = Checker::new(&self.sh.stats, Who::Request(self.id));
            chk.value(self.site, Var::Id, Some(self.id), self.sh.mode.read().id);
        }
    }
}

/// The request task. `reached` is signalled when a request fated to be
/// aborted is asleep, waiting for it. `live` is held by the future, so it
/// is released however the future ends (even dropped before its first
/// poll).
pub(crate) async fn request(
    sh: &'static Shared,
    id: u64,
    fate: Fate,
    spawned_at: Instant,
    _live: LiveToken,
    reached: Option<oneshot::Sender<()>>,
) -> Finish {
    let mut st = ReqState {
        sh,
        id,
        rng: Rng::for_stream(sh.seed, id),
        expected: Snapshot::EMPTY,
        chk: Checker::new(&sh.stats, Who::Request(id)),
    };
    // Spawned by the driver, whose context is empty (S6: a copy).
    st.check("at the first poll of a fresh task");
    let t_id = st.set(Var::Id, id);
    let t_user = st.set(Var::User, user_of(id));
    let mut dropped = DropCheck::new(sh, id, "when its future was dropped (abort/panic)");

    let timed_out = if fate == Fate::Timeout {
        let budget = Duration::from_micros(200 + st.rng.below(1800));
        match timeout(budget, ops::run(&mut st, fate, None)).await {
            Ok(()) => {
                st.chk.fail(|| "its timeout never elapsed".into());
                false
            }
            Err(_) => true,
        }
    } else {
        ops::run(&mut st, fate, reached).await;
        false
    };
    st.check(if timed_out {
        "after its timeout elapsed (inner future dropped)"
    } else {
        "after its last operation"
    });
    dropped.armed = false;
    // Out of order on purpose: the older token first (S5).
    st.reset(t_id);
    st.check("after resetting its request_id token");
    st.reset(t_user);
    st.check("after resetting its user token");
    Finish {
        latency_us: spawned_at.elapsed().as_micros() as u64,
        timed_out,
    }
}
