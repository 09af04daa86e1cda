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

pub struct Engine {
    config: KernelConfig,
    hosts: HostMap,
    counters: Counters,
}

impl Engine {
    pub fn new(config: KernelConfig) -> Self {
        Self {
            config,
            hosts: HostMap::default(),
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
        let counters = &mut self.counters;
        let state = self.hosts.entry(host).or_insert_with(|| {
            counters.hosts_created += 1;
            HostState::NEW
        });
        let closed = state.observe(host, peer, now_ns, self.config.window_ns);
        if closed.is_some() {
            self.counters.windows_closed += 1;
        }
        closed
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn hosts(&self) -> &HostMap {
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
}
