//! Deterministic traffic scripts: frames with timestamps, for feeding the
//! same sequence to the XDP program (test_run) and to replay.

use std::net::Ipv4Addr;

use crate::frames::{self, ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IPV6};

/// A deterministic pseudo-random sequence (xorshift64*), no extra crates.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

pub struct Scripted {
    /// Whole microseconds, so a pcap holds them exactly.
    pub ts_ns: u64,
    pub frame: Vec<u8>,
}

/// `count` frames from four LAN hosts that each keep a peer for a few
/// hundred packets, with peer changes now and then; both directions, 0 to
/// 3 VLAN tags, LAN-internal and transit traffic, ARP, IPv6 and truncated
/// frames mixed in. Gaps up to 4 ms.
pub fn mixed_traffic(seed: u64, count: usize) -> Vec<Scripted> {
    let ip = Ipv4Addr::new;
    let lan = [
        ip(192, 168, 1, 10),
        ip(192, 168, 1, 11),
        ip(10, 0, 0, 5),
        ip(172, 16, 3, 3),
    ];
    let wan = [
        ip(198, 51, 100, 7),
        ip(198, 51, 100, 8),
        ip(192, 0, 2, 1),
        ip(192, 0, 2, 99),
    ];
    let tag_sets: [&[u16]; 4] = [
        &[],
        &[ETH_P_8021Q],
        &[ETH_P_8021AD, ETH_P_8021Q],
        &[ETH_P_8021Q; 3],
    ];
    let mut rng = Rng(seed);
    let mut current_peer = [wan[0], wan[1], wan[0], wan[1]];
    let mut t = 0u64;
    (0..count)
        .map(|_| {
            t += rng.below(4_000) * 1_000;
            let h = rng.below(4) as usize;
            if rng.below(400) == 0 {
                current_peer[h] = wan[rng.below(4) as usize];
            }
            let (host, peer) = (lan[h], current_peer[h]);
            let tags = tag_sets[rng.below(4) as usize];
            let frame = match rng.below(40) {
                0 => frames::other(ETH_P_ARP),
                1 => frames::other(ETH_P_IPV6),
                2 => frames::udp(host, peer, tags)[..30].to_vec(),
                3 | 4 => frames::udp(host, lan[rng.below(4) as usize], tags),
                5 | 6 => frames::udp(wan[2], wan[3], tags),
                7..=18 => frames::udp(peer, host, tags),
                _ => frames::udp(host, peer, tags),
            };
            Scripted { ts_ns: t, frame }
        })
        .collect()
}
