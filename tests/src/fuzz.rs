//! Hostile input for the userspace side: random and mutated frames of every
//! link type through the shared parser and the engine, and mutated capture
//! files through the readers. Deterministic per seed, so a failure can be
//! replayed; `cargo xtask fuzz` runs it long, the test suite briefly.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use vpnfp::{
    engine::{Engine, EngineSettings},
    model::Fact,
    source::capture::{Capture, LinkType},
};
use vpnfp_common::{
    InternalRanges, KernelConfig, NANOS_PER_SEC, Parsed,
    config::Arrival,
    parse::{self, L4Kind},
    record::SAMPLE_MAX,
};

use crate::{
    frames::{
        self, DEST_OPTS, ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IPV6, FRAGMENT, Flags,
        HOP_BY_HOP, ROUTING,
    },
    script::Rng,
};

const LINKS: [LinkType; 5] = [
    LinkType::Ethernet,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
    LinkType::RawIp,
    LinkType::Loopback,
];

fn ip6(rng: &mut Rng) -> Ipv6Addr {
    match rng.below(3) {
        0 => format!("fd00::{:x}", rng.below(4)).parse().unwrap(),
        1 => format!("2001:db8::{:x}", rng.below(4)).parse().unwrap(),
        _ => Ipv6Addr::from(((rng.next_u64() as u128) << 64) | rng.next_u64() as u128),
    }
}

/// A plausible frame to start from: IPv4 with 0 to 4 VLAN tags, IPv4 and
/// IPv6 TCP and UDP, IPv6 with extension headers, ARP, or random bytes.
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
    let payload: Vec<u8> = (0..rng.below(64)).map(|_| rng.next_u64() as u8).collect();
    let port = |rng: &mut Rng| rng.below(65536) as u16;
    let flags = |rng: &mut Rng| Flags {
        syn: rng.below(2) == 0,
        ack: rng.below(2) == 0,
        fin: rng.below(4) == 0,
        rst: rng.below(8) == 0,
    };
    match rng.below(11) {
        0..=2 => {
            let tags: Vec<u16> = (0..rng.below(5)).map(|_| tag(rng)).collect();
            let (src, dst) = (ip(rng), ip(rng));
            frames::udp(src, dst, &tags)
        }
        3 => frames::other(ETH_P_ARP),
        4 => frames::other(ETH_P_IPV6),
        5 => {
            let (s, d) = (IpAddr::V4(ip(rng)), IpAddr::V4(ip(rng)));
            let (a, b, f) = (port(rng), port(rng), flags(rng));
            frames::tcp(s, d, a, b, f, &payload)
        }
        6 => {
            let (s, d) = (IpAddr::V6(ip6(rng)), IpAddr::V6(ip6(rng)));
            let (a, b, f) = (port(rng), port(rng), flags(rng));
            frames::tcp(s, d, a, b, f, &payload)
        }
        7 => {
            let (s, d) = (ip6(rng), ip6(rng));
            let (a, b) = (port(rng), port(rng));
            let vlan = (rng.below(2) == 0).then(|| rng.below(4000) as u16 + 1);
            frames::udp6(s, d, a, b, &payload, vlan)
        }
        8 => {
            let kinds: Vec<u8> = (0..rng.below(5))
                .map(|_| [HOP_BY_HOP, ROUTING, FRAGMENT, DEST_OPTS][rng.below(4) as usize])
                .collect();
            let (s, d) = (ip6(rng), ip6(rng));
            let (a, b) = (port(rng), port(rng));
            frames::udp6_with_ext(s, d, &kinds, a, b, &payload)
        }
        9 => frames::udp_with(ip(rng), ip(rng), port(rng), port(rng), &payload),
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
    config.inspect_packets = 4;
    config.sample_bytes = SAMPLE_MAX as u32;
    config.concentration_window_ns = NANOS_PER_SEC / 10;
    config.concentration_min_packets = 5;
    config.flow_active_ns = NANOS_PER_SEC / 5;
    let settings = |config| EngineSettings {
        max_flows: 10_000,
        max_hosts: 10_000,
        ..EngineSettings::new(config)
    };
    let mut engine = Engine::new(settings(config));
    let mut report = Report::default();
    let mut t = 0u64;
    for n in 0..inputs {
        let data = frame(&mut rng);
        let link = LINKS[rng.below(LINKS.len() as u64) as usize];
        t = match rng.below(10) {
            0 => t.saturating_sub(rng.below(NANOS_PER_SEC)),
            1 => t + rng.below(10 * NANOS_PER_SEC),
            _ => t + rng.below(NANOS_PER_SEC / 1000),
        };
        let parsed = std::panic::catch_unwind(|| link.parse(&data)).unwrap_or_else(|_| {
            panic!("parse panicked: seed {seed} input {n} {link:?} {data:02x?}")
        });
        engine.frame(
            &data,
            parsed,
            Arrival::Elsewhere,
            t,
            &mut |fact| match fact {
                Fact::Window(closed) => {
                    assert!(
                        closed.count_this >= 1 && closed.window_end_ns >= closed.window_start_ns,
                        "{closed:?}"
                    );
                    report.windows_closed += 1;
                }
                Fact::Sample(s) => assert!(s.payload.len() <= s.payload_len as usize),
                Fact::Flow(f) => assert!(
                    f.value.packets_up + f.value.packets_down > 0
                        || f.end != vpnfp::model::EndReason::Idle
                ),
                Fact::Concentration(c) => assert!(c.peer_packets <= c.packets),
                Fact::Process(_) | Fact::Attributed(..) => panic!("a process from the engine"),
            },
        );
        report.frames += 1;
        if n % 256 == 255 {
            report.captures += 1;
            let bytes = capture_bytes(&mut rng);
            let capture = mutate(&mut rng, bytes);
            let _ = Capture::from_reader(
                format!("input {n}"),
                Box::new(std::io::Cursor::new(capture)),
            )
            .for_each(|p| {
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
            engine = Engine::new(settings(config));
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

/// What the differential run compared.
#[derive(Debug, Default)]
pub struct Differential {
    pub frames: u64,
    /// Frames both parsers read to a transport header, compared field by field.
    pub compared: u64,
}

/// `inputs` random and mutated Ethernet frames through vpnfp's parser and
/// through etherparse's strict one (an independent implementation): where
/// etherparse reads IP and TCP or UDP, vpnfp must read the same addresses,
/// protocol and ports. Known, deliberate differences are skipped: tags of
/// ethertype 0x9100 (vpnfp reads 802.1Q and 802.1ad only), IPv4 fragments
/// (etherparse leaves the transport unread), and more IPv6 extension
/// headers than vpnfp walks.
pub fn differential(seed: u64, inputs: u64) -> Differential {
    let mut rng = Rng(seed | 1);
    let mut out = Differential::default();
    for n in 0..inputs {
        let data = frame(&mut rng);
        out.frames += 1;
        let ours = parse::ethernet(&data[..]);
        let Ok(theirs) = etherparse::SlicedPacket::from_ethernet(&data) else {
            continue;
        };
        if theirs
            .link_exts
            .iter()
            .any(|e| !matches!(e, etherparse::LinkExtSlice::Vlan(_)))
            || has_tpid_9100(&data)
        {
            continue;
        }
        let (src, dst, ipv4_fragment, ext_count) = match &theirs.net {
            Some(etherparse::NetSlice::Ipv4(v4)) => (
                IpAddr::V4(v4.header().source_addr()),
                IpAddr::V4(v4.header().destination_addr()),
                v4.header().is_fragmenting_payload(),
                0,
            ),
            Some(etherparse::NetSlice::Ipv6(v6)) => (
                IpAddr::V6(v6.header().source_addr()),
                IpAddr::V6(v6.header().destination_addr()),
                false,
                v6.extensions().clone().into_iter().count(),
            ),
            _ => continue,
        };
        let (ip_src, ip_dst, l4) = match ours {
            Ok(Parsed::V4(ip)) => (
                IpAddr::V4(Ipv4Addr::from(ip.src)),
                IpAddr::V4(Ipv4Addr::from(ip.dst)),
                ip.l4,
            ),
            Ok(Parsed::V6(ip)) => (IpAddr::V6(ip.src.into()), IpAddr::V6(ip.dst.into()), ip.l4),
            Err(e) => panic!(
                "input {n}: etherparse reads IP ({src} > {dst}), vpnfp says {e:?}: {data:02x?}"
            ),
        };
        assert_eq!(
            (ip_src, ip_dst),
            (src, dst),
            "input {n}: addresses of {data:02x?}"
        );
        if ipv4_fragment || ext_count >= vpnfp_common::parse::MAX_IPV6_EXT {
            continue;
        }
        let (proto, ports) = match &theirs.transport {
            Some(etherparse::TransportSlice::Udp(u)) => {
                (17, (u.source_port(), u.destination_port()))
            }
            Some(etherparse::TransportSlice::Tcp(t)) => {
                (6, (t.source_port(), t.destination_port()))
            }
            _ => continue,
        };
        assert_eq!(l4.kind, L4Kind::Complete, "input {n}: {data:02x?}");
        assert_eq!(
            (l4.proto, (l4.src_port, l4.dst_port)),
            (proto, ports),
            "input {n}: transport of {data:02x?}"
        );
        out.compared += 1;
    }
    out
}

/// Whether the frame's tag stack has an old-style QinQ tag (0x9100), which
/// etherparse reads as VLAN and vpnfp, like the research, does not.
fn has_tpid_9100(frame: &[u8]) -> bool {
    let mut at = 12;
    while let Some(t) = frame.get(at..at + 2) {
        match u16::from_be_bytes([t[0], t[1]]) {
            0x9100 => return true,
            0x8100 | 0x88a8 => at += 4,
            _ => return false,
        }
    }
    false
}
