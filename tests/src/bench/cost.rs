//! Per-packet cost of the XDP program under BPF_PROG_TEST_RUN, against an
//! empty XDP_PASS program of the same object on the same frames.

use std::net::Ipv4Addr;

use aya::programs::{TestRun, TestRunOptions};
use vpnfp::source::kernel::{Capacities, KernelFingerprinter};
use vpnfp_common::{InternalRanges, KernelConfig, NANOS_PER_SEC, maps};

use super::{Figure, Size, median};
use crate::frames::{self, ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP};

/// Nanoseconds per packet of `program`: `calls` test_run calls cycling over
/// `frames`, each frame run `repeat` times in the kernel; the mean over all
/// packets.
fn ns_per_packet(
    fp: &mut KernelFingerprinter,
    program: Option<&'static str>,
    frames: &[Vec<u8>],
    calls: usize,
    repeat: u32,
) -> f64 {
    let program = match program {
        None => fp.program_mut(),
        Some(name) => fp.other_program_mut(name),
    }
    .expect("program");
    let mut total_ns = 0.0;
    for frame in frames.iter().cycle().take(calls) {
        let result = program
            .test_run(TestRunOptions {
                data_in: Some(frame),
                repeat,
                ..TestRunOptions::default()
            })
            .expect("test_run");
        // The kernel reports the mean time of one run.
        total_ns += result.duration.as_nanos() as f64 * repeat as f64;
    }
    total_ns / (calls as f64 * repeat as f64)
}

struct Case {
    name: &'static str,
    frames: Vec<Vec<u8>>,
    calls: usize,
    repeat: u32,
    target_ns: f64,
}

impl Case {
    fn repeated(name: &'static str, frame: Vec<u8>, packets: u32, target_ns: f64) -> Self {
        Self {
            name,
            frames: vec![frame],
            calls: 1,
            repeat: packets,
            target_ns,
        }
    }
}

pub fn figures(size: Size) -> Vec<Figure> {
    let (packets, runs, hosts) = match size {
        Size::Full => (1_000_000u32, 5, 10_000u32),
        Size::Smoke => (20_000, 3, 200),
    };
    let host = Ipv4Addr::new(192, 168, 1, 10);
    let peer = Ipv4Addr::new(198, 51, 100, 7);
    let many: Vec<Vec<u8>> = (0..hosts)
        .map(|i| {
            frames::udp(
                Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + i),
                peer,
                &[],
            )
        })
        .collect();
    let cases = [
        Case::repeated(
            "IPv4 UDP, one host",
            frames::udp(host, peer, &[]),
            packets,
            25.0,
        ),
        Case {
            name: "IPv4 UDP, hosts round-robin",
            // One packet per call so consecutive packets come from different
            // hosts (test_run repeats one frame); as many packets as the
            // other cases.
            frames: many,
            calls: packets as usize,
            repeat: 1,
            target_ns: 25.0,
        },
        Case::repeated(
            "IPv4 UDP, one VLAN tag",
            frames::udp(host, peer, &[ETH_P_8021Q]),
            packets,
            25.0,
        ),
        Case::repeated(
            "IPv4 UDP, QinQ",
            frames::udp(host, peer, &[ETH_P_8021AD, ETH_P_8021Q]),
            packets,
            25.0,
        ),
        Case::repeated("non-IP (ARP)", frames::other(ETH_P_ARP), packets, 5.0),
    ];

    let mut fp = KernelFingerprinter::load(Capacities::default(), 0).expect("load the XDP program");
    fp.configure(&KernelConfig::new(
        1200 * NANOS_PER_SEC,
        InternalRanges::research(),
    ))
    .expect("configure");
    let mut out = Vec::new();
    let mut no_flows = KernelConfig::new(1200 * NANOS_PER_SEC, InternalRanges::research());
    no_flows.flags |= vpnfp_common::config::FLAG_NO_FLOWS;
    for (case, flows) in cases
        .iter()
        .map(|c| (c, true))
        .chain(std::iter::once((&cases[0], false)))
    {
        if !flows {
            fp.configure(&no_flows).expect("configure");
        }
        let mut vpnfp = Vec::new();
        let mut baseline = Vec::new();
        for _ in 0..runs {
            // Interleaved so drift hits both alike.
            baseline.push(ns_per_packet(
                &mut fp,
                Some(maps::BENCH_BASELINE),
                &case.frames,
                case.calls,
                case.repeat,
            ));
            vpnfp.push(ns_per_packet(
                &mut fp,
                None,
                &case.frames,
                case.calls,
                case.repeat,
            ));
        }
        let (v, b) = (median(vpnfp), median(baseline));
        let added = v - b;
        let conditions = format!(
            "{} packets x {runs} runs, median; {} distinct frame(s), repeat {} per test_run call",
            case.calls as u64 * case.repeat as u64,
            case.frames.len(),
            case.repeat
        );
        let name = if flows {
            case.name.to_string()
        } else {
            format!("{}, --no-flow-counters", case.name)
        };
        out.push(
            Figure::new(
                format!("XDP cost: {name}"),
                v,
                "ns/packet",
                conditions.clone(),
            )
            .against(b),
        );
        out.push(
            Figure::new(
                format!("XDP added cost: {name}"),
                added,
                "ns/packet",
                conditions,
            )
            .target(
                format!("<= {} ns added", case.target_ns),
                added <= case.target_ns,
            ),
        );
    }
    out
}
