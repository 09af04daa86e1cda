//! The kernel's flow table at scale: memory per flow, and what ending flows
//! costs userspace (a sweep over the whole table for idle flows, and taking
//! every flow out at exit), at 1,000,000 flows.

use std::{net::Ipv4Addr, time::Instant};

use aya::programs::{TestRun, TestRunOptions};
use vpnfp::{
    clock::KernelClock,
    source::kernel::{Capacities, flows::FlowKeeper},
};
use vpnfp_common::maps;

use super::{Figure, Size, loaded};
use vpnfp_tests::frames;

pub fn figures(size: Size) -> Vec<Figure> {
    let n: u32 = match size {
        Size::Full => 1_000_000,
        Size::Smoke => 20_000,
    };
    let mut fp = loaded(Capacities {
        max_flows: n,
        ..Capacities::default()
    });
    let flow_bytes = fp.map_memory(maps::FLOWS4).expect("flows memlock") as f64;
    // n flows: 16 ports from each of n/16 hosts.
    let peer = Ipv4Addr::new(198, 51, 100, 7);
    let start = Instant::now();
    {
        let program = fp.program_mut().expect("program");
        for i in 0..n {
            let host = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + i / 16);
            let frame = frames::udp_with(host, peer, 10_000 + (i % 16) as u16, 443, &[0; 18]);
            program
                .test_run(TestRunOptions {
                    data_in: Some(&frame),
                    ..TestRunOptions::default()
                })
                .expect("test_run");
        }
    }
    let fill = start.elapsed().as_secs_f64();
    let created = fp.counters().expect("counters").flows_created;
    let clock = KernelClock::now().expect("clock");
    let mut keeper = FlowKeeper::new(
        fp.take_flows().expect("flow maps"),
        fp.flow_flusher().expect("flow flusher"),
        u32::MAX,
        u64::MAX / 4,
        clock,
    );
    let now = KernelClock::kernel_now_ns().expect("clock");
    let start = Instant::now();
    keeper.sweep(now, &mut |_| {});
    let sweep = start.elapsed().as_secs_f64();
    let walked = keeper.tracked;
    let mut taken = 0u64;
    let start = Instant::now();
    keeper.drain(&mut |_| taken += 1);
    let drain = start.elapsed().as_secs_f64();
    let cond = format!("{created} IPv4 flows created by test_run in {fill:.1} s");
    vec![
        Figure::new(
            "kernel bytes per flow (IPv4)",
            flow_bytes / n as f64,
            "bytes",
            format!("hash map of {n} entries, memlock from fdinfo"),
        ),
        Figure::new(
            format!("flow sweep over {walked} flows"),
            sweep,
            "s",
            format!("{cond}; one walk of the map looking for idle and closed flows (none ended)"),
        ),
        Figure::new(
            format!("taking {taken} flows out at exit"),
            drain,
            "s",
            format!("{cond}; one lookup-and-delete each"),
        )
        .target("every flow taken out", taken == created),
    ]
}
