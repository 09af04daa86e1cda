//! A bounded map in least-recently-used order whose entries live in one
//! vector of slots, linked by index, with a hash index from key to slot. A
//! new entry takes a free slot, not an allocation of its own. The engine's
//! flow table used a linked hash map, which allocated a node per flow and
//! chased pointers through them: replaying 2 M frames of churning flows
//! without identification took 1.8 s with it and 0.86 s with this.
//!
//! The index holds only slot numbers and 32 bits of each key's hash (8
//! bytes a bucket; the keys live in the slots), so a lookup reads the
//! slot it wants and little else, and growing the index never reads a
//! slot. The slots' vector is reserved up front (address space only: the
//! pages are touched as slots fill), so it is never copied as it grows;
//! where the address space is refused (strict overcommit, a small
//! machine), it grows as it fills. Both cut the identifier's churning
//! replay (perf: the index's lookups and rehashes, the vector's copies).
//! Slots in fixed chunks instead of one vector were tried: 5% slower and
//! 6% more memory on that replay (the allocator's large-object pages).

use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;

use crate::hash::FastBuild;

/// No slot.
const NIL: u32 = u32::MAX;

/// Slots reserved up front at most; a larger table grows past it.
const RESERVE_MAX: usize = 1 << 22;

struct Slot<K, V> {
    key: K,
    /// `None` while the slot is free.
    value: Option<V>,
    /// Toward the front (less recently used) and the back.
    prev: u32,
    next: u32,
}

/// The two steps of [`SlabLru::prefetch`], in the order a packet to come
/// takes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// The index's bucket.
    Index,
    /// The entry itself (after `Index`, some packets earlier).
    Entry,
}

/// What [`SlabLru::get_or_insert_with`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Inserted<K, V> {
    /// The key was there.
    No,
    /// A new entry.
    Yes,
    /// A new entry, for which the least recently used one (returned) made
    /// room.
    Evicting(K, V),
}

/// A slot number with the low 32 bits of its key's hash.
#[derive(Clone, Copy)]
struct Bucket {
    slot: u32,
    hash: u32,
}

/// The hash the index uses: 32 bits kept, spread over 64 so that
/// hashbrown's bucket bits (low) and tag bits (high) both vary.
fn spread(hash: u32) -> u64 {
    ((hash as u64) << 32) | hash as u64
}

pub struct SlabLru<K, V> {
    index: HashTable<Bucket>,
    hasher: FastBuild,
    slots: Vec<Slot<K, V>>,
    free: Vec<u32>,
    front: u32,
    back: u32,
    capacity: usize,
}

impl<K: Hash + Eq + Copy, V> SlabLru<K, V> {
    /// At most `capacity` entries (at least 1, below 2^32): the caller
    /// makes room ([`SlabLru::pop_front`]) before inserting.
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, NIL as usize - 1);
        let mut slots = Vec::new();
        // Refused: grow as it fills.
        let _ = slots.try_reserve_exact(capacity.min(RESERVE_MAX));
        Self {
            index: HashTable::new(),
            hasher: FastBuild::default(),
            slots,
            free: Vec::new(),
            front: NIL,
            back: NIL,
            capacity,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn hash(&self, key: &K) -> u32 {
        let h = self.hasher.hash_one(key);
        (h ^ (h >> 32)) as u32
    }

    /// The slot holding `key`.
    fn find(&self, key: &K) -> Option<u32> {
        self.find_hashed(key, self.hash(key))
    }

    /// The slot holding `key`, whose hash the caller has.
    fn find_hashed(&self, key: &K, hash: u32) -> Option<u32> {
        let slots = &self.slots;
        self.index
            .find(spread(hash), |b| {
                b.hash == hash && slots[b.slot as usize].key == *key
            })
            .map(|b| b.slot)
    }

    /// Starts loading what a lookup of `key` will read, in two stages
    /// some packets apart: the index's bucket first, then the slot it
    /// names (which takes reading that bucket).
    #[inline]
    pub fn prefetch(&self, key: &K, stage: Stage) {
        let hash = self.hash(key);
        match stage {
            // The first bucket whose tag matches, found from the control
            // bytes alone.
            Stage::Index => {
                if let Some(b) = self.index.find(spread(hash), |_| true) {
                    crate::prefetch::prefetch(b);
                }
            }
            Stage::Entry => {
                if let Some(b) = self.index.find(spread(hash), |b| b.hash == hash)
                    && let Some(slot) = self.slots.get(b.slot as usize)
                {
                    crate::prefetch::prefetch(slot);
                }
            }
        }
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let s = &self.slots[i as usize];
            (s.prev, s.next)
        };
        match prev {
            NIL => self.front = next,
            p => self.slots[p as usize].next = next,
        }
        match next {
            NIL => self.back = prev,
            n => self.slots[n as usize].prev = prev,
        }
    }

    fn push_back(&mut self, i: u32) {
        let back = self.back;
        let s = &mut self.slots[i as usize];
        s.prev = back;
        s.next = NIL;
        match back {
            NIL => self.front = i,
            b => self.slots[b as usize].next = i,
        }
        self.back = i;
    }

    fn move_to_back(&mut self, i: u32) {
        if self.back != i {
            self.unlink(i);
            self.push_back(i);
        }
    }

    fn value_mut(&mut self, i: u32) -> &mut V {
        self.slots[i as usize].value.as_mut().expect("a used slot")
    }

    /// The entry without changing the order.
    pub fn peek(&self, key: &K) -> Option<&V> {
        let i = self.find(key)?;
        self.slots[i as usize].value.as_ref()
    }

    /// The entry, mutable, without changing the order.
    pub fn peek_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = self.find(key)?;
        Some(self.value_mut(i))
    }

    /// The entry, moved to the back (most recently used).
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        let i = self.find(key)?;
        self.move_to_back(i);
        Some(self.value_mut(i))
    }

    /// The entry moved to the back, or `make()`'s at the back if absent;
    /// a new entry in a full table first evicts the front. One lookup
    /// either way (callers looked up, made room, then inserted: two on
    /// every new flow).
    pub fn get_or_insert_with(
        &mut self,
        key: K,
        make: impl FnOnce() -> V,
    ) -> (&mut V, Inserted<K, V>) {
        let hash = self.hash(&key);
        if let Some(i) = self.find_hashed(&key, hash) {
            self.move_to_back(i);
            return (self.value_mut(i), Inserted::No);
        }
        let inserted = match self.len() >= self.capacity {
            true => self
                .pop_front()
                .map_or(Inserted::Yes, |(k, v)| Inserted::Evicting(k, v)),
            false => Inserted::Yes,
        };
        let slot = Slot {
            key,
            value: Some(make()),
            prev: NIL,
            next: NIL,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as u32
            }
        };
        self.index
            .insert_unique(spread(hash), Bucket { slot: i, hash }, |b| spread(b.hash));
        self.push_back(i);
        (self.value_mut(i), inserted)
    }

    fn take(&mut self, i: u32) -> (K, V) {
        self.unlink(i);
        self.free.push(i);
        let hash = self.hash(&self.slots[i as usize].key);
        if let Ok(entry) = self.index.find_entry(spread(hash), |b| b.slot == i) {
            entry.remove();
        }
        let s = &mut self.slots[i as usize];
        (s.key, s.value.take().expect("a used slot"))
    }

    pub fn remove(&mut self, key: &K) -> Option<V> {
        let i = self.find(key)?;
        Some(self.take(i).1)
    }

    /// The least recently used entry.
    pub fn front(&self) -> Option<(&K, &V)> {
        let s = self.slots.get(self.front as usize)?;
        Some((&s.key, s.value.as_ref()?))
    }

    pub fn pop_front(&mut self) -> Option<(K, V)> {
        (self.front != NIL).then(|| self.take(self.front))
    }

    /// Every entry, least recently used first.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        let mut i = self.front;
        std::iter::from_fn(move || {
            let s = self.slots.get(i as usize)?;
            i = s.next;
            Some((&s.key, s.value.as_ref()?))
        })
    }

    /// Takes every entry out, least recently used first, and frees the
    /// slots.
    pub fn drain(&mut self, mut each: impl FnMut(K, V)) {
        let mut i = self.front;
        while i != NIL {
            let s = &mut self.slots[i as usize];
            i = s.next;
            if let Some(v) = s.value.take() {
                each(s.key, v);
            }
        }
        self.index.clear();
        self.slots.clear();
        self.free.clear();
        self.front = NIL;
        self.back = NIL;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_reuse_and_removal() {
        let mut l = SlabLru::<u32, String>::new(3);
        for k in 1..=3 {
            assert_eq!(l.get_or_insert_with(k, || k.to_string()).1, Inserted::Yes);
        }
        // 1 used again: 2 is now the least recently used.
        assert_eq!(l.get_mut(&1).map(|v| v.as_str()), Some("1"));
        assert_eq!(l.front().map(|(k, _)| *k), Some(2));
        assert_eq!(l.pop_front(), Some((2, "2".to_string())));
        l.get_or_insert_with(4, || "4".into());
        assert_eq!(l.slots.len(), 3, "the freed slot was reused");
        assert_eq!(l.peek(&3).map(String::as_str), Some("3"));
        assert_eq!(l.remove(&3), Some("3".to_string()));
        assert_eq!(l.remove(&3), None);
        let order: Vec<u32> = l.iter().map(|(k, _)| *k).collect();
        assert_eq!(order, vec![1, 4]);
        let mut drained = Vec::new();
        l.drain(|k, v| drained.push((k, v)));
        assert_eq!(drained, vec![(1, "1".into()), (4, "4".into())]);
        assert!(l.is_empty() && l.front().is_none());
    }

    /// Many inserts, lookups, removals and evictions against a plain map:
    /// the index (slot numbers and hash bits only) stays exact through
    /// its growth and the slots' reuse.
    #[test]
    fn agrees_with_a_map_through_growth_and_reuse() {
        use std::collections::HashMap;
        let capacity = 5_000;
        let mut l = SlabLru::<u64, u64>::new(capacity);
        let mut model = HashMap::new();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for step in 0..200_000u64 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let key = x % 20_000;
            match step % 4 {
                0 | 1 => {
                    let was_full = !model.contains_key(&key) && model.len() == capacity;
                    let (value, inserted) = l.get_or_insert_with(key, || 0);
                    *value += 1;
                    assert_eq!(was_full, matches!(inserted, Inserted::Evicting(..)));
                    if let Inserted::Evicting(old, v) = inserted {
                        assert_eq!(model.remove(&old), Some(v));
                    }
                    *model.entry(key).or_insert(0) += 1;
                }
                2 => assert_eq!(l.remove(&key), model.remove(&key)),
                _ => assert_eq!(l.peek(&key), model.get(&key)),
            }
            assert_eq!(l.len(), model.len());
        }
        assert!(l.slots.len() <= capacity, "freed slots are reused");
        let mut drained = HashMap::new();
        l.drain(|k, v| {
            drained.insert(k, v);
        });
        assert_eq!(drained, model);
    }
}
