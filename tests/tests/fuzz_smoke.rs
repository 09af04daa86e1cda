//! Hostile input, briefly (`cargo xtask fuzz` runs it long): no crash, every
//! frame counted once, in userspace and in the kernel programs alike; and
//! the shared parser held to an independent one (etherparse).

use vpnfp_common::{InternalRanges, KernelConfig, NANOS_PER_SEC, record::SAMPLE_MAX};
use vpnfp_tests::{
    fuzz,
    harness::{Hook, TC_ACT_OK, TestProgram, XDP_PASS},
    parity::{through_engine, through_kernel},
    privileged,
    script::{Rng, Scripted},
};

#[test]
fn userspace_parser_engine_and_readers_survive_hostile_input() {
    for seed in [1, 2, 3] {
        let report = fuzz::run(seed, 100_000);
        assert_eq!(report.frames, 100_000);
        assert!(
            report.captures > 300 && report.windows_closed > 0,
            "{report:?}"
        );
    }
}

/// 1,000,000 random and mutated frames: wherever etherparse reads IP and
/// TCP or UDP, vpnfp's parser reads the same addresses, protocol and ports.
#[test]
fn the_shared_parser_agrees_with_etherparse_on_a_million_frames() {
    let d = fuzz::differential(0x0e7e_4ba5, 1_000_000);
    assert_eq!(d.frames, 1_000_000);
    assert!(d.compared > 200_000, "{d:?}");
}

/// 100,000 random and mutated frames through both kernel programs: always
/// XDP_PASS / TC_ACT_OK, the counters add up, and everything equals the
/// userspace engine's on the same frames.
#[test]
fn kernel_programs_survive_hostile_frames_and_agree_with_userspace() {
    if !privileged("kernel_programs_survive_hostile_frames_and_agree_with_userspace") {
        return;
    }
    let mut config = KernelConfig::new(NANOS_PER_SEC / 1000, InternalRanges::research());
    config.inspect_packets = 2;
    // Frames on XDP with external sources are spoofed, alike on both sides.
    config.flags |= vpnfp_common::config::FLAG_LAN_PORT;
    config.sample_bytes = SAMPLE_MAX as u32;
    let mut program = TestProgram::load(config);
    // A second instance tells which frames the kernel refuses to run TC on
    // (an skb test run wants a plausible IPv6 header behind an IPv6
    // ethertype): those go through XDP, which takes them.
    let mut probe = TestProgram::load(config);
    let mut rng = Rng(0xbad_f00d);
    let mut script = Vec::new();
    let mut refused = 0;
    for i in 0..100_000u64 {
        let frame = fuzz::frame(&mut rng);
        let mut hook = if i % 3 == 0 {
            Hook::Egress
        } else {
            Hook::Ingress
        };
        if frame.len() < 14 {
            // Under 14 bytes the kernel runs neither program at all.
            assert!(program.run(hook, &frame, 0).is_err());
            refused += 1;
            continue;
        }
        if hook == Hook::Egress && probe.run(hook, &frame, 0).is_err() {
            hook = Hook::Ingress;
        }
        script.push(Scripted {
            ts_ns: i * 10_000,
            frame,
            hook,
        });
    }
    for s in &script[..1000] {
        let verdict = program.run(s.hook, &s.frame, s.ts_ns).unwrap_or_else(|e| {
            panic!("{e}: {:?} {} bytes {:02x?}", s.hook, s.frame.len(), s.frame)
        });
        let pass = if s.hook == Hook::Ingress {
            XDP_PASS
        } else {
            TC_ACT_OK
        };
        assert_eq!(verdict, pass, "{:02x?}", s.frame);
    }
    let mut program = TestProgram::load(config);
    let kernel = through_kernel(&mut program, &script);
    let (user, _) = through_engine(config, &script);
    let c = kernel.counters;
    assert_eq!(c.seen + refused, 100_000);
    assert_eq!(c.seen, c.analysed() + c.ignored() + c.malformed());
    assert!(
        c.malformed() > 1_000 && c.analysed() > 1_000 && c.ignored() > 1_000,
        "{c:?}"
    );
    let mut u = user.counters;
    u.flows_created = c.flows_created;
    u.seen_egress = c.seen_egress;
    assert_eq!(c, u);
    assert_eq!(kernel.windows, user.windows);
    assert_eq!(kernel.flows, user.flows);
    assert_eq!(kernel.samples, user.samples);
}
