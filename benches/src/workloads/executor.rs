//! Executor workloads, generic over [`BenchRuntime`].
//!
//! From tokio's `benches/rt_multi_threaded.rs`: [`spawn_many_local`],
//! [`spawn_many_remote`] (idle, and busy with [`BusyLoad`] running),
//! [`yield_many`], [`ping_pong`], [`chained_spawn`]. From async-executor's
//! `benches/executor.rs` (smol): [`web_server`] and [`channels`]. The shapes
//! follow those benches; the code is ours, written against the
//! [`Spawner`] abstraction, and every function checks that its work was done.
//!
//! One call = one iteration; the runtime is built once outside.

use std::future::Future;
use std::mem;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use futures::channel::oneshot;

use crate::runtimes::{BenchRuntime, Spawner};

/// Tasks spawned by the `spawn_many_*` workloads.
pub const NUM_SPAWN: usize = 10_000;
/// Tasks in [`yield_many`].
pub const YIELD_TASKS: usize = 200;
/// Yields per task in [`yield_many`].
pub const NUM_YIELD: usize = 1_000;
/// Pairs in [`ping_pong`].
pub const NUM_PINGS: usize = 1_000;
/// Length of the chain in [`chained_spawn`].
pub const CHAIN: usize = 1_000;
/// Tasks (and channel hops) in smol's workloads.
pub const SMOL_TASKS: usize = 300;
/// Steps per task in smol's workloads.
pub const SMOL_STEPS: usize = 300;
/// How long a [`BusyLoad`] task spins between yields.
pub const STALL: Duration = Duration::from_micros(10);

/// 10,000 empty tasks spawned from inside a task of the runtime, then awaited.
///
/// # Panics
///
/// If not every task ran.
pub fn spawn_many_local<R: BenchRuntime>(rt: &R) {
    let sp = rt.spawner();
    let ran = Arc::new(AtomicUsize::new(0));
    let root = {
        let sp2 = sp.clone();
        let ran = ran.clone();
        sp.spawn(async move {
            let mut tasks = Vec::with_capacity(NUM_SPAWN);
            for _ in 0..NUM_SPAWN {
                let ran = ran.clone();
                tasks.push(sp2.spawn_inside(async move {
                    ran.fetch_add(1, Relaxed);
                }));
            }
            for t in tasks {
                t.await;
            }
        })
    };
    rt.block_on(root);
    assert_eq!(ran.load(Relaxed), NUM_SPAWN, "spawn_many_local: tasks lost");
}

/// 10,000 empty tasks spawned from the benchmark thread (not a worker), then
/// awaited from `block_on`. With a [`BusyLoad`] running this is tokio's
/// `spawn_many_remote_busy1`; without, `spawn_many_remote_idle`.
///
/// # Panics
///
/// If not every task ran.
pub fn spawn_many_remote<R: BenchRuntime>(rt: &R) {
    let sp = rt.spawner();
    let mut tasks = Vec::with_capacity(NUM_SPAWN);
    for i in 0..NUM_SPAWN {
        tasks.push(sp.spawn(async move { i }));
    }
    let sum = rt.block_on(async move {
        let mut sum = 0;
        for t in tasks {
            sum += t.await;
        }
        sum
    });
    assert_eq!(
        sum,
        NUM_SPAWN * (NUM_SPAWN - 1) / 2,
        "spawn_many_remote: wrong sum"
    );
}

/// Keeps a runtime busy: `2 × workers` tasks that yield and then spin for
/// [`STALL`], until [`stop`](BusyLoad::stop) (tokio's `busy1` load).
pub struct BusyLoad<S: Spawner> {
    flag: Arc<AtomicBool>,
    tasks: Vec<S::Task<usize>>,
}

impl<S: Spawner> BusyLoad<S> {
    /// Starts the load on `rt`.
    pub fn start<R: BenchRuntime<Spawner = S>>(rt: &R, workers: usize) -> Self {
        let sp = rt.spawner();
        let flag = Arc::new(AtomicBool::new(true));
        let tasks = (0..2 * workers)
            .map(|_| {
                let flag = flag.clone();
                sp.spawn(async move {
                    let mut rounds = 0;
                    while flag.load(Relaxed) {
                        S::yield_now().await;
                        stall();
                        rounds += 1;
                    }
                    rounds
                })
            })
            .collect();
        BusyLoad { flag, tasks }
    }

    /// Stops the load and waits for its tasks; returns how many rounds they
    /// ran (more than 0 unless the runtime starved them).
    pub fn stop<R: BenchRuntime<Spawner = S>>(mut self, rt: &R) -> usize {
        self.flag.store(false, Relaxed);
        let tasks = mem::take(&mut self.tasks);
        rt.block_on(async move {
            let mut rounds = 0;
            for t in tasks {
                rounds += t.await;
            }
            rounds
        })
    }
}

impl<S: Spawner> Drop for BusyLoad<S> {
    fn drop(&mut self) {
        self.flag.store(false, Relaxed);
        for t in self.tasks.drain(..) {
            S::detach(t);
        }
    }
}

fn stall() {
    let now = Instant::now();
    while now.elapsed() < STALL {
        std::thread::yield_now();
    }
}

/// 200 tasks spawned from outside, each yielding 1,000 times.
///
/// # Panics
///
/// If the yield count is short.
pub fn yield_many<R: BenchRuntime>(rt: &R) {
    yield_many_wrapped(rt, |_, fut| fut, |_| {});
}

/// [`yield_many`], with each task's future passed through `wrap(i, fut)`
/// before spawning and `check(i)` called inside the task after its yields
/// (to bind and read back a context value, for instance).
///
/// # Panics
///
/// If the yield count is short, or as `check` does.
pub fn yield_many_wrapped<R, W, Fut>(rt: &R, wrap: W, check: fn(usize))
where
    R: BenchRuntime,
    W: Fn(usize, YieldTask) -> Fut,
    Fut: Future<Output = usize> + Send + 'static,
{
    let sp = rt.spawner();
    let tasks: Vec<_> = (0..YIELD_TASKS)
        .map(|i| {
            sp.spawn(wrap(
                i,
                YieldTask {
                    fut: Box::pin(async move {
                        let mut n = 0;
                        for _ in 0..NUM_YIELD {
                            <R::Spawner as Spawner>::yield_now().await;
                            n += 1;
                        }
                        check(i);
                        n
                    }),
                },
            ))
        })
        .collect();
    let total = rt.block_on(async move {
        let mut total = 0;
        for t in tasks {
            total += t.await;
        }
        total
    });
    assert_eq!(total, YIELD_TASKS * NUM_YIELD, "yield_many: yields lost");
}

/// The body of one [`yield_many`] task (boxed so that wrappers can name it).
pub struct YieldTask {
    fut: std::pin::Pin<Box<dyn Future<Output = usize> + Send>>,
}

impl Future for YieldTask {
    type Output = usize;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<usize> {
        self.fut.as_mut().poll(cx)
    }
}

/// 1,000 pairs of tasks, spawned from inside a task, each pair exchanging a
/// oneshot ping and a oneshot pong (`futures::channel::oneshot`, which
/// works on every runtime).
///
/// # Panics
///
/// If a pair did not finish.
pub fn ping_pong<R: BenchRuntime>(rt: &R) {
    let sp = rt.spawner();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let rem = Arc::new(AtomicUsize::new(NUM_PINGS));
    let done_tx = Arc::new(std::sync::Mutex::new(Some(done_tx)));
    let root = {
        let sp2 = sp.clone();
        let rem = rem.clone();
        sp.spawn(async move {
            for _ in 0..NUM_PINGS {
                let rem = rem.clone();
                let done_tx = done_tx.clone();
                let sp3 = sp2.clone();
                R::Spawner::detach(sp2.spawn_inside(async move {
                    let (tx1, rx1) = oneshot::channel::<()>();
                    let (tx2, rx2) = oneshot::channel::<()>();
                    R::Spawner::detach(sp3.spawn_inside(async move {
                        rx1.await.expect("ping lost");
                        tx2.send(()).expect("pong receiver gone");
                    }));
                    tx1.send(()).expect("ping receiver gone");
                    rx2.await.expect("pong lost");
                    if rem.fetch_sub(1, Relaxed) == 1 {
                        let tx = done_tx.lock().unwrap().take().expect("done twice");
                        let _ = tx.send(());
                    }
                }));
            }
        })
    };
    rt.block_on(async move {
        root.await;
        done_rx.await.expect("ping_pong never finished");
    });
    assert_eq!(rem.load(Relaxed), 0, "ping_pong: pairs lost");
}

/// A chain of 1,000 tasks, each spawning the next from inside the runtime.
///
/// # Panics
///
/// If the chain broke.
pub fn chained_spawn<R: BenchRuntime>(rt: &R) {
    fn link<S: Spawner>(sp: S, done: oneshot::Sender<usize>, n: usize) {
        if n == 0 {
            let _ = done.send(CHAIN);
        } else {
            let sp2 = sp.clone();
            S::detach(sp.spawn_inside(async move { link(sp2, done, n - 1) }));
        }
    }
    let sp = rt.spawner();
    let (done_tx, done_rx) = oneshot::channel();
    let sp2 = sp.clone();
    let root = sp.spawn(async move { link(sp2, done_tx, CHAIN) });
    let n = rt.block_on(async move {
        root.await;
        done_rx.await.expect("chain broken")
    });
    assert_eq!(n, CHAIN);
}

/// smol's `channels`: a ring of 300 tasks joined by `bounded(1)` channels;
/// 300 messages travel the whole ring.
///
/// # Panics
///
/// If a message was lost.
pub fn channels<R: BenchRuntime>(rt: &R) {
    let sp = rt.spawner();
    let hops = Arc::new(AtomicUsize::new(0));
    let hops2 = hops.clone();
    rt.block_on(async move {
        let mut tasks = Vec::with_capacity(SMOL_TASKS);
        let (first_send, first_recv) = async_channel::bounded::<()>(1);
        let mut current_recv = first_recv;
        for _ in 0..SMOL_TASKS {
            let (next_send, next_recv) = async_channel::bounded::<()>(1);
            let recv = mem::replace(&mut current_recv, next_recv);
            let hops = hops2.clone();
            tasks.push(sp.spawn(async move {
                for _ in 0..SMOL_STEPS {
                    recv.recv().await.expect("ring broken");
                    next_send.send(()).await.expect("ring broken");
                    hops.fetch_add(1, Relaxed);
                }
            }));
        }
        for _ in 0..SMOL_STEPS {
            first_send.send(()).await.expect("ring broken");
            current_recv.recv().await.expect("ring broken");
        }
        for t in tasks {
            t.await;
        }
    });
    assert_eq!(
        hops.load(Relaxed),
        SMOL_TASKS * SMOL_STEPS,
        "channels: hops lost"
    );
}

/// What one [`web_server`] iteration did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WebServerStats {
    /// Requests served (all of [`SMOL_TASKS`]).
    pub requests: usize,
    /// Of which answered from "cache".
    pub cached: usize,
    /// Database calls answered.
    pub db_calls: usize,
}

/// smol's `web_server`: a "database" task answering requests over channels,
/// and a "server" task spawning 300 request handlers (detached) that either
/// hit the cache or make 150–300 database calls. Seeded, so every run and
/// every runtime does the same work.
///
/// # Panics
///
/// If a request or a database call was lost.
pub fn web_server<R: BenchRuntime>(rt: &R) -> WebServerStats {
    let sp = rt.spawner();
    let requests = Arc::new(AtomicUsize::new(0));
    let cached = Arc::new(AtomicUsize::new(0));
    let db_calls = Arc::new(AtomicUsize::new(0));
    let (r2, c2, d2) = (requests.clone(), cached.clone(), db_calls.clone());
    let answered = rt.block_on(async move {
        let (db_send, db_recv) =
            async_channel::bounded::<async_channel::Sender<usize>>(SMOL_TASKS / 5);
        let mut db_rng = fastrand::Rng::with_seed(0x1234_5678);
        let mut web_rng = db_rng.fork();

        // The database: answers until every sender is gone.
        let db = sp.spawn(async move {
            let mut answered = 0;
            while let Ok(reply) = db_recv.recv().await {
                for _ in 0..db_rng.usize(..10) {
                    <R::Spawner as Spawner>::yield_now().await;
                }
                reply.send(db_rng.usize(..)).await.ok();
                answered += 1;
            }
            answered
        });

        // The server: accepts connections and spawns a handler for each.
        let sp2 = sp.clone();
        let server = sp.spawn(async move {
            for i in 0..SMOL_TASKS {
                if web_rng.usize(..=16) == 16 {
                    <R::Spawner as Spawner>::yield_now().await;
                }
                let mut rng = web_rng.fork();
                let db_send = db_send.clone();
                let (requests, cached, db_calls) = (r2.clone(), c2.clone(), d2.clone());
                let handler = sp2.spawn_inside(async move {
                    if rng.bool() {
                        <R::Spawner as Spawner>::yield_now().await;
                        cached.fetch_add(1, Relaxed);
                        requests.fetch_add(1, Relaxed);
                        return;
                    }
                    for _ in 0..rng.usize(SMOL_STEPS / 2..SMOL_STEPS) {
                        let (resp_send, resp_recv) = async_channel::bounded(1);
                        db_send.send(resp_send).await.expect("db gone");
                        std::hint::black_box(resp_recv.recv().await.expect("db dropped a call"));
                        db_calls.fetch_add(1, Relaxed);
                    }
                    for _ in 0..rng.usize(3..16) {
                        <R::Spawner as Spawner>::yield_now().await;
                    }
                    requests.fetch_add(1, Relaxed);
                });
                R::Spawner::detach(handler);
                if i & 16 == 0 {
                    <R::Spawner as Spawner>::yield_now().await;
                }
            }
        });

        server.await;
        // The database stops once the last handler has dropped its sender.
        db.await
    });
    let stats = WebServerStats {
        requests: requests.load(Relaxed),
        cached: cached.load(Relaxed),
        db_calls: db_calls.load(Relaxed),
    };
    assert_eq!(stats.requests, SMOL_TASKS, "web_server: requests lost");
    assert_eq!(stats.db_calls, answered, "web_server: db calls lost");
    stats
}

/// A 64-byte future that is pending forever and never registers a waker:
/// an idle task, for measuring memory per task.
pub struct Idle64 {
    _pad: [u8; 56],
    polled: Option<&'static AtomicUsize>,
}

const _: () = assert!(mem::size_of::<Idle64>() == 64);

impl Idle64 {
    /// A new idle future that counts its first poll in `polled`.
    pub fn new(polled: &'static AtomicUsize) -> Self {
        Idle64 {
            _pad: [0; 56],
            polled: Some(polled),
        }
    }
}

impl Future for Idle64 {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if let Some(p) = self.polled.take() {
            p.fetch_add(1, Relaxed);
        }
        std::task::Poll::Pending
    }
}
