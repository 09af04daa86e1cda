//! Bytes per tracked host and flow, in the kernel maps (their memlock as the
//! kernel reports it) and in userspace, and LRU evictions at twice capacity.

use std::net::Ipv4Addr;

use aya::programs::{TestRun, TestRunOptions};
use vpnfp::{
    engine::{Engine, EngineSettings},
    source::{
        capture::LinkType,
        kernel::{Capacities, KernelFingerprinter},
    },
};
use vpnfp_common::{KernelConfig, config::Arrival, maps};

use super::{Figure, Size};
use vpnfp_tests::frames;

const MIB: f64 = 1024.0 * 1024.0;

fn config() -> KernelConfig {
    super::research_config()
}

pub fn figures(size: Size) -> Vec<Figure> {
    let (hosts, evict_capacity) = match size {
        Size::Full => (1_000_000u32, 50_000u32),
        Size::Smoke => (20_000, 2_000),
    };
    let mut out = Vec::new();

    // Kernel: maps sized for `hosts` hosts and as many flows (preallocated,
    // so full size from the start).
    let fp = KernelFingerprinter::load(
        Capacities {
            max_hosts: hosts,
            max_flows: hosts,
            ..Capacities::default()
        },
        0,
    )
    .expect("load");
    let host_bytes = fp.map_memory(maps::HOSTS4).expect("hosts memlock") as f64;
    let flow_bytes = fp.map_memory(maps::FLOWS4).expect("flows memlock") as f64;
    let host6_bytes = fp.map_memory(maps::HOSTS6).expect("hosts memlock") as f64;
    let flow6_bytes = fp.map_memory(maps::FLOWS6).expect("flows memlock") as f64;
    drop(fp);
    let cond = format!("LRU hash maps of {hosts} entries, memlock from fdinfo");
    out.push(Figure::new(
        "kernel bytes per tracked host",
        host_bytes / hosts as f64,
        "bytes",
        cond.clone(),
    ));
    out.push(Figure::new(
        "kernel bytes per tracked flow",
        flow_bytes / hosts as f64,
        "bytes",
        cond,
    ));

    // Userspace (NFQUEUE and replay keep host state in a hash map; XDP mode
    // keeps none in userspace).
    let mut engine_config = config();
    engine_config.flags |= vpnfp_common::config::FLAG_NO_FLOWS;
    let mut engine = Engine::new(EngineSettings {
        max_hosts: hosts as usize,
        ..EngineSettings::new(engine_config)
    });
    let peer = Ipv4Addr::new(198, 51, 100, 7);
    for i in 0..hosts {
        let frame = frames::udp(
            Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + i),
            peer,
            &[],
        );
        engine.frame(
            &frame,
            LinkType::Ethernet.parse(&frame),
            Arrival::Elsewhere,
            i as u64,
            &mut |_| {},
        );
    }
    let table = engine.hosts4();
    // hashbrown: one (key, value) slot and one control byte per bucket.
    let user_bytes = table.allocated_bytes() as f64;
    out.push(Figure::new(
        "userspace bytes per tracked host (NFQUEUE, replay)",
        user_bytes / table.len() as f64,
        "bytes",
        format!(
            "{} hosts in the engine's host table of capacity {hosts} ({} evicted)",
            table.len(),
            table.evicted()
        ),
    ));

    let scale = 1_000_000.0 / hosts as f64;
    let xdp_total = host_bytes * scale / MIB;
    out.push(
        Figure::new(
            "XDP mode memory at 1,000,000 hosts",
            xdp_total,
            "MiB",
            "hosts map (the controller keeps no per-host state)",
        )
        .target("<= 128 MiB", xdp_total <= 128.0),
    );
    out.push(Figure::new(
        "XDP mode memory at 1,000,000 hosts and 1,000,000 flows",
        (host_bytes + flow_bytes) * scale / MIB,
        "MiB",
        "hosts and flows maps at equal capacity (--max-flows sets the flows map apart)",
    ));
    out.push(Figure::new(
        "XDP mode memory at 1,000,000 IPv6 hosts and 1,000,000 IPv6 flows",
        (host6_bytes + flow6_bytes) * scale / MIB,
        "MiB",
        "the IPv6 maps (each family has its own, sized alike)",
    ));
    out.push(Figure::new(
        "kernel bytes per tracked IPv6 host / flow",
        host6_bytes / hosts as f64,
        "bytes",
        format!("flows: {:.0} bytes each", flow6_bytes / hosts as f64),
    ));
    let user_total = user_bytes * scale / MIB;
    out.push(
        Figure::new(
            "NFQUEUE/replay memory at 1,000,000 hosts",
            user_total,
            "MiB",
            "userspace host map",
        )
        .target("<= 128 MiB", user_total <= 128.0),
    );

    // Evictions: twice as many hosts as the map holds, each seen once.
    let mut fp = KernelFingerprinter::load(
        Capacities {
            max_hosts: evict_capacity,
            max_flows: evict_capacity,
            ..Capacities::default()
        },
        0,
    )
    .expect("load");
    fp.configure(&config()).expect("configure");
    let peer = Ipv4Addr::new(198, 51, 100, 7);
    {
        let program = fp.program_mut().expect("program");
        for i in 0..2 * evict_capacity {
            let frame = frames::udp(
                Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + i),
                peer,
                &[],
            );
            program
                .test_run(TestRunOptions {
                    data_in: Some(&frame),
                    ..TestRunOptions::default()
                })
                .expect("test_run");
        }
    }
    let counters = fp.counters().expect("counters");
    let live = fp.hosts4().expect("hosts").len() as u64;
    let evicted = counters.hosts_created - live;
    out.push(
        Figure::new(
            "host evictions at 2x capacity",
            evicted as f64,
            "hosts",
            format!(
                "{} hosts into a map of {evict_capacity}: {} created, {live} tracked",
                2 * evict_capacity,
                counters.hosts_created
            ),
        )
        .target(
            "every eviction counted (created = tracked + evicted)",
            counters.hosts_created == 2 * evict_capacity as u64 && evicted >= evict_capacity as u64,
        ),
    );
    out
}
