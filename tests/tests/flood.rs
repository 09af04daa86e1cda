//! Spoofed-source floods: 10 million distinct internal source addresses,
//! with a VPN-like host talking all along. Memory stays within capacity,
//! evictions are counted, and the active host survives (least recently
//! seen goes first) and is still detected.

use std::net::{IpAddr, Ipv4Addr};

use vpnfp::{
    engine::{Engine, EngineSettings},
    model::{EndReason, Fact},
    source::{capture::LinkType, kernel::Capacities},
};
use vpnfp_common::{
    InternalRanges, KernelConfig, NANOS_PER_SEC, Thresholds, WindowClose, config::Arrival, decide,
};
use vpnfp_tests::{frames, harness::TestProgram, privileged};

const FLOOD: u32 = 10_000_000;
const CAPACITY: u32 = 65_536;
/// One VPN packet per this many flood packets.
const EVERY: u32 = 100;
/// 10 µs between packets: the flood lasts 100 s, the VPN host sends 1,000
/// packets a second.
const GAP_NS: u64 = 10_000;

fn spoofed(i: u32) -> Vec<u8> {
    // 10.0.0.0/8 holds 16.7 million addresses: all distinct, all internal.
    frames::udp(
        Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + i),
        Ipv4Addr::new(192, 0, 2, (i % 200) as u8),
        &[],
    )
}

fn vpn_frame() -> Vec<u8> {
    frames::udp(
        Ipv4Addr::new(192, 168, 1, 10),
        Ipv4Addr::new(198, 51, 100, 7),
        &[],
    )
}

/// The VPN host's windows: a 1 s window holds 1,000 packets; a host that was
/// evicted would start over with `count_prev` 0.
fn assert_detected_throughout(closes: &[WindowClose<IpAddr>]) {
    let vpn = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10));
    let mine: Vec<&WindowClose<IpAddr>> = closes.iter().filter(|c| c.host == vpn).collect();
    assert!(mine.len() >= 95, "{} windows", mine.len());
    let th = Thresholds::from_ratio(500, 0.75);
    for (i, c) in mine.iter().enumerate() {
        assert!(decide(c, &th).is_some(), "window {i} not flagged: {c:?}");
        if i > 0 {
            assert!(
                c.count_prev >= 990,
                "window {i}: state lost (evicted?): {c:?}"
            );
        }
    }
}

#[test]
fn xdp_flood_stays_within_capacity_counts_evictions_keeps_the_vpn_host() {
    if !privileged("xdp_flood_stays_within_capacity_counts_evictions_keeps_the_vpn_host") {
        return;
    }
    let mut program = TestProgram::load_with(
        KernelConfig::new(NANOS_PER_SEC, InternalRanges::research()),
        Capacities {
            max_hosts: CAPACITY,
            max_flows: CAPACITY,
            ..Capacities::default()
        },
    );
    let vpn = vpn_frame();
    let mut closes = Vec::new();
    let mut frame = spoofed(0);
    for i in 0..FLOOD {
        // Rewrite the source address in place (and fix the checksum).
        let src = u32::from(Ipv4Addr::new(10, 0, 0, 0)) + i;
        frame[26..30].copy_from_slice(&src.to_be_bytes());
        frame[24..26].copy_from_slice(&[0, 0]);
        let sum: u32 = frame[14..34]
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
            .sum();
        let folded = (sum & 0xffff) + (sum >> 16);
        frame[24..26]
            .copy_from_slice(&(!((folded & 0xffff) + (folded >> 16)) as u16).to_be_bytes());
        let t = i as u64 * GAP_NS;
        if i % EVERY == 0 {
            program.run_at(&vpn, t).expect("test_run");
            // Drain as we go: the ring buffer holds ~21,000 records.
            if i % 1_000_000 == 0 {
                closes.extend(program.window_closes());
            }
        } else {
            // The flood shares the clock of the last VPN packet: one clock
            // write per hundred packets keeps the test fast.
            program
                .run_at(&frame, (i - i % EVERY) as u64 * GAP_NS)
                .expect("test_run");
        }
    }
    closes.extend(program.window_closes());
    let c = program.counters();
    assert_eq!(c.seen, FLOOD as u64);
    assert_eq!(c.records_lost, 0);
    let tracked = program.fingerprinter.hosts4().unwrap().len() as u64;
    assert!(
        tracked <= CAPACITY as u64,
        "{tracked} hosts in a map of {CAPACITY}"
    );
    let created = c.hosts_created;
    assert!(created >= FLOOD as u64 * 99 / 100, "{created}");
    assert!(
        created - tracked >= FLOOD as u64 * 98 / 100,
        "evictions: {}",
        created - tracked
    );
    assert!(
        program
            .fingerprinter
            .host4(Ipv4Addr::new(192, 168, 1, 10))
            .unwrap()
            .is_some()
    );
    // The flow table is a plain hash: full, it refuses new flows (counted),
    // never evicting one silently.
    assert!(c.flow_table_full > 0, "{c:?}");
    assert_eq!(c.flows_created, CAPACITY as u64);
    assert_detected_throughout(&closes);
}

#[test]
fn replay_flood_stays_within_capacity_counts_evictions_keeps_the_vpn_host() {
    let config = KernelConfig::new(NANOS_PER_SEC, InternalRanges::research());
    let mut engine = Engine::new(EngineSettings {
        max_hosts: CAPACITY as usize,
        max_flows: CAPACITY as usize,
        ..EngineSettings::new(config)
    });
    let vpn = vpn_frame();
    let mut frame = spoofed(0);
    let mut closes = Vec::new();
    let (mut flows_ended, mut flows_evicted, mut flow_packets) = (0u64, 0u64, 0u64);
    let mut on_fact = |f: Fact<'_>| match f {
        Fact::Window(w) => closes.push(w),
        Fact::Flow(f) => {
            flows_ended += 1;
            flows_evicted += (f.end == EndReason::Evicted) as u64;
            flow_packets += f.value.packets_up + f.value.packets_down;
        }
        _ => {}
    };
    for i in 0..FLOOD {
        let t = i as u64 * GAP_NS;
        if i % EVERY == 0 {
            engine.frame(
                &vpn,
                LinkType::Ethernet.parse(&vpn),
                Arrival::Elsewhere,
                t,
                &mut on_fact,
            );
        } else {
            let src = u32::from(Ipv4Addr::new(10, 0, 0, 0)) + i;
            frame[26..30].copy_from_slice(&src.to_be_bytes());
            engine.frame(
                &frame,
                LinkType::Ethernet.parse(&frame),
                Arrival::Elsewhere,
                t,
                &mut on_fact,
            );
        }
        if i % 1_000_000 == 0 {
            assert!(engine.hosts_tracked() <= CAPACITY as usize);
            assert!(engine.flows_tracked() <= CAPACITY as usize);
        }
    }
    engine.finish(&mut on_fact);
    assert!(engine.hosts_tracked() <= CAPACITY as usize);
    let created = engine.counters().hosts_created;
    assert_eq!(created, (FLOOD - FLOOD / EVERY) as u64 + 1);
    assert_eq!(
        engine.hosts_evicted() + engine.hosts_tracked() as u64,
        created,
        "every eviction counted"
    );
    // Every flow left the bounded table with its counts: nothing silent.
    assert_eq!(
        flow_packets, FLOOD as u64,
        "every packet in some flow record"
    );
    assert!(flows_evicted > FLOOD as u64 / 2, "{flows_evicted}");
    assert_eq!(flows_ended, engine.counters().flows_created);
    assert_detected_throughout(&closes);
}
