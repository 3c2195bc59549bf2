//! The timer driver: an ordered map of deadlines to wakers, and one thread,
//! started on first use, that sleeps until the earliest deadline and wakes
//! what is due. A sleeping task costs one map entry and nothing else; with no
//! timers the thread waits with no deadline (no CPU).

use std::collections::BTreeMap;
use std::task::Waker;
use std::time::Instant;

use baton_sync::{Condvar, Mutex, thread};

/// Identifies one registered timer.
pub(crate) type Key = (Instant, u64);

#[derive(Default)]
struct State {
    entries: BTreeMap<Key, Waker>,
    next_id: u64,
    /// The deadline the timer thread is sleeping until (None: forever).
    thread_deadline: Option<Instant>,
    started: bool,
    shutdown: bool,
    thread: Option<thread::JoinHandle<()>>,
}

pub(crate) struct Driver {
    state: std::sync::Arc<(Mutex<State>, Condvar)>,
    thread_name: String,
}

impl Driver {
    pub(crate) fn new(thread_name: String) -> Driver {
        Driver {
            state: std::sync::Arc::new((Mutex::new(State::default()), Condvar::new())),
            thread_name,
        }
    }

    /// Registers `waker` to be woken at `deadline`.
    pub(crate) fn register(&self, deadline: Instant, waker: Waker) -> Key {
        let (lock, cvar) = &*self.state;
        let mut state = lock.lock();
        if state.shutdown {
            // The runtime is gone (its tasks are cancelled): nothing fires
            // any more.
            drop(waker);
            return (deadline, u64::MAX);
        }
        let key = (deadline, state.next_id);
        state.next_id += 1;
        state.entries.insert(key, waker);
        if !state.started {
            state.started = true;
            let shared = self.state.clone();
            let handle = thread::Builder::new()
                .name(self.thread_name.clone())
                .spawn(move || run(&shared))
                .expect("baton: failed to spawn the timer thread");
            state.thread = Some(handle);
        } else if state.thread_deadline.is_none_or(|d| deadline < d) {
            cvar.notify_one();
        }
        key
    }

    /// Replaces the waker of a registered timer (if it has not fired).
    pub(crate) fn update(&self, key: Key, waker: &Waker) -> bool {
        let mut state = self.state.0.lock();
        match state.entries.get_mut(&key) {
            Some(w) => {
                w.clone_from(waker);
                true
            }
            None => false,
        }
    }

    /// Forgets a timer (no-op if it fired).
    pub(crate) fn cancel(&self, key: Key) {
        let removed = self.state.0.lock().entries.remove(&key);
        drop(removed);
    }

    /// Stops the thread and drops every pending waker.
    pub(crate) fn shutdown(&self) {
        let (lock, cvar) = &*self.state;
        let mut state = lock.lock();
        state.shutdown = true;
        let thread = state.thread.take();
        let entries = std::mem::take(&mut state.entries);
        cvar.notify_all();
        drop(state);
        drop(entries);
        if let Some(thread) = thread {
            if thread.thread().id() != thread::current().id() {
                let _ = thread.join();
            }
        }
    }
}

fn run(shared: &(Mutex<State>, Condvar)) {
    let (lock, cvar) = shared;
    let mut state = lock.lock();
    let mut due = Vec::new();
    loop {
        if state.shutdown {
            return;
        }
        let now = Instant::now();
        while let Some(entry) = state.entries.first_entry() {
            if entry.key().0 > now {
                break;
            }
            due.push(entry.remove());
        }
        if !due.is_empty() {
            drop(state);
            for waker in due.drain(..) {
                waker.wake();
            }
            state = lock.lock();
            continue;
        }
        let next = state.entries.first_key_value().map(|(k, _)| k.0);
        state.thread_deadline = next;
        match next {
            Some(deadline) => cvar.wait_until(&mut state, deadline),
            None => cvar.wait(&mut state),
        }
        state.thread_deadline = None;
    }
}
