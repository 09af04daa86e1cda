//! Replay mode: generated captures with known decisions, every link type,
//! bad input, and record-for-record parity with the XDP program.

use std::{
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::Command,
};

use pcap_file::{DataLink, TsResolution};
use vpnfp::{capture::LinkType, engine::Engine, replay::replay_files};
use vpnfp_common::{InternalRanges, KernelConfig, NANOS_PER_SEC, Outcome, WindowClose};
use vpnfp_tests::{
    captures::{write_pcap, write_pcapng},
    fixtures::{Expected, parse_vectors},
    frames::{self, ETH_P_8021AD, ETH_P_8021Q, ETH_P_ARP, ETH_P_IPV6},
    harness::TestProgram,
    privileged,
    script::{Scripted, mixed_traffic},
    vpnfp_bin,
};

const MS: u64 = 1_000_000;
/// 2023-11-14T22:13:20Z: captures carry real-looking Unix times.
const EPOCH: u64 = 1_700_000_000 * NANOS_PER_SEC;

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("vpnfp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn ip(a: u8, b: u8, c: u8, d: u8) -> Ipv4Addr {
    Ipv4Addr::new(a, b, c, d)
}

fn replay_cli(files: &[&Path], args: &[&str]) -> (std::process::Output, Vec<serde_json::Value>) {
    let out = Command::new(vpnfp_bin())
        .arg("replay")
        .args(files)
        .args(args)
        .arg("--json")
        .output()
        .expect("run vpnfp replay");
    let lines = String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    (out, lines)
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
        frames.push(Scripted { ts_ns: t, frame: f });
        // B: VPN-like in QinQ, with one packet to another peer at 30.005 s.
        frames.push(Scripted {
            ts_ns: t + 5_000,
            frame: frames::udp(b, b_peer, &[ETH_P_8021AD, ETH_P_8021Q]),
        });
        if i == 3_000 {
            frames.push(Scripted {
                ts_ns: t + 5 * MS,
                frame: frames::udp(b, b_other, &[ETH_P_8021AD, ETH_P_8021Q]),
            });
        }
        // C: browsing, a new peer every packet, one VLAN tag.
        frames.push(Scripted {
            ts_ns: t + 7_000,
            frame: frames::udp(c, ip(198, 51, 100, 100 + (i % 100) as u8), &[ETH_P_8021Q]),
        });
        // ARP and IPv6 every second: ignored.
        if i % 100 == 50 {
            frames.push(Scripted {
                ts_ns: t + 8_000,
                frame: frames::other(ETH_P_ARP),
            });
            frames.push(Scripted {
                ts_ns: t + 9_000,
                frame: frames::other(ETH_P_IPV6),
            });
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
    let got: Vec<(String, String, f64, f64, u64, u64, String)> = reports
        .iter()
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

    // The summary: every frame counted once, ARP/IPv6 ignored.
    let config = KernelConfig::new(60 * NANOS_PER_SEC, InternalRanges::research());
    let (engine, result) =
        replay_files(&[f1, f2], config, vpnfp::engine::DEFAULT_MAX_HOSTS, |_| {});
    result.unwrap();
    let c = engine.counters();
    assert_eq!(c.seen, scene.len() as u64);
    assert_eq!(c.outcome(Outcome::IgnoredNotIpv4), 260);
    assert_eq!(c.analysed(), 3 * 13_000 + 1);
    assert_eq!(c.windows_closed, 3);
    assert_eq!(engine.hosts().len(), 3);
}

#[test]
fn parse_vectors_replay_as_expected() {
    let config = KernelConfig::new(NANOS_PER_SEC, InternalRanges::research());
    for v in parse_vectors() {
        let mut engine = Engine::new(config);
        engine.frame(LinkType::Ethernet.parse(&v.frame), 0);
        let c = engine.counters();
        match v.expected {
            Expected::Internal => assert_eq!(
                c.outcome(Outcome::IgnoredLanInternal),
                1,
                "frame {}",
                v.frame_no
            ),
            Expected::NotIpv4 => assert_eq!(
                c.outcome(Outcome::IgnoredNotIpv4),
                1,
                "frame {}",
                v.frame_no
            ),
            Expected::Analysed { host, peer } => {
                let state = engine
                    .hosts()
                    .get(&u32::from(host))
                    .unwrap_or_else(|| panic!("frame {}", v.frame_no));
                assert_eq!(Ipv4Addr::from(state.peer), peer, "frame {}", v.frame_no);
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
    let ethernet_only: Vec<&Scripted> = script.iter().filter(|s| s.frame.len() > 30).collect();
    // Strip Ethernet + VLAN tags down to the IPv4 packet where there is one.
    let ipv4 = |frame: &[u8]| -> Option<Vec<u8>> {
        let mut at = 12;
        loop {
            match u16::from_be_bytes([frame[at], frame[at + 1]]) {
                0x8100 | 0x88a8 => at += 4,
                0x0800 => return Some(frame[at + 2..].to_vec()),
                _ => return None,
            }
        }
    };
    let packets: Vec<(u64, Vec<u8>)> = ethernet_only
        .iter()
        .filter_map(|s| ipv4(&s.frame).map(|p| (s.ts_ns, p)))
        .collect();
    let eth: Vec<Scripted> = packets
        .iter()
        .map(|(t, p)| {
            let mut f = frames::ethernet(&[], 0x0800);
            f.extend_from_slice(p);
            Scripted {
                ts_ns: *t,
                frame: f,
            }
        })
        .collect();
    let sll: Vec<Scripted> = packets
        .iter()
        .map(|(t, p)| {
            let mut f = vec![0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0];
            f.extend_from_slice(&0x0800u16.to_be_bytes());
            f.extend_from_slice(p);
            Scripted {
                ts_ns: *t,
                frame: f,
            }
        })
        .collect();
    let sll2: Vec<Scripted> = packets
        .iter()
        .map(|(t, p)| {
            let mut f = 0x0800u16.to_be_bytes().to_vec();
            f.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0]);
            f.extend_from_slice(p);
            Scripted {
                ts_ns: *t,
                frame: f,
            }
        })
        .collect();
    let raw: Vec<Scripted> = packets
        .iter()
        .map(|(t, p)| Scripted {
            ts_ns: *t,
            frame: p.clone(),
        })
        .collect();
    let config = KernelConfig::new(300 * MS, InternalRanges::research());
    let mut results = Vec::new();
    for (name, link, frames) in [
        ("eth.pcap", DataLink::ETHERNET, &eth),
        ("sll.pcap", DataLink::LINUX_SLL, &sll),
        ("sll2.pcap", DataLink::LINUX_SLL2, &sll2),
        ("raw.pcap", DataLink::RAW, &raw),
        ("ipv4.pcap", DataLink::IPV4, &raw),
    ] {
        let path = dir.path(name);
        write_pcap(&path, link, frames, TsResolution::NanoSecond);
        let mut closes: Vec<WindowClose> = Vec::new();
        let (engine, result) =
            replay_files(&[path], config, vpnfp::engine::DEFAULT_MAX_HOSTS, |c| {
                closes.push(*c)
            });
        result.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(engine.counters().seen, packets.len() as u64, "{name}");
        results.push((name, closes, *engine.counters()));
    }
    assert!(results[0].1.len() > 50);
    for r in &results[1..] {
        assert_eq!(r.1, results[0].1, "{} vs eth", r.0);
        assert_eq!(r.2, results[0].2, "{} vs eth", r.0);
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
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("vpnfp: error: ")
            && last.contains("cut.pcap")
            && last.contains("truncated record")
            && last.contains("at byte offset"),
        "{stderr}"
    );
    assert!(!reports.is_empty(), "what came before is reported");
    assert!(stderr.contains("replay: 19999 frames read"), "{stderr}");

    // Every truncation point: never a panic, always a clean answer.
    for len in (0..2_000).chain((bytes.len() - 200)..bytes.len()) {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let config = KernelConfig::new(NANOS_PER_SEC, InternalRanges::research());
        let (_, result) = replay_files(
            std::slice::from_ref(&cut),
            config,
            vpnfp::engine::DEFAULT_MAX_HOSTS,
            |_| {},
        );
        let at_boundary = len == 24 || result.is_ok();
        if !at_boundary {
            let e = result.unwrap_err();
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
        let _ = replay_files(
            std::slice::from_ref(&broken),
            config,
            vpnfp::engine::DEFAULT_MAX_HOSTS,
            |_| {},
        );
    }

    // Not a capture, an unsupported link type, a missing file.
    let text = dir.path("notes.txt");
    std::fs::write(&text, "hello, not a capture").unwrap();
    let wifi = dir.path("wifi.pcap");
    write_pcap(
        &wifi,
        DataLink::IEEE802_11_RADIOTAP,
        &scene[..3],
        TsResolution::MicroSecond,
    );
    let missing = dir.path("missing.pcap");
    let directory = dir.0.clone();
    for (path, message) in [
        (&directory, "read error: Is a directory"),
        (&text, "not a pcap or pcapng file"),
        (&wifi, "unsupported link type 127"),
        (&missing, "cannot open"),
    ] {
        let (out, _) = replay_cli(&[&good, path], &[]);
        assert_eq!(out.status.code(), Some(1), "{path:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.lines().last().unwrap().contains(message), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn replay_and_xdp_give_identical_records() {
    if !privileged("replay_and_xdp_give_identical_records") {
        return;
    }
    let dir = TempDir::new("parity");
    let script: Vec<Scripted> = mixed_traffic(0xfeed, 8_000)
        .into_iter()
        .map(|s| Scripted {
            ts_ns: s.ts_ns + EPOCH,
            frame: s.frame,
        })
        .collect();
    let config = KernelConfig::new(250 * MS, InternalRanges::research());
    let mut program = TestProgram::load(config);
    for s in &script {
        program.run_at(&s.frame, s.ts_ns).expect("test_run");
    }
    let xdp = program.window_closes();
    let path = dir.path("parity.pcapng");
    write_pcapng(&path, DataLink::ETHERNET, &script);
    let mut replayed = Vec::new();
    let (engine, result) = replay_files(&[path], config, vpnfp::engine::DEFAULT_MAX_HOSTS, |c| {
        replayed.push(*c)
    });
    result.unwrap();
    assert!(xdp.len() > 100, "{}", xdp.len());
    assert_eq!(replayed, xdp);
    let mut kernel = program.counters();
    kernel.flows_created = 0;
    assert_eq!(*engine.counters(), kernel);
}
