//! Per-packet cost of the kernel programs under BPF_PROG_TEST_RUN, each
//! against an empty program of the same kind (XDP_PASS, TC_ACT_OK) of the
//! same object on the same frames.

use std::net::{Ipv4Addr, Ipv6Addr};

use aya::programs::{TestRun, TestRunOptions};
use vpnfp::source::kernel::{Capacities, KernelFingerprinter, sys};
use vpnfp_common::{KernelConfig, maps};

use super::{Figure, Size, loaded, median, research_config};
use vpnfp_tests::frames::{self, ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP};

/// Which program a figure runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Program {
    Xdp,
    XdpBaseline,
    XdpFloor,
    Tc,
    TcBaseline,
}

/// Nanoseconds per packet of `program`: `calls` test_run calls cycling over
/// `frames`, each frame run `repeat` times in the kernel; the mean over all
/// packets.
fn ns_per_packet(
    fp: &mut KernelFingerprinter,
    program: Program,
    frames: &[Vec<u8>],
    calls: usize,
    repeat: u32,
) -> f64 {
    let mut total_ns = 0.0;
    for frame in frames.iter().cycle().take(calls) {
        let opts = TestRunOptions {
            data_in: Some(frame),
            repeat,
            ..TestRunOptions::default()
        };
        let result = match program {
            Program::Xdp => fp.program_mut().expect("program").test_run(opts),
            Program::XdpBaseline => fp
                .other_program_mut(maps::BENCH_BASELINE)
                .expect("program")
                .test_run(opts),
            Program::XdpFloor => fp
                .other_program_mut(maps::BENCH_FLOOR)
                .expect("program")
                .test_run(opts),
            Program::Tc => fp.tc_program_mut().expect("program").test_run(opts),
            Program::TcBaseline => fp
                .other_tc_program_mut(maps::BENCH_TC_BASELINE)
                .expect("program")
                .test_run(opts),
        }
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
    /// TC egress instead of XDP.
    egress: bool,
}

impl Case {
    fn repeated(name: &'static str, frame: Vec<u8>, packets: u32, target_ns: f64) -> Self {
        Self {
            name,
            frames: vec![frame],
            calls: 1,
            repeat: packets,
            target_ns,
            egress: false,
        }
    }
}

/// One UDP frame from each of `n` hosts (10.0.0.0 on) to `peer`.
fn hosts_round_robin(n: u32, peer: Ipv4Addr) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            frames::udp(
                Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + i),
                peer,
                &[],
            )
        })
        .collect()
}

pub fn figures(size: Size) -> Vec<Figure> {
    let (packets, runs, hosts) = match size {
        Size::Full => (1_000_000u32, 5, 10_000u32),
        Size::Smoke => (20_000, 3, 200),
    };
    let host = Ipv4Addr::new(192, 168, 1, 10);
    let peer = Ipv4Addr::new(198, 51, 100, 7);
    let host6: Ipv6Addr = "fd00::10".parse().unwrap();
    let peer6: Ipv6Addr = "2001:db8::7".parse().unwrap();
    let many = hosts_round_robin(hosts, peer);
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
            egress: false,
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
        Case::repeated(
            "IPv6 UDP, one host",
            frames::udp6(host6, peer6, 4242, 9, &[0; 18], None),
            packets,
            25.0,
        ),
        Case::repeated(
            "IPv6 UDP, 3 extension headers",
            frames::udp6_with_ext(
                host6,
                peer6,
                &[frames::HOP_BY_HOP, frames::ROUTING, frames::DEST_OPTS],
                4242,
                9,
                &[0; 18],
            ),
            packets,
            25.0,
        ),
        Case {
            egress: true,
            ..Case::repeated(
                "IPv4 UDP reply, one host (TC egress)",
                frames::udp(peer, host, &[]),
                packets,
                25.0,
            )
        },
    ];

    let mut fp = loaded(Capacities::default());
    let mut out = Vec::new();
    let mut added_by_case = Vec::new();
    // The first case again with a flag set: what `--no-flows` saves, and
    // what a loaded `--policy` costs when no block matches (its lookup).
    // Endpoint mode on the TC case: the test run's skb has a socket of its
    // own (BPF_PROG_TEST_RUN makes one), so its cookie is noted against
    // the flow as a real socket's would be.
    let tc_case = cases.len() - 1;
    let variants = [
        (", --no-flows", vpnfp_common::config::FLAG_NO_FLOWS, 0),
        (
            ", --policy loaded (no pair blocked)",
            vpnfp_common::config::FLAG_POLICY,
            0,
        ),
        (", --local", vpnfp_common::config::FLAG_LOCAL, tc_case),
        (
            ", --local with a --policy loaded (no program blocked)",
            vpnfp_common::config::FLAG_LOCAL | vpnfp_common::config::FLAG_POLICY,
            tc_case,
        ),
    ];
    let mut local_added = Vec::new();
    for (case, variant) in cases
        .iter()
        .map(|c| (c, None))
        .chain(variants.iter().map(|v| (&cases[v.2], Some((v.0, v.1)))))
    {
        let flows = variant.is_none();
        if let Some((_, flag)) = variant {
            let mut config = research_config();
            config.flags |= flag;
            fp.configure(&config).expect("configure");
        }
        let mut vpnfp = Vec::new();
        let mut baseline = Vec::new();
        let (program, base) = if case.egress {
            (Program::Tc, Program::TcBaseline)
        } else {
            (Program::Xdp, Program::XdpBaseline)
        };
        for _ in 0..runs {
            // Interleaved so drift hits both alike.
            baseline.push(ns_per_packet(
                &mut fp,
                base,
                &case.frames,
                case.calls,
                case.repeat,
            ));
            vpnfp.push(ns_per_packet(
                &mut fp,
                program,
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
        let name = format!("{}{}", case.name, variant.map_or("", |(suffix, _)| suffix));
        if flows {
            added_by_case.push((case.name, added));
        } else if variant.is_some_and(|(_, f)| f & vpnfp_common::config::FLAG_LOCAL != 0) {
            local_added.push((name.clone(), added));
        }
        let kind = if case.egress { "TC" } else { "XDP" };
        out.push(
            Figure::new(
                format!("{kind} cost: {name}"),
                v,
                "ns/packet",
                conditions.clone(),
            )
            .against(b),
        );
        out.push(
            Figure::new(
                format!("{kind} added cost: {name}"),
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
    out.extend(identification(&mut fp, size, runs));
    fp.configure(&research_config()).expect("configure");
    out.extend(floor(&mut fp, size, runs));
    let added = |name: &str| {
        added_by_case
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a)
            .expect("measured")
    };
    let router = added("IPv4 UDP reply, one host (TC egress)");
    for (name, local) in local_added {
        out.push(
            Figure::new(
                format!("TC attribution cost: {name} over router mode"),
                local - router,
                "ns/packet",
                format!("the TC rows above, same run (router mode adds {router:.0} ns): the socket's cookie, its flow's entry looked up (and the process's block, with a policy)"),
            ),
        );
    }
    let (v4, v6) = (added("IPv4 UDP, one host"), added("IPv6 UDP, one host"));
    out.push(
        Figure::new(
            "XDP added cost, IPv6 over IPv4 (one host)",
            v6,
            "ns/packet",
            "the two rows above, same run",
        )
        .against(v4)
        .target("<= 1.2 x IPv4", v6 <= 1.2 * v4),
    );
    out
}

/// What identification adds in the kernel: for the first K payload packets
/// of a flow (a sample copied to the sample ring), and after them (a
/// counter compared). Each against the same frames with identification off.
fn identification(fp: &mut KernelFingerprinter, size: Size, runs: usize) -> Vec<Figure> {
    const K: u32 = 12;
    let flows_n = match size {
        Size::Full => 40_000u32,
        Size::Smoke => 1_000,
    };
    let host = Ipv4Addr::new(192, 168, 1, 10);
    let peer = Ipv4Addr::new(198, 51, 100, 7);
    // A 200-byte payload: a handshake-sized sample.
    let payload = [0x5au8; 200];
    let base = research_config();
    let mut on = base;
    on.inspect_packets = K;
    on.sample_bytes = vpnfp_common::record::SAMPLE_MAX as u32;
    let mut ring = fp.take_samples().expect("the sample ring");
    let mut first_k = |fp: &mut KernelFingerprinter, config: &KernelConfig, round: u32| {
        fp.configure(config).expect("configure");
        // New flows every round (source ports move on), each sent its
        // first K packets one per call, round-robin like the hosts case.
        let frames: Vec<Vec<u8>> = (0..flows_n)
            .map(|i| {
                let n = round * flows_n + i;
                let (sport, dport) = (1024 + (n % 60_000) as u16, 2000 + (n / 60_000) as u16);
                frames::udp_with(host, peer, sport, dport, &payload)
            })
            .collect();
        let mut total = 0.0;
        for _ in 0..K {
            total +=
                ns_per_packet(fp, Program::Xdp, &frames, frames.len(), 1) * frames.len() as f64;
            // Drained as the controller does, so the ring never refuses.
            while ring.next().is_some() {}
        }
        total / (flows_n as f64 * K as f64)
    };
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for r in 0..runs as u32 {
        without.push(first_k(fp, &base, 2 * r));
        with.push(first_k(fp, &on, 2 * r + 1));
    }
    let (w, wo) = (median(with), median(without));
    // After K: the one-host frame with a payload, repeated.
    let frame = frames::udp_with(host, peer, 4242, 9, &payload);
    let steady = |fp: &mut KernelFingerprinter, config: &KernelConfig| {
        fp.configure(config).expect("configure");
        ns_per_packet(fp, Program::Xdp, std::slice::from_ref(&frame), 1, 200_000)
    };
    let (mut s_on, mut s_off) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        s_off.push(steady(fp, &base));
        s_on.push(steady(fp, &on));
    }
    let (son, soff) = (median(s_on), median(s_off));
    vec![
        Figure::new(
            format!("XDP cost of identification: first {K} packets of a flow"),
            w,
            "ns/packet",
            format!("{flows_n} new flows x {K} packets with 200-byte payloads (one packet per call, round-robin), each sampled to the ring (drained between rounds); against identification off on new flows alike; median of {runs}"),
        )
        .against(wo),
        Figure::new(
            format!("XDP cost of identification: after {K} packets"),
            son,
            "ns/packet",
            format!("one flow, 200,000 packets after its first {K}; against identification off; median of {runs}"),
        )
        .against(soff)
        .target(
            "no worse than flow counting alone (+2 ns noise)",
            son <= soff + 2.0,
        ),
    ]
}

/// `--only steady`: the floor rows alone, in seconds, for working on the
/// per-packet path.
pub fn steady_figures(size: Size) -> Vec<Figure> {
    let mut fp = loaded(Capacities::default());
    steady(&mut fp, size)
}

/// The name of the one-host row against the floor (`bench --smoke` guards
/// its ratio against `bench/baseline.json`).
pub const ONE_HOST_OVER_FLOOR: &str = "XDP added cost over the floor's: IPv4 UDP, one host";

/// Against the floor (parse, one LRU update, one clock read): one host's
/// steady state, and the XDP+TC pair. Many short rounds, each measuring
/// every program once, and the median of the rounds' ratios: this VM's
/// noise moves whole rounds, which a ratio within a round cancels.
fn steady(fp: &mut KernelFingerprinter, size: Size) -> Vec<Figure> {
    let (packets, rounds) = match size {
        Size::Full => (200_000u32, 25),
        Size::Smoke => (50_000, 9),
    };
    let host = Ipv4Addr::new(192, 168, 1, 10);
    let peer = Ipv4Addr::new(198, 51, 100, 7);
    let out_frame = frames::udp(host, peer, &[]);
    let back_frame = frames::udp(peer, host, &[]);
    let one = std::slice::from_ref(&out_frame);
    let back = std::slice::from_ref(&back_frame);
    // One CPU for every program, as a steady flow on one queue is: moving
    // between CPUs made rounds bimodal (flow cache and host entry
    // bouncing). The thread's own affinity comes back after.
    let own = sys::affinity().expect("sched_getaffinity");
    vpnfp_tests::pin_to_cpu(0);
    let (mut floors, mut ones, mut pairs) = (vec![], vec![], vec![]);
    let (mut one_ratios, mut pair_ratios) = (vec![], vec![]);
    for _ in 0..rounds {
        let base = ns_per_packet(fp, Program::XdpBaseline, one, 1, packets);
        let flo = ns_per_packet(fp, Program::XdpFloor, one, 1, packets);
        let v = ns_per_packet(fp, Program::Xdp, one, 1, packets);
        let tcb = ns_per_packet(fp, Program::TcBaseline, back, 1, packets);
        let tc = ns_per_packet(fp, Program::Tc, back, 1, packets);
        let floor_added = (flo - base).max(1.0);
        let (v_added, pair_added) = (v - base, v - base + tc - tcb);
        floors.push(floor_added);
        ones.push(v_added);
        pairs.push(pair_added);
        one_ratios.push(v_added / floor_added);
        pair_ratios.push(pair_added / (2.0 * floor_added));
    }
    sys::set_affinity(&own).expect("sched_setaffinity");
    let (floor_added, one_ratio, pair_ratio) =
        (median(floors), median(one_ratios), median(pair_ratios));
    let conditions = format!(
        "{rounds} rounds of {packets} packets per program, interleaved; medians, and the median of the rounds' ratios"
    );
    vec![
        Figure::new(
            "XDP floor's added cost: parse, one LRU update, one clock read",
            floor_added,
            "ns/packet",
            conditions.clone(),
        ),
        Figure::new(
            ONE_HOST_OVER_FLOOR,
            median(ones),
            "ns/packet",
            conditions.clone(),
        )
        .against(floor_added)
        .ratio(one_ratio)
        .target("<= 1.3 x the floor", one_ratio <= 1.3),
        Figure::new(
            "XDP+TC pair added cost: a packet and its reply",
            median(pairs),
            "ns/packet pair",
            format!("XDP on the host's packet plus TC egress on the reply; {conditions}"),
        )
        .against(2.0 * floor_added)
        .ratio(pair_ratio)
        .target("<= 1.5 x two floors", pair_ratio <= 1.5),
    ]
}

/// What one packet per test_run call costs (the round-robin rows'
/// overhead), a million hosts, and both CPUs at once.
fn floor(fp: &mut KernelFingerprinter, size: Size, runs: usize) -> Vec<Figure> {
    let mut out = steady(fp, size);
    let (packets, million) = match size {
        Size::Full => (1_000_000u32, 1_000_000u32),
        Size::Smoke => (20_000, 2_000),
    };
    let host = Ipv4Addr::new(192, 168, 1, 10);
    let peer = Ipv4Addr::new(198, 51, 100, 7);
    let out_frame = frames::udp(host, peer, &[]);
    let one = std::slice::from_ref(&out_frame);
    // One packet per call, one host: what a test_run call costs beyond
    // the program (the round-robin rows pay it on every packet).
    let calls = (packets / 10) as usize;
    let (mut b1, mut v1) = (vec![], vec![]);
    for _ in 0..runs {
        b1.push(ns_per_packet(fp, Program::XdpBaseline, one, calls, 1));
        v1.push(ns_per_packet(fp, Program::Xdp, one, calls, 1));
    }
    let (b1, v1) = (median(b1), median(v1));
    out.push(
        Figure::new(
            "XDP cost: IPv4 UDP, one host, one packet per call",
            v1,
            "ns/packet",
            format!("{calls} calls of one packet; the per-call overhead round-robin rows include"),
        )
        .against(b1),
    );
    // A million hosts and a million flows, round-robin, in maps sized for
    // them: the first round inserts every host and flow, the second finds
    // them all (the steady state at that scale). IPv4, then IPv6. The
    // floor runs on the same frames with its map sized alike.
    let mut big = loaded(Capacities {
        max_hosts: million,
        max_flows: million,
        bench_floor_entries: Some(million),
        ..Capacities::default()
    });
    let peer6: Ipv6Addr = "2001:db8::7".parse().unwrap();
    let first6 = u128::from("fd00::1:0".parse::<Ipv6Addr>().unwrap());
    let families: [(&str, Vec<Vec<u8>>); 2] = [
        ("IPv4", hosts_round_robin(million, peer)),
        (
            "IPv6",
            (0..million)
                .map(|i| {
                    let src = Ipv6Addr::from(first6 + i as u128);
                    frames::udp6(src, peer6, 40000, 443, &[], None)
                })
                .collect(),
        ),
    ];
    let scale =
        format!("maps sized for {million} hosts and {million} flows; one packet per host per call");
    for (family, many) in &families {
        let b = ns_per_packet(&mut big, Program::XdpBaseline, many, many.len(), 1);
        let new = ns_per_packet(&mut big, Program::Xdp, many, many.len(), 1);
        let known = ns_per_packet(&mut big, Program::Xdp, many, many.len(), 1);
        out.push(
            Figure::new(
                format!(
                    "XDP cost: {family} UDP, {million} hosts round-robin, every host and flow new"
                ),
                new,
                "ns/packet",
                scale.clone(),
            )
            .against(b),
        );
        if *family != "IPv4" {
            out.push(
                Figure::new(
                    format!("XDP cost: {family} UDP, {million} hosts round-robin, every host and flow known"),
                    known,
                    "ns/packet",
                    scale.clone(),
                )
                .against(b),
            );
            continue;
        }
        // The floor reads IPv4 only. Its first round fills its map.
        ns_per_packet(&mut big, Program::XdpFloor, many, many.len(), 1);
        let floor_known = ns_per_packet(&mut big, Program::XdpFloor, many, many.len(), 1);
        let (v_added, floor_added) = (known - b, (floor_known - b).max(1.0));
        out.push(
            Figure::new(
                format!("XDP floor: {family} UDP, {million} hosts round-robin, every host known"),
                floor_known,
                "ns/packet",
                format!("the floor's map sized for {million} hosts; {scale}"),
            )
            .against(b),
        );
        out.push(
            Figure::new(
                format!("XDP added cost over the floor's: {family} UDP, {million} hosts and flows known"),
                v_added,
                "ns/packet",
                format!("same frames, same run; the floor's added cost at {million} hosts is the baseline"),
            )
            .against(floor_added)
            .target("<= 1.5 x the floor", v_added <= 1.5 * floor_added),
        );
    }
    drop(big);
    out.extend(churn(size));
    // Both CPUs at once: distinct hosts, then one shared host; the floor
    // program alike, as the control (what the machine's two CPUs give a
    // program that shares nothing).
    // On fresh maps: the rows above filled the flow table (a million new
    // hosts), and a host whose flow finds no room takes the table-full path
    // on every packet, contending on the map's free lists across CPUs.
    let mut fresh = loaded(Capacities::default());
    let fp = &mut fresh;
    use std::os::fd::AsFd;
    let dup = |program: &aya::programs::Xdp| {
        program
            .fd()
            .expect("fd")
            .as_fd()
            .try_clone_to_owned()
            .expect("fd")
    };
    let fd = dup(fp.program_mut().expect("program"));
    let floor_fd = dup(fp.other_program_mut(maps::BENCH_FLOOR).expect("program"));
    let other = frames::udp(Ipv4Addr::new(192, 168, 1, 11), peer, &[]);
    let per_thread = packets * 2;
    // Each thread pinned first and started together (a barrier), and the
    // span from the first start to the last end: thread start-up is not in
    // the figure, and a CPU that lags still counts against the rate.
    let rate = |fd: &std::os::fd::OwnedFd, frames: &[&Vec<u8>]| {
        let ready = std::sync::Barrier::new(frames.len());
        let spans: Vec<(std::time::Instant, std::time::Instant)> = std::thread::scope(|s| {
            let handles: Vec<_> = frames
                .iter()
                .enumerate()
                .map(|(cpu, f)| {
                    let ready = &ready;
                    s.spawn(move || {
                        vpnfp_tests::pin_to_cpu(cpu);
                        ready.wait();
                        let start = std::time::Instant::now();
                        vpnfp_tests::test_run_repeat(fd, f, per_thread);
                        (start, std::time::Instant::now())
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("bench thread"))
                .collect()
        });
        let first = spans.iter().map(|s| s.0).min().expect("a thread");
        let last = spans.iter().map(|s| s.1).max().expect("a thread");
        frames.len() as f64 * per_thread as f64 / (last - first).as_secs_f64()
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Every trial on hosts of its own, first seen by the CPU that sends
    // them: where the kernel places two hosts' entries decides whether they
    // share a cache line (false sharing between CPUs), and that placement
    // varies as it does in a deployment. The median and the range are
    // reported.
    let trials = runs.max(7) as u8;
    let fresh_host =
        |trial: u8, cpu: u8| frames::udp(Ipv4Addr::new(10, 200 + cpu, trial, 1), peer, &[]);
    let mut single_trials: Vec<f64> = (0..trials)
        .map(|t| rate(&fd, &[&fresh_host(t, 0)]))
        .collect();
    let mut distinct_trials: Vec<f64> = (0..trials)
        .map(|t| rate(&fd, &[&fresh_host(100 + t, 0), &fresh_host(100 + t, 1)]))
        .collect();
    single_trials.sort_by(f64::total_cmp);
    distinct_trials.sort_by(f64::total_cmp);
    let single = median(single_trials.clone());
    let spread = |v: &[f64]| format!("{:.3e}..{:.3e}", v[0], v[v.len() - 1]);
    if cpus >= 2 {
        let distinct = median(distinct_trials.clone());
        let shared = median(
            (0..runs)
                .map(|_| rate(&fd, &[&out_frame, &out_frame]))
                .collect(),
        );
        let floor_single = median((0..runs).map(|_| rate(&floor_fd, &[&out_frame])).collect());
        let floor_two = median(
            (0..runs)
                .map(|_| rate(&floor_fd, &[&out_frame, &other]))
                .collect(),
        );
        out.push(
            Figure::new(
                "XDP floor on 2 CPUs, distinct hosts (control)",
                floor_two,
                "packets/s",
                "the floor program, as the rows below: what two CPUs of this machine give",
            )
            .against(floor_single),
        );
        out.push(
            Figure::new(
                "XDP on 2 CPUs, distinct hosts",
                distinct,
                "packets/s",
                format!(
                    "{per_thread} packets per CPU in one test_run each, from the first start to the last end; median of {trials} trials on fresh hosts (range {}; one CPU {}); against one CPU",
                    spread(&distinct_trials),
                    spread(&single_trials)
                ),
            )
            .against(single)
            .target(">= 1.8 x one CPU", distinct >= 1.8 * single),
        );
        out.push(
            Figure::new(
                "XDP on 2 CPUs, one shared host",
                shared,
                "packets/s",
                "both CPUs update one host and one flow (atomics contend)",
            )
            .against(single),
        );
    }
    out.push(Figure::new(
        "XDP on 1 CPU",
        single,
        "packets/s",
        format!("{per_thread} packets in one test_run, wall time"),
    ));
    out
}

/// Flow churn: every packet a new 5-tuple (one host's ports, as a scan or
/// a DNS-heavy host makes them), one packet per call, in a flow table
/// sized for them; against the baseline program on the same frames, and
/// beside one known flow per call (the cost a new flow adds).
fn churn(size: Size) -> Vec<Figure> {
    let n: u32 = match size {
        Size::Full => 500_000,
        Size::Smoke => 20_000,
    };
    let mut fp = loaded(Capacities {
        max_flows: n + 1,
        ..Capacities::default()
    });
    let host = Ipv4Addr::new(192, 168, 1, 10);
    let peer = Ipv4Addr::new(198, 51, 100, 7);
    let frames: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            frames::udp_with(
                host,
                peer,
                1024 + (i % 60_000) as u16,
                1 + (i / 60_000) as u16,
                &[],
            )
        })
        .collect();
    let b = ns_per_packet(&mut fp, Program::XdpBaseline, &frames, frames.len(), 1);
    let new = ns_per_packet(&mut fp, Program::Xdp, &frames, frames.len(), 1);
    let one = std::slice::from_ref(&frames[0]);
    let calls = (n / 4) as usize;
    let b1 = ns_per_packet(&mut fp, Program::XdpBaseline, one, calls, 1);
    let known = ns_per_packet(&mut fp, Program::Xdp, one, calls, 1);
    vec![
        Figure::new(
            "XDP cost: flow churn, every packet a new 5-tuple",
            new,
            "ns/packet",
            format!(
                "{n} new UDP flows of one host, one packet per call; flow table sized for them"
            ),
        )
        .against(b),
        Figure::new(
            "XDP added cost of a new flow",
            (new - b) - (known - b1),
            "ns/flow",
            "the churn row's added cost less one known flow's, one packet per call both",
        ),
    ]
}
