//! The operations a request runs, in a seeded random order: yield, sleep,
//! set/reset with tokens, spawn children, offload to rayon, `ctx.run` on a
//! copy. Each one re-reads the request's values after every await.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use baton_bridge::{RunBlocking, run_blocking};
use baton_context::{Context, copy_context};
use baton_executor::{JoinHandle, TaskGroup, sleep, spawn, spawn_with_context, yield_now};
use futures::FutureExt;
use futures::channel::oneshot;

use crate::checks::{Checker, Stats, Who};
use crate::faults::{Fate, INJECTED, is_injected, payload_str};
use crate::probe;
use crate::request::{DropCheck, ReqState, Shared, user_of};
use crate::rng::Rng;
use crate::vars::{Mode, Snapshot, Var};

/// Fewest operations per request.
const MIN_OPS: u64 = 4;
/// Operations per request vary in `MIN_OPS..MIN_OPS + SPREAD`.
const SPREAD: u64 = 7;

/// Runs the request's operations. A request fated to panic, time out or be
/// aborted does so at a random one of them.
pub(crate) async fn run(st: &mut ReqState, fate: Fate, mut reached: Option<oneshot::Sender<()>>) {
    let mut dropped = DropCheck::new(
        st.sh,
        st.id,
        "when its timeout dropped the request's inner future",
    );
    let n = MIN_OPS + st.rng.below(SPREAD);
    let special = st.rng.below(n);
    for i in 0..n {
        if i == special {
            match fate {
                Fate::Normal => {}
                Fate::Panic => panic!("{INJECTED}: request {} panics", st.id),
                Fate::Timeout => {
                    sleep(Duration::from_secs(30)).await;
                    st.check("after a sleep that should have outlived its timeout");
                }
                Fate::Abort { .. } => {
                    if let Some(tx) = reached.take() {
                        let _ = tx.send(());
                    }
                    sleep(Duration::from_secs(3600)).await;
                    st.check("after a sleep that should have been aborted");
                }
                Fate::RayonPanic => {
                    offload(st, true).await;
                    continue;
                }
            }
        }
        match st.rng.below(100) {
            0..20 => {
                yield_now().await;
                st.check("after yield_now");
            }
            20..40 => {
                sleep(Duration::from_micros(100 + st.rng.below(400))).await;
                st.check("after sleep");
            }
            40..55 => tokens(st).await,
            55..70 => children(st).await,
            70..88 => offload(st, false).await,
            _ => run_in_copy(st),
        }
    }
    dropped.armed = false;
}

/// Sets two variables with tokens across awaits and resets them out of
/// order (S5).
async fn tokens(st: &mut ReqState) {
    let step = st.fresh_step();
    let t_step = st.set(Var::Step, step);
    yield_now().await;
    st.check("after yield_now, holding a token");
    let t_user = st.set(Var::User, user_of(st.id) ^ 0xFFFF_0000);
    sleep(Duration::from_micros(100 + st.rng.below(300))).await;
    st.check("after sleep, holding two tokens");
    st.reset(t_step);
    st.check("after resetting the older token first");
    yield_now().await;
    st.check("after yield_now, holding the newer token");
    st.reset(t_user);
    st.check("after resetting both tokens");
}

/// `ctx.run` on a copy: the closure sees the request's values, its writes
/// land in the copy and nowhere else (S3, S4).
fn run_in_copy(st: &mut ReqState) {
    let mode = st.sh.mode;
    let marker = st.id | (1 << 62);
    let step = st.fresh_step();
    let ((seen, inside), copy) = mode.run_in_copy(|| {
        let seen = mode.read();
        let _ = mode.set(Var::Id, marker);
        let _ = mode.set(Var::Step, step);
        (seen, mode.read())
    });
    let expected = st.expected;
    let written = Snapshot {
        id: Some(marker),
        step: Some(step),
        ..expected
    };
    st.chk.snapshot(
        "inside ctx.run on a copy (the caller's values)",
        expected,
        seen,
    );
    st.chk
        .snapshot("inside ctx.run on a copy, after setting", written, inside);
    st.chk
        .snapshot("in the copy after ctx.run (its writes)", written, copy);
    st.check("after ctx.run on a copy (its writes must stay in the copy)");
}

/// Offloads a closure to rayon with `run_blocking` (a copy of the context)
/// or `ctx.run_blocking` (a given context): the closure sees the request's
/// values; its writes stay in its context; a panic in it is resumed here.
async fn offload(st: &mut ReqState, inject_panic: bool) {
    let sh = st.sh;
    let mode = sh.mode;
    let id = st.id;
    let expected = st.expected;
    let job_user = user_of(id) ^ 0xABCD;
    let job = move || {
        sh.stats.jobs_run.fetch_add(1, Relaxed);
        let mut chk = Checker::new(&sh.stats, Who::Job(id));
        chk.snapshot("inside the run_blocking closure", expected, mode.read());
        let _ = mode.set(Var::User, job_user);
        chk.value(
            "inside the run_blocking closure, after its own set",
            Var::User,
            Some(job_user),
            mode.read().user,
        );
        if inject_panic {
            panic!("{INJECTED}: the rayon closure of request {id} panics");
        }
        id
    };
    let given: Option<Context> = (mode == Mode::Context && st.rng.below(3) == 0).then(copy_context);
    let task = match &given {
        Some(ctx) => ctx.run_blocking(job),
        None => run_blocking(job),
    };
    match AssertUnwindSafe(task).catch_unwind().await {
        Ok(returned) => {
            if inject_panic {
                st.chk
                    .fail(|| "the rayon closure's panic was not resumed at the await".into());
            }
            st.chk.value(
                "value returned by run_blocking",
                Var::Id,
                Some(id),
                Some(returned),
            );
        }
        Err(payload) if inject_panic && is_injected(&*payload) => {
            sh.stats.rayon_panics_caught.fetch_add(1, Relaxed);
        }
        Err(payload) => {
            let msg = payload_str(&*payload)
                .unwrap_or("(not a string)")
                .to_owned();
            st.chk
                .fail(|| format!("run_blocking panicked unexpectedly: {msg}"));
        }
    }
    st.check(if inject_panic {
        "after catching the rayon closure's panic at the await"
    } else {
        "after awaiting run_blocking"
    });
    if let Some(ctx) = given {
        let written = Snapshot {
            user: Some(job_user),
            ..expected
        };
        st.chk.snapshot(
            "in the context given to ctx.run_blocking (the closure's writes)",
            written,
            Snapshot::of(&ctx),
        );
    }
    if st.rng.below(sh.probe_every) == 0 {
        probe::spawn_one(sh);
    }
}

/// Counts a child as finished when its future is dropped, however it ends.
struct ChildToken(&'static Stats);

impl ChildToken {
    fn new(stats: &'static Stats) -> ChildToken {
        stats.children_spawned.fetch_add(1, Relaxed);
        ChildToken(stats)
    }
}

impl Drop for ChildToken {
    fn drop(&mut self) {
        self.0.children_finished.fetch_add(1, Relaxed);
    }
}

/// The children of one `children` operation.
enum Kids {
    Handles(Vec<JoinHandle<Snapshot>>),
    Group(TaskGroup<Snapshot>),
    /// One child in a given context (`spawn_with_context`): its writes must
    /// land there.
    Shared(Context, JoinHandle<Snapshot>),
}

/// Spawns 1–3 children, changes the parent's values right after spawning,
/// and joins them (S6).
async fn children(st: &mut ReqState) {
    let sh = st.sh;
    let id = st.id;
    let step = st.fresh_step();
    let t_step = st.set(Var::Step, step);
    let at_spawn = st.expected;
    let seed = st.rng.next_u64();
    let count = 1 + st.rng.below(3);
    let kids = match st.rng.below(4) {
        0 | 1 => Kids::Handles(
            (0..count)
                .map(|n| {
                    spawn(child(
                        sh,
                        id,
                        n,
                        at_spawn,
                        seed,
                        false,
                        ChildToken::new(&sh.stats),
                    ))
                })
                .collect(),
        ),
        2 => {
            let mut group = TaskGroup::new();
            for n in 0..count {
                group.spawn(child(
                    sh,
                    id,
                    n,
                    at_spawn,
                    seed,
                    false,
                    ChildToken::new(&sh.stats),
                ));
            }
            Kids::Group(group)
        }
        _ => {
            let ctx = match sh.mode {
                Mode::Context => copy_context(),
                Mode::ThreadLocal => Context::new(),
            };
            let token = ChildToken::new(&sh.stats);
            let keep = sh.mode == Mode::Context;
            let handle =
                spawn_with_context(ctx.clone(), child(sh, id, 0, at_spawn, seed, keep, token));
            Kids::Shared(ctx, handle)
        }
    };
    // The children took a copy at spawn time: this must not reach them.
    let t_after = st.set(Var::Step, step + 1);
    yield_now().await;
    st.check("after spawning children");
    match kids {
        Kids::Handles(handles) => {
            for handle in handles {
                if let Err(e) = handle.await {
                    st.chk.fail(|| format!("a child failed: {e}"));
                }
                st.check("after awaiting a child's JoinHandle");
            }
        }
        Kids::Group(mut group) => {
            while let Some(result) = group.join_next().await {
                if let Err(e) = result {
                    st.chk
                        .fail(|| format!("a child in a TaskGroup failed: {e}"));
                }
                st.check("after TaskGroup::join_next");
            }
        }
        Kids::Shared(ctx, handle) => {
            match handle.await {
                Ok(left) if sh.mode == Mode::Context => st.chk.snapshot(
                    "in the context given to spawn_with_context (the child's writes)",
                    left,
                    Snapshot::of(&ctx),
                ),
                Ok(_) => {}
                Err(e) => st
                    .chk
                    .fail(|| format!("a child with a given context failed: {e}")),
            }
            st.check("after awaiting a child spawned with a given context");
        }
    }
    st.reset(t_after);
    st.check("after resetting the post-spawn token");
    st.reset(t_step);
    st.check("after the children, tokens reset");
}

/// A child task: sees its parent's values as of spawn time, sets its own,
/// and must keep seeing its own across awaits (never its siblings' or the
/// parent's later ones). Returns what it leaves in its context.
async fn child(
    sh: &'static Shared,
    parent: u64,
    n: u64,
    at_spawn: Snapshot,
    seed: u64,
    keep: bool,
    _done: ChildToken,
) -> Snapshot {
    let mode = sh.mode;
    let mut chk = Checker::new(&sh.stats, Who::Child(parent, n));
    chk.snapshot(
        "at its first poll (the parent's values at spawn time)",
        at_spawn,
        mode.read(),
    );
    let mut rng = Rng::for_stream(seed, n);
    let mine = Snapshot {
        id: at_spawn.id,
        user: Some(user_of(parent) ^ ((n + 1) << 56)),
        step: Some(rng.next_u64() >> 2),
    };
    let t_user = mode.set(Var::User, mine.user.unwrap_or_default());
    let t_step = mode.set(Var::Step, mine.step.unwrap_or_default());
    chk.snapshot("after setting its own values", mine, mode.read());
    yield_now().await;
    chk.snapshot("after yield_now", mine, mode.read());
    match rng.below(4) {
        0 => {
            sleep(Duration::from_micros(100 + rng.below(300))).await;
            chk.snapshot("after sleep", mine, mode.read());
        }
        1 => {
            // Offload from the child: the closure sees the child's values.
            let seen = run_blocking(move || mode.read()).await;
            chk.snapshot("inside a run_blocking closure of a child", mine, seen);
            chk.snapshot("after awaiting run_blocking", mine, mode.read());
        }
        2 => {
            // A grandchild sees the child's values, not the request's.
            let token = ChildToken::new(&sh.stats);
            match spawn(grandchild(sh, parent, n, mine, token)).await {
                Ok(()) => {}
                Err(e) => chk.fail(|| format!("a grandchild failed: {e}")),
            }
            chk.snapshot("after awaiting a grandchild", mine, mode.read());
        }
        _ => {}
    }
    if keep {
        return mine;
    }
    for (what, result) in [("step", mode.reset(t_step)), ("user", mode.reset(t_user))] {
        if let Err(e) = result {
            chk.fail(|| format!("reset of its {what} token failed: {e}"));
        }
    }
    chk.snapshot("after resetting its tokens", at_spawn, mode.read());
    at_spawn
}

/// A grandchild: sees its parent child's values at spawn time, sets its own
/// step, and keeps seeing it across an await.
async fn grandchild(
    sh: &'static Shared,
    request: u64,
    n: u64,
    at_spawn: Snapshot,
    _done: ChildToken,
) {
    let mode = sh.mode;
    let mut chk = Checker::new(&sh.stats, Who::Grandchild(request, n));
    chk.snapshot(
        "grandchild at its first poll (its parent child's values)",
        at_spawn,
        mode.read(),
    );
    let mine = Snapshot {
        step: Some(request << 20 | 0xF_0000 | n),
        ..at_spawn
    };
    let _ = mode.set(Var::Step, mine.step.unwrap_or_default());
    yield_now().await;
    chk.snapshot("grandchild after yield_now", mine, mode.read());
}
