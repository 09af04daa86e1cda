//! The fingerprint in userspace (replay and NFQUEUE modes): the same parse,
//! orientation and state machine as the XDP program, with the host states in
//! a hash map and the same counters.

use std::{
    collections::HashMap,
    hash::{BuildHasherDefault, Hasher},
};

use vpnfp_common::{Counters, HostState, Ipv4Fields, KernelConfig, Outcome, WindowClose};

/// A fast hasher for u32 keys (addresses): one multiply, high bits folded
/// down so both hashbrown's bucket index and its tag bits are mixed.
#[derive(Default)]
pub struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        let h = self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^ (h >> 29)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | b as u64;
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = n as u64;
    }
}

pub type HostMap = HashMap<u32, HostState, BuildHasherDefault<AddrHasher>>;

/// Host states within a capacity, least recently seen evicted first (as
/// the kernel's LRU map does). Two generations: hosts seen in the current
/// one stay; when it fills half the capacity, the previous generation (hosts
/// not seen since) is dropped. A host seen again moves to the current one, so
/// an active host survives any flood of new addresses.
pub struct HostTable {
    current: HostMap,
    previous: HostMap,
    generation: usize,
    evicted: u64,
}

impl HostTable {
    /// `capacity` hosts at most (at least 2).
    pub fn new(capacity: usize) -> Self {
        Self {
            current: HostMap::default(),
            previous: HostMap::default(),
            generation: (capacity / 2).max(1),
            evicted: 0,
        }
    }

    /// The host's state, and whether it was created now.
    #[inline]
    fn entry(&mut self, host: u32) -> (&mut HostState, bool) {
        if let Some(state) = self.current.get_mut(&host) {
            let state: *mut HostState = state;
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
            None => (HostState::NEW, true),
        };
        if self.current.len() >= self.generation {
            self.evicted += self.previous.len() as u64;
            self.previous.clear();
            std::mem::swap(&mut self.current, &mut self.previous);
        }
        (self.current.entry(host).or_insert(state), created)
    }

    pub fn get(&self, host: &u32) -> Option<&HostState> {
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
        (self.current.capacity() + self.previous.capacity()) * (size_of::<(u32, HostState)>() + 1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&u32, &HostState)> {
        self.current.iter().chain(self.previous.iter())
    }
}

/// Default host capacity of the userspace engine: 1,000,000 hosts, about
/// 72 MiB (see the README's Performance section).
pub const DEFAULT_MAX_HOSTS: usize = 1_000_000;

pub struct Engine {
    config: KernelConfig,
    hosts: HostTable,
    counters: Counters,
}

impl Engine {
    pub fn new(config: KernelConfig) -> Self {
        Self::with_capacity(config, DEFAULT_MAX_HOSTS)
    }

    pub fn with_capacity(config: KernelConfig, max_hosts: usize) -> Self {
        Self {
            config,
            hosts: HostTable::new(max_hosts),
            counters: Counters::default(),
        }
    }

    /// One frame, already parsed (or refused by the parser), seen at
    /// `now_ns`. Returns the window it closes, if any.
    #[inline]
    pub fn frame(
        &mut self,
        parsed: Result<Ipv4Fields, Outcome>,
        now_ns: u64,
    ) -> Option<WindowClose> {
        self.counters.seen += 1;
        let analysed = parsed.and_then(|ip| self.config.analysed(&ip));
        let (host, peer) = match analysed {
            Ok((host, peer, _)) => (host, peer),
            Err(outcome) => {
                self.counters.outcomes[outcome as usize] += 1;
                return None;
            }
        };
        self.counters.outcomes[Outcome::Analysed as usize] += 1;
        let (state, created) = self.hosts.entry(host);
        if created {
            self.counters.hosts_created += 1;
        }
        let closed = state.observe(host, peer, now_ns, self.config.window_ns);
        if closed.is_some() {
            self.counters.windows_closed += 1;
        }
        closed
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn hosts(&self) -> &HostTable {
        &self.hosts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vpnfp_common::{InternalRanges, NANOS_PER_SEC};

    #[test]
    fn counts_every_frame_once_and_runs_the_state_machine() {
        let mut e = Engine::new(KernelConfig::new(NANOS_PER_SEC, InternalRanges::research()));
        let out = Ipv4Fields {
            src: 0xc0a8_010a,
            dst: 0xc633_6407,
            total_len: 40,
        };
        let lan = Ipv4Fields {
            src: 0xc0a8_010a,
            dst: 0xc0a8_0101,
            total_len: 40,
        };
        assert_eq!(e.frame(Ok(out), 0), None);
        assert_eq!(e.frame(Ok(lan), 1), None);
        assert_eq!(e.frame(Err(Outcome::MalformedTruncated), 2), None);
        let closed = e.frame(Ok(out), NANOS_PER_SEC + 1).unwrap();
        assert_eq!((closed.count_this, closed.host), (2, 0xc0a8_010a));
        let c = e.counters();
        assert_eq!(c.seen, 4);
        assert_eq!(c.analysed(), 2);
        assert_eq!(c.outcome(Outcome::IgnoredLanInternal), 1);
        assert_eq!(c.malformed(), 1);
        assert_eq!((c.hosts_created, c.windows_closed), (1, 1));
    }

    #[test]
    fn capacity_holds_under_a_flood_and_active_hosts_survive() {
        let mut e = Engine::with_capacity(
            KernelConfig::new(NANOS_PER_SEC, InternalRanges::research()),
            1_000,
        );
        let vpn = Ipv4Fields {
            src: 0xc0a8_010a,
            dst: 0xc633_6407,
            total_len: 40,
        };
        let mut closes = Vec::new();
        for i in 0..100_000u32 {
            let spoofed = Ipv4Fields {
                src: 0x0a00_0000 + i,
                ..vpn
            };
            e.frame(Ok(spoofed), i as u64 * 100_000);
            if i % 100 == 0 {
                closes.extend(e.frame(Ok(vpn), i as u64 * 100_000));
            }
            assert!(e.hosts().len() <= 1_000);
        }
        assert_eq!(
            e.counters().hosts_created,
            100_001,
            "the VPN host was created once"
        );
        assert_eq!(e.hosts().evicted() + e.hosts().len() as u64, 100_001);
        // 1,000 packets over 10 s in 1 s windows: every window after the
        // first carries the previous count, so the host was never evicted.
        assert!(closes.len() >= 9, "{}", closes.len());
        assert!(
            closes[1..]
                .iter()
                .all(|c| c.count_prev > 0 && c.count_this >= 99)
        );
    }
}
