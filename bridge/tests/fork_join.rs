//! `join`, `scope`, `install` and `spawn`: each closure in its own copy of
//! the context current where the work was created.

mod common;

use common::{ID, assert_pool_threads_unchanged, marked_pool};

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Barrier, Mutex, mpsc};
use std::thread;

use baton_context::Context;

#[test]
fn join_halves_run_in_separate_copies_even_in_parallel() {
    let pool = marked_pool(2);
    let _t = ID.set(1);
    let threads = Mutex::new(HashSet::new());
    // Both halves wait for each other, so they really run at the same time
    // (on two threads), each inside its own copy.
    let barrier = Barrier::new(2);
    let half = |new: u32| {
        assert_eq!(ID.get(), Some(1));
        let _ = ID.set(new);
        threads.lock().unwrap().insert(thread::current().id());
        barrier.wait();
        ID.get()
    };
    let (a, b) = baton_bridge::install(&pool, || {
        let r = baton_bridge::join(|| half(2), || half(3));
        assert_eq!(ID.get(), Some(1), "a half's write reached the caller");
        r
    });
    assert_eq!((a, b), (Some(2), Some(3)));
    assert_eq!(threads.lock().unwrap().len(), 2);
    assert_eq!(ID.get(), Some(1));
    assert_pool_threads_unchanged(&pool);
}

#[test]
fn join_from_outside_any_pool() {
    let ctx = Context::new();
    let r = ctx.run(|| {
        let _ = ID.set(4);
        baton_bridge::join(|| ID.get(), || ID.get())
    });
    assert_eq!(r, (Some(4), Some(4)));
    assert_eq!(ID.get(), None);
}

#[test]
fn join_propagates_panics_and_restores_the_context() {
    let _t = ID.set(1);
    let r = std::panic::catch_unwind(|| {
        baton_bridge::join(
            || {
                let _ = ID.set(2);
                panic!("left")
            },
            || ID.get(),
        )
    });
    assert!(r.is_err());
    assert_eq!(ID.get(), Some(1));
}

#[test]
fn scope_spawns_see_their_spawners_context_at_spawn_time() {
    let pool = marked_pool(3);
    let _t = ID.set(1);
    let seen = Mutex::new(Vec::new());
    let ran = AtomicUsize::new(0);
    baton_bridge::install(&pool, || {
        baton_bridge::scope(|s| {
            assert_eq!(ID.get(), Some(1));
            for i in 0..8u32 {
                let _ = ID.set(100 + i); // the scope body's own copy
                let seen = &seen;
                let ran = &ran;
                s.spawn(move |s| {
                    let mine = ID.get();
                    seen.lock().unwrap().push((i, mine));
                    let _ = ID.set(200 + i);
                    // Nested spawn: copies the spawning closure's context.
                    s.spawn(move |_| {
                        seen.lock().unwrap().push((1000 + i, ID.get()));
                        ran.fetch_add(1, Ordering::SeqCst);
                    });
                    let _ = ID.set(300 + i); // after the spawn: not seen by it
                    ran.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        assert_eq!(ID.get(), Some(1), "the scope's writes reached the caller");
    });
    assert_eq!(ran.load(Ordering::SeqCst), 16);
    let mut seen = seen.into_inner().unwrap();
    seen.sort();
    for (i, (key, value)) in seen.into_iter().enumerate() {
        let i = i as u32 % 8;
        if key < 1000 {
            assert_eq!((key, value), (i, Some(100 + i)));
        } else {
            assert_eq!((key, value), (1000 + i, Some(200 + i)));
        }
    }
    assert_eq!(ID.get(), Some(1));
    assert_pool_threads_unchanged(&pool);
}

#[test]
fn scope_closures_may_borrow_and_return() {
    let mut data = vec![0u32; 16];
    let _t = ID.set(3);
    let r = baton_bridge::scope(|s| {
        for chunk in data.chunks_mut(4) {
            s.spawn(move |_| chunk.iter_mut().for_each(|x| *x = ID.get().unwrap()));
        }
        "done"
    });
    assert_eq!(r, "done");
    assert_eq!(data, vec![3; 16]);
}

#[test]
fn install_carries_the_context_and_plain_install_does_not() {
    let pool = marked_pool(2);
    let _t = ID.set(7);
    assert_eq!(pool.install(|| ID.get()), None);
    assert_eq!(
        baton_bridge::install(&pool, || {
            let _ = ID.set(8);
            ID.get()
        }),
        Some(8)
    );
    assert_eq!(ID.get(), Some(7));
    assert_pool_threads_unchanged(&pool);
}

#[test]
fn spawn_carries_a_copy() {
    let (tx, rx) = mpsc::channel();
    let _t = ID.set(9);
    baton_bridge::spawn(move || {
        let seen = ID.get();
        let _ = ID.set(10);
        tx.send(seen).unwrap();
    });
    assert_eq!(rx.recv().unwrap(), Some(9));
    assert_eq!(ID.get(), Some(9));
}
