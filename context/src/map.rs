//! The persistent map that holds a context's bindings.
//!
//! A hash array mapped trie (HAMT), the structure CPython's `Python/hamt.c`
//! uses for the same job: keys are variable ids, hashed to 32 bits and
//! consumed 5 bits per level, so each node has up to 32 slots addressed by a
//! bitmap and a popcount. Two keys whose 32-bit hashes are equal share a
//! collision node.
//!
//! * **Small maps are flat:** up to sixteen bindings — the common case: a
//!   request id, a user, a trace id — live in one node that holds their keys
//!   in an array, so a lookup is a handful of compares and no hashing (the
//!   small-map specialisation .NET's `AsyncLocal` maps use). The
//!   seventeenth binding turns the root into a HAMT branch. (Sixteen, not
//!   eight: `set`+`reset` with 9–16 bound vars then costs what it does with
//!   one, 41 ns instead of 64, at the price of a bigger node to copy on the
//!   first write after a copy.)
//! * **Copy is O(1):** a map is one `Arc` to its root; cloning it is a pointer
//!   copy plus a reference-count increment.
//! * **Writes are O(log n) with sharing:** `insert` and `remove` copy only the
//!   nodes on the path to the key, and only those that are shared. A node
//!   owned by this map alone is updated in place (`Arc::make_mut`), so a run
//!   of `set`s after one copy costs no further allocation but the value's.
//! * **Reads take no lock and write nothing:** a lookup is at most seven
//!   bitmap tests on a path of immutable nodes.
//!
//! Nodes are reference-counted with `triomphe::Arc`, which has no weak count:
//! checking that a node is unshared (to update it in place) is one load, and
//! dropping a reference is one decrement.
//!
//! Invariants (checked by the property tests against a `BTreeMap`):
//! the root, when present, is a small node or a branch with at least one
//! entry, and an empty map has no root; every other
//! node holds at least two entries in its subtree (a subtree left with one
//! entry after a removal is pulled up into its parent as a leaf); slots of a
//! branch are ordered by bit index; a collision node holds entries of one hash.

use std::any::Any;
use std::marker::PhantomData;
use std::mem;

use triomphe::Arc;

/// A bound value, type-erased. The variable's id determines its type.
pub(crate) type Value = std::sync::Arc<dyn Any + Send + Sync>;

/// One binding: the variable's id and name, and its value.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) key: u64,
    pub(crate) name: &'static str,
    pub(crate) value: Value,
}

/// The hash a map uses for its keys. Production code uses [`MixHash`]; the
/// tests plug in degenerate hashes to force collisions and deep tries.
pub(crate) trait KeyHash {
    fn hash(key: u64) -> u32;
}

/// Fibonacci hashing: variable ids are sequential, multiplying by 2^64/φ
/// spreads them over the high bits, which we keep.
pub(crate) struct MixHash;

impl KeyHash for MixHash {
    #[inline(always)]
    fn hash(key: u64) -> u32 {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32
    }
}

const BITS: u32 = 5;
const MASK: u32 = (1 << BITS) - 1;

#[derive(Clone)]
enum Slot {
    Leaf(Entry),
    Node(Arc<Node>),
}

/// Capacity of the flat root node.
const SMALL: usize = 16;

#[derive(Clone)]
enum Node {
    Branch { bitmap: u32, slots: Vec<Slot> },
    Collision { hash: u32, entries: Vec<Entry> },
}

/// The flat root of a map of at most `SMALL` bindings. Key 0 marks a free
/// slot (variable ids start at 1).
#[derive(Clone)]
struct Small {
    keys: [u64; SMALL],
    entries: [Option<(&'static str, Value)>; SMALL],
}

/// A word-sized tag (`repr(usize)`): a map is then three whole words, which
/// the thread's context slot moves on every enter and exit. With the default
/// byte tag the compiler moves it as odd-sized pieces and reads them back as
/// 16-byte loads, stalling store-to-load forwarding (measured: 41 ns per
/// `run(noop)` with a byte tag).
#[derive(Clone)]
#[repr(usize)]
enum Root {
    Empty,
    Small(Arc<Small>),
    Trie(Arc<Node>),
}

/// A persistent map from variable ids to values.
pub(crate) struct Map<H: KeyHash = MixHash> {
    root: Root,
    len: usize,
    _hash: PhantomData<fn() -> H>,
}

impl<H: KeyHash> Clone for Map<H> {
    #[inline]
    fn clone(&self) -> Self {
        Map {
            root: self.root.clone(),
            len: self.len,
            _hash: PhantomData,
        }
    }
}

impl<H: KeyHash> Default for Map<H> {
    fn default() -> Self {
        Self::new()
    }
}

/// `Arc::make_mut`, inlined: one load when the node is unshared, which is
/// every write after the first since the last copy.
#[inline(always)]
fn make_mut<T: Clone>(node: &mut Arc<T>) -> &mut T {
    if !node.is_unique() {
        *node = Arc::new((**node).clone());
    }
    Arc::get_mut(node).expect("unique after copying")
}

#[inline(always)]
fn index(hash: u32, shift: u32) -> u32 {
    debug_assert!(shift < 32);
    (hash >> shift) & MASK
}

impl Small {
    #[inline(always)]
    fn position(&self, key: u64) -> Option<usize> {
        self.keys.iter().position(|&k| k == key)
    }
}

impl<H: KeyHash> Map<H> {
    pub(crate) const fn new() -> Self {
        Map {
            root: Root::Empty,
            len: 0,
            _hash: PhantomData,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn get(&self, key: u64) -> Option<&Value> {
        match &self.root {
            Root::Empty => None,
            Root::Small(small) => {
                let i = small.position(key)?;
                small.entries[i].as_ref().map(|(_, value)| value)
            }
            Root::Trie(node) => trie_get::<H>(node, key).map(|entry| &entry.value),
        }
    }

    /// Binds `key`, returning the value it replaced.
    pub(crate) fn insert(&mut self, key: u64, name: &'static str, value: Value) -> Option<Value> {
        debug_assert_ne!(key, 0, "key 0 marks free slots");
        let old = match &mut self.root {
            Root::Empty => {
                let mut small = Small {
                    keys: [0; SMALL],
                    entries: Default::default(),
                };
                small.keys[0] = key;
                small.entries[0] = Some((name, value));
                self.root = Root::Small(Arc::new(small));
                None
            }
            Root::Small(small) => {
                if let Some(i) = small.position(key) {
                    let small = make_mut(small);
                    small.entries[i].replace((name, value)).map(|(_, old)| old)
                } else if let Some(i) = small.position(0) {
                    let small = make_mut(small);
                    small.keys[i] = key;
                    small.entries[i] = Some((name, value));
                    None
                } else {
                    // Full: grow into a trie.
                    let mut node = Node::Branch {
                        bitmap: 0,
                        slots: Vec::with_capacity(SMALL + 1),
                    };
                    for (k, entry) in small.keys.iter().zip(small.entries.iter()) {
                        let (name, value) = entry.clone().expect("a full small node");
                        trie_insert::<H>(
                            &mut node,
                            0,
                            H::hash(*k),
                            Entry {
                                key: *k,
                                name,
                                value,
                            },
                        );
                    }
                    trie_insert::<H>(&mut node, 0, H::hash(key), Entry { key, name, value });
                    self.root = Root::Trie(Arc::new(node));
                    None
                }
            }
            Root::Trie(node) => {
                trie_insert::<H>(make_mut(node), 0, H::hash(key), Entry { key, name, value })
                    .map(|entry| entry.value)
            }
        };
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Unbinds `key`, returning its value. An absent key copies nothing.
    pub(crate) fn remove(&mut self, key: u64) -> Option<Value> {
        self.get(key)?;
        let removed = match &mut self.root {
            Root::Empty => None,
            Root::Small(small) => {
                let small = make_mut(small);
                let i = small.position(key)?;
                small.keys[i] = 0;
                small.entries[i].take().map(|(_, value)| value)
            }
            Root::Trie(node) => {
                trie_remove::<H>(make_mut(node), 0, H::hash(key), key).map(|entry| entry.value)
            }
        };
        debug_assert!(removed.is_some());
        self.len -= 1;
        if self.len == 0 {
            self.root = Root::Empty;
        }
        removed
    }

    /// Visits every binding (name and value), in no particular order.
    pub(crate) fn for_each(&self, mut f: impl FnMut(u64, &'static str, &Value)) {
        fn walk(node: &Node, f: &mut impl FnMut(u64, &'static str, &Value)) {
            match node {
                Node::Branch { slots, .. } => {
                    for slot in slots {
                        match slot {
                            Slot::Leaf(entry) => f(entry.key, entry.name, &entry.value),
                            Slot::Node(child) => walk(child, f),
                        }
                    }
                }
                Node::Collision { entries, .. } => {
                    for entry in entries {
                        f(entry.key, entry.name, &entry.value);
                    }
                }
            }
        }
        match &self.root {
            Root::Empty => {}
            Root::Small(small) => {
                for (key, entry) in small.keys.iter().zip(small.entries.iter()) {
                    if let Some((name, value)) = entry {
                        f(*key, name, value);
                    }
                }
            }
            Root::Trie(node) => walk(node, &mut f),
        }
    }

    #[cfg(test)]
    fn ptr_eq(&self, other: &Self) -> bool {
        match (&self.root, &other.root) {
            (Root::Empty, Root::Empty) => true,
            (Root::Small(a), Root::Small(b)) => Arc::ptr_eq(a, b),
            (Root::Trie(a), Root::Trie(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

#[inline]
fn trie_get<H: KeyHash>(mut node: &Node, key: u64) -> Option<&Entry> {
    let hash = H::hash(key);
    let mut shift = 0;
    loop {
        match node {
            Node::Branch { bitmap, slots } => {
                let bit = 1u32 << index(hash, shift);
                if bitmap & bit == 0 {
                    return None;
                }
                match &slots[(bitmap & (bit - 1)).count_ones() as usize] {
                    Slot::Leaf(entry) => return (entry.key == key).then_some(entry),
                    Slot::Node(child) => {
                        node = child;
                        shift += BITS;
                    }
                }
            }
            Node::Collision { entries, .. } => return entries.iter().find(|e| e.key == key),
        }
    }
}

fn trie_insert<H: KeyHash>(node: &mut Node, shift: u32, hash: u32, entry: Entry) -> Option<Entry> {
    match node {
        Node::Branch { bitmap, slots } => {
            let bit = 1u32 << index(hash, shift);
            let idx = (*bitmap & (bit - 1)).count_ones() as usize;
            if *bitmap & bit == 0 {
                *bitmap |= bit;
                slots.insert(idx, Slot::Leaf(entry));
                return None;
            }
            let slot = &mut slots[idx];
            match slot {
                Slot::Node(child) => trie_insert::<H>(make_mut(child), shift + BITS, hash, entry),
                Slot::Leaf(existing) if existing.key == entry.key => {
                    Some(mem::replace(existing, entry))
                }
                Slot::Leaf(existing) => {
                    let existing_hash = H::hash(existing.key);
                    let existing = existing.clone();
                    let child = if existing_hash == hash {
                        Node::Collision {
                            hash,
                            entries: vec![existing, entry],
                        }
                    } else {
                        join(
                            shift + BITS,
                            Slot::Leaf(existing),
                            existing_hash,
                            Slot::Leaf(entry),
                            hash,
                        )
                    };
                    *slot = Slot::Node(Arc::new(child));
                    None
                }
            }
        }
        Node::Collision {
            hash: node_hash,
            entries,
        } => {
            if *node_hash == hash {
                if let Some(existing) = entries.iter_mut().find(|e| e.key == entry.key) {
                    return Some(mem::replace(existing, entry));
                }
                entries.push(entry);
                return None;
            }
            // A different hash reached this collision node: push the node one
            // level down, beside the new leaf.
            let node_hash = *node_hash;
            let collision = mem::replace(
                node,
                Node::Branch {
                    bitmap: 0,
                    slots: Vec::new(),
                },
            );
            *node = join(
                shift,
                Slot::Node(Arc::new(collision)),
                node_hash,
                Slot::Leaf(entry),
                hash,
            );
            None
        }
    }
}

/// A branch at `shift` holding two slots whose hashes differ.
fn join(shift: u32, a: Slot, a_hash: u32, b: Slot, b_hash: u32) -> Node {
    debug_assert_ne!(a_hash, b_hash);
    let (ia, ib) = (index(a_hash, shift), index(b_hash, shift));
    if ia == ib {
        Node::Branch {
            bitmap: 1 << ia,
            slots: vec![Slot::Node(Arc::new(join(
                shift + BITS,
                a,
                a_hash,
                b,
                b_hash,
            )))],
        }
    } else {
        let slots = if ia < ib { vec![a, b] } else { vec![b, a] };
        Node::Branch {
            bitmap: (1 << ia) | (1 << ib),
            slots,
        }
    }
}

fn trie_remove<H: KeyHash>(node: &mut Node, shift: u32, hash: u32, key: u64) -> Option<Entry> {
    match node {
        Node::Branch { bitmap, slots } => {
            let bit = 1u32 << index(hash, shift);
            if *bitmap & bit == 0 {
                return None;
            }
            let idx = (*bitmap & (bit - 1)).count_ones() as usize;
            match &mut slots[idx] {
                Slot::Leaf(entry) => {
                    if entry.key != key {
                        return None;
                    }
                    *bitmap &= !bit;
                    match slots.remove(idx) {
                        Slot::Leaf(entry) => Some(entry),
                        Slot::Node(_) => unreachable!("matched a leaf"),
                    }
                }
                Slot::Node(child) => {
                    let child_node = make_mut(child);
                    let removed = trie_remove::<H>(child_node, shift + BITS, hash, key)?;
                    if let Some(last) = take_single(child_node) {
                        slots[idx] = Slot::Leaf(last);
                    }
                    Some(removed)
                }
            }
        }
        Node::Collision { entries, .. } => {
            let pos = entries.iter().position(|e| e.key == key)?;
            Some(entries.swap_remove(pos))
        }
    }
}

/// If `node`'s subtree holds exactly one entry as a direct leaf, takes it out
/// (the caller replaces the node by that leaf).
fn take_single(node: &mut Node) -> Option<Entry> {
    match node {
        Node::Branch { slots, .. } if slots.len() == 1 && matches!(slots[0], Slot::Leaf(_)) => {
            match slots.pop() {
                Some(Slot::Leaf(entry)) => Some(entry),
                _ => unreachable!("checked above"),
            }
        }
        Node::Collision { entries, .. } if entries.len() == 1 => entries.pop(),
        _ => None,
    }
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

    /// Keys agree on their low 30 bits of hash: the trie goes to full depth.
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
        for op in ops {
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
        }
        assert_eq!(contents(&map), model);
        for (k, v) in &model {
            assert_eq!(map.get(*k).map(value_of), Some(*v));
        }
        // Later writes to the original never show through a copy.
        for (snapshot, expected) in &snapshots {
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
            check_against_model::<MixHash>(&ops);
        }

        #[test]
        fn matches_btreemap_small_keyspace(ops in ops(40)) {
            check_against_model::<MixHash>(&ops);
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
    fn collision_node_pushed_down_by_a_different_hash() {
        // Fill the small root (keys 100.. map to 2 mod 4), then: 4, 8, 12 collide fully; 1 differs
        // in the low bits only.
        let mut map: Map<FourBuckets> = Map::new();
        for k in 100..100 + SMALL as u64 {
            insert(&mut map, k * 4 + 2, k);
        }
        insert(&mut map, 4, 4);
        insert(&mut map, 8, 8);
        insert(&mut map, 1, 1);
        insert(&mut map, 12, 12);
        assert!(matches!(map.root, Root::Trie(_)));
        assert_eq!(map.get(12).map(value_of), Some(12));
        for k in [8, 4, 12, 1] {
            assert!(map.remove(k).is_some());
        }
        for k in 100..100 + SMALL as u64 {
            assert_eq!(map.remove(k * 4 + 2).map(|v| value_of(&v)), Some(k));
        }
        assert_eq!(map.len(), 0);
        assert!(matches!(map.root, Root::Empty));
    }

    #[test]
    fn removing_an_absent_key_copies_nothing() {
        let mut a: Map = Map::new();
        insert(&mut a, 1, 1);
        let b = a.clone();
        assert!(a.remove(2).is_none());
        assert!(a.ptr_eq(&b));
    }
}
