//! The engine's per-host states within a capacity, least recently seen
//! evicted first (as the kernel's LRU map does).

use std::{collections::HashMap, hash::Hash};

use vpnfp_common::HostEntry;

use crate::hash::FastBuild;

/// Two generations: hosts seen in the current one stay; when it fills half
/// the capacity, the previous generation (hosts not seen since) is dropped.
/// A host seen again moves to the current one, so an active host survives
/// any flood of new addresses.
pub struct HostTable<A> {
    current: HashMap<A, HostEntry<A>, FastBuild>,
    previous: HashMap<A, HostEntry<A>, FastBuild>,
    generation: usize,
    evicted: u64,
}

impl<A: Copy + Eq + Hash + Default> HostTable<A> {
    /// `capacity` hosts at most (at least 2).
    pub fn new(capacity: usize) -> Self {
        Self {
            current: HashMap::default(),
            previous: HashMap::default(),
            generation: (capacity / 2).max(1),
            evicted: 0,
        }
    }

    /// The host's state, and whether it was created now.
    #[inline]
    pub fn entry(&mut self, host: A) -> (&mut HostEntry<A>, bool) {
        if let Some(state) = self.current.get_mut(&host) {
            let state: *mut HostEntry<A> = state;
            // SAFETY: the pointer comes from a live entry of `self.current`
            // and is returned at once, borrowing `self` mutably as long as
            // it lives; nothing touches the map in between. (Returning the
            // reference directly is the borrow checker's known false
            // positive for conditional returns; the pointer saves the
            // second lookup on every packet of a known host.)
            return (unsafe { &mut *state }, false);
        }
        let (state, created) = match self.previous.remove(&host) {
            Some(state) => (state, false),
            None => (HostEntry::default(), true),
        };
        if self.current.len() >= self.generation {
            self.evicted += self.previous.len() as u64;
            self.previous.clear();
            std::mem::swap(&mut self.current, &mut self.previous);
        }
        (self.current.entry(host).or_insert(state), created)
    }

    pub fn get(&self, host: &A) -> Option<&HostEntry<A>> {
        self.current.get(host).or_else(|| self.previous.get(host))
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
        self.current.iter().chain(self.previous.iter())
    }
}
