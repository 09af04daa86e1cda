//! Hostile input, briefly (`cargo xtask fuzz` runs it long): no crash, every
//! frame counted once, in userspace and in the XDP program alike.

use vpnfp::{capture::LinkType, engine::Engine};
use vpnfp_common::{InternalRanges, KernelConfig, NANOS_PER_SEC};
use vpnfp_tests::{
    fuzz,
    harness::{TestProgram, XDP_PASS},
    privileged,
    script::Rng,
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

/// 100,000 random and mutated frames through the XDP program: always
/// XDP_PASS, the counters add up, and they equal the userspace engine's on
/// the same frames (so do the window-close records).
#[test]
fn xdp_program_survives_hostile_frames_and_agrees_with_userspace() {
    if !privileged("xdp_program_survives_hostile_frames_and_agrees_with_userspace") {
        return;
    }
    let config = KernelConfig::new(NANOS_PER_SEC / 1000, InternalRanges::research());
    let mut program = TestProgram::load(config);
    let mut engine = Engine::new(config);
    let mut rng = Rng(0xbad_f00d);
    let (mut refused, mut expected) = (0, Vec::new());
    for i in 0..100_000u64 {
        let frame = fuzz::frame(&mut rng);
        let t = i * 10_000;
        match program.run_at(&frame, t) {
            Ok(verdict) => assert_eq!(verdict, XDP_PASS, "{frame:02x?}"),
            // Under 14 bytes the kernel does not run XDP at all.
            Err(e) => {
                assert!(frame.len() < 14, "{e}: {frame:02x?}");
                refused += 1;
                continue;
            }
        }
        expected.extend(engine.frame(LinkType::Ethernet.parse(&frame), t));
    }
    let c = program.counters();
    assert_eq!(c.seen + refused, 100_000);
    assert_eq!(c.seen, c.analysed() + c.ignored() + c.malformed());
    assert!(
        c.malformed() > 1_000 && c.analysed() > 1_000 && c.ignored() > 1_000,
        "{c:?}"
    );
    let mut user = *engine.counters();
    user.flows_created = c.flows_created;
    assert_eq!(c, user);
    assert_eq!(program.window_closes(), expected);
}
