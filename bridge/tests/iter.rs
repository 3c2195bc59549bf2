//! `.in_context()`: every closure chained after it runs in a copy of the
//! captured context, on every thread.

mod common;

use common::{ID, MARK, assert_pool_threads_unchanged, marked_pool};

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use baton_bridge::ParallelIteratorExt;
use baton_context::Context;
use rayon::prelude::*;

const N: u32 = 100_000;

/// Records which pool threads ran item closures; the first items wait (on
/// the record itself, not on time) until two threads have taken part, which
/// rayon guarantees by letting idle threads steal the other halves.
struct Threads(Mutex<HashSet<usize>>);

impl Threads {
    fn new() -> Threads {
        Threads(Mutex::new(HashSet::new()))
    }

    fn record(&self) {
        let index = rayon::current_thread_index().expect("on a pool thread");
        self.0.lock().unwrap().insert(index);
        while self.0.lock().unwrap().len() < 2 {
            std::thread::yield_now();
        }
    }

    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

#[test]
fn every_item_closure_sees_the_captured_value_on_every_thread() {
    let pool = marked_pool(4);
    let threads = Threads::new();
    let wrong = AtomicUsize::new(0);
    let check = |_: &u32| {
        if ID.get() != Some(42) {
            wrong.fetch_add(1, Ordering::Relaxed);
        }
    };

    let _t = ID.set(42);
    let it = (0..N).into_par_iter().in_context();
    // Plain `install`: the closures run on pool threads, in their own
    // contexts, yet see the value captured by `.in_context()`.
    let sum: u64 = pool.install(|| {
        it.map(|x| {
            check(&x);
            threads.record();
            // Stays in the chunk's copy: not on the pool thread afterwards.
            let _ = MARK.set(999);
            x as u64
        })
        .sum()
    });
    assert_eq!(sum, (0..N as u64).sum());
    assert_eq!(
        wrong.load(Ordering::Relaxed),
        0,
        "items ran outside the context"
    );
    assert!(threads.count() >= 2, "only one thread took part");
    assert_eq!(ID.get(), Some(42));
    assert_pool_threads_unchanged(&pool);
}

#[test]
fn the_context_is_captured_when_the_adapter_is_created() {
    let pool = marked_pool(2);
    let t = ID.set(1);
    let it = (0..1000u32).into_par_iter().in_context();
    ID.reset(t).unwrap();
    let _t = ID.set(2);
    let seen: HashSet<Option<u32>> = pool.install(|| it.map(|_| ID.get()).collect());
    assert_eq!(seen, HashSet::from([Some(1)]));
}

#[test]
fn all_kinds_of_downstream_closures_are_covered() {
    let pool = marked_pool(3);
    let wrong = AtomicUsize::new(0);
    let calls = AtomicUsize::new(0);
    let check = || {
        calls.fetch_add(1, Ordering::Relaxed);
        if ID.get() != Some(5) {
            wrong.fetch_add(1, Ordering::Relaxed);
        }
    };
    let v: Vec<u32> = (0..N).collect();
    let _t = ID.set(5);
    baton_bridge::install(&pool, || {
        // map / filter / reduce (identity and operator)
        let r = v
            .par_iter()
            .in_context()
            .map(|&x| {
                check();
                x as u64
            })
            .filter(|x| {
                check();
                x % 2 == 0
            })
            .reduce(
                || {
                    check();
                    0
                },
                |a, b| {
                    check();
                    a + b
                },
            );
        assert_eq!(r, (0..N as u64).filter(|x| x % 2 == 0).sum());

        // fold (identity and fold op), then sum
        let r: u64 = v
            .par_iter()
            .in_context()
            .fold(
                || {
                    check();
                    0u64
                },
                |acc, &x| {
                    check();
                    acc + x as u64
                },
            )
            .sum();
        assert_eq!(r, (0..N as u64).sum());

        // for_each, flat_map_iter, collect into a Vec (in order)
        v.par_iter().in_context().for_each(|_| check());
        let doubled: Vec<u32> = v
            .par_iter()
            .in_context()
            .flat_map_iter(|&x| {
                check();
                [x, x]
            })
            .collect();
        assert_eq!(doubled.len(), 2 * N as usize);
        assert!(
            doubled
                .chunks(2)
                .enumerate()
                .all(|(i, c)| c == [i as u32; 2])
        );

        // index-based adapters go before `.in_context()`
        let collected: Vec<(usize, u32)> = v
            .par_iter()
            .enumerate()
            .in_context()
            .map(|(i, &x)| {
                check();
                (i, x)
            })
            .collect();
        assert!(collected.iter().all(|&(i, x)| i == x as usize));

        // short-circuiting
        let found = v.par_iter().in_context().find_any(|&&x| {
            check();
            x == N - 1
        });
        assert_eq!(found, Some(&(N - 1)));

        // a nested parallel iterator with its own `.in_context()`
        let nested: u64 = v
            .par_iter()
            .take(100)
            .in_context()
            .flat_map(|&x| {
                check();
                (0..x).into_par_iter().in_context().map(|y| {
                    check();
                    y as u64
                })
            })
            .sum();
        assert_eq!(
            nested,
            (0..100u64).map(|x| x * x.saturating_sub(1) / 2).sum()
        );
    });
    assert!(calls.load(Ordering::Relaxed) > 6 * N as usize);
    assert_eq!(
        wrong.load(Ordering::Relaxed),
        0,
        "a closure ran outside the context"
    );
    assert_eq!(ID.get(), Some(5));
    assert_pool_threads_unchanged(&pool);
}

#[test]
fn item_writes_never_reach_the_caller_or_other_runs() {
    let ctx = Context::new();
    ctx.run(|| {
        let _ = ID.set(1);
    });
    for _ in 0..3 {
        let seen: Vec<Option<u32>> = ctx.run(|| {
            (0..10_000u32)
                .into_par_iter()
                .in_context()
                .map(|i| {
                    let seen = ID.get();
                    let _ = ID.set(1000 + i);
                    seen
                })
                .filter(|seen| *seen != Some(1) && seen.is_none_or(|s| s < 1000))
                .collect()
        });
        assert!(seen.is_empty(), "an item saw a foreign value: {seen:?}");
        assert_eq!(ctx.get(&ID), Some(1));
    }
}

#[test]
fn panics_propagate_and_contexts_are_restored() {
    let pool = marked_pool(2);
    let _t = ID.set(3);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        baton_bridge::install(&pool, || {
            (0..N).into_par_iter().in_context().for_each(|x| {
                let _ = ID.set(4);
                if x == N / 2 {
                    panic!("item {x}");
                }
            })
        })
    }));
    assert!(r.is_err());
    assert_eq!(ID.get(), Some(3));
    assert_pool_threads_unchanged(&pool);
}
