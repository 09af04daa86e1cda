//! The real XDP program through BPF_PROG_TEST_RUN: parsing, classification,
//! counters and window-close records, against the shared state machine.

use std::{collections::HashMap, net::Ipv4Addr};

use vpnfp::{capture::LinkType, engine::Engine};

use vpnfp_common::{
    InternalRanges, Ipv4Range, KernelConfig, NANOS_PER_SEC, Outcome, WindowClose,
    config::FLAG_INTERNAL_HOSTS_ONLY,
};
use vpnfp_tests::{
    fixtures::{Expected, parse_vectors},
    frames::{self, ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IPV6},
    harness::{TestProgram, XDP_PASS},
    privileged,
    script::mixed_traffic,
};

const MS: u64 = 1_000_000;

fn research_config(window_ns: u64) -> KernelConfig {
    KernelConfig::new(window_ns, InternalRanges::research())
}

fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

/// Runs one frame and returns the outcome it was counted as.
fn outcome_of(program: &mut TestProgram, frame: &[u8], now_ns: u64) -> Outcome {
    let before = program.counters();
    let verdict = program.run_at(frame, now_ns).expect("test_run");
    assert_eq!(verdict, XDP_PASS, "monitor mode passes every frame");
    let after = program.counters();
    assert_eq!(after.seen, before.seen + 1, "counted once");
    let changed: Vec<Outcome> = Outcome::ALL
        .into_iter()
        .filter(|&o| after.outcome(o) != before.outcome(o))
        .collect();
    assert_eq!(
        changed.len(),
        1,
        "exactly one outcome per frame: {changed:?}"
    );
    assert_eq!(after.outcome(changed[0]), before.outcome(changed[0]) + 1);
    changed[0]
}

#[test]
fn parse_vectors_give_the_expected_hosts_and_peers() {
    if !privileged("parse_vectors_give_the_expected_hosts_and_peers") {
        return;
    }
    let vectors = parse_vectors();
    assert_eq!(vectors.len(), 10);
    for v in &vectors {
        // A fresh program per frame so each host lookup sees only this frame.
        let mut program = TestProgram::load(research_config(1200 * NANOS_PER_SEC));
        let outcome = outcome_of(&mut program, &v.frame, 1_000);
        match v.expected {
            Expected::Internal => {
                assert_eq!(outcome, Outcome::IgnoredLanInternal, "frame {}", v.frame_no)
            }
            Expected::NotIpv4 => {
                assert_eq!(outcome, Outcome::IgnoredNotIpv4, "frame {}", v.frame_no)
            }
            Expected::Analysed { host, peer } => {
                assert_eq!(outcome, Outcome::Analysed, "frame {}", v.frame_no);
                let hosts = program.fingerprinter.hosts().unwrap();
                assert_eq!(hosts.len(), 1, "frame {}", v.frame_no);
                assert_eq!(hosts[0].0, host, "frame {}: host", v.frame_no);
                assert_eq!(
                    Ipv4Addr::from(hosts[0].1.peer),
                    peer,
                    "frame {}: peer",
                    v.frame_no
                );
                assert_eq!(hosts[0].1.count_this, 1);
            }
        }
        if !matches!(v.expected, Expected::Analysed { .. }) {
            assert!(program.fingerprinter.hosts().unwrap().is_empty());
            assert!(program.fingerprinter.flows().unwrap().is_empty());
        }
    }
}

#[test]
fn malformed_and_foreign_frames_pass_change_nothing_and_are_counted() {
    if !privileged("malformed_and_foreign_frames_pass_change_nothing_and_are_counted") {
        return;
    }
    let mut program = TestProgram::load(research_config(NANOS_PER_SEC));
    let src = ip(192, 168, 1, 10);
    let dst = ip(198, 51, 100, 7);
    let mut expected = HashMap::<Outcome, u64>::new();

    // Truncated at every length: untagged (IPv4 ends at 34) and QinQ (at 42).
    for tags in [&[][..], &[ETH_P_8021AD, ETH_P_8021Q][..]] {
        let full = frames::udp(src, dst, tags);
        let ip_end = 14 + 4 * tags.len() + 20;
        for len in 0..=60.min(ip_end - 1) {
            if len < 14 {
                // The kernel refuses to run XDP on less than an Ethernet header.
                let err = program
                    .run_at(&full[..len], 0)
                    .expect_err("BPF_PROG_TEST_RUN accepts no frame under 14 bytes");
                assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "len {len}");
            } else {
                assert_eq!(
                    outcome_of(&mut program, &full[..len], 0),
                    Outcome::MalformedTruncated,
                    "len {len}, {} tags",
                    tags.len()
                );
                *expected.entry(Outcome::MalformedTruncated).or_default() += 1;
            }
        }
    }
    // IHL below 5, and version not 4 under the IPv4 ethertype.
    for first_byte in [0x40, 0x41, 0x42, 0x43, 0x44, 0x65, 0x05] {
        let mut f = frames::udp(src, dst, &[]);
        f[14] = first_byte;
        assert_eq!(
            outcome_of(&mut program, &f, 0),
            Outcome::MalformedIpv4Header,
            "first byte {first_byte:#x}"
        );
        *expected.entry(Outcome::MalformedIpv4Header).or_default() += 1;
    }
    // Four and five VLAN tags: the research reads up to three.
    for tags in [
        [ETH_P_8021AD, ETH_P_8021Q, ETH_P_8021Q, ETH_P_8021Q].as_slice(),
        &[ETH_P_8021Q; 5],
    ] {
        assert_eq!(
            outcome_of(&mut program, &frames::udp(src, dst, tags), 0),
            Outcome::MalformedVlanDepth
        );
        *expected.entry(Outcome::MalformedVlanDepth).or_default() += 1;
    }
    // Not IPv4: ARP, IPv6, an 802.3 length field, IPX behind a VLAN tag.
    let mut ipx = frames::ethernet(&[ETH_P_8021Q], 0x8137);
    ipx.resize(60, 0);
    for f in [
        frames::other(ETH_P_ARP),
        frames::other(ETH_P_IPV6),
        frames::other(0x0040),
        ipx,
    ] {
        assert_eq!(outcome_of(&mut program, &f, 0), Outcome::IgnoredNotIpv4);
        *expected.entry(Outcome::IgnoredNotIpv4).or_default() += 1;
    }

    let c = program.counters();
    for o in Outcome::ALL {
        assert_eq!(
            c.outcome(o),
            expected.get(&o).copied().unwrap_or(0),
            "{o:?}"
        );
    }
    assert_eq!(c.seen, c.analysed() + c.ignored() + c.malformed());
    assert!(
        program.fingerprinter.hosts().unwrap().is_empty(),
        "no host state"
    );
    assert!(
        program.fingerprinter.flows().unwrap().is_empty(),
        "no flow state"
    );
    assert!(program.window_closes().is_empty());

    // Three tags and a frame cut right after the IPv4 header are fine.
    let three = frames::udp(src, dst, &[ETH_P_8021AD, ETH_P_8021Q, ETH_P_8021Q]);
    assert_eq!(outcome_of(&mut program, &three, 0), Outcome::Analysed);
    assert_eq!(
        outcome_of(&mut program, &frames::udp(src, dst, &[])[..34], 0),
        Outcome::Analysed
    );
}

#[test]
fn scripted_sequence_yields_exactly_the_shared_state_machines_records() {
    if !privileged("scripted_sequence_yields_exactly_the_shared_state_machines_records") {
        return;
    }
    let config = research_config(300 * MS);
    let mut program = TestProgram::load(config);
    // The same frames through the userspace engine (the shared parser and
    // state machine, as replay and NFQUEUE mode use them).
    let mut engine = Engine::new(config);
    let mut expected_closes = Vec::new();
    let script = mixed_traffic(0x5eed_1234_abcd_ef01, 6_000);
    for s in &script {
        program.run_at(&s.frame, s.ts_ns).expect("test_run");
        expected_closes.extend(engine.frame(LinkType::Ethernet.parse(&s.frame), s.ts_ns));
    }
    let closes = program.window_closes();
    assert!(
        expected_closes.len() >= 100,
        "the script closes windows ({})",
        expected_closes.len()
    );
    assert_eq!(closes, expected_closes);
    let hosts = program.fingerprinter.hosts().unwrap();
    assert_eq!(hosts.len(), engine.hosts().len());
    for (host, state) in hosts {
        assert_eq!(Some(&state), engine.hosts().get(&u32::from(host)), "{host}");
    }
    let c = program.counters();
    let mut e = *engine.counters();
    // Only the kernel keeps flows.
    e.flows_created = c.flows_created;
    assert_eq!(c, e, "kernel and userspace count every outcome alike");
    assert_eq!(c.seen, 6_000);
    assert_eq!(c.seen, c.analysed() + c.ignored() + c.malformed());
    assert!(c.malformed() > 0 && c.outcome(Outcome::IgnoredNotIpv4) > 0);
}

#[test]
fn worked_scenario_through_the_kernel() {
    if !privileged("worked_scenario_through_the_kernel") {
        return;
    }
    let mut program = TestProgram::load(research_config(5 * NANOS_PER_SEC));
    let host = ip(192, 168, 1, 10);
    let vpn = ip(198, 51, 100, 7);
    let frame = frames::udp(host, vpn, &[]);
    for i in 0..=26u64 {
        program.run_at(&frame, i * 400 * MS).unwrap();
    }
    let closes = program.window_closes();
    assert_eq!(
        closes,
        vec![
            WindowClose {
                host: u32::from(host),
                peer: u32::from(vpn),
                window_start_ns: 0,
                window_end_ns: 5_200 * MS,
                count_this: 14,
                count_prev: 0
            },
            WindowClose {
                host: u32::from(host),
                peer: u32::from(vpn),
                window_start_ns: 5_200 * MS,
                window_end_ns: 10_400 * MS,
                count_this: 13,
                count_prev: 14
            },
        ]
    );
    // One packet to another peer restarts the window.
    let mut program = TestProgram::load(research_config(5 * NANOS_PER_SEC));
    for i in 0..=7u64 {
        program.run_at(&frame, i * 400 * MS).unwrap();
    }
    program
        .run_at(&frames::udp(host, ip(198, 51, 100, 99), &[]), 3_000 * MS)
        .unwrap();
    let state = program.fingerprinter.host_state(host).unwrap().unwrap();
    assert_eq!(
        (
            Ipv4Addr::from(state.peer),
            state.window_start_ns,
            state.count_this
        ),
        (ip(198, 51, 100, 99), 3_000 * MS, 1)
    );
    program.run_at(&frame, 3_200 * MS).unwrap();
    let state = program.fingerprinter.host_state(host).unwrap().unwrap();
    assert_eq!(
        (
            Ipv4Addr::from(state.peer),
            state.window_start_ns,
            state.count_this
        ),
        (vpn, 3_200 * MS, 1)
    );
}

#[test]
fn flow_counters_follow_both_directions() {
    if !privileged("flow_counters_follow_both_directions") {
        return;
    }
    let mut program = TestProgram::load(research_config(NANOS_PER_SEC));
    let host = ip(192, 168, 1, 10);
    let peer = ip(198, 51, 100, 7);
    for t in 0..3 {
        program
            .run_at(&frames::udp(host, peer, &[]), 100 + t)
            .unwrap();
    }
    program
        .run_at(&frames::udp(peer, host, &[ETH_P_8021Q]), 500)
        .unwrap();
    let flows = program.fingerprinter.flows().unwrap();
    assert_eq!(flows.len(), 1);
    let (key, c) = flows[0];
    assert_eq!(
        (Ipv4Addr::from(key.host), Ipv4Addr::from(key.peer)),
        (host, peer)
    );
    // IPv4 total length: 20 + 8 + 18 = 46 bytes each.
    assert_eq!(
        (c.packets_out, c.bytes_out, c.packets_in, c.bytes_in),
        (3, 138, 1, 46)
    );
    assert_eq!((c.first_seen_ns, c.last_seen_ns), (100, 500));
    let counters = program.counters();
    assert_eq!((counters.hosts_created, counters.flows_created), (1, 1));
}

#[test]
fn config_changes_apply_without_reload() {
    if !privileged("config_changes_apply_without_reload") {
        return;
    }
    let mut program = TestProgram::load(research_config(NANOS_PER_SEC));
    let a = ip(10, 0, 0, 1);
    let b = ip(192, 168, 1, 1);
    let frame = frames::udp(a, b, &[]);
    assert_eq!(
        outcome_of(&mut program, &frame, 0),
        Outcome::IgnoredLanInternal
    );

    // Only 10/8 internal now: 192.168.1.1 is an external peer of 10.0.0.1.
    let ten = InternalRanges::from_slice(&[Ipv4Range::new(u32::from(ip(10, 0, 0, 0)), 8)]).unwrap();
    let mut program2 = TestProgram::load(KernelConfig::new(NANOS_PER_SEC, ten));
    assert_eq!(outcome_of(&mut program2, &frame, 0), Outcome::Analysed);
    assert_eq!(
        program2.fingerprinter.host_state(a).unwrap().unwrap().peer,
        u32::from(b)
    );

    // Internal-hosts-only: transit is ignored; switch it on in a live program.
    let transit = frames::udp(ip(198, 51, 100, 1), ip(192, 0, 2, 1), &[]);
    assert_eq!(outcome_of(&mut program, &transit, 0), Outcome::Analysed);
    let mut config = research_config(NANOS_PER_SEC);
    config.flags |= FLAG_INTERNAL_HOSTS_ONLY | vpnfp_common::config::FLAG_TEST_CLOCK;
    program.fingerprinter.configure(&config).unwrap();
    assert_eq!(
        outcome_of(&mut program, &transit, 0),
        Outcome::IgnoredTransit
    );
}

#[test]
fn unconfigured_program_ignores_everything() {
    if !privileged("unconfigured_program_ignores_everything") {
        return;
    }
    let mut program = TestProgram::load(research_config(NANOS_PER_SEC));
    let mut zero = research_config(NANOS_PER_SEC);
    zero.magic = 0;
    program.fingerprinter.configure(&zero).unwrap();
    let frame = frames::udp(ip(192, 168, 1, 10), ip(198, 51, 100, 7), &[]);
    let before = program.counters();
    assert_eq!(program.run_at(&frame, 0).unwrap(), XDP_PASS);
    let after = program.counters();
    assert_eq!(
        after.outcome(Outcome::IgnoredUnconfigured),
        before.outcome(Outcome::IgnoredUnconfigured) + 1
    );
    assert!(program.fingerprinter.hosts().unwrap().is_empty());
}

/// Userspace stops reading: the ring buffer fills, records are lost and
/// counted, the program keeps passing every frame; reading resumes it.
#[test]
fn a_full_ring_buffer_loses_records_counts_them_and_never_blocks() {
    if !privileged("a_full_ring_buffer_loses_records_counts_them_and_never_blocks") {
        return;
    }
    // The smallest ring (one page): 85 records of 40 bytes plus headers.
    let mut program = TestProgram::load_with(
        research_config(1),
        vpnfp::xdp::Capacities {
            ring_bytes: 4096,
            ..vpnfp::xdp::Capacities::default()
        },
    );
    let frame = frames::udp(ip(192, 168, 1, 10), ip(198, 51, 100, 7), &[]);
    // A 1 ns window: every packet after the first closes one.
    for i in 0..300u64 {
        assert_eq!(program.run_at(&frame, 10 * i).unwrap(), XDP_PASS);
    }
    let c = program.counters();
    assert_eq!(c.windows_closed, 299);
    assert!(c.records_lost > 150, "lost {}", c.records_lost);
    let delivered = program.window_closes();
    assert_eq!(
        delivered.len() as u64 + c.records_lost,
        299,
        "every close delivered or counted"
    );
    // The first ones got through, in order.
    assert_eq!(delivered[0].window_end_ns, 10);
    // Reading made room: reporting resumes, nothing more is lost.
    for i in 300..310u64 {
        program.run_at(&frame, 10 * i).unwrap();
    }
    assert_eq!(program.window_closes().len(), 10);
    assert_eq!(program.counters().records_lost, c.records_lost);
}
