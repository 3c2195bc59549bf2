//! The pool itself: one queue of due blocking tasks behind a mutex, idle
//! threads waiting on a condition variable, threads started on demand and
//! retired when idle. The protocol is written out in `mod.rs`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use baton_context::ContextCell;

use crate::blocking::task::BlockingTask;
use crate::metrics::Metrics;
use crate::scheduler::Shared;
use crate::task::{JoinHandle, NO_WORKER, Notified, OwnedTasks};
use baton_sync::{Condvar, Mutex, thread};

/// A runtime's blocking pool (the `blocking` field of `Shared`): spawns
/// closures on it and shuts it down.
pub(crate) struct BlockingPool {
    pool: Arc<Pool>,
}

/// The state the pool's threads and tasks share; tasks hold an `Arc` of it
/// as their scheduler (`schedule.rs`).
pub(super) struct Pool {
    state: Mutex<State>,
    /// Idle threads wait here for a job (or for shutdown, or their idle
    /// deadline).
    work: Condvar,
    /// `shutdown` waits here for the threads to exit.
    exited: Condvar,
    /// Every blocking task not yet complete: shutdown cancels the queued
    /// ones through it, and a closed list refuses new ones.
    owned: OwnedTasks,
    max_threads: usize,
    keep_alive: Duration,
    thread_name: String,
    /// This pool, for the threads `push` starts (`push` only has `&self`:
    /// the task core calls it as a `Schedule`).
    me: Weak<Pool>,
}

struct State {
    /// Due tasks, oldest first.
    queue: VecDeque<Notified>,
    /// Threads started and not yet exited.
    threads: usize,
    /// Threads waiting for a job that nobody has claimed for a job yet.
    idle: usize,
    /// Wake-ups sent to idle threads (each for one job) not yet taken.
    notified: usize,
    shutdown: bool,
    /// The handles of the threads, by id; an idle thread that retires
    /// takes its own out (and so detaches itself).
    handles: HashMap<usize, thread::JoinHandle<()>>,
    next_id: usize,
}

impl BlockingPool {
    /// A pool of at most `max_threads` threads named `thread_name`, which
    /// exit after `keep_alive` without a job. No thread starts here.
    pub(crate) fn new(max_threads: usize, keep_alive: Duration, thread_name: String) -> Self {
        assert!(max_threads > 0, "baton: a blocking pool needs a thread");
        let pool = Arc::new_cyclic(|me| Pool {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                threads: 0,
                idle: 0,
                notified: 0,
                shutdown: false,
                handles: HashMap::new(),
                next_id: 0,
            }),
            work: Condvar::new(),
            exited: Condvar::new(),
            owned: OwnedTasks::new(1),
            max_threads,
            keep_alive,
            thread_name,
            me: me.clone(),
        });
        BlockingPool { pool }
    }

    /// Runs `func` on the pool, inside a copy of the caller's current
    /// context (taken now), as a closure of `shared`'s runtime. Once the
    /// pool is shut down the task is cancelled at once.
    pub(crate) fn spawn<F, R>(&self, func: F, shared: Arc<Shared>) -> JoinHandle<R>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let context = ContextCell::copy_current();
        let task = BlockingTask::new(func, shared);
        let (handle, notified) = self.pool.owned.bind(task, context, self.pool.clone());
        // `None`: the list is closed (shut down) and the task cancelled.
        if let Some(notified) = notified {
            self.pool.push(notified);
        }
        handle
    }

    /// Stops accepting jobs, cancels the queued ones (inside their
    /// contexts), and waits for the running ones until `deadline` (`None`:
    /// for as long as they run). Threads are joined if they all exited in
    /// time, else detached. Called on a thread of this pool (a closure
    /// dropping its runtime), it does not wait for that thread.
    pub(crate) fn shutdown(&self, deadline: Option<Instant>) {
        let pool = &*self.pool;
        let (queue, handles) = {
            let mut state = pool.state.lock();
            if state.shutdown {
                return;
            }
            state.shutdown = true;
            pool.work.notify_all();
            (
                std::mem::take(&mut state.queue),
                std::mem::take(&mut state.handles),
            )
        };
        // Closed first: a job spawned from now on is cancelled at once.
        // The queued ones are idle, so shutdown claims and cancels them; the
        // running ones are only marked, and complete as usual.
        pool.owned.close_and_shutdown_all(deadline);
        drop(queue);

        let me = thread::current().id();
        let on_own_thread = handles.values().any(|h| h.thread().id() == me);
        let all_exited = {
            let mut state = pool.state.lock();
            loop {
                if state.threads <= usize::from(on_own_thread) {
                    break true;
                }
                match deadline {
                    Some(d) if Instant::now() >= d => break false,
                    Some(d) => pool.exited.wait_until(&mut state, d),
                    None => pool.exited.wait(&mut state),
                }
            }
        };
        for handle in handles.into_values() {
            // Past the deadline, the handles are dropped: the threads are
            // detached, and exit once their closures return.
            if all_exited && handle.thread().id() != me {
                let _ = handle.join();
            }
        }
    }

    /// Fills in the pool's counters.
    pub(crate) fn metrics(&self, metrics: &mut Metrics) {
        let state = self.pool.state.lock();
        metrics.blocking_threads = state.threads;
        metrics.idle_blocking_threads = state.idle;
        metrics.blocking_queue_depth = state.queue.len();
    }
}

impl Pool {
    /// The tasks of this pool.
    pub(super) fn owned(&self) -> &OwnedTasks {
        &self.owned
    }

    /// Queues `task` and makes sure a thread will take it: wakes an idle
    /// thread, or starts one if all are busy and the pool may grow; at the
    /// limit, a busy thread takes it when it is done. Drops it if the pool
    /// is shut down.
    ///
    /// # Panics
    ///
    /// If the pool has no thread and none can be started (the job stays
    /// queued until the pool starts one or shuts down).
    pub(super) fn push(&self, task: Notified) {
        let mut state = self.state.lock();
        if state.shutdown {
            drop(state);
            return drop(task);
        }
        state.queue.push_back(task);
        if state.idle > 0 {
            state.idle -= 1;
            state.notified += 1;
            self.work.notify_one();
        } else if state.threads < self.max_threads {
            let id = state.next_id;
            state.next_id += 1;
            // Started under the lock, so the counts and the handles never
            // disagree (as tokio's pool does).
            match self.start_thread(id) {
                Ok(handle) => {
                    state.threads += 1;
                    state.handles.insert(id, handle);
                }
                // The running threads take the job when they are done.
                Err(_) if state.threads > 0 => {}
                Err(e) => {
                    drop(state);
                    panic!("baton: failed to start a blocking-pool thread: {e}");
                }
            }
        }
    }

    fn start_thread(&self, id: usize) -> std::io::Result<thread::JoinHandle<()>> {
        let pool = self
            .me
            .upgrade()
            .expect("baton: the blocking pool is alive while it is used");
        thread::Builder::new()
            .name(self.thread_name.clone())
            .spawn(move || {
                // Each job runs in its own context: the thread's own is
                // sealed, as a worker's is.
                baton_context::seal_thread();
                pool.run(id)
            })
    }

    /// A pool thread: runs queued jobs; when none is left, waits up to
    /// `keep_alive` for one, then retires.
    fn run(&self, id: usize) {
        // Counts the thread out if it unwinds (a bug of the task core, which
        // contains the closures' own panics).
        struct Unwind<'a>(&'a Pool);
        impl Drop for Unwind<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() {
                    self.0.state.lock().threads -= 1;
                    self.0.exited.notify_all();
                }
            }
        }
        let _unwind = Unwind(self);

        let mut retired = None;
        let mut state = self.state.lock();
        'run: loop {
            while let Some(task) = state.queue.pop_front() {
                drop(state);
                task.run(NO_WORKER);
                state = self.state.lock();
            }
            if state.shutdown {
                break;
            }
            state.idle += 1;
            let deadline = Instant::now() + self.keep_alive;
            loop {
                self.work.wait_until(&mut state, deadline);
                if state.notified > 0 {
                    // A pusher counted us out of `idle` for its job.
                    state.notified -= 1;
                    continue 'run;
                }
                if state.shutdown {
                    state.idle -= 1;
                    break 'run;
                }
                if Instant::now() >= deadline {
                    state.idle -= 1;
                    // Nobody will join a retired thread: detach it.
                    retired = state.handles.remove(&id);
                    break 'run;
                }
                // A spurious wake-up, or a wake-up another thread took.
            }
        }
        // Under the lock that saw the reason to leave: from now on a pusher
        // that finds no idle thread sees room to start one (counted out
        // later, a retiring thread could strand a job queued meanwhile).
        state.threads -= 1;
        drop(state);
        self.exited.notify_all();
        drop(retired);
    }
}
