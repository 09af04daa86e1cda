//! The real kernel programs through BPF_PROG_TEST_RUN: parsing of both
//! families, classification, counters, window closes, flows and samples,
//! held to the userspace engine on the same frames.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
};

use vpnfp_common::{
    InternalRanges, Ipv4Range, KernelConfig, NANOS_PER_SEC, Outcome, WindowClose,
    config::FLAG_INTERNAL_HOSTS_ONLY, record::SAMPLE_MAX,
};
use vpnfp_tests::{
    fixtures::{Expected, parse_vectors},
    frames::{self, ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IPV6, Flags},
    harness::{Hook, TC_ACT_OK, TestProgram, XDP_PASS},
    parity::{through_engine, through_kernel},
    privileged,
    script::mixed_traffic,
};

const MS: u64 = 1_000_000;

fn research_config(window_ns: u64) -> KernelConfig {
    KernelConfig::new(window_ns, InternalRanges::research())
}

/// The settings `vpnfp run` uses by default, with small windows.
fn full_config(window_ns: u64) -> KernelConfig {
    let mut config = research_config(window_ns);
    config.concentration_window_ns = 2 * window_ns;
    config.concentration_min_packets = 20;
    config.inspect_packets = 4;
    config.sample_bytes = SAMPLE_MAX as u32;
    config
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
                assert_eq!(outcome, Outcome::IgnoredNotIp, "frame {}", v.frame_no)
            }
            Expected::Analysed { host, peer } => {
                assert_eq!(outcome, Outcome::Analysed, "frame {}", v.frame_no);
                let hosts = program.fingerprinter.hosts4().unwrap();
                assert_eq!(hosts.len(), 1, "frame {}", v.frame_no);
                assert_eq!(hosts[0].0, host, "frame {}: host", v.frame_no);
                assert_eq!(
                    Ipv4Addr::from(hosts[0].1.research.peer),
                    peer,
                    "frame {}: peer",
                    v.frame_no
                );
                assert_eq!(hosts[0].1.research.count_this, 1);
            }
        }
        if matches!(v.expected, Expected::NotIpv4) {
            assert!(program.fingerprinter.hosts4().unwrap().is_empty());
            assert!(program.flows().is_empty());
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
    // IPv6 cut anywhere in its 40-byte header.
    let v6 = frames::udp6(
        "fd00::1".parse().unwrap(),
        "2001:db8::1".parse().unwrap(),
        1,
        2,
        b"x",
        None,
    );
    for len in 14..54 {
        assert_eq!(
            outcome_of(&mut program, &v6[..len], 0),
            Outcome::MalformedTruncated,
            "IPv6 cut at {len}"
        );
        *expected.entry(Outcome::MalformedTruncated).or_default() += 1;
    }
    // IHL below 5, and version not 4 under the IPv4 ethertype; an IPv6
    // ethertype with version 0 (a zeroed frame).
    for first_byte in [0x40, 0x41, 0x42, 0x43, 0x44, 0x65, 0x05] {
        let mut f = frames::udp(src, dst, &[]);
        f[14] = first_byte;
        assert_eq!(
            outcome_of(&mut program, &f, 0),
            Outcome::MalformedIpHeader,
            "first byte {first_byte:#x}"
        );
        *expected.entry(Outcome::MalformedIpHeader).or_default() += 1;
    }
    assert_eq!(
        outcome_of(&mut program, &frames::other(ETH_P_IPV6), 0),
        Outcome::MalformedIpHeader
    );
    *expected.entry(Outcome::MalformedIpHeader).or_default() += 1;
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
    // Not IP: ARP, an 802.3 length field, IPX behind a VLAN tag.
    let mut ipx = frames::ethernet(&[ETH_P_8021Q], 0x8137);
    ipx.resize(60, 0);
    for f in [frames::other(ETH_P_ARP), frames::other(0x0040), ipx] {
        assert_eq!(outcome_of(&mut program, &f, 0), Outcome::IgnoredNotIp);
        *expected.entry(Outcome::IgnoredNotIp).or_default() += 1;
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
        program.fingerprinter.hosts4().unwrap().is_empty(),
        "no host state"
    );
    assert!(program.flows().is_empty(), "no flow state");
    assert!(program.window_closes().is_empty());

    // Three tags and a frame cut right after the IPv4 header are fine (the
    // research reads 20 bytes; the flow then has no ports).
    let three = frames::udp(src, dst, &[ETH_P_8021AD, ETH_P_8021Q, ETH_P_8021Q]);
    assert_eq!(outcome_of(&mut program, &three, 0), Outcome::Analysed);
    assert_eq!(
        outcome_of(&mut program, &frames::udp(src, dst, &[])[..34], 0),
        Outcome::Analysed
    );
    let flows = program.flows();
    assert_eq!(flows.len(), 2, "{flows:?}");
    assert!(
        flows
            .iter()
            .any(|f| f.id.host_port == 0 && f.id.peer_port == 0)
    );
}

/// The research's decisions, concentration, flows, samples and counters:
/// the kernel programs and the userspace engine, frame for frame.
#[test]
fn scripted_sequence_gives_the_engines_records_exactly() {
    if !privileged("scripted_sequence_gives_the_engines_records_exactly") {
        return;
    }
    let mut config = full_config(300 * MS);
    config.flags |= vpnfp_common::config::FLAG_LAN_PORT;
    let script = mixed_traffic(0x5eed_1234_abcd_ef01, 8_000);
    let mut program = TestProgram::load(config);
    let kernel = through_kernel(&mut program, &script);
    let (engine_run, engine) = through_engine(config, &script);
    assert!(
        kernel.windows.len() >= 100,
        "the script closes windows ({})",
        kernel.windows.len()
    );
    assert!(
        kernel.windows.iter().any(|w| w.host.is_ipv6()),
        "IPv6 hosts close windows too"
    );
    assert_eq!(kernel.windows, engine_run.windows);
    assert!(!kernel.concentration.is_empty());
    assert_eq!(kernel.concentration, engine_run.concentration);
    assert!(kernel.flows.len() > 20, "{}", kernel.flows.len());
    assert_eq!(kernel.flows, engine_run.flows);
    assert!(kernel.samples.len() > 50, "{}", kernel.samples.len());
    assert_eq!(kernel.samples.len(), engine_run.samples.len());
    for (i, (k, e)) in kernel.samples.iter().zip(&engine_run.samples).enumerate() {
        assert_eq!(k, e, "sample {i}");
    }
    let hosts = program.fingerprinter.hosts4().unwrap();
    assert_eq!(hosts.len(), engine.hosts4().len());
    for (host, state) in hosts {
        assert_eq!(
            Some(&state),
            engine.hosts4().get(&u32::from(host)),
            "{host}"
        );
    }
    let hosts6 = program.fingerprinter.hosts6().unwrap();
    assert_eq!(hosts6.len(), engine.hosts6().len());
    assert!(!hosts6.is_empty());
    let c = kernel.counters;
    let mut e = engine_run.counters;
    // The engine re-creates a flow that ended mid-script (FIN, then reused);
    // the kernel's flow lives on until userspace ends it.
    e.flows_created = c.flows_created;
    e.seen_egress = c.seen_egress;
    assert_eq!(c, e, "kernel and userspace count every outcome alike");
    assert_eq!(c.seen, script.len() as u64);
    assert_eq!(c.seen, c.analysed() + c.ignored() + c.malformed());
    assert!(c.malformed() > 0 && c.outcome(Outcome::IgnoredNotIp) > 0);
    assert!(c.outcome(Outcome::IgnoredSpoofed) > 0);
    assert!(c.seen_egress > 0 && c.ipv6 > 0 && c.fragments > 0);
}

/// A frame on the LAN port (XDP) with an external source was forged by a
/// LAN device: counted as spoofed, and it reaches neither the research,
/// nor a flow, nor identification; the same frame leaving by TC egress (a
/// real reply) is evidence as before. Without the LAN-port flag (a mirror
/// port) it is a reply like any other.
#[test]
fn a_forged_reply_on_the_lan_port_is_counted_and_nothing_else() {
    if !privileged("a_forged_reply_on_the_lan_port_is_counted_and_nothing_else") {
        return;
    }
    let (victim, server) = (ip(192, 168, 1, 10), ip(198, 51, 100, 7));
    // A WireGuard handshake response, as a forger would send it.
    let mut response = vec![2u8, 0, 0, 0];
    response.resize(92, 0x5a);
    let forged = frames::udp_with(server, victim, 51820, 40000, &response);
    let mut config = full_config(NANOS_PER_SEC);
    config.flags |= vpnfp_common::config::FLAG_LAN_PORT;
    let mut program = TestProgram::load(config);
    for i in 0..3 {
        assert_eq!(program.run(Hook::Ingress, &forged, i).unwrap(), XDP_PASS);
    }
    let c = program.counters();
    assert_eq!(c.outcome(Outcome::IgnoredSpoofed), 3);
    assert_eq!(c.analysed(), 0);
    assert!(program.flows().is_empty(), "a forged frame makes no flow");
    let sent = program.sent();
    assert!(sent.samples.is_empty() && sent.windows.is_empty());
    assert!(program.fingerprinter.hosts4().unwrap().is_empty());

    assert_eq!(program.run(Hook::Egress, &forged, 10).unwrap(), TC_ACT_OK);
    assert_eq!(
        program.counters().analysed(),
        1,
        "a reply from the WAN side"
    );
    assert_eq!(program.sent().samples.len(), 1);

    config.flags &= !vpnfp_common::config::FLAG_LAN_PORT;
    let mut mirror = TestProgram::load(config);
    mirror.run(Hook::Ingress, &forged, 0).unwrap();
    assert_eq!(mirror.counters().outcome(Outcome::IgnoredSpoofed), 0);
    assert_eq!(mirror.counters().analysed(), 1);
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
    let (h, v) = (IpAddr::V4(host), IpAddr::V4(vpn));
    assert_eq!(
        closes,
        vec![
            WindowClose {
                host: h,
                peer: v,
                window_start_ns: 0,
                window_end_ns: 5_200 * MS,
                count_this: 14,
                count_prev: 0
            },
            WindowClose {
                host: h,
                peer: v,
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
    let state = program.fingerprinter.host4(host).unwrap().unwrap().research;
    assert_eq!(
        (
            Ipv4Addr::from(state.peer),
            state.window_start_ns,
            state.count_this
        ),
        (ip(198, 51, 100, 99), 3_000 * MS, 1)
    );
    program.run_at(&frame, 3_200 * MS).unwrap();
    let state = program.fingerprinter.host4(host).unwrap().unwrap().research;
    assert_eq!(
        (
            Ipv4Addr::from(state.peer),
            state.window_start_ns,
            state.count_this
        ),
        (vpn, 3_200 * MS, 1)
    );
}

/// A host's packets out arrive on XDP (ingress), its replies leave on TC
/// (egress): both count in the one window, as the research's FORWARD queue
/// counts them.
#[test]
fn ingress_and_egress_count_in_one_window_and_one_flow() {
    if !privileged("ingress_and_egress_count_in_one_window_and_one_flow") {
        return;
    }
    let mut program = TestProgram::load(full_config(NANOS_PER_SEC));
    let host = ip(192, 168, 1, 10);
    let peer = ip(198, 51, 100, 7);
    let out = frames::udp(host, peer, &[]);
    let mut back = frames::udp(peer, host, &[ETH_P_8021Q]);
    // The reply's ports are the request's swapped.
    back[18 + 20..18 + 24].copy_from_slice(&[0, 9, 0x10, 0x92]);
    for i in 0..100u64 {
        assert_eq!(
            program.run(Hook::Ingress, &out, i * 5 * MS).unwrap(),
            XDP_PASS
        );
        assert_eq!(
            program.run(Hook::Egress, &back, i * 5 * MS + MS).unwrap(),
            TC_ACT_OK
        );
    }
    program.run(Hook::Ingress, &out, 2 * NANOS_PER_SEC).unwrap();
    let closes = program.window_closes();
    assert_eq!(closes.len(), 1);
    assert_eq!(
        closes[0].count_this, 201,
        "both directions, and the closing packet"
    );
    let flows = program.flows();
    assert_eq!(flows.len(), 1);
    let f = &flows[0];
    assert_eq!((f.id.host, f.id.peer), (IpAddr::V4(host), IpAddr::V4(peer)));
    assert_eq!((f.id.host_port, f.id.peer_port, f.id.proto), (4242, 9, 17));
    // IPv4 total length: 20 + 8 + 18 = 46 bytes each.
    let v = f.value;
    assert_eq!(
        (v.packets_up, v.bytes_up, v.packets_down, v.bytes_down),
        (101, 101 * 46, 100, 100 * 46)
    );
    assert_eq!((v.first_seen_ns, v.last_seen_ns), (0, 2 * NANOS_PER_SEC));
    let c = program.counters();
    assert_eq!(
        (c.hosts_created, c.flows_created, c.seen_egress),
        (1, 1, 100)
    );
}

#[test]
fn ipv6_hosts_follow_the_research_and_flows_count_ip_bytes() {
    if !privileged("ipv6_hosts_follow_the_research_and_flows_count_ip_bytes") {
        return;
    }
    let mut program = TestProgram::load(full_config(2 * NANOS_PER_SEC));
    let host: Ipv6Addr = "fd00::10".parse().unwrap();
    let peer: Ipv6Addr = "2001:db8::7".parse().unwrap();
    let out = frames::udp6_with_ext(
        host,
        peer,
        &[frames::HOP_BY_HOP, frames::DEST_OPTS],
        5000,
        443,
        &[1u8; 100],
    );
    let back = frames::udp6(peer, host, 443, 5000, &[2u8; 200], Some(3));
    for i in 0..30u64 {
        program.run(Hook::Ingress, &out, i * 40 * MS).unwrap();
        program.run(Hook::Egress, &back, i * 40 * MS + MS).unwrap();
    }
    program.run(Hook::Ingress, &out, 2_300 * MS).unwrap();
    let closes = program.window_closes();
    assert_eq!(closes.len(), 1);
    assert_eq!(
        (closes[0].host, closes[0].peer, closes[0].count_this),
        (IpAddr::V6(host), IpAddr::V6(peer), 61)
    );
    let flows = program.flows();
    assert_eq!(flows.len(), 1, "{flows:?}");
    let v = flows[0].value;
    // IP bytes: 40 + payload length (two 8-byte extension headers, UDP 8).
    assert_eq!(v.bytes_up, 31 * (40 + 16 + 8 + 100));
    assert_eq!(v.bytes_down, 30 * (40 + 8 + 200));
    assert_eq!((flows[0].id.host_port, flows[0].id.peer_port), (5000, 443));
    assert_eq!(program.counters().ipv6, 61);
}

#[test]
fn flows_end_on_fin_and_rst_deltas_sum_to_the_totals_and_samples_stop_after_k() {
    if !privileged("flows_end_on_fin_and_rst_deltas_sum_to_the_totals_and_samples_stop_after_k") {
        return;
    }
    let mut config = full_config(NANOS_PER_SEC);
    config.flow_active_ns = 100 * MS;
    let mut program = TestProgram::load(config);
    let host = IpAddr::V4(ip(192, 168, 1, 10));
    let peer = IpAddr::V4(ip(198, 51, 100, 7));
    let ack = Flags {
        ack: true,
        ..Flags::default()
    };
    let mut t = 0;
    for i in 0..50u64 {
        let payload = vec![i as u8; 10 + i as usize];
        program
            .run(
                Hook::Ingress,
                &frames::tcp(host, peer, 40000, 443, ack, &payload),
                t,
            )
            .unwrap();
        program
            .run(
                Hook::Egress,
                &frames::tcp(peer, host, 443, 40000, ack, b""),
                t + MS,
            )
            .unwrap();
        t += 10 * MS;
    }
    let fin = Flags {
        fin: true,
        ack: true,
        ..Flags::default()
    };
    program
        .run(
            Hook::Ingress,
            &frames::tcp(host, peer, 40000, 443, fin, b""),
            t,
        )
        .unwrap();
    program
        .run(
            Hook::Egress,
            &frames::tcp(peer, host, 443, 40000, fin, b""),
            t + MS,
        )
        .unwrap();
    let sent = program.sent();
    assert_eq!(sent.closing.len(), 1, "one FLOW_CLOSING notice per flow");
    assert!(sent.deltas.len() >= 4, "{} deltas", sent.deltas.len());
    let remaining = program.flows();
    assert_eq!(remaining.len(), 1);
    let total_up: u64 =
        sent.deltas.iter().map(|d| d.value.packets_up).sum::<u64>() + remaining[0].value.packets_up;
    let total_down: u64 = sent
        .deltas
        .iter()
        .map(|d| d.value.packets_down)
        .sum::<u64>()
        + remaining[0].value.packets_down;
    assert_eq!(
        (total_up, total_down),
        (51, 51),
        "delta records sum to the totals"
    );
    // Only the first K = 4 payload-carrying packets were handed over.
    assert_eq!(sent.samples.len(), 4);
    assert_eq!(sent.samples[2].payload(), &[2u8; 12][..]);
    assert_eq!(sent.samples[2].payload_len, 12);
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
    program.reconfigure(KernelConfig::new(NANOS_PER_SEC, ten));
    assert_eq!(outcome_of(&mut program, &frame, 0), Outcome::Analysed);
    assert_eq!(
        program
            .fingerprinter
            .host4(a)
            .unwrap()
            .unwrap()
            .research
            .peer,
        u32::from(b)
    );

    // Internal-hosts-only: transit is ignored; switch it on in a live program.
    let transit = frames::udp(ip(198, 51, 100, 1), ip(192, 0, 2, 1), &[]);
    program.reconfigure(research_config(NANOS_PER_SEC));
    assert_eq!(outcome_of(&mut program, &transit, 0), Outcome::Analysed);
    let mut config = research_config(NANOS_PER_SEC);
    config.flags |= FLAG_INTERNAL_HOSTS_ONLY;
    program.reconfigure(config);
    assert_eq!(
        outcome_of(&mut program, &transit, 0),
        Outcome::IgnoredTransit
    );
}

/// "No peer yet" is explicit: with 0.0.0.0 made external, a first packet to
/// it starts a window at its own time instead of closing one begun at the
/// epoch.
#[test]
fn a_first_packet_to_0_0_0_0_starts_a_window_and_closes_none() {
    if !privileged("a_first_packet_to_0_0_0_0_starts_a_window_and_closes_none") {
        return;
    }
    let ten = InternalRanges::from_slice(&[Ipv4Range::new(u32::from(ip(10, 0, 0, 0)), 8)]).unwrap();
    let mut program = TestProgram::load(KernelConfig::new(NANOS_PER_SEC, ten));
    let frame = frames::udp(ip(10, 0, 0, 1), ip(0, 0, 0, 0), &[]);
    program.run_at(&frame, 50 * NANOS_PER_SEC).unwrap();
    assert!(program.window_closes().is_empty());
    let state = program
        .fingerprinter
        .host4(ip(10, 0, 0, 1))
        .unwrap()
        .unwrap()
        .research;
    assert_eq!(
        (state.window_start_ns, state.count_this),
        (50 * NANOS_PER_SEC, 1)
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
    assert_eq!(program.run(Hook::Egress, &frame, 0).unwrap(), TC_ACT_OK);
    let after = program.counters();
    assert_eq!(
        after.outcome(Outcome::IgnoredUnconfigured),
        before.outcome(Outcome::IgnoredUnconfigured) + 2
    );
    assert!(program.fingerprinter.hosts4().unwrap().is_empty());
    assert!(program.flows().is_empty());
}

/// Userspace stops reading: the ring buffer fills, records are lost and
/// counted, the program keeps passing every frame; reading resumes it.
#[test]
fn a_full_ring_buffer_loses_records_counts_them_and_never_blocks() {
    if !privileged("a_full_ring_buffer_loses_records_counts_them_and_never_blocks") {
        return;
    }
    // The smallest ring (one page): 46 records of 80 bytes plus headers.
    let mut program = TestProgram::load_with(
        research_config(1),
        vpnfp::source::kernel::Capacities {
            ring_bytes: 4096,
            ..vpnfp::source::kernel::Capacities::default()
        },
    );
    let frame = frames::udp(ip(192, 168, 1, 10), ip(198, 51, 100, 7), &[]);
    // A 1 ns window: every packet after the first closes one.
    for i in 0..300u64 {
        assert_eq!(program.run_at(&frame, 10 * i + 10).unwrap(), XDP_PASS);
    }
    let c = program.counters();
    assert_eq!(c.windows_closed, 299);
    assert!(c.records_lost > 200, "lost {}", c.records_lost);
    let delivered = program.window_closes();
    assert_eq!(
        delivered.len() as u64 + c.records_lost,
        299,
        "every close delivered or counted"
    );
    // The first ones got through, in order.
    assert_eq!(delivered[0].window_end_ns, 20);
    // Reading made room: reporting resumes, nothing more is lost.
    for i in 300..310u64 {
        program.run_at(&frame, 10 * i + 10).unwrap();
    }
    assert_eq!(program.window_closes().len(), 10);
    assert_eq!(program.counters().records_lost, c.records_lost);
}

/// Two CPUs run the same host's packets at the same time: every packet is
/// counted exactly once (the state's counts are atomic), equal to one CPU
/// running them all.
#[test]
fn two_cpus_on_one_host_count_exactly() {
    if !privileged("two_cpus_on_one_host_count_exactly") {
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert!(
        cpus >= 2,
        "this test needs two CPUs (the machine has {cpus})"
    );
    let config = research_config(10 * NANOS_PER_SEC);
    let host = ip(192, 168, 1, 10);
    let peer = ip(198, 51, 100, 7);
    let out = frames::udp(host, peer, &[]);
    let mut back = frames::udp(peer, host, &[]);
    back[14 + 20..14 + 24].copy_from_slice(&[0, 9, 0x10, 0x92]);
    const PER_THREAD: u32 = 200_000;
    for round in 0..3 {
        let mut program = TestProgram::load(config);
        program.run_at(&out, NANOS_PER_SEC).unwrap();
        // Both programs share the maps; each thread drives one, pinned to
        // its own CPU, PER_THREAD packets in one test run each.
        let xdp_fd = program.program_fd(Hook::Ingress);
        let tc_fd = program.program_fd(Hook::Egress);
        std::thread::scope(|s| {
            for (cpu, fd, frame) in [(0, &xdp_fd, &out), (1, &tc_fd, &back)] {
                s.spawn(move || {
                    vpnfp_tests::pin_to_cpu(cpu);
                    vpnfp_tests::test_run_repeat(fd, frame, PER_THREAD);
                });
            }
        });
        program.run_at(&out, 12 * NANOS_PER_SEC).unwrap();
        let closes = program.window_closes();
        assert_eq!(closes.len(), 1, "round {round}");
        assert_eq!(
            closes[0].count_this,
            2 * PER_THREAD as u64 + 2,
            "round {round}: every packet of both CPUs counted once"
        );
        let flows = program.flows();
        assert_eq!(
            (flows[0].value.packets_up, flows[0].value.packets_down),
            (PER_THREAD as u64 + 2, PER_THREAD as u64),
            "round {round}: flow counts exact too"
        );
    }
}

#[test]
fn steady_packets_wait_in_the_cpu_cache_and_every_read_sees_them() {
    if !privileged("steady_packets_wait_in_the_cpu_cache_and_every_read_sees_them") {
        return;
    }
    use std::os::fd::AsFd;
    use vpnfp::source::kernel::sys;
    use vpnfp_common::FlowKey;
    let own = sys::affinity().expect("affinity");
    // One CPU, so the packets after the first take its cache.
    vpnfp_tests::pin_to_cpu(0);
    let mut program = TestProgram::load(research_config(1200 * NANOS_PER_SEC));
    let (host, peer) = (ip(192, 168, 1, 10), ip(198, 51, 100, 7));
    let out = frames::udp(host, peer, &[]);
    program.run_at(&out, NANOS_PER_SEC).unwrap();
    let xdp = program.program_fd(Hook::Ingress);
    sys::test_run(xdp.as_fd(), &out, 9).expect("9 more packets");
    let flusher = program.fingerprinter.flow_flusher().expect("flusher");
    let maps = program.fingerprinter.take_flows().expect("flow maps");
    let key = FlowKey::<u32> {
        host: u32::from(host),
        peer: u32::from(peer),
        host_port: 4242,
        peer_port: 9,
        proto: 17,
        _pad: [0; 3],
    };
    let in_table = |maps: &vpnfp::source::kernel::flows::FlowMaps| {
        maps.v4.map.get(&key, 0).map(|v| v.packets_up).unwrap_or(0)
    };
    assert_eq!(
        in_table(&maps),
        1,
        "the first packet took the table; the next 9 wait in the CPU's cache"
    );
    flusher.flush().expect("flush");
    assert_eq!(in_table(&maps), 10, "a flush puts them in the table");
    // Counts waiting for a flow userspace ends meanwhile start its next
    // flow: none is lost.
    sys::test_run(xdp.as_fd(), &out, 5).expect("5 more packets");
    let ended =
        sys::lookup_and_delete::<FlowKey<u32>, vpnfp_common::FlowValue>(maps.v4.fd.as_fd(), &key)
            .expect("lookup and delete")
            .expect("the flow");
    flusher.flush().expect("flush");
    assert_eq!(
        ended.packets_up + in_table(&maps),
        15,
        "{} ended with the flow, the rest in its next",
        ended.packets_up
    );
    assert!(in_table(&maps) > 0, "some waited in the cache");
    sys::set_affinity(&own).expect("affinity back");
}
