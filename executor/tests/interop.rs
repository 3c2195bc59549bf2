//! The runtime runs any std `Future`.
#![cfg(not(baton_loom))]

use std::time::Duration;

use baton_context::ContextVar;
use baton_executor::{Builder, Runtime, sleep, spawn};

static TAG: ContextVar<u32> = ContextVar::new("tag");

fn rt() -> Runtime {
    Builder::new().worker_threads(2).build().unwrap()
}

#[test]
fn async_channel_between_tasks() {
    let rt = rt();
    let n = if cfg!(miri) { 10 } else { 1000 };
    let sum = rt.block_on(async move {
        let (tx, rx) = async_channel::bounded::<u64>(8);
        let producer = spawn(async move {
            for i in 0..n {
                tx.send(i).await.unwrap();
            }
        });
        let consumer = spawn(async move {
            let mut sum = 0;
            while let Ok(v) = rx.recv().await {
                sum += v;
            }
            sum
        });
        producer.await.unwrap();
        consumer.await.unwrap()
    });
    assert_eq!(sum, n * (n - 1) / 2);
}

#[test]
fn futures_oneshot_ping_pong() {
    let rt = rt();
    let r = rt.block_on(async {
        let (tx1, rx1) = futures::channel::oneshot::channel::<u32>();
        let (tx2, rx2) = futures::channel::oneshot::channel::<u32>();
        let t = spawn(async move {
            let v = rx1.await.unwrap();
            tx2.send(v + 1).unwrap();
        });
        tx1.send(1).unwrap();
        let v = rx2.await.unwrap();
        t.await.unwrap();
        v
    });
    assert_eq!(r, 2);
}

#[test]
fn async_lock_mutex_across_tasks() {
    let rt = rt();
    let n = if cfg!(miri) { 4 } else { 50 };
    let total = rt.block_on(async move {
        let m = std::sync::Arc::new(async_lock::Mutex::new(0u64));
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let m = m.clone();
                spawn(async move {
                    for _ in 0..10 {
                        let mut g = m.lock().await;
                        let v = *g;
                        baton_executor::yield_now().await;
                        *g = v + 1;
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        *m.lock().await
    });
    assert_eq!(total, n * 10);
}

#[test]
fn join_and_select_share_the_tasks_context() {
    let rt = rt();
    let r = rt.block_on(rt.spawn(async {
        let _t = TAG.set(9);
        let (a, b) = futures::join!(async { TAG.get() }, async {
            sleep(Duration::from_millis(1)).await;
            TAG.get()
        });
        let c = futures::select! {
            v = futures::FutureExt::fuse(Box::pin(async {
                sleep(Duration::from_millis(1)).await;
                TAG.get()
            })) => v,
            _ = futures::FutureExt::fuse(sleep(Duration::from_secs(60))) => None,
        };
        (a, b, c)
    }));
    assert_eq!(r.unwrap(), (Some(9), Some(9), Some(9)));
}

#[test]
fn attached_futures_are_isolated_inside_a_task() {
    let rt = rt();
    let r = rt.block_on(rt.spawn(async {
        let _t = TAG.set(1);
        let ctx = baton_context::copy_context();
        let inner = ctx.attach(async {
            let _ = TAG.set(2);
            TAG.get()
        });
        (inner.await, TAG.get())
    }));
    assert_eq!(r.unwrap(), (Some(2), Some(1)));
}
