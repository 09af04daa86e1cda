//! Hostile input for the userspace side: random and mutated frames of every
//! link type through the shared parser and the engine, and mutated capture
//! files through the readers. Deterministic per seed, so a failure can be
//! replayed; `cargo xtask fuzz` runs it long, the test suite briefly.

use std::net::Ipv4Addr;

use vpnfp::{
    capture::{Capture, LinkType},
    engine::Engine,
};
use vpnfp_common::{InternalRanges, KernelConfig, NANOS_PER_SEC};

use crate::{
    frames::{self, ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IPV6},
    script::Rng,
};

const LINKS: [LinkType; 4] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::RawIp,
];

/// A plausible frame to start from: IPv4 with 0 to 4 VLAN tags, ARP, IPv6,
/// or random bytes.
fn seed_frame(rng: &mut Rng) -> Vec<u8> {
    let ip = |rng: &mut Rng| {
        // Mostly addresses that matter: LAN, documentation, the edges.
        match rng.below(4) {
            0 => Ipv4Addr::new(192, 168, 1, rng.below(4) as u8),
            1 => Ipv4Addr::new(198, 51, 100, rng.below(4) as u8),
            2 => Ipv4Addr::from(rng.next_u64() as u32),
            _ => [
                Ipv4Addr::UNSPECIFIED,
                Ipv4Addr::BROADCAST,
                Ipv4Addr::new(224, 0, 0, 1),
            ][rng.below(3) as usize],
        }
    };
    let tag = |rng: &mut Rng| {
        if rng.below(2) == 0 {
            ETH_P_8021Q
        } else {
            ETH_P_8021AD
        }
    };
    match rng.below(6) {
        0..=2 => {
            let tags: Vec<u16> = (0..rng.below(5)).map(|_| tag(rng)).collect();
            let (src, dst) = (ip(rng), ip(rng));
            frames::udp(src, dst, &tags)
        }
        3 => frames::other(ETH_P_ARP),
        4 => frames::other(ETH_P_IPV6),
        _ => (0..rng.below(80)).map(|_| rng.next_u64() as u8).collect(),
    }
}

/// Flips, overwrites, truncates, extends or splices bytes.
pub fn mutate(rng: &mut Rng, mut data: Vec<u8>) -> Vec<u8> {
    for _ in 0..rng.below(4) {
        match rng.below(6) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len() as u64) as usize;
                data[i] ^= 1 << rng.below(8);
            }
            1 if !data.is_empty() => {
                let i = rng.below(data.len() as u64) as usize;
                data[i] = [0x00, 0xff, 0x45, 0x81, 0x88, 0x08][rng.below(6) as usize];
            }
            2 => {
                let len = rng.below(data.len() as u64 + 1) as usize;
                data.truncate(len);
            }
            3 => data.extend((0..rng.below(16)).map(|_| rng.next_u64() as u8)),
            4 if data.len() > 2 => {
                let i = rng.below(data.len() as u64 - 1) as usize;
                data.insert(i, rng.next_u64() as u8);
            }
            _ => {}
        }
    }
    data
}

/// One random frame (seed + mutations).
pub fn frame(rng: &mut Rng) -> Vec<u8> {
    let seed = seed_frame(rng);
    mutate(rng, seed)
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Report {
    pub frames: u64,
    pub captures: u64,
    pub windows_closed: u64,
}

/// `inputs` random frames through every link type's parser and the engine
/// (with time jumping about, backwards too), and every 256th input a mutated
/// capture file through the readers. Panics (with the seed and input) on a
/// crash or a broken invariant.
pub fn run(seed: u64, inputs: u64) -> Report {
    let mut rng = Rng(seed | 1);
    let mut config = KernelConfig::new(NANOS_PER_SEC / 100, InternalRanges::research());
    let mut engine = Engine::new(config);
    let mut report = Report::default();
    let mut t = 0u64;
    for n in 0..inputs {
        let data = frame(&mut rng);
        let link = LINKS[rng.below(4) as usize];
        t = match rng.below(10) {
            0 => t.saturating_sub(rng.below(NANOS_PER_SEC)),
            1 => t + rng.below(10 * NANOS_PER_SEC),
            _ => t + rng.below(NANOS_PER_SEC / 1000),
        };
        let parsed = std::panic::catch_unwind(|| link.parse(&data)).unwrap_or_else(|_| {
            panic!("parse panicked: seed {seed} input {n} {link:?} {data:02x?}")
        });
        if let Some(closed) = engine.frame(parsed, t) {
            assert!(
                closed.count_this >= 1 && closed.window_end_ns >= closed.window_start_ns,
                "{closed:?}"
            );
            report.windows_closed += 1;
        }
        report.frames += 1;
        if n % 256 == 255 {
            report.captures += 1;
            let bytes = capture_bytes(&mut rng);
            let capture = mutate(&mut rng, bytes);
            let _ = Capture::from_reader(format!("input {n}"), &capture[..]).for_each(|p| {
                let _ = p.link.parse(p.data);
            });
        }
        if n % 100_000 == 99_999 {
            // Change the settings now and then, as a live config change would.
            config.window_ns = 1 + rng.below(NANOS_PER_SEC);
            let counters = *engine.counters();
            assert_eq!(
                counters.seen,
                counters.analysed() + counters.ignored() + counters.malformed()
            );
            engine = Engine::new(config);
        }
    }
    let c = engine.counters();
    assert_eq!(c.seen, c.analysed() + c.ignored() + c.malformed());
    report
}

/// A small valid pcap or pcapng to mutate.
fn capture_bytes(rng: &mut Rng) -> Vec<u8> {
    let frames: Vec<Vec<u8>> = (0..rng.below(5)).map(|_| frame(rng)).collect();
    let mut out = Vec::new();
    if rng.below(2) == 0 {
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        out.extend_from_slice(&[2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0]);
        out.extend_from_slice(&[1, 0, 0, 0]);
        for f in &frames {
            out.extend_from_slice(&[1, 0, 0, 0, 2, 0, 0, 0]);
            out.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.extend_from_slice(f);
        }
    } else {
        let block = |out: &mut Vec<u8>, kind: u32, body: &[u8]| {
            let len = 12 + body.len().div_ceil(4) * 4;
            out.extend_from_slice(&kind.to_le_bytes());
            out.extend_from_slice(&(len as u32).to_le_bytes());
            out.extend_from_slice(body);
            out.resize(out.len() + (len - 12 - body.len()), 0);
            out.extend_from_slice(&(len as u32).to_le_bytes());
        };
        let mut shb = 0x1a2b_3c4du32.to_le_bytes().to_vec();
        shb.extend_from_slice(&[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        block(&mut out, 0x0a0d_0d0a, &shb);
        block(
            &mut out,
            1,
            &[1, 0, 0, 0, 0, 0, 0, 0, 9, 0, 1, 0, 9, 0, 0, 0],
        );
        for f in &frames {
            let mut epb = vec![0u8; 20];
            epb[12..16].copy_from_slice(&(f.len() as u32).to_le_bytes());
            epb[16..20].copy_from_slice(&(f.len() as u32).to_le_bytes());
            epb.extend_from_slice(f);
            block(&mut out, 6, &epb);
        }
    }
    out
}
