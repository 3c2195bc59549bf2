//! Biased entering: how a [`Context`](crate::Context) that one thread runs
//! over and over is entered without an atomic read-modify-write.
//!
//! A `Context` is `Sync`, so two threads may try to enter it at once, and S4
//! says at most one may succeed. The plain way (`state.rs`) is a
//! compare-and-swap on the ENTERED bit: 5–10 ns on today's servers, most of
//! what `ctx.run(noop)` costs. But a context is usually entered by one
//! thread at a time for long stretches — a request's context by the thread
//! serving it, a context kept by a worker loop. For those, this module does
//! what JVMs called *biased locking*: the context is *biased* towards the
//! thread that keeps entering it, and that thread enters and leaves with
//! plain loads and stores. Another thread that wants in *revokes* the bias
//! first, which is expensive (a process-wide memory barrier, a system call),
//! and happens at most once in the context's life.
//!
//! # The words
//!
//! ```text
//!  bias      UNBIASED (0) | REVOKED (1) | the owner thread's token (≥ 2)
//!            written only by a thread holding ENTERED (the slow path)
//!  owner_in  0 | TRYING | INSIDE: where the owner is; written only by the
//!            owner thread (the one whose token `bias` holds or held)
//!  streak    the last slow enterer's token and its consecutive entries;
//!            written only by a thread holding ENTERED
//! ```
//!
//! Thread tokens come from a counter and are never reused.
//!
//! # The protocol
//!
//! * **Slow path** (everyone, while the context is not biased to them):
//!   claim ENTERED with a compare-and-swap (`state.rs`), then look at `bias`:
//!   * UNBIASED: entered. (`owner_in` was never used.)
//!   * another thread's token: *revoke* — store REVOKED, then a **heavy
//!     barrier** (below) — and continue as for REVOKED.
//!   * REVOKED: wait while `owner_in` is TRYING (the owner is a few
//!     instructions from deciding); if it is INSIDE, the owner is running
//!     inside: release ENTERED and fail with `AlreadyEntered`; if 0, entered.
//! * **Granting**: a thread leaving by the slow path counts its consecutive
//!   entries in `streak`; at [`GRANT_AFTER`] it assigns the context its
//!   identity (so that the owner never writes the entry word) and stores its
//!   token in `bias`, still holding ENTERED. Only an UNBIASED context is
//!   ever granted: once revoked, a context stays on the slow path.
//! * **Fast path** (the owner, while `bias` is its token): if `owner_in` is
//!   not 0, it is inside already: `AlreadyEntered` (recursion). Else store
//!   TRYING, a **light barrier**, and load `bias` again: still ours →
//!   store INSIDE, entered; revoked → store 0 and take the slow path.
//!   Leaving stores 0 (Release).
//!
//! The owner's "store TRYING, load `bias`" and the revoker's "store
//! REVOKED, load `owner_in`" are the two sides of Dekker's algorithm: with a
//! full barrier between each store and load, at least one of the two sees
//! the other's store, so they cannot both go in. The barriers are
//! *asymmetric*: the owner's is a compiler fence — free — and the revoker's
//! is `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`, which makes every
//! running thread of the process execute a full barrier before it returns,
//! which is as good as the owner having had one between its store and its
//! load (the pattern of Linux's own `sys_membarrier` users, of folly's
//! `asymmetricHeavyBarrier`, and of .NET's `FlushProcessWriteBuffers`).
//! Where that system call is not available, no context is ever biased. (The
//! process registers for it once; a child of `fork`, which does not inherit
//! the registration, registers again when its first barrier is refused.)
//! Under loom and Miri both barriers are `SeqCst` fences, so the models and
//! the interpreter check the protocol itself.
//!
//! Why the rest holds:
//!
//! * *A revoker that sees `owner_in` = 0 owns the context*: the owner is not
//!   inside, and its next attempt sees REVOKED (Dekker) and goes the slow
//!   way, where it meets our ENTERED. TRYING is transient: the owner goes on
//!   to INSIDE or to 0 without waiting for anything.
//! * *No recursion goes unnoticed*: the owner, inside by the fast path, has
//!   `owner_in` = INSIDE; a nested attempt sees it on the fast path, or, if
//!   the bias was revoked meanwhile, on the slow path's check of
//!   `owner_in`. A bias is granted on the way *out*, so a thread is never
//!   inside by the slow path while the context is biased to it.
//! * *The owner never writes the entry word*, which a slow-path holder may
//!   hold meanwhile (briefly, until it sees INSIDE): the identity is
//!   assigned before the grant.
//! * *Visibility*: the fast path follows only the owner's own earlier runs
//!   (anyone else would have revoked first). A slow enterer after the owner
//!   reads `owner_in` = 0 with Acquire, pairing with the owner's Release on
//!   leaving, so it sees the owner's publishes.
//!
//! The loom model `context_bias` (in `loom-tests/`) races a biased owner's
//! entries against a revoking thread.

use std::cell::Cell;

use crate::error::ContextError;
use crate::sync::{AtomicU64, AtomicUsize, Ordering, spin_wait};

/// Consecutive slow entries by one thread after which the context is biased
/// to it.
pub(crate) const GRANT_AFTER: u64 = if cfg!(loom) { 1 } else { 8 };

const UNBIASED: u64 = 0;
const REVOKED: u64 = 1;

const TRYING: usize = 1;
const INSIDE: usize = 2;

/// Bits of `streak` that count entries; the token is above them.
const STREAK_BITS: u32 = 8;

/// The bias words of a shared context; see the module docs.
pub(crate) struct Bias {
    bias: AtomicU64,
    owner_in: AtomicUsize,
    streak: AtomicU64,
}

/// What the slow path found, once it holds ENTERED.
pub(crate) enum Claim {
    /// The context is this thread's.
    Entered,
    /// The owner is inside: release ENTERED and fail.
    OwnerInside,
}

impl Bias {
    pub(crate) fn new() -> Bias {
        Bias {
            bias: AtomicU64::new(UNBIASED),
            owner_in: AtomicUsize::new(0),
            streak: AtomicU64::new(0),
        }
    }

    /// The fast path: `None` if the context is not biased to this thread
    /// (take the slow path), else whether this thread got in.
    #[inline(always)]
    pub(crate) fn try_enter_biased(&self) -> Option<Result<(), ContextError>> {
        let bias = self.bias.load(Ordering::Relaxed);
        if bias < 2 || bias != token() {
            return None;
        }
        self.enter_as_owner(bias)
    }

    #[inline(always)]
    fn enter_as_owner(&self, me: u64) -> Option<Result<(), ContextError>> {
        // Only this thread writes `owner_in`.
        if self.owner_in.load(Ordering::Relaxed) != 0 {
            return Some(Err(ContextError::AlreadyEntered));
        }
        self.owner_in.store(TRYING, Ordering::Relaxed);
        light_barrier();
        if self.bias.load(Ordering::Relaxed) == me {
            self.owner_in.store(INSIDE, Ordering::Relaxed);
            Some(Ok(()))
        } else {
            // Revoked: step back, and queue up like everyone else.
            self.owner_in.store(0, Ordering::Release);
            None
        }
    }

    /// Leaves by the fast path if this thread came in by it: `false` if it
    /// holds ENTERED instead (then the caller releases that).
    #[inline(always)]
    pub(crate) fn exit_biased(&self) -> bool {
        // INSIDE only ever comes from the owner's own fast entry, and only
        // the entered thread leaves: INSIDE here means it is us.
        if self.owner_in.load(Ordering::Relaxed) == INSIDE {
            self.owner_in.store(0, Ordering::Release);
            true
        } else {
            false
        }
    }

    /// The slow path, called holding ENTERED: revokes another thread's bias,
    /// and finds out whether its owner is inside.
    #[inline]
    pub(crate) fn claim(&self) -> Claim {
        // ENTERED's Acquire ordered every earlier grant or revocation (made
        // holding ENTERED, released with it) before this load.
        let bias = self.bias.load(Ordering::Relaxed);
        if bias == UNBIASED {
            return Claim::Entered;
        }
        self.claim_biased(bias)
    }

    #[cold]
    #[inline(never)]
    fn claim_biased(&self, bias: u64) -> Claim {
        if bias != REVOKED {
            // Someone else's (or a dead thread's; a live owner trying again
            // by the slow path is ruled out: it would have had the fast one).
            self.bias.store(REVOKED, Ordering::Relaxed);
            heavy_barrier();
            revocations::record();
        }
        let mut spins = 0;
        loop {
            match self.owner_in.load(Ordering::Acquire) {
                0 => return Claim::Entered,
                INSIDE => return Claim::OwnerInside,
                _ => spin_wait(&mut spins),
            }
        }
    }

    /// Called by a thread about to release ENTERED: counts its streak of
    /// entries and, at [`GRANT_AFTER`], biases the context to it. `assign_id`
    /// makes sure the context has its identity first.
    #[inline]
    pub(crate) fn on_slow_exit(&self, assign_id: impl FnOnce()) {
        if self.bias.load(Ordering::Relaxed) != UNBIASED {
            return;
        }
        let me = token();
        let streak = self.streak.load(Ordering::Relaxed);
        let mut count = if streak >> STREAK_BITS == me {
            (streak & ((1 << STREAK_BITS) - 1)) + 1
        } else {
            1
        };
        if count == GRANT_AFTER {
            if barriers_available() && revocations::may_grant() {
                assign_id();
                // Seen by other threads after they claim ENTERED (which
                // pairs with the Release that follows), and by this thread
                // at once.
                self.bias.store(me, Ordering::Relaxed);
                return;
            }
            // Refused: count a new streak, so that the refusal (a clock
            // read, while grants are paused) is asked for once per streak,
            // not on every exit; the count also stays within its bits.
            count = 0;
        }
        self.streak
            .store(me << STREAK_BITS | count, Ordering::Relaxed);
    }

    /// Whether the context is biased to some thread.
    #[cfg(all(test, not(loom)))]
    pub(crate) fn is_biased(&self) -> bool {
        self.bias.load(Ordering::Relaxed) >= 2
    }

    /// Whether the owner is inside by the fast path (a snapshot).
    pub(crate) fn owner_inside(&self) -> bool {
        self.owner_in.load(Ordering::Relaxed) == INSIDE
    }
}

/// This thread's token: unique, never reused, at least 2.
#[inline(always)]
fn token() -> u64 {
    TOKEN.with(|token| match token.get() {
        0 => {
            let fresh = next_token();
            token.set(fresh);
            fresh
        }
        token => token,
    })
}

#[cold]
fn next_token() -> u64 {
    // A std atomic under loom too: a counter, not protocol (see `sync.rs`).
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(2);
    let token = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    assert!(token < 1 << (64 - STREAK_BITS), "thread tokens exhausted");
    token
}

crate::sync::current_thread_local! {
    static TOKEN: Cell<u64> = Cell::new(0);
}

/// The owner's side of the asymmetric barrier: the compiler must not move
/// the load of `bias` above the store of TRYING; the processor may, and the
/// heavy barrier accounts for that.
#[inline(always)]
fn light_barrier() {
    #[cfg(any(loom, miri))]
    crate::sync::fence(Ordering::SeqCst);
    #[cfg(not(any(loom, miri)))]
    std::sync::atomic::compiler_fence(Ordering::SeqCst);
}

/// The revoker's side: a full barrier on every running thread of the
/// process (see the module docs).
fn heavy_barrier() {
    #[cfg(any(loom, miri))]
    crate::sync::fence(Ordering::SeqCst);
    #[cfg(not(any(loom, miri)))]
    membarrier::heavy();
}

/// Whether contexts may be biased: the heavy barrier is available.
fn barriers_available() -> bool {
    #[cfg(any(loom, miri))]
    return true;
    #[cfg(not(any(loom, miri)))]
    return membarrier::available();
}

mod revocations {
    //! A process-wide budget of revocations. Each costs a `membarrier`,
    //! which interrupts every core running a thread of the process; biasing
    //! pays only while most biases are never revoked. A program whose
    //! contexts keep moving between threads after a streak on one (say,
    //! futures under `attach` that migrate between executor workers) would
    //! pay that again and again, so once revocations pass
    //! [`PER_SECOND`] in a one-second window, no new bias is granted until
    //! the window after next: such a program settles on the plain
    //! compare-and-swap, at most [`PER_SECOND`] barriers a second.
    //! (JVMs with biased locking had the same failure mode, and a similar
    //! cure: bulk revocation.)
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Instant;

    /// Revocations a second beyond which new biases are paused.
    pub(super) const PER_SECOND: u64 = 1000;

    /// The budget's state: the current window and its count, and until when
    /// grants are paused (milliseconds since the first use). Data, not
    /// protocol: a lost update only shifts the heuristic.
    pub(super) struct Budget {
        window: AtomicU64,
        count: AtomicU64,
        paused_until: AtomicU64,
    }

    impl Budget {
        pub(super) const fn new() -> Budget {
            Budget {
                window: AtomicU64::new(0),
                count: AtomicU64::new(0),
                paused_until: AtomicU64::new(0),
            }
        }

        /// Counts a revocation at `now` (ms).
        pub(super) fn record(&self, now: u64) {
            let window = now / 1000;
            if self.window.swap(window, Ordering::Relaxed) != window {
                self.count.store(0, Ordering::Relaxed);
            }
            if self.count.fetch_add(1, Ordering::Relaxed) + 1 > PER_SECOND {
                // Paused for the rest of this window and all of the next.
                self.paused_until
                    .store((window + 2) * 1000, Ordering::Relaxed);
            }
        }

        /// Whether a bias may be granted at `now` (ms).
        pub(super) fn may_grant(&self, now: u64) -> bool {
            now >= self.paused_until.load(Ordering::Relaxed)
        }
    }

    static BUDGET: Budget = Budget::new();

    fn now_ms() -> u64 {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_millis() as u64
    }

    pub(super) fn record() {
        BUDGET.record(now_ms());
    }

    pub(super) fn may_grant() -> bool {
        BUDGET.may_grant(now_ms())
    }

    /// Forgets past revocations (tests that revoke in bulk call this, so
    /// that the tests after them get biases again).
    #[cfg(all(test, not(loom)))]
    pub(super) fn reset() {
        BUDGET.count.store(0, Ordering::Relaxed);
        BUDGET.paused_until.store(0, Ordering::Relaxed);
    }
}

#[cfg(not(any(loom, miri)))]
mod membarrier {
    //! `membarrier(2)`, registered once per process. On other systems, or
    //! where the call is refused (an old kernel, a seccomp filter), it is
    //! "not available" and no context is biased.
    use std::sync::atomic::{AtomicU8, Ordering, fence};

    const UNKNOWN: u8 = 0;
    const YES: u8 = 1;
    const NO: u8 = 2;

    static STATE: AtomicU8 = AtomicU8::new(UNKNOWN);

    pub(super) fn available() -> bool {
        match STATE.load(Ordering::Acquire) {
            YES => true,
            NO => false,
            _ => {
                let yes = register();
                STATE.store(if yes { YES } else { NO }, Ordering::Release);
                yes
            }
        }
    }

    #[cfg(target_os = "linux")]
    const CMD_PRIVATE_EXPEDITED: libc::c_int = 1 << 3;
    #[cfg(target_os = "linux")]
    const CMD_REGISTER_PRIVATE_EXPEDITED: libc::c_int = 1 << 4;

    #[cfg(target_os = "linux")]
    fn register() -> bool {
        // SAFETY: membarrier takes three integers and touches no memory of
        // ours; registering twice (two threads racing here) is harmless.
        unsafe { libc::syscall(libc::SYS_membarrier, CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0 }
    }

    #[cfg(not(target_os = "linux"))]
    fn register() -> bool {
        false
    }

    /// Only called once `available()` said yes (a context was biased).
    pub(super) fn heavy() {
        fence(Ordering::SeqCst);
        #[cfg(target_os = "linux")]
        {
            // SAFETY: as in `register`.
            let expedited =
                || unsafe { libc::syscall(libc::SYS_membarrier, CMD_PRIVATE_EXPEDITED, 0, 0) };
            // Registered, so it succeeds — unless this is the child of a
            // `fork`, which the registration does not carry over to: then
            // register again, and retry.
            let done = expedited() == 0 || (register() && expedited() == 0);
            // Going on without the barrier would break mutual exclusion.
            assert!(done, "baton: membarrier failed after registration");
        }
        #[cfg(not(target_os = "linux"))]
        unreachable!("no context is biased without membarrier");
        fence(Ordering::SeqCst);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    //! Biased entering keeps S4: one thread inside at a time, never
    //! recursively, and later enterers see earlier runs' writes.
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread;

    use super::GRANT_AFTER;
    use crate::{Context, ContextError, ContextVar};

    static V: ContextVar<u64> = ContextVar::new("v");

    #[test]
    fn a_burst_of_revocations_pauses_new_biases_for_a_while() {
        use super::revocations::{Budget, PER_SECOND};
        let budget = Budget::new();
        let start = 5_000;
        for i in 0..PER_SECOND {
            budget.record(start + i % 1000);
        }
        assert!(budget.may_grant(start + 999), "within budget");
        budget.record(start + 999);
        assert!(!budget.may_grant(start + 999), "over budget: paused");
        assert!(
            !budget.may_grant(start + 1999),
            "paused through the next window"
        );
        assert!(budget.may_grant(start + 2000), "and then granted again");
        // A new window starts counting afresh.
        budget.record(start + 2500);
        assert!(budget.may_grant(start + 2500));
    }

    /// Serialises the tests that need biases granted, against the one that
    /// revokes in bulk (which would pause grants for a while).
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn serial() -> std::sync::MutexGuard<'static, ()> {
        SERIAL
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A context biased to the calling thread.
    fn biased() -> Context {
        let ctx = Context::new();
        for _ in 0..GRANT_AFTER {
            ctx.run(|| {});
        }
        assert!(
            ctx.is_biased() || !super::barriers_available(),
            "biased after {GRANT_AFTER} runs"
        );
        ctx
    }

    #[test]
    fn the_owner_is_kept_out_of_a_nested_run() {
        let _serial = serial();
        let ctx = biased();
        ctx.run(|| {
            assert!(ctx.is_entered());
            assert_eq!(ctx.try_run(|| ()), Err(ContextError::AlreadyEntered));
        });
        assert!(!ctx.is_entered());
    }

    #[test]
    fn another_thread_is_kept_out_while_the_owner_is_inside_then_let_in() {
        let _serial = serial();
        let ctx = biased();
        let inside = Barrier::new(2);
        let tried = Barrier::new(2);
        thread::scope(|s| {
            s.spawn(|| {
                inside.wait();
                // The owner is inside: revoking must not let us in.
                assert_eq!(ctx.try_run(|| ()), Err(ContextError::AlreadyEntered));
                tried.wait();
            });
            ctx.run(|| {
                let _ = V.set(1);
                inside.wait();
                tried.wait();
                // Revoked meanwhile, and still inside: no nested run either.
                assert_eq!(ctx.try_run(|| ()), Err(ContextError::AlreadyEntered));
            });
        });
        // Revoked: another thread gets in now, and sees the owner's write.
        thread::scope(|s| {
            s.spawn(|| {
                ctx.run(|| {
                    assert_eq!(V.get(), Some(1));
                    let _ = V.set(2);
                });
            });
        });
        // The former owner comes in by the slow path, and sees that write.
        assert_eq!(ctx.run(|| V.get()), Some(2));
    }

    #[test]
    fn a_token_from_a_biased_context_is_refused_elsewhere() {
        let _serial = serial();
        let ctx = biased();
        let token = ctx.run(|| V.set(5));
        assert_eq!(V.reset(token), Err(ContextError::WrongContext));
        let token = ctx.run(|| V.set(6));
        ctx.run(|| V.reset(token)).unwrap();
        assert_eq!(ctx.get(&V), Some(5));
    }

    #[test]
    fn a_panic_inside_leaves_the_biased_context_enterable() {
        let _serial = serial();
        let ctx = biased();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ctx.run(|| panic!("inside"));
        }));
        assert!(caught.is_err());
        assert!(!ctx.is_entered());
        assert_eq!(ctx.run(|| 7), 7);
    }

    /// Sets its flag when dropped.
    struct SetOnDrop<'a>(&'a AtomicBool);

    impl Drop for SetOnDrop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }

    /// For each of many fresh contexts: one thread runs it until it is
    /// biased to it, then keeps running it while a second thread tries too,
    /// so that the revocation races the owner's fast entries. Nobody is ever
    /// inside together with someone else, and every run sees every earlier
    /// run's write.
    #[test]
    fn an_owner_and_a_revoker_hammering_one_context_are_never_inside_together() {
        let _serial = serial();
        // Fewer revocations than the budget allows in a second, so that
        // every context here is biased.
        let (contexts, rounds) = if cfg!(miri) { (3, 12) } else { (900, 40) };
        const STAY: usize = if cfg!(miri) { 0 } else { 200 };
        for _ in 0..contexts {
            let ctx = Context::new();
            let occupied = AtomicBool::new(false);
            let entered = std::sync::atomic::AtomicU64::new(0);
            let primed = Barrier::new(2);
            let revoker_tried = AtomicBool::new(false);
            let attempt = || {
                let _ = ctx.try_run(|| {
                    assert!(!occupied.swap(true, Ordering::SeqCst), "two inside");
                    let n = V.get().unwrap_or(0);
                    // Stay a while: the revoker should arrive while the
                    // owner is inside.
                    for _ in 0..STAY {
                        std::hint::spin_loop();
                    }
                    let _ = V.set(n + 1);
                    occupied.store(false, Ordering::SeqCst);
                    entered.fetch_add(1, Ordering::Relaxed);
                });
            };
            thread::scope(|s| {
                s.spawn(|| {
                    for _ in 0..GRANT_AFTER {
                        attempt();
                    }
                    primed.wait();
                    // Keep entering until the revoker has tried at least
                    // once (it may be slow to wake), then a few more times.
                    while !revoker_tried.load(Ordering::Acquire) {
                        attempt();
                    }
                    for _ in 0..rounds {
                        attempt();
                    }
                });
                s.spawn(|| {
                    primed.wait();
                    for _ in 0..rounds {
                        // Tell the owner once the attempt is over, even if
                        // it panicked (the owner would wait for ever).
                        let _tried = SetOnDrop(&revoker_tried);
                        attempt();
                    }
                });
            });
            assert_eq!(ctx.get(&V), Some(entered.load(Ordering::Relaxed)));
        }
        super::revocations::reset();
    }
}
