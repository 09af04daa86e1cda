//! Step 1 of the research: orient a packet so the internal host comes first.

/// An IPv4 prefix, host byte order. `network` is already masked.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Ipv4Range {
    pub network: u32,
    pub mask: u32,
}

impl Ipv4Range {
    /// `prefix_len` above 32 is clamped to 32.
    pub const fn new(addr: u32, prefix_len: u8) -> Self {
        let mask = if prefix_len == 0 {
            0
        } else if prefix_len >= 32 {
            u32::MAX
        } else {
            u32::MAX << (32 - prefix_len)
        };
        Self {
            network: addr & mask,
            mask,
        }
    }

    #[inline(always)]
    pub const fn contains(&self, addr: u32) -> bool {
        addr & self.mask == self.network
    }

    pub const fn prefix_len(&self) -> u32 {
        self.mask.count_ones()
    }
}

/// How many internal ranges the kernel config can hold.
pub const MAX_INTERNAL_RANGES: usize = 16;

const fn v4(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

/// The research's internal ranges (the kernel-module list, which has
/// 169.254.0.0/16; see algorithm.md).
pub const RESEARCH_INTERNAL_RANGES: [Ipv4Range; 8] = [
    Ipv4Range::new(v4(0, 0, 0, 0), 32),
    Ipv4Range::new(v4(10, 0, 0, 0), 8),
    Ipv4Range::new(v4(127, 0, 0, 0), 8),
    Ipv4Range::new(v4(169, 254, 0, 0), 16),
    Ipv4Range::new(v4(172, 16, 0, 0), 12),
    Ipv4Range::new(v4(192, 168, 0, 0), 16),
    Ipv4Range::new(v4(224, 0, 0, 0), 4),
    Ipv4Range::new(v4(255, 255, 255, 255), 32),
];

/// A fixed-capacity list of internal ranges: fixed so it fits in a map value
/// and the XDP program's loop over it is bounded.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InternalRanges {
    pub len: u32,
    pub _pad: u32,
    pub ranges: [Ipv4Range; MAX_INTERNAL_RANGES],
}

/// Where a packet goes after step 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Orientation {
    /// Both ends internal: skipped by the research.
    LanInternal,
    /// `host` is internal, `peer` external: the case the research is about.
    Outbound {
        host: u32,
        peer: u32,
        direction: crate::Direction,
    },
    /// Neither end internal. The research analyses it anyway, with the
    /// original destination as "host" (its pcap entry point filters it out).
    Transit { host: u32, peer: u32 },
}

impl InternalRanges {
    pub const EMPTY: Self = Self {
        len: 0,
        _pad: 0,
        ranges: [Ipv4Range {
            network: 0,
            mask: 0,
        }; MAX_INTERNAL_RANGES],
    };

    /// The research's list.
    pub const fn research() -> Self {
        let mut out = Self::EMPTY;
        let mut i = 0;
        while i < RESEARCH_INTERNAL_RANGES.len() {
            out.ranges[i] = RESEARCH_INTERNAL_RANGES[i];
            i += 1;
        }
        out.len = RESEARCH_INTERNAL_RANGES.len() as u32;
        out
    }

    /// `None` when there are more than [`MAX_INTERNAL_RANGES`].
    pub fn from_slice(ranges: &[Ipv4Range]) -> Option<Self> {
        if ranges.len() > MAX_INTERNAL_RANGES {
            return None;
        }
        let mut out = Self::EMPTY;
        out.ranges[..ranges.len()].copy_from_slice(ranges);
        out.len = ranges.len() as u32;
        Some(out)
    }

    pub fn as_slice(&self) -> &[Ipv4Range] {
        let len = (self.len as usize).min(MAX_INTERNAL_RANGES);
        &self.ranges[..len]
    }

    /// Written as a loop over the fixed array with an early exit so the
    /// verifier sees a constant bound.
    #[inline(always)]
    pub fn contains(&self, addr: u32) -> bool {
        let len = self.len as usize;
        let mut i = 0;
        while i < MAX_INTERNAL_RANGES {
            if i >= len {
                return false;
            }
            if self.ranges[i].contains(addr) {
                return true;
            }
            i += 1;
        }
        false
    }

    /// Step 1 of algorithm.md: if the source is not internal, swap; if both
    /// are then internal, skip.
    #[inline(always)]
    pub fn orient(&self, src: u32, dst: u32) -> Orientation {
        let src_internal = self.contains(src);
        let (host, peer, direction) = if src_internal {
            (src, dst, crate::Direction::Outbound)
        } else {
            (dst, src, crate::Direction::Inbound)
        };
        // After the swap the host is the source if it was internal, else the
        // original destination.
        let host_internal = src_internal || self.contains(dst);
        let peer_internal = if src_internal {
            self.contains(dst)
        } else {
            false
        };
        if host_internal && peer_internal {
            Orientation::LanInternal
        } else if host_internal {
            Orientation::Outbound {
                host,
                peer,
                direction,
            }
        } else {
            Orientation::Transit { host, peer }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Direction;
    use std::net::Ipv4Addr;

    fn ip(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    #[test]
    fn research_ranges_cover_the_listed_addresses() {
        let r = InternalRanges::research();
        for a in [
            "0.0.0.0",
            "10.1.2.3",
            "127.0.0.1",
            "169.254.9.9",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "224.0.0.251",
            "239.255.255.255",
            "255.255.255.255",
        ] {
            assert!(r.contains(ip(a)), "{a} should be internal");
        }
        for a in [
            "0.0.0.1",
            "11.0.0.0",
            "172.32.0.0",
            "192.169.0.0",
            "198.51.100.7",
            "223.255.255.255",
            "255.255.255.254",
        ] {
            assert!(!r.contains(ip(a)), "{a} should be external");
        }
    }

    #[test]
    fn orientation_follows_the_research() {
        let r = InternalRanges::research();
        assert_eq!(
            r.orient(ip("192.168.1.139"), ip("74.125.228.227")),
            Orientation::Outbound {
                host: ip("192.168.1.139"),
                peer: ip("74.125.228.227"),
                direction: Direction::Outbound
            }
        );
        assert_eq!(
            r.orient(ip("17.253.12.253"), ip("192.168.1.139")),
            Orientation::Outbound {
                host: ip("192.168.1.139"),
                peer: ip("17.253.12.253"),
                direction: Direction::Inbound
            }
        );
        assert_eq!(
            r.orient(ip("192.168.56.103"), ip("255.255.255.255")),
            Orientation::LanInternal
        );
        // Transit: the original destination plays "host".
        assert_eq!(
            r.orient(ip("198.51.100.1"), ip("192.0.2.1")),
            Orientation::Transit {
                host: ip("192.0.2.1"),
                peer: ip("198.51.100.1")
            }
        );
    }

    #[test]
    fn ranges_are_configurable_and_bounded() {
        let only_ten = InternalRanges::from_slice(&[Ipv4Range::new(ip("10.0.0.0"), 8)]).unwrap();
        assert!(only_ten.contains(ip("10.9.9.9")));
        assert!(!only_ten.contains(ip("192.168.1.1")));
        assert!(InternalRanges::from_slice(&[Ipv4Range::default(); 17]).is_none());
        // Entries past `len` are never consulted.
        let mut r = only_ten;
        r.ranges[5] = Ipv4Range::new(ip("192.168.0.0"), 16);
        assert!(!r.contains(ip("192.168.1.1")));
    }

    #[test]
    fn prefix_edges() {
        assert_eq!(Ipv4Range::new(ip("1.2.3.4"), 0).mask, 0);
        assert!(Ipv4Range::new(ip("1.2.3.4"), 0).contains(ip("9.9.9.9")));
        assert_eq!(
            Ipv4Range::new(ip("1.2.3.4"), 40),
            Ipv4Range::new(ip("1.2.3.4"), 32)
        );
        assert_eq!(
            Ipv4Range::new(ip("172.31.1.1"), 12).network,
            ip("172.16.0.0")
        );
    }
}
