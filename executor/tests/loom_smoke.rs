//! A smoke model showing how the loom models drive a runtime with the
//! testing hooks (compiled only with `RUSTFLAGS="--cfg baton_loom"`).
#![cfg(baton_loom)]

use baton_context::ContextVar;
use baton_executor::{Builder, yield_now};

static ID: ContextVar<u32> = ContextVar::new("id");

#[test]
fn two_workers_two_tasks() {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    builder.check(|| {
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let rt = loom::sync::Arc::new(
            Builder::new()
                .worker_threads(2)
                .start_workers(false)
                .build()
                .unwrap(),
        );
        let handles: Vec<_> = (0..2u32)
            .map(|i| {
                rt.spawn(async move {
                    let _t = ID.set(i);
                    yield_now().await;
                    ID.get()
                })
            })
            .collect();
        let rt2 = rt.clone();
        let t = loom::thread::spawn(move || rt2.run_worker_until_idle(1));
        rt.run_worker_until_idle(0);
        t.join().unwrap();
        rt.run_worker_until_idle(0);
        assert_eq!(ID.get(), None);
        for (i, h) in handles.into_iter().enumerate() {
            assert!(h.is_finished());
            let v = futures::executor::block_on(h).unwrap();
            assert_eq!(v, Some(i as u32));
        }
    });
    let runs = RUNS.load(std::sync::atomic::Ordering::Relaxed);
    println!("interleavings explored: {runs}");
    assert!(runs > 1);
}
