//! The run queues: a thin wrapper over crossbeam-deque (a FIFO `Worker` per
//! worker, its `Stealer`s, and the global `Injector`), and under
//! `--cfg baton_loom` a `Mutex<VecDeque>` stand-in with the same interface, because
//! crossbeam-deque's own atomics cannot run under loom. (The cfg is baton's
//! own, so crossbeam-deque itself builds as usual under it; it is this
//! module that chooses the stand-in.) The loom models therefore check the scheduler's protocol (parking, wake-ups, stealing
//! hand-offs), not crossbeam-deque itself.
//!
//! Miri also uses the stand-in: crossbeam-epoch's integer-to-pointer casts
//! trip Stacked Borrows, and Miri is here to check *this* crate's unsafe
//! code (crossbeam is checked by its own test suite).

#[cfg(not(any(baton_loom, miri)))]
mod imp {
    use crossbeam_deque::Steal;

    /// A worker's own queue (only its worker pushes and pops).
    pub(in crate::scheduler) struct Local<T>(crossbeam_deque::Worker<T>);
    /// The other workers' handle on a `Local`.
    pub(in crate::scheduler) struct Stealer<T>(crossbeam_deque::Stealer<T>);
    /// The global queue, for tasks scheduled from outside the workers.
    pub(in crate::scheduler) struct Injector<T>(crossbeam_deque::Injector<T>);

    impl<T> Local<T> {
        pub(in crate::scheduler) fn new() -> Self {
            Local(crossbeam_deque::Worker::new_fifo())
        }
        pub(in crate::scheduler) fn stealer(&self) -> Stealer<T> {
            Stealer(self.0.stealer())
        }
        #[inline]
        pub(in crate::scheduler) fn push(&self, value: T) {
            self.0.push(value)
        }
        #[inline]
        pub(in crate::scheduler) fn pop(&self) -> Option<T> {
            self.0.pop()
        }
        pub(in crate::scheduler) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }

    fn resolve<T>(mut f: impl FnMut() -> Steal<T>) -> Option<T> {
        loop {
            match f() {
                Steal::Success(v) => return Some(v),
                Steal::Empty => return None,
                Steal::Retry => std::hint::spin_loop(),
            }
        }
    }

    impl<T> Stealer<T> {
        /// Moves about half of the victim's tasks into `dest` and returns one.
        pub(in crate::scheduler) fn steal_batch_and_pop(&self, dest: &Local<T>) -> Option<T> {
            resolve(|| self.0.steal_batch_and_pop(&dest.0))
        }
        pub(in crate::scheduler) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }

    impl<T> Injector<T> {
        pub(in crate::scheduler) fn new() -> Self {
            Injector(crossbeam_deque::Injector::new())
        }
        #[inline]
        pub(in crate::scheduler) fn push(&self, value: T) {
            self.0.push(value)
        }
        pub(in crate::scheduler) fn pop(&self) -> Option<T> {
            resolve(|| self.0.steal())
        }
        /// Moves a batch into `dest` and returns one.
        pub(in crate::scheduler) fn steal_batch_and_pop(&self, dest: &Local<T>) -> Option<T> {
            resolve(|| self.0.steal_batch_and_pop(&dest.0))
        }
        /// Moves a batch into `dest`; false if there was nothing.
        pub(in crate::scheduler) fn steal_batch(&self, dest: &Local<T>) -> bool {
            resolve(|| self.0.steal_batch(&dest.0)).is_some()
        }
        pub(in crate::scheduler) fn is_empty(&self) -> bool {
            self.0.is_empty()
        }
    }
}

#[cfg(any(baton_loom, miri))]
mod imp {
    use std::collections::VecDeque;
    use std::sync::Arc;

    use baton_sync::Mutex;

    pub(in crate::scheduler) struct Local<T>(Arc<Mutex<VecDeque<T>>>);
    pub(in crate::scheduler) struct Stealer<T>(Arc<Mutex<VecDeque<T>>>);
    pub(in crate::scheduler) struct Injector<T>(Mutex<VecDeque<T>>);

    fn take_half<T>(src: &Mutex<VecDeque<T>>, dest: &Local<T>) -> Option<T> {
        let mut src = src.lock();
        let first = src.pop_front()?;
        let extra = src.len().div_ceil(2);
        let moved: Vec<T> = src.drain(..extra).collect();
        drop(src);
        let mut dest = dest.0.lock();
        dest.extend(moved);
        Some(first)
    }

    impl<T> Local<T> {
        pub(in crate::scheduler) fn new() -> Self {
            Local(Arc::new(Mutex::new(VecDeque::new())))
        }
        pub(in crate::scheduler) fn stealer(&self) -> Stealer<T> {
            Stealer(self.0.clone())
        }
        pub(in crate::scheduler) fn push(&self, value: T) {
            self.0.lock().push_back(value)
        }
        pub(in crate::scheduler) fn pop(&self) -> Option<T> {
            self.0.lock().pop_front()
        }
        pub(in crate::scheduler) fn is_empty(&self) -> bool {
            self.0.lock().is_empty()
        }
    }

    impl<T> Stealer<T> {
        pub(in crate::scheduler) fn steal_batch_and_pop(&self, dest: &Local<T>) -> Option<T> {
            take_half(&self.0, dest)
        }
        pub(in crate::scheduler) fn is_empty(&self) -> bool {
            self.0.lock().is_empty()
        }
    }

    impl<T> Injector<T> {
        pub(in crate::scheduler) fn new() -> Self {
            Injector(Mutex::new(VecDeque::new()))
        }
        pub(in crate::scheduler) fn push(&self, value: T) {
            self.0.lock().push_back(value)
        }
        pub(in crate::scheduler) fn pop(&self) -> Option<T> {
            self.0.lock().pop_front()
        }
        pub(in crate::scheduler) fn steal_batch_and_pop(&self, dest: &Local<T>) -> Option<T> {
            take_half(&self.0, dest)
        }
        pub(in crate::scheduler) fn steal_batch(&self, dest: &Local<T>) -> bool {
            match take_half(&self.0, dest) {
                Some(first) => {
                    dest.push(first);
                    true
                }
                None => false,
            }
        }
        pub(in crate::scheduler) fn is_empty(&self) -> bool {
            self.0.lock().is_empty()
        }
    }
}

pub(super) use imp::{Injector, Local, Stealer};
