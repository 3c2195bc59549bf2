//! The allocation behind [`Context`](crate::Context) handles: a reference
//! count and a [`SharedCell`], recycled through a small per-thread free list.
//!
//! `copy_context()` is the one operation of this crate that allocates, and a
//! request-handling program calls it on every offload. A `malloc`/`free`
//! pair costs more than the copy itself (one reference-count increment), so,
//! as CPython does for its context objects, freed handles are kept on a free
//! list of the thread that dropped them (at most [`POOL_CAP`]) and reused by
//! the next copy on that thread. The lists are freed when their thread exits.
//!
//! The reference count is an `Arc`'s, with one shortcut: a handle that finds
//! the count at 1 (Acquire) is the last one — nobody else holds a reference
//! through which to clone or drop — so it skips the read-modify-write. That
//! is the common case: a copy made, run once, and dropped.
//!
//! The count is also what proves a handle *exclusive* ([`Handle::is_unique`]):
//! a caller that holds the only handle by `&mut` may enter the context with
//! plain loads and stores (`Attached::poll` does). Since that decides how a
//! context is entered, the count comes from the `baton-sync` facade, and the loom
//! model `context_exclusive` races it. Under loom the free list is off (every
//! handle is a fresh allocation), so the models see plain allocations.

use crate::cell::SharedCell;
use baton_sync::{AtomicUsize, Ordering, fence};
use std::ops::Deref;
use std::ptr::NonNull;

/// How many freed handles a thread keeps for reuse.
#[cfg(not(baton_loom))]
const POOL_CAP: usize = 32;

struct Inner {
    refs: AtomicUsize,
    cell: SharedCell,
}

/// A counted reference to a [`SharedCell`] (an `Arc` with recycling).
pub(crate) struct Handle {
    ptr: NonNull<Inner>,
}

// SAFETY: a `Handle` is a shared reference to a `SharedCell`, which is
// `Send + Sync`; the count is atomic and the last handle frees the cell on
// whichever thread drops it, as with `Arc<SharedCell>`.
unsafe impl Send for Handle {}
// SAFETY: as above.
unsafe impl Sync for Handle {}

impl Handle {
    /// A handle to a new allocation, whose cell `init` writes in place.
    ///
    /// In place, field by field, rather than built on the stack and moved:
    /// the compiler moves a value in 16-byte pieces, and reading those back
    /// right after they were stored as 8-byte fields stalls store forwarding
    /// (`benches/HISTORY.md`).
    ///
    /// # Safety
    /// `init` writes every field of the `SharedCell` it is given, which is
    /// uninitialised memory, valid for writes.
    #[inline]
    pub(crate) unsafe fn new_in_place(init: impl FnOnce(*mut SharedCell)) -> Handle {
        let ptr = pool::take().unwrap_or_else(|| {
            let layout = std::alloc::Layout::new::<Inner>();
            // SAFETY: `Inner` is not zero-sized.
            let raw = unsafe { std::alloc::alloc(layout) };
            match NonNull::new(raw.cast::<Inner>()) {
                Some(ptr) => ptr,
                None => std::alloc::handle_alloc_error(layout),
            }
        });
        // SAFETY: `ptr` is an allocation with `Inner`'s layout (a pooled one
        // holds no value any more): every field is written here, the count
        // directly and the cell by `init` (contract), without reading.
        unsafe {
            (&raw mut (*ptr.as_ptr()).refs).write(AtomicUsize::new(1));
            init(&raw mut (*ptr.as_ptr()).cell);
        }
        Handle { ptr }
    }

    /// Whether this is the only handle to its context. With `&mut self`, the
    /// answer cannot change until the borrow ends: no other handle exists to
    /// be cloned, and this one is borrowed. Acquire, pairing with the Release
    /// decrement of every other handle's drop: what their holders did in the
    /// context (their runs' exits included) happens before the caller goes
    /// on.
    #[inline]
    pub(crate) fn is_unique(&mut self) -> bool {
        // SAFETY: live while `self` is.
        unsafe { self.ptr.as_ref() }.refs.load(Ordering::Acquire) == 1
    }

    /// Whether two handles share the allocation.
    #[inline]
    pub(crate) fn ptr_eq(&self, other: &Handle) -> bool {
        self.ptr == other.ptr
    }

    /// A pointer to the cell that keeps the provenance of the whole
    /// allocation (see `CellPtr::shared`).
    #[inline]
    pub(crate) fn as_ptr(&self) -> NonNull<SharedCell> {
        // SAFETY: `ptr` is live while `self` is; `&raw` makes no
        // intermediate reference, so the result may address all of `cell`.
        unsafe { NonNull::new_unchecked(&raw mut (*self.ptr.as_ptr()).cell) }
    }
}

impl Deref for Handle {
    type Target = SharedCell;

    #[inline]
    fn deref(&self) -> &SharedCell {
        // SAFETY: the allocation lives while a handle to it does.
        unsafe { &self.ptr.as_ref().cell }
    }
}

impl Clone for Handle {
    #[inline]
    fn clone(&self) -> Handle {
        // SAFETY: live while `self` is.
        let refs = unsafe { &self.ptr.as_ref().refs };
        // Relaxed, as `Arc::clone`: the new handle is made from an existing
        // one, which keeps the allocation alive meanwhile.
        let old = refs.fetch_add(1, Ordering::Relaxed);
        if old > isize::MAX as usize {
            // As `Arc`: a count this high means leaked handles; wrapping it
            // would free a live cell.
            std::process::abort();
        }
        Handle { ptr: self.ptr }
    }
}

impl Drop for Handle {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: live while `self` is.
        let refs = unsafe { &self.ptr.as_ref().refs };
        // At 1 this is the last handle: no other can exist to race with us,
        // and Acquire orders every earlier handle's drop (Release) before
        // the free below. Otherwise, the usual `Arc` decrement.
        if refs.load(Ordering::Acquire) != 1 {
            if refs.fetch_sub(1, Ordering::Release) != 1 {
                return;
            }
            fence(Ordering::Acquire);
        }
        /// Gives the allocation back even if a value's destructor panics
        /// while the cell is dropped.
        struct GiveBack(NonNull<Inner>);
        impl Drop for GiveBack {
            fn drop(&mut self) {
                // SAFETY: the value was dropped (or its drop unwound past
                // every field), and nothing refers to the allocation.
                unsafe { pool::give(self.0) };
            }
        }
        let give_back = GiveBack(self.ptr);
        // SAFETY: this was the last handle: the value is dropped once, here,
        // and the allocation is then either pooled or freed, never both.
        unsafe { std::ptr::drop_in_place(self.ptr.as_ptr()) };
        drop(give_back);
    }
}

#[cfg(not(baton_loom))]
mod pool {
    use super::*;
    use std::cell::Cell;

    /// A free allocation, linked through its own storage.
    struct Free {
        next: Option<NonNull<Free>>,
    }

    const _: () = assert!(std::mem::size_of::<Free>() <= std::mem::size_of::<Inner>());
    const _: () = assert!(std::mem::align_of::<Free>() <= std::mem::align_of::<Inner>());

    struct Pool {
        head: Cell<Option<NonNull<Free>>>,
        len: Cell<usize>,
    }

    impl Drop for Pool {
        fn drop(&mut self) {
            let mut next = self.head.take();
            while let Some(free) = next {
                // SAFETY: every pooled node is an unused `Inner`
                // allocation (see `give`), owned by this list alone.
                unsafe {
                    next = free.as_ref().next;
                    let layout = std::alloc::Layout::new::<Inner>();
                    std::alloc::dealloc(free.as_ptr().cast(), layout);
                }
            }
        }
    }

    std::thread_local! {
        static POOL: Pool = const {
            Pool {
                head: Cell::new(None),
                len: Cell::new(0),
            }
        };
    }

    /// An unused allocation from this thread's list, if any.
    #[inline]
    pub(super) fn take() -> Option<NonNull<Inner>> {
        POOL.try_with(|pool| {
            let free = pool.head.get()?;
            // SAFETY: a pooled node is owned by this list (see `give`).
            pool.head.set(unsafe { free.as_ref().next });
            pool.len.set(pool.len.get() - 1);
            Some(free.cast())
        })
        .ok()
        .flatten()
    }

    /// Recycles (or frees) an allocation whose value was dropped.
    ///
    /// # Safety
    /// `ptr` was allocated with `Inner`'s layout (by `new_in_place`), its value
    /// was dropped, and nothing refers to it any more.
    #[inline]
    pub(super) unsafe fn give(ptr: NonNull<Inner>) {
        let kept = POOL
            .try_with(|pool| {
                if pool.len.get() >= POOL_CAP {
                    return false;
                }
                let free = ptr.cast::<Free>();
                // SAFETY: the allocation is unused (contract) and large and
                // aligned enough for a `Free` (asserted above).
                unsafe {
                    free.as_ptr().write(Free {
                        next: pool.head.get(),
                    })
                };
                pool.head.set(Some(free));
                pool.len.set(pool.len.get() + 1);
                true
            })
            .unwrap_or(false);
        if !kept {
            let layout = std::alloc::Layout::new::<Inner>();
            // SAFETY: an `Inner` allocation, unused (contract).
            unsafe { std::alloc::dealloc(ptr.as_ptr().cast(), layout) };
        }
    }
}

#[cfg(baton_loom)]
mod pool {
    use super::*;

    pub(super) fn take() -> Option<NonNull<Inner>> {
        None
    }

    /// # Safety
    /// As the non-loom `give`.
    pub(super) unsafe fn give(ptr: NonNull<Inner>) {
        let layout = std::alloc::Layout::new::<Inner>();
        // SAFETY: an `Inner` allocation, unused (contract).
        unsafe { std::alloc::dealloc(ptr.as_ptr().cast(), layout) };
    }
}
