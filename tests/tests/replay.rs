//! Replay mode: generated captures with known decisions, every link type,
//! bad input, and record-for-record parity with the XDP program.

use std::{
    collections::BTreeMap,
    io::Write,
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use pcap_file::{DataLink, TsResolution};
use vpnfp::{
    engine::{Engine, EngineSettings},
    model::{Fact, FlowId},
    replay::replay_files,
    source::capture::{CaptureError, LinkType},
};
use vpnfp_common::{
    InternalRanges, KernelConfig, NANOS_PER_SEC, Outcome, WindowClose, config::Arrival,
    record::SAMPLE_MAX,
};
use vpnfp_tests::{
    captures::{write_pcap, write_pcapng},
    fixtures::{Expected, parse_vectors},
    frames::{self, ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IPV6, Flags},
    harness::TestProgram,
    parity::{Totals, through_kernel},
    privileged,
    scratch::TempDir,
    script::{Scripted, mixed_traffic},
    vpnfp_bin,
};

const MS: u64 = 1_000_000;
/// 2023-11-14T22:13:20Z: captures carry real-looking Unix times.
const EPOCH: u64 = 1_700_000_000 * NANOS_PER_SEC;

fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

/// What a replay through the library produced.
struct Replayed {
    engine: Engine,
    errors: Vec<CaptureError>,
    windows: Vec<WindowClose<IpAddr>>,
    flows: BTreeMap<FlowId, Totals>,
}

fn replay(paths: &[PathBuf], config: KernelConfig) -> Replayed {
    replay_with(paths, EngineSettings::new(config))
}

fn replay_with(paths: &[PathBuf], settings: EngineSettings) -> Replayed {
    let mut engine = Engine::new(settings);
    let mut windows = Vec::new();
    let mut flows: BTreeMap<FlowId, Totals> = BTreeMap::new();
    let errors = replay_files(
        paths,
        &mut engine,
        |fact| match fact {
            Fact::Window(w) => windows.push(w),
            Fact::Flow(f) => flows.entry(f.id).or_default().add(&f),
            _ => {}
        },
        |_| {},
    );
    Replayed {
        engine,
        errors,
        windows,
        flows,
    }
}

/// JSON lines of one event kind.
fn events<'a>(lines: &'a [serde_json::Value], event: &str) -> Vec<&'a serde_json::Value> {
    lines.iter().filter(|l| l["event"] == event).collect()
}

fn replay_cli(files: &[&Path], args: &[&str]) -> (std::process::Output, Vec<serde_json::Value>) {
    let out = Command::new(vpnfp_bin())
        .arg("replay")
        .args(files)
        .args(args)
        .arg("--json")
        .output()
        .expect("run vpnfp replay");
    let lines = json_lines(&out);
    (out, lines)
}

/// A replay's JSON records.
fn json_lines(out: &std::process::Output) -> Vec<serde_json::Value> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// The first 30,000 packets of the known scene, as a capture in `dir`.
fn scene_capture(dir: &TempDir) -> PathBuf {
    let scene: Vec<Scripted> = known_scene().into_iter().take(30_000).collect();
    let path = dir.path("scene.pcap");
    write_pcap(&path, DataLink::ETHERNET, &scene, TsResolution::MicroSecond);
    path
}

/// A replay that succeeded gave the records of `vpnfp replay --json PATH
/// --window 1 --count 50`, and some.
fn assert_same_records_as_a_plain_replay(out: &std::process::Output, path: &Path) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, plain) = replay_cli(&[path], &["--window", "1", "--count", "50"]);
    let records = json_lines(out);
    assert!(!records.is_empty());
    assert_eq!(records, plain);
}

/// Three hosts over 130 s, WINDOW 60 s, COUNT 5000 (decisions worked out by
/// hand below, not by the code under test).
fn known_scene() -> Vec<Scripted> {
    let (a, vpn) = (ip(192, 168, 1, 10), ip(198, 51, 100, 7));
    let (b, b_peer, b_other) = (ip(10, 0, 0, 5), ip(192, 0, 2, 50), ip(192, 0, 2, 51));
    let c = ip(172, 16, 0, 9);
    let mut frames = Vec::new();
    for i in 0..13_000u64 {
        let t = EPOCH + i * 10 * MS;
        // A: VPN-like, both directions, untagged.
        let f = if i % 2 == 0 {
            frames::udp(a, vpn, &[])
        } else {
            frames::udp(vpn, a, &[])
        };
        frames.push(Scripted::ingress(t, f));
        // B: VPN-like in QinQ, with one packet to another peer at 30.005 s.
        frames.push(Scripted::ingress(
            t + 5_000,
            frames::udp(b, b_peer, &[ETH_P_8021AD, ETH_P_8021Q]),
        ));
        if i == 3_000 {
            frames.push(Scripted::ingress(
                t + 5 * MS,
                frames::udp(b, b_other, &[ETH_P_8021AD, ETH_P_8021Q]),
            ));
        }
        // C: browsing, a new peer every packet, one VLAN tag.
        frames.push(Scripted::ingress(
            t + 7_000,
            frames::udp(c, ip(198, 51, 100, 100 + (i % 100) as u8), &[ETH_P_8021Q]),
        ));
        // ARP and IPv6 every second: ignored.
        if i % 100 == 50 {
            frames.push(Scripted::ingress(t + 8_000, frames::other(ETH_P_ARP)));
            frames.push(Scripted::ingress(t + 9_000, frames::other(ETH_P_IPV6)));
        }
    }
    frames
}

#[test]
fn generated_capture_gives_the_known_decisions() {
    let dir = TempDir::new("known");
    let scene = known_scene();
    // Split across a pcap and a pcapng file: one stream.
    let (first, second) = scene.split_at(scene.len() / 2);
    let (f1, f2) = (dir.path("part1.pcap"), dir.path("part2.pcapng"));
    write_pcap(&f1, DataLink::ETHERNET, first, TsResolution::MicroSecond);
    write_pcapng(&f2, DataLink::ETHERNET, second);
    let (out, reports) = replay_cli(&[&f1, &f2], &["--window", "60", "--count", "5000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A: windows from 0 s to 60.01 s (6002 packets) and 60.01 to 120.02 s
    // (6001); the rest never closes. B: restarted at 30.005 s (other peer) and
    // 30.01 s (back), closes at 90.02 s with 6002 packets. C: never.
    let got: Vec<(String, String, f64, f64, u64, u64, String)> = events(&reports, "suspected_vpn")
        .into_iter()
        .map(|r| {
            assert_eq!(r["event"], "suspected_vpn");
            assert_eq!(r["mode"], "replay");
            (
                r["host"].as_str().unwrap().to_string(),
                r["peer"].as_str().unwrap().to_string(),
                r["window_start"].as_f64().unwrap() - 1_700_000_000.0,
                r["window_end"].as_f64().unwrap() - 1_700_000_000.0,
                r["count_this"].as_u64().unwrap(),
                r["count_prev"].as_u64().unwrap(),
                r["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let s = |x: &str| x.to_string();
    let want = vec![
        (
            s("192.168.1.10"),
            s("198.51.100.7"),
            0.0,
            60.01,
            6002,
            0,
            s("count"),
        ),
        (
            s("10.0.0.5"),
            s("192.0.2.50"),
            30.010005,
            90.020005,
            6002,
            0,
            s("count"),
        ),
        (
            s("192.168.1.10"),
            s("198.51.100.7"),
            60.01,
            120.02,
            6001,
            6002,
            s("count"),
        ),
    ];
    assert_eq!(got.len(), want.len(), "{got:?}");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!((&g.0, &g.1, g.4, g.5, &g.6), (&w.0, &w.1, w.4, w.5, &w.6));
        assert!(
            (g.2 - w.2).abs() < 1e-6 && (g.3 - w.3).abs() < 1e-6,
            "{g:?} vs {w:?}"
        );
    }

    // The summary: every frame counted once, ARP ignored, the zeroed IPv6
    // frames malformed.
    let config = KernelConfig::new(60 * NANOS_PER_SEC, InternalRanges::research());
    let r = replay(&[f1, f2], config);
    assert!(r.errors.is_empty());
    let c = r.engine.counters();
    assert_eq!(c.seen, scene.len() as u64);
    assert_eq!(c.outcome(Outcome::IgnoredNotIp), 130);
    assert_eq!(c.outcome(Outcome::MalformedIpHeader), 130);
    assert_eq!(c.analysed(), 3 * 13_000 + 1);
    assert_eq!(c.windows_closed, 3);
    assert_eq!(r.engine.hosts_tracked(), 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("ignored_not_ip 130, malformed_ip_header 130"),
        "every category in the summary: {stderr}"
    );
}

#[test]
fn parse_vectors_replay_as_expected() {
    let config = KernelConfig::new(NANOS_PER_SEC, InternalRanges::research());
    for v in parse_vectors() {
        let mut engine = Engine::new(EngineSettings::new(config));
        engine.frame(
            &v.frame,
            LinkType::Ethernet.parse(&v.frame),
            Arrival::Elsewhere,
            0,
            &mut |_| {},
        );
        let c = engine.counters();
        match v.expected {
            Expected::Internal => assert_eq!(
                c.outcome(Outcome::IgnoredLanInternal),
                1,
                "frame {}",
                v.frame_no
            ),
            Expected::NotIpv4 => {
                assert_eq!(c.outcome(Outcome::IgnoredNotIp), 1, "frame {}", v.frame_no)
            }
            Expected::Analysed { host, peer } => {
                let state = engine
                    .hosts4()
                    .get(&u32::from(host))
                    .unwrap_or_else(|| panic!("frame {}", v.frame_no));
                assert_eq!(
                    Ipv4Addr::from(state.research.peer),
                    peer,
                    "frame {}",
                    v.frame_no
                );
            }
        }
    }
    // And the file itself through the CLI.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/parse-vectors.pcap");
    let (out, _) = replay_cli(&[&path], &[]);
    assert!(out.status.success());
}

/// The same packets in each link type give the same records.
#[test]
fn every_link_type_reads_alike() {
    let dir = TempDir::new("links");
    let script = mixed_traffic(7, 3_000);
    // Strip Ethernet + VLAN tags down to the IP packet where there is one.
    let ip_packet = |frame: &[u8]| -> Option<(u16, Vec<u8>)> {
        let mut at = 12;
        loop {
            match u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]) {
                0x8100 | 0x88a8 => at += 4,
                t @ (0x0800 | 0x86dd) => return Some((t, frame[at + 2..].to_vec())),
                _ => return None,
            }
        }
    };
    // Only packets whose version agrees with their ethertype: without a
    // link header there is no ethertype to disagree with.
    let packets: Vec<(u64, u16, Vec<u8>)> = script
        .iter()
        .filter_map(|s| ip_packet(&s.frame).map(|(t, p)| (s.ts_ns, t, p)))
        .filter(|(_, t, p)| {
            p.first()
                .is_some_and(|b| b >> 4 == if *t == 0x0800 { 4 } else { 6 })
        })
        .collect();
    let build = |f: &dyn Fn(u16, &[u8]) -> Vec<u8>| -> Vec<Scripted> {
        packets
            .iter()
            .map(|(t, kind, p)| Scripted::ingress(*t, f(*kind, p)))
            .collect()
    };
    let eth = build(&|kind, p| {
        let mut f = frames::ethernet(&[], kind);
        f.extend_from_slice(p);
        f
    });
    let sll = build(&|kind, p| {
        let mut f = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
        f.extend_from_slice(&kind.to_be_bytes());
        f.extend_from_slice(p);
        f
    });
    let sll2 = build(&|kind, p| {
        let mut f = kind.to_be_bytes().to_vec();
        f.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
        f.extend_from_slice(p);
        f
    });
    let raw = build(&|_, p| p.to_vec());
    // BSD loopback: the address family in the capturing host's order
    // (NULL, here little-endian) or in network order (LOOP); IPv6 is 24,
    // 28 or 30 on the BSDs.
    let null = build(&|kind, p| {
        let family: u32 = if kind == 0x0800 { 2 } else { 30 };
        let mut f = family.to_le_bytes().to_vec();
        f.extend_from_slice(p);
        f
    });
    let lo = build(&|kind, p| {
        let family: u32 = if kind == 0x0800 { 2 } else { 24 };
        let mut f = family.to_be_bytes().to_vec();
        f.extend_from_slice(p);
        f
    });
    let mut config = KernelConfig::new(300 * MS, InternalRanges::research());
    config.inspect_packets = 2;
    config.sample_bytes = SAMPLE_MAX as u32;
    let mut results = Vec::new();
    for (name, link, frames) in [
        ("eth.pcap", DataLink::ETHERNET, &eth),
        ("sll.pcap", DataLink::LINUX_SLL, &sll),
        ("sll2.pcap", DataLink::LINUX_SLL2, &sll2),
        ("raw.pcap", DataLink::RAW, &raw),
        ("null.pcap", DataLink::NULL, &null),
        ("loop.pcap", DataLink::LOOP, &lo),
    ] {
        let path = dir.path(name);
        write_pcap(&path, link, frames, TsResolution::NanoSecond);
        let r = replay(&[path], config);
        assert!(r.errors.is_empty(), "{name}: {:?}", r.errors);
        assert_eq!(r.engine.counters().seen, packets.len() as u64, "{name}");
        results.push((name, r.windows, *r.engine.counters(), r.flows));
    }
    assert!(results[0].1.len() > 50);
    assert!(results[0].2.ipv6 > 100);
    for r in &results[1..] {
        assert_eq!(r.1, results[0].1, "{} vs eth", r.0);
        assert_eq!(r.2, results[0].2, "{} vs eth", r.0);
        assert_eq!(r.3, results[0].3, "{} vs eth", r.0);
    }
}

#[test]
fn bad_input_gives_clear_errors_after_what_came_before() {
    let dir = TempDir::new("bad");
    let scene: Vec<Scripted> = known_scene().into_iter().take(20_000).collect();
    let good = dir.path("good.pcap");
    write_pcap(&good, DataLink::ETHERNET, &scene, TsResolution::MicroSecond);
    let bytes = std::fs::read(&good).unwrap();

    // Truncated in the middle of a record: the error names file and offset,
    // the window that closed before it was reported.
    let cut = dir.path("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 30]).unwrap();
    let (out, reports) = replay_cli(&[&cut], &["--window", "1", "--count", "50"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let error = stderr
        .lines()
        .find(|l| l.contains("cut.pcap"))
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        error.contains("truncated record") && error.contains("at byte offset"),
        "{stderr}"
    );
    assert!(
        stderr
            .lines()
            .last()
            .unwrap()
            .starts_with("vpnfp: error: 1 of 1 capture files failed"),
        "{stderr}"
    );
    assert!(
        !events(&reports, "suspected_vpn").is_empty(),
        "what came before is reported"
    );
    assert!(stderr.contains("replay: 19999 frames read"), "{stderr}");

    // Every truncation point: never a panic, always a clean answer.
    for len in (0..2_000).chain((bytes.len() - 200)..bytes.len()) {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let config = KernelConfig::new(NANOS_PER_SEC, InternalRanges::research());
        let r = replay(std::slice::from_ref(&cut), config);
        if let Some(e) = r.errors.first() {
            assert!(e.offset.is_some_and(|o| o <= len as u64), "{len}: {e}");
        }
    }

    // Corrupt bytes anywhere: errors or results, never a panic.
    let mut rng = vpnfp_tests::script::Rng(99);
    let broken = dir.path("broken.pcap");
    for _ in 0..300 {
        let mut b = bytes[..4_000].to_vec();
        for _ in 0..4 {
            let i = rng.below(b.len() as u64) as usize;
            b[i] = rng.next_u64() as u8;
        }
        std::fs::write(&broken, &b).unwrap();
        let config = KernelConfig::new(NANOS_PER_SEC, InternalRanges::research());
        let _ = replay(std::slice::from_ref(&broken), config);
    }

    // Not a capture, an unsupported link type, a missing file.
    let text = dir.path("notes.txt");
    std::fs::write(&text, "hello, not a capture").unwrap();
    let usb = dir.path("usb.pcap");
    write_pcap(
        &usb,
        DataLink::USB_LINUX,
        &scene[..3],
        TsResolution::MicroSecond,
    );
    let missing = dir.path("missing.pcap");
    let directory = dir.to_path_buf();
    for (path, message) in [
        (&directory, "read error: Is a directory"),
        (&text, "not a pcap or pcapng file"),
        (&usb, "unsupported link type 189"),
        (&missing, "cannot open"),
    ] {
        // Between two good files: reported, and the replay goes on.
        let (out, _) = replay_cli(&[&good, path, &good], &[]);
        assert_eq!(out.status.code(), Some(1), "{path:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "{} frames read from 2 of 3 files",
                2 * scene.len()
            )),
            "both good files were read: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn replay_and_the_kernel_programs_give_identical_records() {
    if !privileged("replay_and_the_kernel_programs_give_identical_records") {
        return;
    }
    let dir = TempDir::new("parity");
    let script: Vec<Scripted> = mixed_traffic(0xfeed, 8_000)
        .into_iter()
        .map(|s| Scripted {
            ts_ns: s.ts_ns + EPOCH,
            ..s
        })
        .collect();
    let mut config = KernelConfig::new(250 * MS, InternalRanges::research());
    config.inspect_packets = 4;
    config.sample_bytes = SAMPLE_MAX as u32;
    let mut program = TestProgram::load(config);
    let kernel = through_kernel(&mut program, &script);
    let path = dir.path("parity.pcapng");
    write_pcapng(&path, DataLink::ETHERNET, &script);
    // The kernel's flows end only when userspace ends them; here nothing
    // ends them early on either side.
    let r = replay_with(
        &[path],
        EngineSettings {
            close_linger_ns: u64::MAX / 4,
            ..EngineSettings::new(config)
        },
    );
    assert!(r.errors.is_empty());
    assert!(kernel.windows.len() > 100, "{}", kernel.windows.len());
    assert_eq!(r.windows, kernel.windows);
    assert_eq!(r.flows, kernel.flows);
    let mut k = kernel.counters;
    k.flows_created = r.engine.counters().flows_created;
    k.seen_egress = 0;
    assert_eq!(*r.engine.counters(), k);
}

/// Flows with known packet and byte counts in both directions, for IPv4,
/// IPv4 behind a VLAN tag, IPv6 and IPv6 with extension headers, ending by
/// FIN, RST, idle and exit: the flow records hold exactly what was made.
#[test]
fn flow_records_hold_exactly_the_generated_counts() {
    let dir = TempDir::new("flows");
    let lan = IpAddr::V4(ip(192, 168, 1, 10));
    let wan = IpAddr::V4(ip(198, 51, 100, 7));
    let lan6: IpAddr = "fd00::10".parse().unwrap();
    let wan6: IpAddr = "2001:db8::7".parse().unwrap();
    let ack = Flags {
        ack: true,
        ..Flags::default()
    };
    let fin = Flags {
        fin: true,
        ack: true,
        ..Flags::default()
    };
    let rst = Flags {
        rst: true,
        ..Flags::default()
    };
    let mut script = Vec::new();
    let mut t = EPOCH;
    let mut push = |script: &mut Vec<Scripted>, f: Vec<u8>, dt: u64| {
        t += dt;
        script.push(Scripted::ingress(t, f));
    };
    // IPv4 TCP: 10 up with 100 bytes of payload, 20 down with 1000, FIN.
    for _ in 0..10 {
        push(
            &mut script,
            frames::tcp(lan, wan, 40000, 443, ack, &[1; 100]),
            MS,
        );
        push(
            &mut script,
            frames::tcp(wan, lan, 443, 40000, ack, &[2; 1000]),
            MS,
        );
        push(
            &mut script,
            frames::tcp(wan, lan, 443, 40000, ack, &[2; 1000]),
            MS,
        );
    }
    push(&mut script, frames::tcp(lan, wan, 40000, 443, fin, b""), MS);
    push(&mut script, frames::tcp(wan, lan, 443, 40000, fin, b""), MS);
    // IPv4 UDP behind a VLAN tag (hand-made frames: 46 IP bytes each), RST-less,
    // ending idle.
    for _ in 0..7 {
        push(
            &mut script,
            frames::udp(ip(192, 168, 1, 10), ip(198, 51, 100, 7), &[ETH_P_8021Q]),
            MS,
        );
    }
    // IPv6 TCP ended by RST.
    for _ in 0..5 {
        push(
            &mut script,
            frames::tcp(lan6, wan6, 50000, 22, ack, &[3; 50]),
            MS,
        );
    }
    push(
        &mut script,
        frames::tcp(wan6, lan6, 22, 50000, rst, b""),
        MS,
    );
    // IPv6 UDP with hop-by-hop and destination options, to the end.
    let (l6, w6) = ("fd00::10".parse().unwrap(), "2001:db8::7".parse().unwrap());
    for _ in 0..4 {
        push(
            &mut script,
            frames::udp6_with_ext(
                l6,
                w6,
                &[frames::HOP_BY_HOP, frames::DEST_OPTS],
                5353,
                53,
                &[4; 30],
            ),
            MS,
        );
    }
    // Two minutes later one packet more: the UDP flow went idle meanwhile.
    push(
        &mut script,
        frames::udp6(l6, w6, 5353, 53, &[4; 30], None),
        120 * NANOS_PER_SEC,
    );
    let path = dir.path("flows.pcap");
    write_pcap(&path, DataLink::ETHERNET, &script, TsResolution::NanoSecond);
    let (out, lines) = replay_cli(&[&path], &["--flow-idle", "60"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let flows = events(&lines, "flow");
    let find = |host: &str, port: u64| {
        flows
            .iter()
            .filter(|f| f["host"] == host && f["host_port"] == port)
            .copied()
            .collect::<Vec<_>>()
    };
    let tcp4 = find("192.168.1.10", 40000);
    assert_eq!(tcp4.len(), 1, "{tcp4:?}");
    let f = tcp4[0];
    assert_eq!(
        (f["transport"].as_str(), f["peer_port"].as_u64()),
        (Some("tcp"), Some(443))
    );
    assert_eq!(
        (f["packets_up"].as_u64(), f["packets_down"].as_u64()),
        (Some(11), Some(21))
    );
    assert_eq!(f["bytes_up"], 10 * (20 + 20 + 100) + 40);
    assert_eq!(f["bytes_down"], 20 * (20 + 20 + 1000) + 40);
    assert_eq!(f["end_reason"], "fin");
    assert_eq!(f["scope"], "external");
    let udp4 = find("192.168.1.10", 4242);
    assert_eq!(udp4.len(), 1);
    assert_eq!(
        (udp4[0]["packets_up"].as_u64(), udp4[0]["bytes_up"].as_u64()),
        (Some(7), Some(7 * 46))
    );
    assert_eq!(udp4[0]["end_reason"], "idle");
    let tcp6 = find("fd00::10", 50000);
    assert_eq!(tcp6.len(), 1);
    assert_eq!(tcp6[0]["bytes_up"], 5 * (40 + 20 + 50));
    assert_eq!(
        (
            tcp6[0]["packets_down"].as_u64(),
            tcp6[0]["end_reason"].as_str()
        ),
        (Some(1), Some("rst"))
    );
    let udp6 = find("fd00::10", 5353);
    assert_eq!(udp6.len(), 2, "one idle, then a new one at exit: {udp6:?}");
    assert_eq!(udp6[0]["bytes_up"], 4 * (40 + 8 + 8 + 8 + 30));
    assert_eq!(
        (
            udp6[0]["end_reason"].as_str(),
            udp6[1]["end_reason"].as_str()
        ),
        (Some("idle"), Some("exit"))
    );
    assert_eq!(udp6[1]["bytes_up"], 40 + 8 + 30);
}

/// Several inputs: standard input, and NULL-link captures like nDPI's.
#[test]
fn standard_input_and_summary_options() {
    let dir = TempDir::new("stdin");
    let path = scene_capture(&dir);
    let mut child = Command::new(vpnfp_bin())
        .args(["replay", "-", "--json", "--window", "1", "--count", "50"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&bytes));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert_same_records_as_a_plain_replay(&out, &path);
    // --all-windows without --json: every window in the text log.
    let out = Command::new(vpnfp_bin())
        .args([
            "replay",
            "--all-windows",
            "--window",
            "1",
            "--count",
            "100000",
        ])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("window closed: host 192.168.1.10"),
        "{stderr}"
    );
    // The research never judges a host's last window (no timer): said.
    let out = Command::new(vpnfp_bin())
        .args(["replay", "--window", "1", "--count", "50"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("host(s) ended with an open window holding more than COUNT=50"),
        "{stderr}"
    );
}

/// A failed write to stdout (a full disk) is not silent: replay exits 1.
#[test]
fn a_failed_write_makes_replay_exit_non_zero() {
    let dir = TempDir::new("full");
    let path = scene_capture(&dir);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let out = Command::new(vpnfp_bin())
        .args(["replay", "--json", "--window", "1", "--count", "50"])
        .arg(&path)
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("could not be written to standard output"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// A machine that refuses the address space the flow tables would reserve
/// up front for their default capacity (a small router, strict
/// overcommit): the tables grow as they fill instead, and the replay
/// gives the same records.
#[test]
fn replay_runs_where_address_space_is_short() {
    use std::os::unix::process::CommandExt;
    let dir = TempDir::new("short-as");
    let path = scene_capture(&dir);
    let mut cmd = Command::new(vpnfp_bin());
    cmd.args(["replay", "--json", "--window", "1", "--count", "50"])
        .arg(&path);
    // 400 MB: less than the identifier's table alone would reserve for
    // the default 1,000,000 flows.
    let limit = libc::rlimit {
        rlim_cur: 400 << 20,
        rlim_max: 400 << 20,
    };
    // SAFETY: setrlimit is async-signal-safe, and only the child's limit
    // changes.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_AS, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    assert_same_records_as_a_plain_replay(&cmd.output().unwrap(), &path);
}
