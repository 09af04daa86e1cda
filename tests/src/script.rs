//! Deterministic traffic scripts: frames with timestamps, for feeding the
//! same sequence to the kernel programs (test_run) and to replay.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{
    frames::{
        self, DEST_OPTS, ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IPV6, FRAGMENT, Flags,
        HOP_BY_HOP, ROUTING,
    },
    harness::Hook,
};

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
    /// Where a router would see it: arriving from the LAN (ingress) or
    /// leaving towards it (egress).
    pub hook: Hook,
}

impl Scripted {
    pub fn ingress(ts_ns: u64, frame: Vec<u8>) -> Self {
        Self {
            ts_ns,
            frame,
            hook: Hook::Ingress,
        }
    }
}

/// `count` frames from LAN hosts of both families that each keep a peer for
/// a few hundred packets, with peer changes now and then; replies on the
/// egress hook; 0 to 3 VLAN tags, TCP with flags and payload, UDP, IPv6
/// extension headers and fragments, LAN-internal and transit traffic, ARP
/// and truncated frames mixed in. Gaps up to 4 ms.
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
    let lan6: [Ipv6Addr; 2] = ["fd00::10".parse().unwrap(), "fd00::11".parse().unwrap()];
    let wan6: [Ipv6Addr; 2] = [
        "2001:db8::7".parse().unwrap(),
        "2001:db8:1::8".parse().unwrap(),
    ];
    let tag_sets: [&[u16]; 4] = [
        &[],
        &[ETH_P_8021Q],
        &[ETH_P_8021AD, ETH_P_8021Q],
        &[ETH_P_8021Q; 3],
    ];
    let mut rng = Rng(seed);
    let mut current_peer = [wan[0], wan[1], wan[0], wan[1]];
    let mut current_peer6 = [wan6[0], wan6[1]];
    let mut t = 0u64;
    (0..count)
        .map(|_| {
            t += rng.below(4_000) * 1_000;
            let h = rng.below(4) as usize;
            if rng.below(400) == 0 {
                current_peer[h] = wan[rng.below(4) as usize];
            }
            let h6 = h % 2;
            if rng.below(400) == 0 {
                current_peer6[h6] = wan6[rng.below(2) as usize];
            }
            let (host, peer) = (lan[h], current_peer[h]);
            let (host6, peer6) = (lan6[h6], current_peer6[h6]);
            let tags = tag_sets[rng.below(4) as usize];
            let sport = 40_000 + h as u16;
            let payload_len = rng.below(120) as usize;
            let payload: Vec<u8> = (0..payload_len).map(|_| rng.below(256) as u8).collect();
            let flags = Flags {
                syn: rng.below(50) == 0,
                ack: true,
                fin: rng.below(200) == 0,
                rst: rng.below(500) == 0,
            };
            let (frame, hook) = match rng.below(60) {
                0 => (frames::other(ETH_P_ARP), Hook::Ingress),
                1 => (frames::other(ETH_P_IPV6), Hook::Ingress),
                2 => (frames::udp(host, peer, tags)[..30].to_vec(), Hook::Ingress),
                3 | 4 => (
                    frames::udp(host, lan[rng.below(4) as usize], tags),
                    Hook::Ingress,
                ),
                5 | 6 => (frames::udp(wan[2], wan[3], tags), Hook::Egress),
                7..=14 => (frames::udp(peer, host, tags), Hook::Egress),
                15..=19 => (
                    frames::tcp(
                        IpAddr::V4(host),
                        IpAddr::V4(peer),
                        sport,
                        443,
                        flags,
                        &payload,
                    ),
                    Hook::Ingress,
                ),
                20..=24 => (
                    frames::tcp(
                        IpAddr::V4(peer),
                        IpAddr::V4(host),
                        443,
                        sport,
                        flags,
                        &payload,
                    ),
                    Hook::Egress,
                ),
                25..=29 => (
                    frames::udp6(host6, peer6, sport, 51820, &payload, None),
                    Hook::Ingress,
                ),
                30..=33 => (
                    frames::udp6(peer6, host6, 51820, sport, &payload, Some(7)),
                    Hook::Egress,
                ),
                34 | 35 => (
                    frames::tcp(
                        IpAddr::V6(host6),
                        IpAddr::V6(peer6),
                        sport,
                        22,
                        flags,
                        &payload,
                    ),
                    Hook::Ingress,
                ),
                36 => (
                    frames::udp6_with_ext(
                        host6,
                        peer6,
                        &[HOP_BY_HOP, ROUTING, FRAGMENT, DEST_OPTS],
                        sport,
                        53,
                        &payload,
                    ),
                    Hook::Ingress,
                ),
                37 => {
                    // A fragment after the first: no transport header.
                    let mut f = frames::udp(host, peer, tags);
                    let ip_at = 14 + 4 * tags.len();
                    f[ip_at + 6] = 0x00;
                    f[ip_at + 7] = 0x20;
                    (f, Hook::Ingress)
                }
                // A LAN device forging the server's reply: it arrives on
                // the LAN port.
                38 => (frames::udp(peer, host, tags), Hook::Ingress),
                _ => (frames::udp(host, peer, tags), Hook::Ingress),
            };
            Scripted {
                ts_ns: t,
                frame,
                hook,
            }
        })
        .collect()
}
