//! Replay throughput on a generated capture, next to `tcpdump -r FILE -w
//! /dev/null` on the same file (the libpcap read floor).

use std::{
    fs::File,
    io::{BufWriter, Write},
    net::Ipv4Addr,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use super::{Figure, Size, median};
use vpnfp_tests::frames;

/// Writes (or reuses) a pcap of `frames` Ethernet frames from `hosts` hosts,
/// each with its own peer, 1 µs apart. Written directly: the record layout
/// is trivial and the file is large.
pub fn capture(dir: &Path, frames_n: u64, hosts: u32) -> PathBuf {
    let path = dir.join(format!("replay-{frames_n}-{hosts}.pcap"));
    let expected_len = 24 + frames_n * (16 + 64);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == expected_len) {
        return path;
    }
    std::fs::create_dir_all(dir).expect("scratch dir");
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&path).expect("create capture"));
    w.write_all(&pcap_header()).unwrap();
    let templates: Vec<Vec<u8>> = (0..hosts)
        .map(|i| {
            let host = Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + i);
            let peer = Ipv4Addr::new(198, 51, 100, (i % 250) as u8);
            frames::udp(host, peer, &[])
        })
        .collect();
    let t0 = 1_700_000_000u64 * 1_000_000;
    for n in 0..frames_n {
        let us = t0 + n;
        let frame = &templates[(n % hosts as u64) as usize];
        write_record(&mut w, us, frame);
    }
    w.flush().unwrap();
    path
}

/// Writes (or reuses) a pcap where flows churn: `frames_n` UDP frames with
/// a 32-byte payload (a DNS query's size) from `hosts` hosts, two of every
/// three on a 5-tuple not seen before (new source ports and peers, as scans,
/// P2P and DNS-heavy hosts make), the third repeating an earlier one.
pub fn churn_capture(dir: &Path, frames_n: u64, hosts: u32) -> PathBuf {
    let path = dir.join(format!("churn-{frames_n}-{hosts}.pcap"));
    let payload = [0x42u8; 32];
    let frame_len =
        frames::udp_with(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST, 1, 1, &payload).len() as u64;
    let expected_len = 24 + frames_n * (16 + frame_len);
    if std::fs::metadata(&path).is_ok_and(|m| m.len() == expected_len) {
        return path;
    }
    std::fs::create_dir_all(dir).expect("scratch dir");
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&path).expect("create capture"));
    w.write_all(&pcap_header()).unwrap();
    let t0 = 1_700_000_000u64 * 1_000_000;
    for n in 0..frames_n {
        // Tuple number: new for two frames in three, else one from before.
        let tuple = if n % 3 == 2 { n / 3 } else { n - n / 3 };
        let host =
            Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 0, 0, 0)) + (tuple % hosts as u64) as u32);
        let k = tuple / hosts as u64;
        let peer = Ipv4Addr::new(198, 51, 100, (k % 250) as u8);
        let sport = 1024 + (k / 250 % 60_000) as u16;
        let frame = frames::udp_with(host, peer, sport, 53, &payload);
        let us = t0 + n;
        write_record(&mut w, us, &frame);
    }
    w.flush().unwrap();
    path
}

/// One pcap record at `us` microseconds since the epoch.
fn write_record(w: &mut impl Write, us: u64, frame: &[u8]) {
    w.write_all(&((us / 1_000_000) as u32).to_le_bytes())
        .unwrap();
    w.write_all(&((us % 1_000_000) as u32).to_le_bytes())
        .unwrap();
    w.write_all(&(frame.len() as u32).to_le_bytes()).unwrap();
    w.write_all(&(frame.len() as u32).to_le_bytes()).unwrap();
    w.write_all(frame).unwrap();
}

/// A classic pcap file header: microseconds, Ethernet.
fn pcap_header() -> Vec<u8> {
    let mut header = Vec::new();
    header.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    header.extend_from_slice(&2u16.to_le_bytes());
    header.extend_from_slice(&4u16.to_le_bytes());
    header.extend_from_slice(&[0; 8]);
    header.extend_from_slice(&65535u32.to_le_bytes());
    header.extend_from_slice(&1u32.to_le_bytes());
    header
}

fn time(mut cmd: Command) -> f64 {
    let start = Instant::now();
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    start.elapsed().as_secs_f64()
}

pub fn figures(size: Size, scratch: &Path) -> Vec<Figure> {
    let (frames_n, hosts, runs) = match size {
        Size::Full => (10_000_000u64, 100_000u32, 3),
        Size::Smoke => (200_000, 2_000, 1),
    };
    let path = capture(scratch, frames_n, hosts);
    let vpnfp = vpnfp_tests::vpnfp_bin();
    let replay = || {
        let mut cmd = Command::new(&vpnfp);
        // 1 s windows so windows close all through the file.
        cmd.args(["replay", "--window", "1"]).arg(&path);
        cmd
    };
    let tcpdump = || {
        let mut cmd = Command::new("tcpdump");
        cmd.args(["-q", "-r"]).arg(&path).args(["-w", "/dev/null"]);
        cmd
    };
    // Warm the page cache so both read from memory.
    time(tcpdump());
    let mut v = Vec::new();
    let mut t = Vec::new();
    for _ in 0..runs {
        t.push(time(tcpdump()));
        v.push(time(replay()));
    }
    let (v, t) = (median(v), median(t));
    let rate = frames_n as f64 / v;
    let floor = frames_n as f64 / t;
    // With JSON out (every flow and suspected window) against without, on
    // a capture of 2,000,000 frames.
    let (json_frames, json_hosts) = match size {
        Size::Full => (2_000_000u64, 20_000u32),
        Size::Smoke => (100_000, 1_000),
    };
    let json_path = capture(scratch, json_frames, json_hosts);
    let plain = || {
        let mut cmd = Command::new(&vpnfp);
        cmd.args(["replay", "--window", "1", "--count", "5"])
            .arg(&json_path);
        cmd
    };
    let json = || {
        let mut cmd = plain();
        cmd.arg("--json").stdout(std::process::Stdio::null());
        cmd
    };
    let (mut p, mut j) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        p.push(time(plain()));
        j.push(time(json()));
    }
    let (p, j) = (median(p), median(j));
    // nDPI's reader on the same file (-q: quiet).
    let ndpi_q = {
        let mut cmd = Command::new("ndpiReader");
        cmd.args(["-q", "-i"])
            .arg(&json_path)
            .stdout(std::process::Stdio::null());
        time(cmd)
    };
    let lines = {
        let out = json()
            .stdout(std::process::Stdio::piped())
            .output()
            .expect("replay --json");
        out.stdout.iter().filter(|&&b| b == b'\n').count()
    };
    let mut figures = vec![
        Figure::new(
            "replay with --json (flows and reports)",
            j,
            "s",
            format!("{json_frames} frames, {json_hosts} hosts, {lines} JSON lines to /dev/null; median of {runs}"),
        )
        .against(p)
        .target("<= 1.5 x without output", j <= 1.5 * p),
        Figure::new("replay without output", p, "s", "same file"),
        Figure::new("ndpiReader -q -i FILE", ndpi_q, "s", format!("same file; vpnfp replay is {:.1}x faster", ndpi_q / p)),
        Figure::new("replay throughput", rate, "frames/s", format!("{frames_n} frames, {hosts} hosts, 64-byte frames, 1 s windows; whole `vpnfp replay` process, one core, median of {runs}"))
            .against(floor)
            .target(">= 10,000,000 frames/s", rate >= 10_000_000.0),
        Figure::new("tcpdump -r FILE -w /dev/null", floor, "frames/s", format!("same file; {t:.2} s vs vpnfp {v:.2} s")),
    ];
    figures.extend(churn(size, scratch, runs));
    figures.extend(against_ndpi(size, scratch, runs));
    figures.extend(store(size, scratch));
    figures
}

/// The store at a million flows: replay a capture of one frame per flow
/// with `--store`, against the same replay without; the file's size.
fn store(size: Size, scratch: &Path) -> Vec<Figure> {
    let n: u64 = match size {
        Size::Full => 1_000_000,
        Size::Smoke => 20_000,
    };
    let path = capture(scratch, n, n as u32);
    let vpnfp = vpnfp_tests::vpnfp_bin();
    let db = scratch.join("bench-store.db");
    let clean = || {
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
        }
    };
    clean();
    let with = {
        let mut cmd = Command::new(&vpnfp);
        cmd.args(["replay", "--max-flows", "2000000", "--store"])
            .arg(&db)
            .arg(&path)
            .env_remove("VPNFP_NO_STORE");
        time(cmd)
    };
    let bytes = std::fs::metadata(&db).map_or(0, |m| m.len());
    let rows: i64 = rusqlite::Connection::open(&db)
        .and_then(|c| c.query_row("SELECT COUNT(*) FROM flows", [], |r| r.get(0)))
        .unwrap_or(0);
    clean();
    let without = {
        let mut cmd = Command::new(&vpnfp);
        cmd.args(["replay", "--max-flows", "2000000"]).arg(&path);
        time(cmd)
    };
    let rate = rows as f64 / with.max(1e-9);
    // IPFIX export of the same flows to a socket that drains them.
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").expect("a sink socket");
    let target = sink.local_addr().expect("address");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let drained = {
        let stop = stop.clone();
        sink.set_read_timeout(Some(std::time::Duration::from_millis(100)))
            .ok();
        std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if sink.recv(&mut buf).is_ok() {
                    n += 1;
                }
            }
            n
        })
    };
    let exported = {
        let mut cmd = Command::new(&vpnfp);
        cmd.args([
            "replay",
            "--max-flows",
            "2000000",
            "--ipfix",
            &target.to_string(),
        ])
        .arg(&path);
        time(cmd)
    };
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let messages = drained.join().unwrap_or(0);
    vec![
        Figure::new(
            "IPFIX export",
            n as f64 / exported.max(1e-9),
            "flow records/s",
            format!("{n} flows (one uniflow each) in {exported:.2} s, whole replay; {messages} messages received by a local sink"),
        ),
        Figure::new(
            "store: flow records written",
            rate,
            "records/s",
            format!("{rows} of {n} flows kept (replay --store, one frame per flow); {with:.2} s vs {without:.2} s without the store"),
        )
        .target("every flow kept", rows as u64 == n),
        Figure::new(
            "store: size per million flows",
            bytes as f64 / rows.max(1) as f64 * 1e6 / (1 << 20) as f64,
            "MiB",
            format!("{bytes} bytes for {rows} flow rows (SQLite, WAL checkpointed, with indexes)"),
        ),
    ]
}

/// The lab's captures of real VPNs and ordinary hosts, repeated with the
/// LAN hosts renumbered (192.168.90.x becomes 10.a.b.x) so every
/// repetition is new flows, and shifted in time.
fn lab_mix(dir: &Path, repeats: u32) -> (PathBuf, u64) {
    let path = dir.join(format!("lab-mix-{repeats}.pcap"));
    let mut sources: Vec<Vec<vpnfp_tests::script::Scripted>> =
        std::fs::read_dir(vpnfp_tests::captures::lab_capture(""))
            .expect("tests/data/captures")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "pcap"))
            .map(|p| vpnfp_tests::captures::read_pcap(&p))
            .collect();
    sources.sort_by_key(|s| s.len());
    let per_round: u64 = sources.iter().map(|s| s.len() as u64).sum();
    let frames_n = per_round * repeats as u64;
    if std::fs::metadata(&path).is_ok() {
        return (path, frames_n);
    }
    std::fs::create_dir_all(dir).expect("scratch dir");
    let mut w = BufWriter::with_capacity(1 << 20, File::create(&path).expect("create capture"));
    w.write_all(&pcap_header()).unwrap();
    let t0 = sources
        .iter()
        .filter_map(|s| s.first().map(|f| f.ts_ns))
        .min()
        .unwrap_or(0);
    for r in 0..repeats {
        let shift = r as u64 * 30_000_000_000;
        for source in &sources {
            for f in source {
                let mut frame = f.frame.clone();
                // IPv4 source and destination at 26 and 30 (no VLAN in the lab).
                for at in [26, 30] {
                    if frame.len() >= at + 4 && frame[at] == 192 && frame[at + 1] == 168 {
                        frame[at] = 10;
                        frame[at + 1] = (r >> 8) as u8;
                        frame[at + 2] = r as u8;
                    }
                }
                let us = (f.ts_ns - t0 + shift) / 1_000 + 1_700_000_000_000_000;
                write_record(&mut w, us, &frame);
            }
        }
    }
    w.flush().unwrap();
    (path, frames_n)
}

/// `vpnfp replay` (identification on, as by default) against nDPI's
/// `ndpiReader` on the same capture of real VPN and ordinary traffic.
fn against_ndpi(size: Size, scratch: &Path, runs: usize) -> Vec<Figure> {
    let repeats = match size {
        Size::Full => 2_600,
        Size::Smoke => 40,
    };
    let (path, frames_n) = lab_mix(scratch, repeats);
    let vpnfp = vpnfp_tests::vpnfp_bin();
    let replay = || {
        let mut cmd = Command::new(&vpnfp);
        cmd.arg("replay").arg(&path);
        cmd
    };
    let ndpi = || {
        let mut cmd = Command::new("ndpiReader");
        cmd.arg("-i").arg(&path).stdout(std::process::Stdio::null());
        cmd
    };
    let (mut v, mut n) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        v.push(time(replay()));
        n.push(time(ndpi()));
    }
    let (v, n) = (median(v), median(n));
    let (rv, rn) = (frames_n as f64 / v, frames_n as f64 / n);
    vec![
        Figure::new(
            "replay with identification, real VPN captures",
            rv,
            "frames/s",
            format!("{frames_n} frames: the lab's 10 captures x {repeats}, hosts renumbered; whole process, median of {runs}; {v:.2} s vs ndpiReader {n:.2} s"),
        )
        .against(rn)
        .target(">= 10 x ndpiReader", rv >= 10.0 * rn),
        Figure::new("ndpiReader -i FILE (nDPI 4.2)", rn, "frames/s", "same file"),
    ]
}

/// Replay where flows churn (two frames in three a new 5-tuple), flows and
/// identification on as by default: against `tcpdump -r` reading the same
/// file, and with `--json` (every flow record written) against ndpiReader.
pub fn churn(size: Size, scratch: &Path, runs: usize) -> Vec<Figure> {
    let (frames_n, hosts) = match size {
        Size::Full => (2_000_000u64, 100_000u32),
        Size::Smoke => (60_000, 2_000),
    };
    let path = churn_capture(scratch, frames_n, hosts);
    let vpnfp = vpnfp_tests::vpnfp_bin();
    let replay = |json: bool| {
        let mut cmd = Command::new(&vpnfp);
        cmd.args(["replay", "--max-flows", "2000000"]).arg(&path);
        if json {
            cmd.arg("--json");
        }
        cmd.stdout(std::process::Stdio::null());
        cmd
    };
    let tcpdump = || {
        let mut cmd = Command::new("tcpdump");
        cmd.args(["-q", "-r"]).arg(&path).args(["-w", "/dev/null"]);
        cmd
    };
    let ndpi = || {
        let mut cmd = Command::new("ndpiReader");
        cmd.args(["-q", "-i"])
            .arg(&path)
            .stdout(std::process::Stdio::null());
        cmd
    };
    time(tcpdump());
    let (mut t, mut v, mut j, mut n) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        t.push(time(tcpdump()));
        v.push(time(replay(false)));
        j.push(time(replay(true)));
        n.push(time(ndpi()));
    }
    let (t, v, j, n) = (median(t), median(v), median(j), median(n));
    let rate = |s: f64| frames_n as f64 / s;
    let what = format!(
        "{frames_n} frames from {hosts} hosts, 32-byte UDP payloads, two in three a new 5-tuple; whole process, median of {runs}"
    );
    vec![
        Figure::new(
            "replay throughput, flow churn",
            rate(v),
            "frames/s",
            what.clone(),
        )
        .against(rate(t))
        .target(">= tcpdump -r", v <= t),
        Figure::new(
            "replay --json throughput, flow churn",
            rate(j),
            "frames/s",
            format!("{what}; every flow record written to /dev/null"),
        )
        .against(rate(n))
        .target(">= 10 x ndpiReader -q", j * 10.0 <= n),
        Figure::new(
            "tcpdump -r FILE -w /dev/null, flow churn",
            rate(t),
            "frames/s",
            "same file",
        ),
        Figure::new(
            "ndpiReader -q -i FILE, flow churn",
            rate(n),
            "frames/s",
            "same file",
        ),
    ]
}
