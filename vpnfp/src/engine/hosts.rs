//! The engine's per-host states within a capacity, least recently seen
//! evicted first (as the kernel's LRU map does).

use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;
use vpnfp_common::HostEntry;

use crate::hash::FastBuild;

/// Two generations: hosts seen in the current one stay; when it fills half
/// the capacity, the previous generation (hosts not seen since) is dropped.
/// A host seen again moves to the current one, so an active host survives
/// any flood of new addresses.
///
/// `HashTable`s, hashed here, so that a host's entry can be prefetched
/// (its bucket found from the control bytes alone, see
/// [`HostTable::prefetch`]).
pub struct HostTable<A> {
    current: HashTable<(A, HostEntry<A>)>,
    previous: HashTable<(A, HostEntry<A>)>,
    hasher: FastBuild,
    generation: usize,
    evicted: u64,
}

impl<A: Copy + Eq + Hash + Default> HostTable<A> {
    /// `capacity` hosts at most (at least 2).
    pub fn new(capacity: usize) -> Self {
        Self {
            current: HashTable::new(),
            previous: HashTable::new(),
            hasher: FastBuild::default(),
            generation: (capacity / 2).max(1),
            evicted: 0,
        }
    }

    /// The host's state, and whether it was created now.
    #[inline]
    pub fn entry(&mut self, host: A) -> (&mut HostEntry<A>, bool) {
        let hash = self.hasher.hash_one(host);
        if let Some((_, state)) = self.current.find_mut(hash, |(k, _)| *k == host) {
            let state: *mut HostEntry<A> = state;
            // SAFETY: the pointer comes from a live entry of `self.current`
            // and is returned at once, borrowing `self` mutably as long as
            // it lives; nothing touches the map in between. (Returning the
            // reference directly is the borrow checker's known false
            // positive for conditional returns; the pointer saves the
            // second lookup on every packet of a known host.)
            return (unsafe { &mut *state }, false);
        }
        let (state, created) = match self.previous.find_entry(hash, |(k, _)| *k == host) {
            Ok(found) => (found.remove().0.1, false),
            Err(_) => (HostEntry::default(), true),
        };
        if self.current.len() >= self.generation {
            self.evicted += self.previous.len() as u64;
            self.previous.clear();
            std::mem::swap(&mut self.current, &mut self.previous);
        }
        let hasher = &self.hasher;
        let (_, state) = self
            .current
            .insert_unique(hash, (host, state), |(k, _)| hasher.hash_one(k))
            .into_mut();
        (state, created)
    }

    /// Starts loading `host`'s entry if it is in the current generation:
    /// the first entry whose hash tag matches, found without reading any
    /// entry (a rare wrong one is a wasted load, nothing more).
    #[inline]
    pub fn prefetch(&self, host: A) {
        if let Some(entry) = self.current.find(self.hasher.hash_one(host), |_| true) {
            crate::prefetch::prefetch(entry);
        }
    }

    pub fn get(&self, host: &A) -> Option<&HostEntry<A>> {
        let hash = self.hasher.hash_one(host);
        let eq = |(k, _): &(A, HostEntry<A>)| k == host;
        self.current
            .find(hash, eq)
            .or_else(|| self.previous.find(hash, eq))
            .map(|(_, state)| state)
    }

    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Hosts dropped to stay within capacity.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Bytes the tables have allocated (slots and control bytes).
    pub fn allocated_bytes(&self) -> usize {
        (self.current.capacity() + self.previous.capacity()) * (size_of::<(A, HostEntry<A>)>() + 1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&A, &HostEntry<A>)> {
        self.current
            .iter()
            .chain(self.previous.iter())
            .map(|(host, state)| (host, state))
    }
}
