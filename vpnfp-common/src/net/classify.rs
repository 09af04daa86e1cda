//! Step 1 of the research: which end of a packet is inside the network.
//! The research orients each packet so the internal host comes first; flows
//! need the same two facts (is the source internal, is the destination) to
//! give every 5-tuple one orientation and a scope.

use crate::{
    Direction,
    net::addr::{Address, V6},
};

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

/// An IPv6 prefix as two big-endian halves, each already masked.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Ipv6Range {
    pub network: [u64; 2],
    pub mask: [u64; 2],
}

const fn mask64(bits: u32) -> u64 {
    if bits == 0 {
        0
    } else if bits >= 64 {
        u64::MAX
    } else {
        u64::MAX << (64 - bits)
    }
}

impl Ipv6Range {
    /// `prefix_len` above 128 is clamped to 128.
    pub const fn new(addr: [u8; 16], prefix_len: u8) -> Self {
        let len = if prefix_len > 128 {
            128
        } else {
            prefix_len as u32
        };
        let hi_bits = if len > 64 { 64 } else { len };
        let lo_bits = len.saturating_sub(64);
        let mask = [mask64(hi_bits), mask64(lo_bits)];
        let hi = u64::from_be_bytes([
            addr[0], addr[1], addr[2], addr[3], addr[4], addr[5], addr[6], addr[7],
        ]);
        let lo = u64::from_be_bytes([
            addr[8], addr[9], addr[10], addr[11], addr[12], addr[13], addr[14], addr[15],
        ]);
        Self {
            network: [hi & mask[0], lo & mask[1]],
            mask,
        }
    }

    #[inline(always)]
    pub fn contains(&self, addr: &V6) -> bool {
        let [hi, lo] = addr.halves();
        hi & self.mask[0] == self.network[0] && lo & self.mask[1] == self.network[1]
    }

    pub const fn prefix_len(&self) -> u32 {
        self.mask[0].count_ones() + self.mask[1].count_ones()
    }
}

/// How many internal ranges per family the kernel config can hold.
pub const MAX_INTERNAL_RANGES: usize = 16;

const fn v4(a: u8, b: u8, c: u8, d: u8) -> u32 {
    u32::from_be_bytes([a, b, c, d])
}

const fn v6_prefix(first: u8, second: u8, last: u8, len: u8) -> Ipv6Range {
    let mut a = [0u8; 16];
    a[0] = first;
    a[1] = second;
    a[15] = last;
    Ipv6Range::new(a, len)
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

/// IPv6's counterpart of the research's list: unspecified, loopback,
/// unique local (the private ranges of IPv6), link-local and multicast.
pub const DEFAULT_INTERNAL_RANGES6: [Ipv6Range; 5] = [
    v6_prefix(0, 0, 0, 128),
    v6_prefix(0, 0, 1, 128),
    v6_prefix(0xfc, 0, 0, 7),
    v6_prefix(0xfe, 0x80, 0, 10),
    v6_prefix(0xff, 0, 0, 8),
];

/// Something that says whether an address is internal.
pub trait Internal<A> {
    fn contains(&self, addr: A) -> bool;
}

/// The first bytes (of an address) a range can start with, as a 256-bit
/// set: `(network, mask)` of the address's top byte.
const fn first_bytes(network: u8, mask: u8) -> [u64; 4] {
    let mut set = [0u64; 4];
    let mut b = 0usize;
    while b < 256 {
        if (b as u8) & mask == network {
            set[b >> 6] |= 1 << (b & 63);
        }
        b += 1;
    }
    set
}

macro_rules! range_list {
    ($name:ident, $range:ty, $addr:ty, |$r:ident, $a:ident| $contains:expr, top: |$tr:ident| $top:expr, first: |$fa:ident| $first:expr) => {
        /// A fixed-capacity list of internal ranges: fixed so it fits in a
        /// map value and the programs' loop over it is bounded.
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name {
            pub len: u32,
            pub _pad: u32,
            pub ranges: [$range; MAX_INTERNAL_RANGES],
            /// Which first bytes any range can start with: most external
            /// addresses are told apart by one bit test instead of a walk
            /// over every range (measured: the walk was a tenth of the
            /// kernel's per-packet cost). Kept by the constructors.
            pub first_bytes: [u64; 4],
        }

        impl $name {
            pub const EMPTY: Self = Self {
                len: 0,
                _pad: 0,
                ranges: [unsafe { core::mem::zeroed() }; MAX_INTERNAL_RANGES],
                first_bytes: [0; 4],
            };

            /// `None` when there are more than [`MAX_INTERNAL_RANGES`].
            pub const fn from_slice(ranges: &[$range]) -> Option<Self> {
                if ranges.len() > MAX_INTERNAL_RANGES {
                    return None;
                }
                let mut out = Self::EMPTY;
                let mut i = 0;
                while i < ranges.len() {
                    out.ranges[i] = ranges[i];
                    let $tr = &ranges[i];
                    let (network, mask) = $top;
                    let set = first_bytes(network, mask);
                    let mut w = 0;
                    while w < 4 {
                        out.first_bytes[w] |= set[w];
                        w += 1;
                    }
                    i += 1;
                }
                out.len = ranges.len() as u32;
                Some(out)
            }

            pub fn as_slice(&self) -> &[$range] {
                let len = (self.len as usize).min(MAX_INTERNAL_RANGES);
                &self.ranges[..len]
            }
        }

        impl Internal<$addr> for $name {
            /// Written as a loop over the fixed array with an early exit so
            /// the verifier sees a constant bound.
            #[inline(always)]
            fn contains(&self, $a: $addr) -> bool {
                let first = {
                    let $fa = &$a;
                    $first
                } as usize;
                if self.first_bytes[(first >> 6) & 3] & (1 << (first & 63)) == 0 {
                    return false;
                }
                let len = self.len as usize;
                let mut i = 0;
                while i < MAX_INTERNAL_RANGES {
                    if i >= len {
                        return false;
                    }
                    let $r = &self.ranges[i];
                    if $contains {
                        return true;
                    }
                    i += 1;
                }
                false
            }
        }
    };
}

range_list!(InternalRanges, Ipv4Range, u32, |r, addr| r.contains(addr),
    top: |r| ((r.network >> 24) as u8, (r.mask >> 24) as u8),
    first: |a| *a >> 24);
range_list!(InternalRanges6, Ipv6Range, [u64; 2], |r, addr| {
    addr[0] & r.mask[0] == r.network[0] && addr[1] & r.mask[1] == r.network[1]
},
    top: |r| ((r.network[0] >> 56) as u8, (r.mask[0] >> 56) as u8),
    first: |a| a[0] >> 56);

impl Internal<V6> for InternalRanges6 {
    /// The address's halves are read once, not once per range: the kernel's
    /// stack is small.
    #[inline(always)]
    fn contains(&self, addr: V6) -> bool {
        Internal::<[u64; 2]>::contains(self, addr.halves())
    }
}

impl InternalRanges {
    /// The research's list.
    pub const fn research() -> Self {
        match Self::from_slice(&RESEARCH_INTERNAL_RANGES) {
            Some(list) => list,
            None => panic!("the research's list fits"),
        }
    }
}

impl InternalRanges6 {
    pub const fn default_list() -> Self {
        match Self::from_slice(&DEFAULT_INTERNAL_RANGES6) {
            Some(list) => list,
            None => panic!("the default list fits"),
        }
    }
}

/// Where a packet goes after the research's step 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Orientation<A> {
    /// Both ends internal: skipped by the research.
    LanInternal,
    /// `host` is internal, `peer` external: the case the research is about.
    Outbound {
        host: A,
        peer: A,
        direction: Direction,
    },
    /// Neither end internal. The research analyses it anyway, with the
    /// original destination as "host" (its pcap entry point filters it out).
    Transit { host: A, peer: A },
}

/// Which ends of a flow are inside the network.
#[repr(u8)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Both ends internal (LAN-internal).
    Internal = 0,
    /// One end internal, one external: what the research is about.
    External = 1,
    /// Neither end internal (traffic passing through).
    Transit = 2,
}

impl Scope {
    pub const fn from_u8(v: u8) -> Self {
        match v {
            0 => Scope::Internal,
            1 => Scope::External,
            _ => Scope::Transit,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::Internal => "internal",
            Scope::External => "external",
            Scope::Transit => "transit",
        }
    }
}

/// A packet's two ends, checked against the internal ranges once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ends<A> {
    pub src: A,
    pub dst: A,
    pub src_internal: bool,
    pub dst_internal: bool,
}

impl<A: Address> Ends<A> {
    #[inline(always)]
    pub fn classify<R: Internal<A>>(ranges: &R, src: A, dst: A) -> Self {
        Self {
            src,
            dst,
            src_internal: ranges.contains(src),
            dst_internal: ranges.contains(dst),
        }
    }

    /// Step 1 of algorithm.md: if the source is not internal, swap; if both
    /// are then internal, skip.
    #[inline(always)]
    pub fn orient(&self) -> Orientation<A> {
        if self.src_internal {
            if self.dst_internal {
                Orientation::LanInternal
            } else {
                Orientation::Outbound {
                    host: self.src,
                    peer: self.dst,
                    direction: Direction::Outbound,
                }
            }
        } else if self.dst_internal {
            Orientation::Outbound {
                host: self.dst,
                peer: self.src,
                direction: Direction::Inbound,
            }
        } else {
            // The source was external, so host is the original destination.
            Orientation::Transit {
                host: self.dst,
                peer: self.src,
            }
        }
    }

    pub fn scope(&self) -> Scope {
        match (self.src_internal, self.dst_internal) {
            (true, true) => Scope::Internal,
            (false, false) => Scope::Transit,
            _ => Scope::External,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn ip(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    fn ip6(s: &str) -> V6 {
        V6::from(s.parse::<Ipv6Addr>().unwrap())
    }

    #[test]
    fn the_first_byte_gate_agrees_with_the_walk_over_every_range() {
        let lists = [
            InternalRanges::research(),
            InternalRanges::from_slice(&[
                Ipv4Range::new(ip("96.0.0.0"), 3),
                Ipv4Range::new(ip("198.51.100.0"), 24),
                Ipv4Range::new(ip("100.64.0.0"), 10),
            ])
            .unwrap(),
            InternalRanges::from_slice(&[Ipv4Range::new(0, 0)]).unwrap(),
            InternalRanges::EMPTY,
        ];
        // Every first byte, with a spread of the rest.
        let mut x: u32 = 0x9e37_79b9;
        for list in &lists {
            for first in 0..=255u32 {
                for _ in 0..64 {
                    x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    let addr = first << 24 | (x >> 8);
                    let walk = list.as_slice().iter().any(|r| r.contains(addr));
                    assert_eq!(Internal::contains(list, addr), walk, "{addr:#x}");
                }
            }
        }
        let list6 = InternalRanges6::default_list();
        for s in [
            "::",
            "::1",
            "fd00::1",
            "fc12::",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
        ] {
            let a = ip6(s);
            let walk = list6.as_slice().iter().any(|r| r.contains(&a));
            assert_eq!(Internal::contains(&list6, a), walk, "{s}");
        }
    }

    fn orient(r: &InternalRanges, src: u32, dst: u32) -> Orientation<u32> {
        Ends::classify(r, src, dst).orient()
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
    fn ipv6_default_ranges() {
        let r = InternalRanges6::default_list();
        for a in [
            "::", "::1", "fd00::1", "fc12::9", "fe80::1", "febf::1", "ff02::1",
        ] {
            assert!(r.contains(ip6(a)), "{a} should be internal");
        }
        for a in ["::2", "2001:db8::1", "fec0::1", "fe00::1", "2606:4700::1"] {
            assert!(!r.contains(ip6(a)), "{a} should be external");
        }
        assert_eq!(Ipv6Range::new(ip6("2001:db8::").0, 32).prefix_len(), 32);
        assert_eq!(Ipv6Range::new(ip6("2001:db8::1").0, 200).prefix_len(), 128);
        let r64 = Ipv6Range::new(ip6("2001:db8:1:2:300::").0, 72);
        assert!(r64.contains(&ip6("2001:db8:1:2:3ff::9")));
        assert!(!r64.contains(&ip6("2001:db8:1:2:400::")));
    }

    #[test]
    fn orientation_follows_the_research() {
        let r = InternalRanges::research();
        assert_eq!(
            orient(&r, ip("192.168.1.139"), ip("74.125.228.227")),
            Orientation::Outbound {
                host: ip("192.168.1.139"),
                peer: ip("74.125.228.227"),
                direction: Direction::Outbound
            }
        );
        assert_eq!(
            orient(&r, ip("17.253.12.253"), ip("192.168.1.139")),
            Orientation::Outbound {
                host: ip("192.168.1.139"),
                peer: ip("17.253.12.253"),
                direction: Direction::Inbound
            }
        );
        assert_eq!(
            orient(&r, ip("192.168.56.103"), ip("255.255.255.255")),
            Orientation::LanInternal
        );
        // Transit: the original destination plays "host".
        assert_eq!(
            orient(&r, ip("198.51.100.1"), ip("192.0.2.1")),
            Orientation::Transit {
                host: ip("192.0.2.1"),
                peer: ip("198.51.100.1")
            }
        );
        let e = Ends::classify(&r, ip("198.51.100.1"), ip("192.0.2.1"));
        assert_eq!(e.scope(), Scope::Transit);
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
        assert!(Ipv6Range::new([0; 16], 0).contains(&ip6("2001:db8::1")));
    }
}
