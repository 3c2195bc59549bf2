//! The persistent map that holds a context's bindings.
//!
//! A hash array mapped trie (HAMT), the structure CPython's `Python/hamt.c`
//! uses for the same job: keys are variable ids, hashed to 32 bits and
//! consumed 7 bits per level, so each branch has up to 128 slots. Two keys
//! whose 32-bit hashes are equal share a collision node.
//!
//! * **A map is one word:** `Option<ThinArc<Header, Slot>>`, a thin pointer
//!   to the root branch, or `None` for an empty map (which allocates
//!   nothing). The root's header carries the map's length, so no second
//!   word travels with the pointer; cloning, moving or dropping a map is
//!   one word's worth of work.
//! * **Slots live in the node:** a branch is one allocation — reference
//!   count, header, then its slots inline (triomphe's `ThinArc`: a header and
//!   a slice behind one thin pointer). A lookup is one dependent load per
//!   level: no `Vec` in between.
//! * **No popcount:** the header maps each of the 128 indices to the position
//!   of its slot (a byte each, `NONE` for no slot), instead of the usual
//!   bitmap and popcount: the default x86-64 target has no `popcnt`
//!   instruction, and the dozen instructions that stand in for it cost as
//!   much as the rest of a lookup. So a lookup is: take 7 bits of the
//!   hash, read that index's byte, compare the key in that slot. Slots are
//!   kept in the order they were bound; an unbound key's slot is refilled
//!   from the last one.
//! * **Flat for the first 128 variables:** the root is 128-way, and the
//!   hash keeps the id's own low bits ([`IdHash`]): ids come from a
//!   counter, so any 128 consecutive ids take 128 different root slots. In
//!   a program with up to 128 variables every map is one level deep, and a
//!   lookup or a replacement costs the same with one binding as with 64,
//!   whatever order the variables were first used in (a narrower root put
//!   interleaved families of variables one level down; the wider root costs
//!   64 bytes of header per branch and nothing per lookup). There is no
//!   separate flat root for small maps: it would cost a branch on every
//!   lookup. `benches/HISTORY.md` has the measurements.
//! * **Spare slots:** a branch grows to a power of two of slots (at most 128),
//!   the unused ones `Free` at the end, so binding a new key in an unshared
//!   branch with room, or unbinding one, allocates nothing either.
//! * **Copy is O(1):** cloning a map is a pointer copy plus one
//!   reference-count increment.
//! * **Writes are O(log n) with sharing:** `insert` and `remove` copy only the
//!   branches on the path to the key, and only those that are shared; a copy
//!   gets one spare slot, not a power of two. Copying a branch costs one
//!   reference-count increment per occupied slot, so the wide root is paid
//!   for here, on the first write after a copy, and not on every read (with
//!   64 bindings: 64 increments, where a 32-way root took about 34). A branch
//!   owned by this map alone is updated in place (a unique reference count
//!   is one load): replacing a bound value in an unshared map allocates
//!   nothing and moves no node.
//! * **Reads take no lock and write nothing:** a lookup is a loop of at most
//!   five steps down a path of immutable nodes.
//!
//! Nodes are reference-counted with `triomphe`, which has no weak count:
//! checking that a node is unshared (to update it in place) is one load, and
//! dropping a reference is one decrement.
//!
//! Invariants (checked by the property tests against a `BTreeMap`):
//! an empty map has no root; the root, when present, holds at least one
//! entry, and its header the map's length (other branches' holds 0); every
//! other branch holds at least two entries in its subtree, and never a lone
//! leaf or collision node (after a removal, that is pulled up into the
//! parent's slot); a branch has at most 128 slots, its first `count` slots
//! are occupied and the rest `Free`, and `pos` maps the indices in use one
//! to one onto the occupied slots; every entry sits where its hash leads; a
//! collision node holds at least two entries, all of one hash.

use std::any::Any;
use std::marker::PhantomData;
use std::mem::{self, ManuallyDrop};
use std::ptr::{self, NonNull};

use triomphe::{Arc, HeaderSliceWithLengthProtected, ThinArc};

/// A bound value, type-erased. The variable's id determines its type.
pub(crate) type Value = std::sync::Arc<dyn Any + Send + Sync>;

/// Reinterprets a bound value as the `T` it was created from.
///
/// # Safety
///
/// `value` must have been created from a `T`. Every value in a context map is
/// stored under the key of the `ContextVar<T>` that bound it, keys are never
/// reused, and only `ContextVar<T>` itself inserts under its key: reading a
/// value through that same key therefore always reads a `T`.
#[inline(always)]
pub(crate) unsafe fn downcast<T: Any>(value: &Value) -> &T {
    let any: &(dyn Any + Send + Sync) = &**value;
    debug_assert!(any.is::<T>(), "context value of the wrong type");
    // SAFETY: the caller guarantees that the pointee is a `T`; dropping the
    // vtable half of the fat pointer leaves a valid pointer to it.
    unsafe { &*(any as *const (dyn Any + Send + Sync) as *const T) }
}

/// One binding: the variable's id and name, and its value.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) key: u64,
    pub(crate) name: &'static str,
    pub(crate) value: Value,
}

/// The hash a map uses for its keys. Production code uses [`IdHash`]; the
/// tests plug in degenerate hashes to force collisions and deep tries.
pub(crate) trait KeyHash {
    fn hash(key: u64) -> u32;
}

/// The id's low 32 bits, with bit 6 flipped. Ids come from a counter, so
/// the ones bound in a context tend to be consecutive, and consecutive ids
/// differ in their low bits, which the trie reads first: 128 consecutive
/// ids take different root slots, and 16384 fit in two levels. (A counter
/// of variables never passes 2^32; if it did, ids 2^32 apart would share a
/// collision node — correct, only slower. Folding the high half in, or a
/// multiplicative hash, cost more per lookup than they bought: see
/// `benches/HISTORY.md`.)
///
/// The flipped bit (a bijection on each level's 7 bits, so none of the
/// above changes) sends the first 63 ids, a program's first variables, to
/// the upper half of a branch's `pos`, at least 72 bytes into the node:
/// never on the cache line of its reference count. A root shared by many
/// tasks has that count changed from every core (each copy, each finished
/// task), and each of their lookups reads `pos`.
pub(crate) struct IdHash;

/// The bit [`IdHash`] flips: the top bit of the root's index.
const FLIP: u32 = 1 << (BITS - 1);

impl KeyHash for IdHash {
    #[inline(always)]
    fn hash(key: u64) -> u32 {
        key as u32 ^ FLIP
    }
}

/// Hash bits consumed per level: branches are 128-way. Levels start at
/// shifts 0, 7, 14, 21 and 28 (the last one sees four bits).
const BITS: u32 = 7;
const MASK: u32 = (1 << BITS) - 1;
/// The most slots a branch can have.
const FANOUT: usize = 1 << BITS;
/// A `pos` entry with no slot. It is past the end of any branch's slots, so
/// a lookup needs no separate test: `slots.get(NONE)` is `None`.
const NONE: u8 = u8::MAX;

#[derive(Clone, Copy)]
struct Header {
    /// Bindings in the map: kept in the root only (0 in other branches).
    len: usize,
    /// Occupied slots: the first `count` ones; the rest are `Free`.
    count: u8,
    /// For each index (7 bits of hash), the position of its slot, or `NONE`.
    pos: [u8; FANOUT],
}

impl Header {
    const EMPTY: Header = Header {
        len: 0,
        count: 0,
        pos: [NONE; FANOUT],
    };
}

/// A branch: its header and its slots, in one allocation behind a thin
/// pointer. The slice may be longer than `count`: the rest is spare room,
/// `Free` slots.
type Node = ThinArc<Header, Slot>;

/// A branch's header and slots, for writing.
type NodeMut = HeaderSliceWithLengthProtected<Header, Slot>;

/// 40 bytes, like an [`Entry`]: `Link` hides in the niche of the entry's
/// name pointer (a flat four-variant enum would need a separate tag).
#[derive(Clone)]
enum Slot {
    Leaf(Entry),
    Link(Link),
}

#[derive(Clone)]
enum Link {
    /// Spare room at the end of a branch.
    Free,
    Branch(Node),
    Collision(Arc<Collision>),
}

/// Entries whose 32-bit hashes are all equal.
#[derive(Clone)]
struct Collision {
    hash: u32,
    entries: Vec<Entry>,
}

const FREE: Slot = Slot::Link(Link::Free);

#[inline(always)]
fn index(hash: u32, shift: u32) -> usize {
    debug_assert!(shift < 32);
    ((hash >> shift) & MASK) as usize
}

#[inline(always)]
fn header(node: &Node) -> &Header {
    &node.header.header
}

#[inline(always)]
fn is_unique(node: &Node) -> bool {
    node.with_arc(|arc| arc.is_unique())
}

/// Slots to allocate for a branch that must hold `n`: rounded up to a power
/// of two, so that a run of inserts reallocates it O(log n) times.
#[inline]
fn capacity(n: usize) -> usize {
    n.next_power_of_two().min(FANOUT)
}

/// Runs `f` on `node`, which the caller has made unshared (see
/// [`make_mut`]).
#[inline(always)]
fn with_mut<R>(node: &mut Node, f: impl FnOnce(&mut NodeMut) -> R) -> R {
    node.with_arc_mut(|arc| f(Arc::get_mut(arc).expect("made unshared before writing")))
}

/// Makes `node` writable with room for `need` slots: a node this map alone
/// owns, and that has the room, is written in place (the common case: one
/// load); otherwise it is reallocated.
#[inline(always)]
fn make_mut(node: &mut Node, need: usize) {
    if node.slice.len() < need || !is_unique(node) {
        reallocate(node, need);
    }
}

/// Replaces `node` by an unshared copy with room for `need` slots and one
/// more: a shared node's slots are cloned (a reference-count increment
/// each), an unshared one's are moved.
#[inline(never)]
fn reallocate(node: &mut Node, need: usize) {
    let header = *header(node);
    let count = usize::from(header.count);
    let unique = is_unique(node);
    let cap = if unique {
        capacity(need.max(count + 1))
    } else {
        need.max(count + 1).min(FANOUT)
    };
    let fresh = if unique {
        with_mut(node, |node| {
            let slots = node.slice_mut();
            Node::from_header_and_iter(
                header,
                (0..cap).map(|i| {
                    if i < count {
                        mem::replace(&mut slots[i], FREE)
                    } else {
                        FREE
                    }
                }),
            )
        })
    } else {
        cloned_branch(node, cap)
    };
    *node = fresh;
}

/// A copy of the shared branch `node` with `cap` slots: its occupied slots
/// cloned (a reference-count increment each), the rest `Free`.
fn cloned_branch(node: &Node, cap: usize) -> Node {
    let header = *header(node);
    let count = usize::from(header.count);
    let slots = &node.slice;
    Node::from_header_and_iter(
        header,
        (0..cap).map(|i| if i < count { slots[i].clone() } else { FREE }),
    )
}

/// A persistent map from variable ids to values: one word, the root branch
/// (`None` when the map is empty).
pub(crate) struct Map<H: KeyHash = IdHash> {
    root: Option<Node>,
    _hash: PhantomData<fn() -> H>,
}

impl<H: KeyHash> Clone for Map<H> {
    #[inline]
    fn clone(&self) -> Self {
        Map {
            root: self.root.clone(),
            _hash: PhantomData,
        }
    }
}

impl<H: KeyHash> Default for Map<H> {
    fn default() -> Self {
        Self::new()
    }
}

impl<H: KeyHash> Map<H> {
    pub(crate) const fn new() -> Self {
        Map {
            root: None,
            _hash: PhantomData,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.root.as_ref().map_or(0, |root| header(root).len)
    }

    #[inline]
    pub(crate) fn get(&self, key: u64) -> Option<&Value> {
        let mut node = self.root.as_ref()?;
        let hash = H::hash(key);
        let mut shift = 0;
        loop {
            let pos = header(node).pos[index(hash, shift)];
            match node.slice.get(usize::from(pos))? {
                Slot::Leaf(entry) => return (entry.key == key).then_some(&entry.value),
                Slot::Link(Link::Branch(child)) => {
                    node = child;
                    shift += BITS;
                }
                Slot::Link(Link::Collision(collision)) => {
                    return collision
                        .entries
                        .iter()
                        .find(|entry| entry.key == key)
                        .map(|entry| &entry.value);
                }
                Slot::Link(Link::Free) => return None,
            }
        }
    }

    /// Binds `key`, returning the value it replaced.
    #[inline]
    pub(crate) fn insert(&mut self, key: u64, name: &'static str, value: Value) -> Option<Value> {
        let hash = H::hash(key);
        // The common writes — a key at depth one of a root this map alone
        // owns, bound already or with a free slot for it — are done here:
        // inline, without a closure (`ThinArc`'s `with_arc_mut` takes one)
        // and without a path that can panic while `value` is held (the
        // unwinding would drop it, so it would be kept in memory). The value
        // then goes from registers straight into its slot; spilled as two
        // words and read back as one 16-byte piece, it stalls store-to-load
        // forwarding. (Nothing between taking
        // the root out and putting it back can panic.)
        if let Some(root) = self.root.take() {
            let mut root: Arc<NodeMut> = Arc::protected_from_thin(root);
            if let Some(node) = Arc::get_mut(&mut root) {
                let i = index(hash, 0);
                let (pos, count) = (node.header().pos[i], node.header().count);
                match node.slice_mut().get_mut(usize::from(pos)) {
                    Some(Slot::Leaf(entry)) if entry.key == key => {
                        // A key's name is its variable's: it never changes.
                        debug_assert_eq!(entry.name, name);
                        let old = mem::replace(&mut entry.value, value);
                        self.put_back(root);
                        return Some(old);
                    }
                    // `pos` is `NONE`: the key has no slot here.
                    None => {
                        let free = node.slice_mut().get_mut(usize::from(count));
                        if let Some(free @ Slot::Link(Link::Free)) = free {
                            // Swapped in, not assigned: that would drop the
                            // free slot first, with the new entry aside.
                            let free = mem::replace(free, Slot::Leaf(Entry { key, name, value }));
                            let header = node.header_mut();
                            header.pos[i] = count;
                            header.count += 1;
                            header.len += 1;
                            self.put_back(root);
                            drop(free);
                            return None;
                        }
                    }
                    Some(_) => {}
                }
            }
            self.put_back(root);
        }
        self.insert_slow(hash, key, name, value)
    }

    /// Puts back the root that [`insert`](Map::insert) or
    /// [`remove`](Map::remove) took out. Not an assignment, which would drop
    /// the `None` left in its place: a drop can unwind, and that path would
    /// keep a value in memory.
    #[inline(always)]
    fn put_back(&mut self, root: Arc<NodeMut>) {
        let none = self.root.replace(Arc::protected_into_thin(root));
        debug_assert!(none.is_none());
        mem::forget(none);
    }

    /// [`insert`](Map::insert)'s other cases.
    #[inline(never)]
    fn insert_slow(
        &mut self,
        hash: u32,
        key: u64,
        name: &'static str,
        value: Value,
    ) -> Option<Value> {
        // A key bound deeper, on a path this map alone owns: found without
        // the value in hand, which is then swapped in here (passed down, it
        // would be spilled and reloaded in a piece of another size: the
        // stall described in `insert`).
        if let Some(mut slot) = self
            .root
            .as_mut()
            .and_then(|root| unshared_value(root, 0, hash, key))
        {
            // SAFETY: `slot` points into a branch that this map alone owns
            // (every branch on the path was unique) and that nothing has
            // touched since `unshared_value` returned; `&mut self` keeps it
            // so.
            return Some(mem::replace(unsafe { slot.as_mut() }, value));
        }
        match &mut self.root {
            Some(root) => insert_at::<H>(root, 0, hash, key, name, value),
            None => {
                self.root = Some(first_root(hash, key, name, value));
                None
            }
        }
    }

    /// Unbinds `key`, returning its value. An absent key copies nothing.
    pub(crate) fn remove(&mut self, key: u64) -> Option<Value> {
        let hash = H::hash(key);
        // As in `insert`: a key at depth one of a root this map alone owns,
        // but not its last binding, is unbound here. The last occupied slot
        // takes the freed position; the entry is taken out last. (Nothing
        // between taking the root out and putting it back can panic: the
        // positions are in range.)
        if let Some(root) = self.root.take() {
            let mut root: Arc<NodeMut> = Arc::protected_from_thin(root);
            if let Some(node) = Arc::get_mut(&mut root) {
                let i = index(hash, 0);
                let header = node.header();
                let (at, last) = (usize::from(header.pos[i]), usize::from(header.count) - 1);
                let found = matches!(node.slice().get(at), Some(Slot::Leaf(e)) if e.key == key);
                if found && node.header().len > 1 {
                    let header = node.header_mut();
                    header.pos[i] = NONE;
                    if at != last {
                        let moved = header.pos.iter().position(|&p| usize::from(p) == last);
                        if let Some(moved) = moved {
                            header.pos[moved] = at as u8;
                        }
                    }
                    header.count -= 1;
                    header.len -= 1;
                    let slots = node.slice_mut();
                    if at != last {
                        slots.swap(at, last);
                    }
                    let taken = mem::replace(&mut slots[last], FREE);
                    self.put_back(root);
                    return match taken {
                        Slot::Leaf(entry) => Some(entry.value),
                        Slot::Link(_) => unreachable!("found a leaf there"),
                    };
                }
            }
            self.put_back(root);
        }
        self.remove_slow(hash, key)
    }

    /// [`remove`](Map::remove)'s other cases.
    #[inline(never)]
    fn remove_slow(&mut self, hash: u32, key: u64) -> Option<Value> {
        self.get(key)?;
        let root = self.root.as_mut()?;
        let removed = remove_at::<H>(root, 0, hash, key);
        debug_assert!(removed.is_some());
        if header(root).len == 0 {
            self.root = None;
        }
        removed
    }

    /// Visits every binding (name and value), in no particular order.
    pub(crate) fn for_each(&self, mut f: impl FnMut(u64, &'static str, &Value)) {
        fn walk(node: &Node, f: &mut impl FnMut(u64, &'static str, &Value)) {
            let count = usize::from(header(node).count);
            for slot in &node.slice[..count] {
                match slot {
                    Slot::Leaf(entry) => f(entry.key, entry.name, &entry.value),
                    Slot::Link(Link::Branch(child)) => walk(child, f),
                    Slot::Link(Link::Collision(collision)) => {
                        for entry in &collision.entries {
                            f(entry.key, entry.name, &entry.value);
                        }
                    }
                    Slot::Link(Link::Free) => unreachable!("free slots follow the occupied ones"),
                }
            }
        }
        if let Some(root) = &self.root {
            walk(root, &mut f);
        }
    }

    /// Gives this map a copy of its root branch (a reference-count increment
    /// per occupied slot, what a write to a shared root pays anyway) and
    /// returns the reference to the old root, rather than dropping it: for a
    /// caller that must keep the old root alive while this map is written
    /// (a lease, see `lease.rs`). The copy is unshared, so the write that
    /// follows updates it in place.
    pub(crate) fn detach_root(&mut self) -> Map<H> {
        let Some(root) = &self.root else {
            return Map::new();
        };
        // As a write's copy of a shared branch: one spare slot.
        let cap = (usize::from(header(root).count) + 1).min(FANOUT);
        let fresh = cloned_branch(root, cap);
        Map {
            root: self.root.replace(fresh),
            _hash: PhantomData,
        }
    }

    /// A copy of this map that does not own a reference to its root: never
    /// dropped (it is a `ManuallyDrop`), never written through, and read
    /// only while something that does own the root keeps it alive — the
    /// current context's view (`current.rs`) and a lent copy (`lease.rs`).
    #[inline(always)]
    pub(crate) fn alias(&self) -> ManuallyDrop<Map<H>> {
        // SAFETY: a bitwise copy of the root pointer; wrapped in
        // `ManuallyDrop` it never releases the reference it does not own.
        ManuallyDrop::new(unsafe { ptr::read(self) })
    }

    /// The map as one pointer, null when it is empty, owning the reference
    /// the map held (for `PackedCell`). The pointer is that of a
    /// reference-counted node, so at least 8-aligned.
    pub(crate) fn into_raw(self) -> *mut () {
        let this = ManuallyDrop::new(self);
        // SAFETY: `this` is never used or dropped again: the reference its
        // root held moves into the pointer.
        match unsafe { ptr::read(&this.root) } {
            None => ptr::null_mut(),
            Some(root) => root.into_raw().cast_mut().cast(),
        }
    }

    /// The map [`Map::into_raw`] made `raw` from.
    ///
    /// # Safety
    /// `raw` came from `into_raw` and is turned back into a map once.
    pub(crate) unsafe fn from_raw(raw: *mut ()) -> Map<H> {
        let root = if raw.is_null() {
            None
        } else {
            // SAFETY: a pointer `ThinArc::into_raw` returned (contract),
            // whose reference is taken back once.
            Some(unsafe { Node::from_raw(raw.cast_const().cast()) })
        };
        Map {
            root,
            _hash: PhantomData,
        }
    }

    /// Whether dropping this map could drop a value (and so run user code):
    /// only if it is the last owner of its root. A shared root is only
    /// counted down.
    #[inline]
    pub(crate) fn may_drop_values(&self) -> bool {
        self.root.as_ref().is_some_and(is_unique)
    }

    /// Whether the map has no bindings (and so no root to count).
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// Whether the two maps share their root (or are both empty).
    #[inline]
    pub(crate) fn ptr_eq(&self, other: &Self) -> bool {
        match (&self.root, &other.root) {
            (None, None) => true,
            (Some(a), Some(b)) => a.ptr() == b.ptr(),
            _ => false,
        }
    }
}

/// Where the value of `key` is, if `key` is bound in the subtree of `node`
/// (a branch at `shift`) and every branch on its path, `node` included, is
/// owned by this map alone, so that the value may be replaced in place.
#[inline(never)]
fn unshared_value(node: &mut Node, shift: u32, hash: u32, key: u64) -> Option<NonNull<Value>> {
    node.with_arc_mut(|arc| {
        let node = Arc::get_mut(arc)?;
        let pos = node.header().pos[index(hash, shift)];
        match node.slice_mut().get_mut(usize::from(pos))? {
            Slot::Leaf(entry) if entry.key == key => Some(NonNull::from(&mut entry.value)),
            Slot::Link(Link::Branch(child)) => unshared_value(child, shift + BITS, hash, key),
            _ => None,
        }
    })
}

/// The root of a map of one binding, with room for a second.
#[inline(never)]
fn first_root(hash: u32, key: u64, name: &'static str, value: Value) -> Node {
    let mut header = Header {
        len: 1,
        count: 1,
        ..Header::EMPTY
    };
    header.pos[index(hash, 0)] = 0;
    let leaf = Slot::Leaf(Entry { key, name, value });
    Node::from_header_and_iter(header, [leaf, FREE].into_iter())
}

/// Binds `key` in the subtree of `node`, a branch at `shift` (the root when
/// `shift` is 0), returning the value it replaced. The binding travels as
/// separate arguments (an `Entry` passed in memory is written as words and
/// read back as 16-byte pieces, which stalls store-to-load forwarding), and
/// the rare cases are out of
/// line: replacing a value is a short walk down and one swap.
fn insert_at<H: KeyHash>(
    node: &mut Node,
    shift: u32,
    hash: u32,
    key: u64,
    name: &'static str,
    value: Value,
) -> Option<Value> {
    let i = index(hash, shift);
    let pos = usize::from(header(node).pos[i]);
    if pos == usize::from(NONE) {
        return insert_new(node, shift, i, key, name, value);
    }
    make_mut(node, 0);
    let old = with_mut(node, |node| {
        let slot = &mut node.slice_mut()[pos];
        match slot {
            Slot::Leaf(existing) if existing.key == key => {
                // A key's name is its variable's: it never changes.
                debug_assert_eq!(existing.name, name);
                Some(mem::replace(&mut existing.value, value))
            }
            Slot::Link(Link::Branch(child)) => {
                insert_at::<H>(child, shift + BITS, hash, key, name, value)
            }
            _ => insert_below::<H>(slot, shift, hash, Entry { key, name, value }),
        }
    });
    if shift == 0 && old.is_none() {
        with_mut(node, |node| node.header_mut().len += 1);
    }
    old
}

/// Binds a key that has no slot at index `i` of `node`, a branch at
/// `shift`: a new slot after the occupied ones.
#[inline(never)]
fn insert_new(
    node: &mut Node,
    shift: u32,
    i: usize,
    key: u64,
    name: &'static str,
    value: Value,
) -> Option<Value> {
    let count = usize::from(header(node).count);
    make_mut(node, count + 1);
    // The closure takes the binding by value: by reference, the name would
    // be spilled as two words and read back as one 16-byte piece (a
    // store-forwarding stall). The entry is built where nothing can panic
    // before it is stored, and swapped in rather than assigned (which would
    // drop the free slot first): either would keep it aside in memory.
    with_mut(node, move |node| {
        let slot = &mut node.slice_mut()[count];
        let free = mem::replace(slot, Slot::Leaf(Entry { key, name, value }));
        debug_assert!(matches!(free, Slot::Link(Link::Free)));
        let header = node.header_mut();
        header.pos[i] = count as u8;
        header.count += 1;
        if shift == 0 {
            header.len += 1;
        }
    });
    None
}

/// Binds `entry` at `slot`, a slot of a branch at `shift` that holds a leaf
/// of another key or a collision node: the slot becomes a deeper branch or a
/// collision node, or joins the collision node.
#[inline(never)]
fn insert_below<H: KeyHash>(slot: &mut Slot, shift: u32, hash: u32, entry: Entry) -> Option<Value> {
    match slot {
        Slot::Leaf(existing) => {
            debug_assert_ne!(existing.key, entry.key);
            let existing_hash = H::hash(existing.key);
            let existing = mem::replace(slot, FREE);
            *slot = if existing_hash == hash {
                let Slot::Leaf(existing) = existing else {
                    unreachable!("matched a leaf")
                };
                Slot::Link(Link::Collision(Arc::new(Collision {
                    hash,
                    entries: vec![existing, entry],
                })))
            } else {
                let leaf = Slot::Leaf(entry);
                Slot::Link(Link::Branch(join(
                    shift + BITS,
                    existing,
                    existing_hash,
                    leaf,
                    hash,
                )))
            };
            None
        }
        Slot::Link(Link::Collision(collision)) if collision.hash == hash => {
            let collision = Arc::make_mut(collision);
            if let Some(existing) = collision.entries.iter_mut().find(|e| e.key == entry.key) {
                return Some(mem::replace(existing, entry).value);
            }
            collision.entries.push(entry);
            None
        }
        Slot::Link(Link::Collision(collision)) => {
            // A different hash reached this collision node: push the node one
            // level down, beside the new leaf.
            let collision_hash = collision.hash;
            let collision = mem::replace(slot, FREE);
            let leaf = Slot::Leaf(entry);
            let branch = join(shift + BITS, collision, collision_hash, leaf, hash);
            *slot = Slot::Link(Link::Branch(branch));
            None
        }
        Slot::Link(Link::Branch(_)) => unreachable!("handled by `insert_at`"),
        Slot::Link(Link::Free) => unreachable!("`pos` addresses occupied slots only"),
    }
}

/// A branch at `shift` holding two slots whose hashes differ.
fn join(shift: u32, a: Slot, a_hash: u32, b: Slot, b_hash: u32) -> Node {
    debug_assert_ne!(a_hash, b_hash);
    let (ia, ib) = (index(a_hash, shift), index(b_hash, shift));
    let mut header = Header::EMPTY;
    if ia == ib {
        let child = join(shift + BITS, a, a_hash, b, b_hash);
        header.count = 1;
        header.pos[ia] = 0;
        Node::from_header_and_iter(header, std::iter::once(Slot::Link(Link::Branch(child))))
    } else {
        header.count = 2;
        header.pos[ia] = 0;
        header.pos[ib] = 1;
        Node::from_header_and_iter(header, [a, b].into_iter())
    }
}

/// Removes `key` from the subtree of `node`, a branch at `shift` (the root
/// when `shift` is 0). The caller has checked that `key` is present: the
/// nodes on its path are copied if shared.
fn remove_at<H: KeyHash>(node: &mut Node, shift: u32, hash: u32, key: u64) -> Option<Value> {
    let i = index(hash, shift);
    let pos = usize::from(header(node).pos[i]);
    if pos == usize::from(NONE) {
        return None;
    }
    make_mut(node, 0);
    with_mut(node, |node| {
        let count = usize::from(node.header().count);
        let slots = node.slice_mut();
        let removed = match &mut slots[pos] {
            Slot::Leaf(entry) => {
                if entry.key != key {
                    return None;
                }
                // The last occupied slot takes the freed position. (The entry
                // is taken out last: once it is out of the node, nothing may
                // panic before its value is, or the value is kept in memory
                // for the unwinding, copied in pieces that stall the loads.)
                let last = count - 1;
                let header = node.header_mut();
                header.pos[i] = NONE;
                if pos != last {
                    let moved = header.pos.iter().position(|&p| usize::from(p) == last);
                    header.pos[moved.expect("every slot has an index")] = pos as u8;
                }
                header.count -= 1;
                let slots = node.slice_mut();
                slots.swap(pos, last);
                match mem::replace(&mut slots[last], FREE) {
                    Slot::Leaf(entry) => entry.value,
                    Slot::Link(_) => unreachable!("swapped a leaf there"),
                }
            }
            Slot::Link(Link::Branch(child)) => {
                let removed = remove_at::<H>(child, shift + BITS, hash, key)?;
                if let Some(single) = take_single(child) {
                    slots[pos] = single;
                }
                removed
            }
            Slot::Link(Link::Collision(collision)) => {
                let collision = Arc::make_mut(collision);
                let at = collision.entries.iter().position(|e| e.key == key)?;
                let removed = collision.entries.swap_remove(at).value;
                if collision.entries.len() == 1 {
                    let last = collision.entries.pop().expect("one entry left");
                    slots[pos] = Slot::Leaf(last);
                }
                removed
            }
            Slot::Link(Link::Free) => unreachable!("`pos` addresses occupied slots only"),
        };
        if shift == 0 {
            node.header_mut().len -= 1;
        }
        Some(removed)
    })
}

/// If `node` holds a single slot that is a leaf or a collision node, takes
/// it out: the caller puts it in place of `node`, one level up (a collision
/// node is found by its hash at any depth). `node` has just been written to,
/// so it is unshared.
fn take_single(node: &mut Node) -> Option<Slot> {
    if header(node).count != 1 || matches!(node.slice[0], Slot::Link(Link::Branch(_))) {
        return None;
    }
    with_mut(node, |node| {
        *node.header_mut() = Header::EMPTY;
        Some(mem::replace(&mut node.slice_mut()[0], FREE))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// Every key collides with a quarter of the others (two bits of hash).
    struct FourBuckets;
    impl KeyHash for FourBuckets {
        fn hash(key: u64) -> u32 {
            (key % 4) as u32
        }
    }

    /// Keys agree on their low 29 bits of hash: the trie goes to full depth.
    struct Deep;
    impl KeyHash for Deep {
        fn hash(key: u64) -> u32 {
            ((key % 8) as u32) << 29
        }
    }

    /// Identity hash: sequential keys share long prefixes in the high bits.
    struct Identity;
    impl KeyHash for Identity {
        fn hash(key: u64) -> u32 {
            key as u32
        }
    }

    fn insert<H: KeyHash>(map: &mut Map<H>, key: u64, value: u64) -> Option<u64> {
        map.insert(key, "k", std::sync::Arc::new(value))
            .map(|v| value_of(&v))
    }

    fn value_of(value: &Value) -> u64 {
        *value.downcast_ref::<u64>().unwrap()
    }

    fn contents<H: KeyHash>(map: &Map<H>) -> BTreeMap<u64, u64> {
        let mut out = BTreeMap::new();
        map.for_each(|key, _, value| {
            assert!(
                out.insert(key, value_of(value)).is_none(),
                "key {key} twice"
            );
        });
        out
    }

    /// Checks the invariants the module docs list, and that every entry sits
    /// where its hash leads.
    fn check_invariants<H: KeyHash>(map: &Map<H>) {
        fn walk<H: KeyHash>(node: &Node, shift: u32, path: u32) -> usize {
            let &Header { len, count, pos } = header(node);
            let count = usize::from(count);
            assert!(node.slice.len() <= FANOUT);
            assert!(count >= 1 && count <= node.slice.len());
            if shift > 0 {
                assert_eq!(len, 0, "only the root counts the bindings");
            }
            // `pos` maps the indices in use one to one onto the occupied slots.
            let mut seen = vec![false; count];
            for &p in pos.iter().filter(|&&p| p != NONE) {
                assert!(!mem::replace(&mut seen[usize::from(p)], true));
            }
            assert!(seen.iter().all(|&seen| seen));
            for slot in &node.slice[count..] {
                assert!(
                    matches!(slot, Slot::Link(Link::Free)),
                    "free after occupied"
                );
            }
            // The hash bits that lead to this node's slots, through this level.
            let through = if shift + BITS >= 32 {
                u32::MAX
            } else {
                (1 << (shift + BITS)) - 1
            };
            let mut entries = 0;
            for (i, &p) in pos.iter().enumerate().filter(|&(_, &p)| p != NONE) {
                let path = path | ((i as u32) << shift);
                match &node.slice[usize::from(p)] {
                    Slot::Leaf(entry) => {
                        assert_eq!(H::hash(entry.key) & through, path);
                        entries += 1;
                    }
                    Slot::Link(Link::Branch(child)) => {
                        entries += walk::<H>(child, shift + BITS, path);
                    }
                    Slot::Link(Link::Collision(collision)) => {
                        assert!(collision.entries.len() >= 2);
                        assert_eq!(collision.hash & through, path);
                        for entry in &collision.entries {
                            assert_eq!(H::hash(entry.key), collision.hash);
                        }
                        entries += collision.entries.len();
                    }
                    Slot::Link(Link::Free) => panic!("`pos` leads to a free slot"),
                }
            }
            if shift > 0 {
                assert!(entries >= 2, "a branch below the root holds two entries");
                assert!(
                    count > 1 || matches!(node.slice[0], Slot::Link(Link::Branch(_))),
                    "a lone leaf or collision node is pulled up"
                );
            }
            entries
        }
        match &map.root {
            None => assert_eq!(map.len(), 0),
            Some(root) => {
                let entries = walk::<H>(root, 0, 0);
                assert!(entries >= 1);
                assert_eq!(entries, header(root).len);
            }
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64, u64),
        Remove(u64),
        Copy,
    }

    fn ops(max_key: u64) -> impl Strategy<Value = Vec<Op>> {
        let op = prop_oneof![
            6 => (1..max_key, any::<u64>()).prop_map(|(k, v)| Op::Insert(k, v)),
            3 => (1..max_key).prop_map(Op::Remove),
            1 => Just(Op::Copy),
        ];
        prop::collection::vec(op, 0..if cfg!(miri) { 40 } else { 2_000 })
    }

    fn check_against_model<H: KeyHash>(ops: &[Op]) {
        let mut map: Map<H> = Map::new();
        let mut model = BTreeMap::new();
        let mut snapshots: Vec<(Map<H>, BTreeMap<u64, u64>)> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match *op {
                Op::Insert(k, v) => {
                    let old = insert(&mut map, k, v);
                    assert_eq!(old, model.insert(k, v));
                }
                Op::Remove(k) => {
                    let old = map.remove(k).map(|v| value_of(&v));
                    assert_eq!(old, model.remove(&k));
                }
                Op::Copy => snapshots.push((map.clone(), model.clone())),
            }
            assert_eq!(map.len(), model.len());
            if let Op::Insert(k, _) | Op::Remove(k) = *op {
                assert_eq!(map.get(k).map(value_of), model.get(&k).copied());
            }
            if i % 16 == 0 {
                check_invariants(&map);
            }
        }
        check_invariants(&map);
        assert_eq!(contents(&map), model);
        for (k, v) in &model {
            assert_eq!(map.get(*k).map(value_of), Some(*v));
        }
        // Later writes to the original never show through a copy.
        for (snapshot, expected) in &snapshots {
            check_invariants(snapshot);
            assert_eq!(snapshot.len(), expected.len());
            assert_eq!(&contents(snapshot), expected);
        }
    }

    fn config() -> ProptestConfig {
        ProptestConfig {
            cases: if cfg!(miri) { 2 } else { 64 },
            failure_persistence: None,
            ..ProptestConfig::default()
        }
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn matches_btreemap_mixed_hash(ops in ops(3_000)) {
            check_against_model::<IdHash>(&ops);
        }

        #[test]
        fn matches_btreemap_small_keyspace(ops in ops(40)) {
            check_against_model::<IdHash>(&ops);
        }

        #[test]
        fn matches_btreemap_forced_collisions(ops in ops(200)) {
            check_against_model::<FourBuckets>(&ops);
        }

        #[test]
        fn matches_btreemap_full_depth(ops in ops(200)) {
            check_against_model::<Deep>(&ops);
        }

        #[test]
        fn matches_btreemap_identity_hash(ops in ops(5_000)) {
            check_against_model::<Identity>(&ops);
        }
    }

    #[test]
    fn copies_share_structure_until_written() {
        let mut a: Map = Map::new();
        for k in 1..100 {
            insert(&mut a, k, k);
        }
        let b = a.clone();
        assert!(a.ptr_eq(&b));
        insert(&mut a, 5, 500);
        assert!(!a.ptr_eq(&b));
        assert_eq!(b.get(5).map(value_of), Some(5));
        assert_eq!(a.get(5).map(value_of), Some(500));
    }

    #[test]
    fn a_detached_root_keeps_the_old_bindings_and_the_map_writes_its_copy() {
        let mut a: Map = Map::new();
        for k in 1..200 {
            insert(&mut a, k, k);
        }
        let old = a.detach_root();
        assert!(!a.ptr_eq(&old));
        check_invariants(&a);
        check_invariants(&old);
        // The copy's root is this map's alone: written in place.
        assert!(is_unique(a.root.as_ref().unwrap()));
        insert(&mut a, 5, 500);
        assert!(a.remove(150).is_some());
        assert_eq!(old.get(5).map(value_of), Some(5));
        assert_eq!(old.get(150).map(value_of), Some(150));
        assert_eq!(a.get(5).map(value_of), Some(500));
        assert_eq!((a.len(), old.len()), (198, 199));
        // An empty map has nothing to detach.
        let mut empty: Map = Map::new();
        assert!(empty.detach_root().is_empty() && empty.is_empty());
    }

    #[test]
    fn collision_node_pushed_down_by_a_different_hash() {
        // Sixteen keys that map to 2 mod 4, then: 4, 8, 12 collide fully; 1
        // differs in the low bits only.
        const FILL: u64 = 16;
        let mut map: Map<FourBuckets> = Map::new();
        for k in 100..100 + FILL {
            insert(&mut map, k * 4 + 2, k);
        }
        insert(&mut map, 4, 4);
        insert(&mut map, 8, 8);
        insert(&mut map, 1, 1);
        insert(&mut map, 12, 12);
        check_invariants(&map);
        assert_eq!(map.get(12).map(value_of), Some(12));
        for k in [8, 4, 12, 1] {
            assert!(map.remove(k).is_some());
        }
        check_invariants(&map);
        for k in 100..100 + FILL {
            assert_eq!(map.remove(k * 4 + 2).map(|v| value_of(&v)), Some(k));
        }
        assert_eq!(map.len(), 0);
        assert!(map.root.is_none());
    }

    #[test]
    fn removing_an_absent_key_copies_nothing() {
        let mut a: Map = Map::new();
        insert(&mut a, 1, 1);
        let b = a.clone();
        assert!(a.remove(2).is_none());
        assert!(a.ptr_eq(&b));
    }

    #[test]
    fn a_map_is_one_word() {
        assert_eq!(mem::size_of::<Map>(), mem::size_of::<usize>());
        assert_eq!(mem::size_of::<Map<FourBuckets>>(), mem::size_of::<usize>());
        #[cfg(target_pointer_width = "64")]
        assert_eq!(mem::size_of::<Map>(), 8);
        // A slot costs what its entry does: links live in the entry's niche.
        assert_eq!(mem::size_of::<Slot>(), mem::size_of::<Entry>());
    }

    #[test]
    fn grows_to_64_and_back_to_empty() {
        fn check<H: KeyHash>(map: &Map<H>, model: &BTreeMap<u64, u64>) {
            check_invariants(map);
            assert_eq!(map.len(), model.len());
            assert_eq!(&contents(map), model);
            for k in 0..=66 {
                assert_eq!(map.get(k).map(value_of), model.get(&k).copied());
            }
        }
        fn run<H: KeyHash>() {
            // Every state is checked; under Miri, every eighth (and the last).
            let checked = |step: usize| !cfg!(miri) || step % 8 == 0;
            let mut map: Map<H> = Map::new();
            let mut model = BTreeMap::new();
            let mut snapshots = Vec::new();
            for k in 1..=64 {
                assert_eq!(insert(&mut map, k, k * 10), None);
                model.insert(k, k * 10);
                if checked(k as usize) {
                    check(&map, &model);
                    snapshots.push((map.clone(), model.clone()));
                }
            }
            for k in 1..=64 {
                assert_eq!(insert(&mut map, k, k), Some(k * 10));
                model.insert(k, k);
                if checked(k as usize) {
                    check(&map, &model);
                }
            }
            // Odd keys upwards, then even keys downwards.
            let odd = (1..=64).filter(|k| k % 2 == 1);
            let order: Vec<u64> = odd.chain((1..=64).rev().filter(|k| k % 2 == 0)).collect();
            for (step, &k) in order.iter().enumerate() {
                assert_eq!(map.remove(k).map(|v| value_of(&v)), model.remove(&k));
                if checked(step + 1) {
                    check(&map, &model);
                    snapshots.push((map.clone(), model.clone()));
                }
            }
            assert!(map.root.is_none());
            for (snapshot, expected) in &snapshots {
                check(snapshot, expected);
            }
        }
        run::<IdHash>();
        run::<FourBuckets>();
        run::<Deep>();
        run::<Identity>();
    }

    #[test]
    fn consecutive_ids_sit_at_depth_one() {
        // What the 128-way root is for (see the module docs).
        fn leaves_at_root(keys: impl IntoIterator<Item = u64>) -> usize {
            let mut map: Map = Map::new();
            for k in keys {
                insert(&mut map, k, k);
            }
            let root = map.root.as_ref().unwrap();
            root.slice
                .iter()
                .filter(|slot| matches!(slot, Slot::Leaf(_)))
                .count()
        }
        assert_eq!(leaves_at_root(1..=16), 16);
        assert_eq!(leaves_at_root(1..=64), 64);
        assert_eq!(leaves_at_root(1..=128), 128);
        assert_eq!(leaves_at_root(1000..=1127), 128);
        // 64 variables whose ids are interleaved with 64 others' (ids are
        // assigned on first use: two families of variables used in turns).
        assert_eq!(leaves_at_root((1..=127).step_by(2)), 64);
    }

    #[test]
    fn writes_to_an_unshared_map_stay_in_place() {
        let root_ptr = |map: &Map| map.root.as_ref().unwrap().ptr();
        let mut map: Map = Map::new();
        insert(&mut map, 1, 1);
        let root = root_ptr(&map);
        // Replacing, and binding then unbinding a key while the root has room.
        assert_eq!(insert(&mut map, 1, 2), Some(1));
        assert_eq!(insert(&mut map, 2, 2), None);
        assert_eq!(map.remove(2).map(|v| value_of(&v)), Some(2));
        assert_eq!(root_ptr(&map), root);

        // A full root: 129 shares key 1's index, so it goes one level down
        // into that slot, and the root itself is written in place.
        for k in 1..=128 {
            insert(&mut map, k, k);
        }
        let root = root_ptr(&map);
        for k in 1..=128 {
            assert_eq!(insert(&mut map, k, k + 1), Some(k));
        }
        assert_eq!(insert(&mut map, 129, 129), None);
        // Replacing a value one level down writes it in place as well.
        let branch = match &map.root.as_ref().unwrap().slice[0] {
            Slot::Link(Link::Branch(branch)) => branch.ptr(),
            _ => panic!("keys 1 and 129 share a branch"),
        };
        assert_eq!(insert(&mut map, 129, 130), Some(129));
        assert_eq!(insert(&mut map, 1, 3), Some(2));
        assert!(matches!(&map.root.as_ref().unwrap().slice[0],
            Slot::Link(Link::Branch(b)) if b.ptr() == branch));
        assert_eq!(map.remove(129).map(|v| value_of(&v)), Some(130));
        assert_eq!(root_ptr(&map), root);
        check_invariants(&map);

        // But not once a copy shares the path: the copy keeps its values.
        assert_eq!(insert(&mut map, 129, 129), None);
        let copy = map.clone();
        assert_eq!(insert(&mut map, 129, 130), Some(129));
        assert_eq!(copy.get(129).map(value_of), Some(129));
        assert_eq!(map.get(129).map(value_of), Some(130));
        check_invariants(&map);
        check_invariants(&copy);
    }

    #[test]
    fn the_first_variables_are_found_off_the_reference_counts_line() {
        // The header starts after the 8-byte count: `pos[64..]` lies at
        // least 72 bytes into the node, past any line the count is on.
        for key in 1..64 {
            assert!(index(IdHash::hash(key), 0) >= FANOUT / 2, "id {key}");
        }
        // Still one root slot each for any 128 consecutive ids.
        let slots: std::collections::HashSet<_> = (1000..1128)
            .map(|key| index(IdHash::hash(key), 0))
            .collect();
        assert_eq!(slots.len(), FANOUT);
    }

    #[test]
    fn a_write_after_a_copy_copies_only_its_path() {
        let mut a: Map = Map::new();
        for k in 1..=200 {
            insert(&mut a, k, k);
        }
        let b = a.clone();
        insert(&mut a, 5, 500);
        let (ra, rb) = (a.root.as_ref().unwrap(), b.root.as_ref().unwrap());
        assert_ne!(ra.ptr(), rb.ptr());
        let count = usize::from(header(ra).count);
        assert_eq!(count, usize::from(header(rb).count));
        let on_path = usize::from(header(ra).pos[index(IdHash::hash(5), 0)]);
        for (pos, (sa, sb)) in ra.slice.iter().zip(rb.slice.iter()).take(count).enumerate() {
            let shared = match (sa, sb) {
                (Slot::Leaf(x), Slot::Leaf(y)) => std::sync::Arc::ptr_eq(&x.value, &y.value),
                (Slot::Link(Link::Branch(x)), Slot::Link(Link::Branch(y))) => x.ptr() == y.ptr(),
                _ => panic!("slot {pos} changed kind"),
            };
            assert_eq!(shared, pos != on_path, "slot {pos}");
        }
        check_invariants(&a);
        check_invariants(&b);
    }

    #[test]
    fn collision_pushed_down_to_full_depth_and_pulled_back_up() {
        // Under `Deep`, 8 and 16 hash to 0 and 4 to 1 << 31: one slot at
        // every level but the last.
        let mut map: Map<Deep> = Map::new();
        insert(&mut map, 8, 8);
        insert(&mut map, 16, 16);
        let first = |map: &Map<Deep>| map.root.as_ref().unwrap().slice[0].clone();
        assert!(matches!(first(&map), Slot::Link(Link::Collision(_))));
        insert(&mut map, 4, 4);
        check_invariants(&map);
        let mut slot = first(&map);
        let mut depth = 0;
        while let Slot::Link(Link::Branch(node)) = slot {
            depth += 1;
            slot = node.slice[0].clone();
        }
        assert_eq!(depth, 4, "branches at shifts 7, 14, 21 and 28");
        assert!(matches!(slot, Slot::Link(Link::Collision(_))));
        assert_eq!(map.get(4).map(value_of), Some(4));
        assert_eq!(map.get(8).map(value_of), Some(8));

        assert_eq!(map.remove(4).map(|v| value_of(&v)), Some(4));
        check_invariants(&map);
        assert!(matches!(first(&map), Slot::Link(Link::Collision(_))));
        assert_eq!(map.remove(8).map(|v| value_of(&v)), Some(8));
        check_invariants(&map);
        assert!(matches!(first(&map), Slot::Leaf(_)));
        assert_eq!(map.remove(16).map(|v| value_of(&v)), Some(16));
        assert!(map.root.is_none());
    }
}
