//! What vpnfp keeps and shares: the store (and its crash safety), `vpnfp
//! report` (JSON, and the HTML page in a real headless Chromium), and IPFIX
//! through a real collector (nfdump's nfcapd).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use pcap_file::{DataLink, TsResolution};
use vpnfp_tests::{
    captures::{lab_capture, write_pcap},
    frames,
    netns::NetNs,
    privileged,
    scratch::TempDir,
    script::Scripted,
    vpnfp_bin, vpnfp_report,
};

fn vpnfp() -> Command {
    let mut cmd = Command::new(vpnfp_bin());
    cmd.env_remove("VPNFP_NO_STORE").env_remove("VPNFP_STORE");
    cmd
}

const LAB: [&str; 10] = [
    "wg.pcap",
    "ovpnu.pcap",
    "ovpnt.pcap",
    "anyc.pcap",
    "ipsec.pcap",
    "ss.pcap",
    "ssh.pcap",
    "web.pcap",
    "video.pcap",
    "dnsq.pcap",
];

/// `vpnfp replay --store DB` of one lab capture.
fn replay_into(db: &Path, capture: &str) -> std::process::Output {
    vpnfp()
        .args(["replay", "--store"])
        .arg(db)
        .arg(lab_capture(capture))
        .output()
        .unwrap()
}

/// Replays every lab capture into one store (one run each).
fn lab_store(db: &Path) {
    for f in LAB {
        let out = replay_into(db, f);
        assert!(
            out.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn report_json(db: &Path, extra: &[&str]) -> serde_json::Value {
    let mut args: Vec<&std::ffi::OsStr> = vec!["--json".as_ref()];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    serde_json::from_slice(&vpnfp_report(db, &args)).expect("one JSON object")
}

#[test]
fn the_report_tells_who_used_which_vpn() {
    let dir = TempDir::new("report");
    let db = dir.join("lab.db");
    lab_store(&db);
    let r = report_json(&db, &[]);
    assert_eq!(r["mode"], "replay");
    assert_eq!(r["hosts_seen"], 10);
    let flagged: BTreeMap<String, (String, Vec<String>)> = r["flagged"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["host"].as_str().unwrap().to_string(),
                (
                    f["verdict"].as_str().unwrap().to_string(),
                    vpnfp_tests::vpnlab::strings(&f["protocols"]),
                ),
            )
        })
        .collect();
    let want = |p: &str| ("vpn".to_string(), vec![p.to_string()]);
    assert_eq!(flagged["192.168.90.11"], want("wireguard"));
    assert_eq!(flagged["192.168.90.12"], want("openvpn"));
    assert_eq!(flagged["192.168.90.13"], want("openvpn"));
    assert_eq!(flagged["192.168.90.14"], want("anyconnect"));
    assert_eq!(flagged["192.168.90.15"], want("ipsec"));
    // Ordinary hosts are in the report, not flagged.
    for h in ["192.168.90.21", "192.168.90.22", "192.168.90.23"] {
        assert!(!flagged.contains_key(h), "{h} flagged");
    }
    let host = |addr: &str| {
        r["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["host"] == addr)
            .unwrap_or_else(|| panic!("{addr} missing"))
            .clone()
    };
    let wg = host("192.168.90.11");
    // The capture's exact traffic (see its README): 30 packets each way.
    assert_eq!(wg["packets_up"], 30);
    assert_eq!(wg["packets_down"], 30);
    assert_eq!(wg["top_peers"][0]["peer"]["addr"], "198.51.100.1");
    assert_eq!(wg["detections"][0]["protocol"], "wireguard");
    assert!(wg["first_flagged"].as_f64().unwrap() > 1.7e9);
    let protocols: Vec<&str> = wg["by_protocol"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["protocol"].as_str().unwrap())
        .collect();
    assert_eq!(protocols, vec!["wireguard", "dns"]);
    let web = host("192.168.90.21");
    assert_eq!(web["verdict"], "none");
    assert!(web["flows"].as_i64().unwrap() > 5);
    // The timeline marks the VPN in use.
    assert!(
        wg["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| vpnfp_tests::vpnlab::strings(&s["vpn"]) == vec!["wireguard".to_string()])
    );
    // Protocols over time count every identification.
    let total: i64 = r["protocols_over_time"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["counts"]
                .as_object()
                .unwrap()
                .values()
                .map(|c| c.as_i64().unwrap())
                .sum::<i64>()
        })
        .sum();
    assert!(total >= 7, "{total}");
    // One host, and a range that holds nothing of it.
    let one = report_json(&db, &["--host", "192.168.90.12"]);
    assert_eq!(one["hosts"].as_array().unwrap().len(), 1);
    assert_eq!(one["hosts"][0]["verdict"], "vpn");
    // The tables say the same for people.
    let text = vpnfp()
        .args(["report", "--store"])
        .arg(&db)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("192.168.90.11") && text.contains("wireguard"),
        "{text}"
    );
    // A missing store is one clear line.
    let missing = vpnfp()
        .args(["report", "--store"])
        .arg(dir.join("none.db"))
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no store at"));
}

#[test]
fn the_html_report_renders_in_a_real_browser() {
    if !privileged("the_html_report_renders_in_a_real_browser") {
        return;
    }
    let dir = TempDir::new("html");
    let db = dir.join("lab.db");
    lab_store(&db);
    let page = dir.join("report.html");
    let out = vpnfp()
        .args(["report", "--store"])
        .arg(&db)
        .arg("--html")
        .arg(&page)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("<script") && !html.contains("http://") && !html.contains("https://"),
        "self-contained"
    );
    let chromium = |args: &[&str]| {
        let out = Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--enable-logging=stderr",
                "--v=0",
            ])
            .arg(format!("--user-data-dir={}", dir.join("profile").display()))
            .args(args)
            .arg(format!("file://{}", page.display()))
            .stdin(Stdio::null())
            .output()
            .expect("chromium (Debian's chromium package; cargo xtask setup installs it)");
        assert!(
            out.status.success(),
            "chromium: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let dom = chromium(&["--dump-dom"]);
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    for needle in [
        "data-host=\"192.168.90.11\"",
        "data-verdict=\"vpn\"",
        ">wireguard<",
        ">openvpn<",
        ">anyconnect<",
        ">ipsec<",
        "data-host=\"192.168.90.22\"",
        "<svg",
        "id=\"services-over-time\"",
        "id=\"tunnel-share\"",
        "class=\"service\"",
    ] {
        assert!(dom_text.contains(needle), "the rendered DOM lacks {needle}");
    }
    let console: Vec<String> = String::from_utf8_lossy(&dom.stderr)
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .map(str::to_string)
        .collect();
    assert!(console.is_empty(), "console messages: {console:?}");
    let shot = dir.join("report.png");
    chromium(&[
        "--window-size=1000,1400",
        &format!("--screenshot={}", shot.display()),
    ]);
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let pixels = &buf[..info.buffer_size()];
    let px = info.color_type.samples();
    let distinct: std::collections::BTreeSet<&[u8]> = pixels.chunks(px).collect();
    assert!(
        distinct.len() > 20,
        "a blank screenshot ({} colours)",
        distinct.len()
    );
    let dark = pixels
        .chunks(px)
        .filter(|p| p[..3].iter().all(|&c| c < 128))
        .count();
    assert!(dark > 1000, "no text or bars drawn ({dark} dark pixels)");
}

/// A capture of `hosts` hosts each sending to its own peer over `secs`
/// seconds, 100 frames a second each: many flows that end as time passes.
fn many_flows(path: &Path, hosts: u32, secs: u32) {
    let mut frames = Vec::new();
    let t0 = 1_800_000_000_000_000_000u64;
    for s in 0..secs * 100 {
        for h in 0..hosts {
            let host =
                std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(10, 1, 0, 0)) + h);
            let peer = std::net::Ipv4Addr::new(198, 51, 100, (h % 200) as u8 + 1);
            let sport = 1024 + (s / 100) as u16; // a new flow every second
            frames.push(Scripted::ingress(
                t0 + s as u64 * 10_000_000 + h as u64 * 1_000,
                frames::udp_with(host, peer, sport, 53000, &[7; 40]),
            ));
        }
    }
    write_pcap(path, DataLink::ETHERNET, &frames, TsResolution::MicroSecond);
}

fn flows_in(db: &Path) -> (String, i64) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    let flows: i64 = conn
        .query_row("SELECT COUNT(*) FROM flows", [], |r| r.get(0))
        .unwrap();
    (check, flows)
}

#[test]
fn the_store_survives_kill_9_in_the_middle_of_heavy_writes() {
    let dir = TempDir::new("kill");
    let capture = dir.join("many.pcap");
    many_flows(&capture, 400, 120);
    let db = dir.join("store.db");
    let start = Instant::now();
    let mut child = vpnfp()
        .args(["replay", "--flow-idle", "1", "--store"])
        .arg(&db)
        .arg(&capture)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill once batches are landing and more are coming.
    loop {
        std::thread::sleep(Duration::from_millis(20));
        if db.exists() && flows_in(&db).1 > 1_000 {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "replay ended before the kill: make the capture longer"
        );
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no rows after 60 s"
        );
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let (check, flows) = flows_in(&db);
    assert_eq!(check, "ok");
    assert!(flows > 1_000, "{flows}");
    // Committed batches are whole: every flow row is complete.
    let conn = rusqlite::Connection::open(&db).unwrap();
    let bad: i64 = conn
        .query_row("SELECT COUNT(*) FROM flows WHERE packets_up + packets_down = 0 OR host = '' OR run IS NULL", [], |r| r.get(0))
        .unwrap();
    assert_eq!(bad, 0);
    drop(conn);
    // The store opens again and takes the next run.
    let again = replay_into(&db, "wg.pcap");
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let conn = rusqlite::Connection::open(&db).unwrap();
    let runs: i64 = conn
        .query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(runs, 2);
    let all: i64 = conn
        .query_row("SELECT COUNT(*) FROM flows", [], |r| r.get(0))
        .unwrap();
    assert_eq!(all, flows + 2);
    eprintln!("measured: kill -9 after {flows} flow rows; integrity ok; reopened");
}

#[test]
fn a_full_disk_is_reported_and_fingerprinting_goes_on() {
    if !privileged("a_full_disk_is_reported_and_fingerprinting_goes_on") {
        return;
    }
    let dir = TempDir::new("full");
    let capture = dir.join("many.pcap");
    many_flows(&capture, 200, 30);
    let mnt = dir.join("mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    // A 300 kB filesystem in a mount namespace of its own: the machine's
    // mounts never change.
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs -o size=300k tmpfs {m} && exec \"$0\" replay --json --flow-idle 1 --store {m}/store.db {c}",
            m = mnt.display(),
            c = capture.display()
        ))
        .arg(vpnfp_bin())
        .env_remove("VPNFP_NO_STORE")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("could not be written"), "{stderr}");
    assert!(
        stderr.contains("could not be kept in the store"),
        "{stderr}"
    );
    // Every flow was still reported.
    let reported = String::from_utf8_lossy(&out.stdout)
        .matches("\"event\":\"flow\"")
        .count();
    assert_eq!(reported, 200 * 30, "{stderr}");
}

/// nfcapd in a namespace of its own; what nfdump reads back.
fn through_nfcapd(
    ns: &NetNs,
    dir: &Path,
    send: impl FnOnce(&str),
) -> Vec<(String, String, u16, u16, u8, u64, u64)> {
    let flows = dir.join("nfcapd");
    std::fs::create_dir_all(&flows).unwrap();
    let mut nfcapd = ns
        .command("nfcapd")
        .args(["-b", "127.0.0.1", "-p", "9995", "-t", "3600", "-w"])
        .arg(&flows)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nfcapd (Debian's nfdump package)");
    std::thread::sleep(Duration::from_millis(700));
    send("127.0.0.1:9995");
    std::thread::sleep(Duration::from_millis(700));
    // SAFETY: our own child.
    unsafe { libc::kill(nfcapd.id() as i32, libc::SIGTERM) };
    nfcapd.wait().unwrap();
    let out = Command::new("nfdump")
        .arg("-R")
        .arg(&flows)
        .args(["-q", "-N", "-o", "fmt:%sa|%da|%sp|%dp|%pr|%pkt|%byt"])
        .output()
        .expect("nfdump");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains('|'))
        .map(|l| {
            let f: Vec<&str> = l.split('|').map(str::trim).collect();
            let proto = match f[4] {
                "TCP" => 6,
                "UDP" => 17,
                "ICMP" => 1,
                other => other.parse().unwrap_or(0),
            };
            (
                f[0].to_string(),
                f[1].to_string(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
                proto,
                f[5].parse().unwrap(),
                f[6].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn ipfix_reaches_nfcapd_and_nfdump_reads_back_exactly_what_vpnfp_counted() {
    if !privileged("ipfix_reaches_nfcapd_and_nfdump_reads_back_exactly_what_vpnfp_counted") {
        return;
    }
    let dir = TempDir::new("ipfix");
    // IPv4: the lab's captures; IPv6: generated.
    let v6 = dir.join("v6.pcap");
    let h6: std::net::Ipv6Addr = "2001:db8:1::10".parse().unwrap();
    let p6: std::net::Ipv6Addr = "2001:db8:2::7".parse().unwrap();
    let frames6: Vec<Scripted> = (0..50u64)
        .map(|i| {
            let (s, d, sp, dp) = if i % 3 == 2 {
                (p6, h6, 443, 40000)
            } else {
                (h6, p6, 40000, 443)
            };
            Scripted::ingress(
                1_800_000_000_000_000_000 + i * 1_000_000,
                frames::udp6(s, d, sp, dp, &vec![1; 100 + i as usize], None),
            )
        })
        .collect();
    write_pcap(&v6, DataLink::ETHERNET, &frames6, TsResolution::MicroSecond);
    let mut files: Vec<PathBuf> = ["wg.pcap", "ovpnt.pcap", "web.pcap"]
        .iter()
        .map(|f| lab_capture(f))
        .collect();
    files.push(v6);
    let ns = NetNs::new("ipfix");
    let mut json = String::new();
    let got = through_nfcapd(&ns, &dir, |target| {
        for f in &files {
            let out = ns
                .command(vpnfp_bin())
                .args(["replay", "--json", "--ipfix", target])
                .arg(f)
                .env("VPNFP_NO_STORE", "1")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            json.push_str(&String::from_utf8_lossy(&out.stdout));
        }
    });
    // What vpnfp counted: each flow record as two uniflows.
    let mut want = Vec::new();
    for line in json.lines() {
        let e: serde_json::Value = serde_json::from_str(line).unwrap();
        if e["event"] != "flow" {
            continue;
        }
        let proto = match e["transport"].as_str() {
            Some("tcp") => 6,
            Some("udp") => 17,
            _ => e["transport"].as_u64().unwrap_or(0) as u8,
        };
        let s = |k: &str| e[k].as_str().unwrap().to_string();
        let n = |k: &str| e[k].as_u64().unwrap();
        if n("packets_up") > 0 {
            want.push((
                s("host"),
                s("peer"),
                n("host_port") as u16,
                n("peer_port") as u16,
                proto,
                n("packets_up"),
                n("bytes_up"),
            ));
        }
        if n("packets_down") > 0 {
            want.push((
                s("peer"),
                s("host"),
                n("peer_port") as u16,
                n("host_port") as u16,
                proto,
                n("packets_down"),
                n("bytes_down"),
            ));
        }
    }
    let (mut got, mut want) = (got, want);
    got.sort();
    want.sort();
    assert!(
        want.iter().any(|w| w.0.contains(':')),
        "IPv6 flows are in the test"
    );
    assert_eq!(
        got.len(),
        want.len(),
        "flows: nfdump {got:?}\nvpnfp {want:?}"
    );
    assert_eq!(got, want);
    let packets: u64 = got.iter().map(|g| g.5).sum();
    eprintln!(
        "measured: {} uniflows, {packets} packets through nfcapd/nfdump, identical",
        got.len()
    );

    // softflowd exporting the same IPv4 capture to the same kind of
    // collector: a cross-check of the collector setup.
    let dir2 = TempDir::new("softflowd");
    let theirs = through_nfcapd(&ns, &dir2, |target| {
        let out = ns
            .command("softflowd")
            .args(["-r"])
            .arg(lab_capture("wg.pcap"))
            .args(["-n", target, "-v", "10"])
            .output()
            .expect("softflowd (Debian's softflowd package)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    let theirs_packets: u64 = theirs.iter().map(|g| g.5).sum();
    assert_eq!(
        theirs_packets, 60,
        "softflowd's export of wg.pcap: {theirs:?}"
    );
}

/// The store holds every host's history: a new one is 0600 in a 0700
/// directory, WAL files alike, and a wider existing file is said out loud.
#[test]
fn the_store_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("private");
    let db = dir.join("var/vpnfp/store.db");
    let out = replay_into(&db, "wg.pcap");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(db.parent().unwrap()), 0o700);
    for entry in std::fs::read_dir(db.parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    // An existing store that others can read: a warning, and it works.
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = replay_into(&db, "wg.pcap");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("readable by others (mode 644)"), "{stderr}");
}

/// Issue 19, item 5: a 2-packet capture dated 2100 replayed into a store
/// deleted every earlier row (retention counted back from the newest row),
/// and `report --since 7d` showed only it. Now a replay deletes nothing,
/// and a row dated in the future is kept, counted and never "now".
#[test]
fn a_replay_deletes_nothing_and_a_row_from_2100_is_not_now() {
    let dir = TempDir::new("future");
    let db = dir.join("store.db");
    let out = replay_into(&db, "wg.pcap");
    assert!(out.status.success());
    let (_, before) = flows_in(&db);
    assert!(before > 0);
    let future = dir.join("2100.pcap");
    let t2100 = 4_102_444_800_000_000_000u64;
    let host = std::net::Ipv4Addr::new(10, 9, 9, 9);
    let peer = std::net::Ipv4Addr::new(203, 0, 113, 99);
    write_pcap(
        &future,
        DataLink::ETHERNET,
        &[
            Scripted::ingress(t2100, frames::udp_with(host, peer, 1000, 53, &[1; 20])),
            Scripted::ingress(
                t2100 + 1_000,
                frames::udp_with(peer, host, 53, 1000, &[2; 20]),
            ),
        ],
        TsResolution::MicroSecond,
    );
    let out = vpnfp()
        .args(["replay", "--retain", "1h", "--store"])
        .arg(&db)
        .arg(&future)
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("dated more than a day after"), "{stderr}");
    let (check, after) = flows_in(&db);
    assert_eq!(check, "ok");
    assert_eq!(after, before + 1, "the replay deleted rows");
    let r = report_json(&db, &["--mode", "replay", "--since", "7d"]);
    assert_eq!(r["future_rows"], 1, "{r}");
    assert!(
        r["until"].as_f64().unwrap() < 4_000_000_000.0,
        "a row from 2100 was taken as now: {}",
        r["until"]
    );
    let hosts: Vec<&str> = r["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["host"].as_str().unwrap())
        .collect();
    assert!(hosts.contains(&"192.168.90.11"), "{hosts:?}");
    assert!(!hosts.contains(&"10.9.9.9"), "{hosts:?}");
}

/// Nearest-rank quantile of `v` (sorted here), as the report computes it.
fn nearest_rank(v: &mut [f64], q: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let rank = (q * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

#[test]
fn per_service_statistics_match_the_flows_they_come_from() {
    let dir = TempDir::new("services");
    let db = dir.join("lab.db");
    lab_store(&db);
    let list = dir.join("services.txt");
    std::fs::write(
        &list,
        "# the lab's web servers\n[Lab web] vpnfp lab\nlab.example\n",
    )
    .unwrap();
    let csv_dir = dir.join("csv");
    let r = report_json(
        &db,
        &[
            "--services",
            list.to_str().unwrap(),
            "--csv",
            csv_dir.to_str().unwrap(),
        ],
    );
    let sv = &r["services"];
    let services = sv["services"].as_array().expect("services");
    let web = services
        .iter()
        .find(|s| s["service"] == "Lab web")
        .unwrap_or_else(|| panic!("no Lab web service: {services:?}"));
    assert_eq!(web["organisation"], "vpnfp lab");
    assert_eq!(web["by"], "list");
    // The report and the flows it was computed from, through the CSV.
    let mut reader = csv::Reader::from_path(csv_dir.join("flows.csv")).expect("flows.csv");
    let header = reader.headers().unwrap().clone();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert!(!rows.is_empty(), "no flows in flows.csv");
    let of_web: Vec<&csv::StringRecord> = rows
        .iter()
        .filter(|r| &r[col("service")] == "Lab web")
        .collect();
    assert_eq!(web["flows"].as_u64().unwrap() as usize, of_web.len());
    let num = |r: &csv::StringRecord, c: &str| r[col(c)].parse::<f64>().unwrap();
    let up: f64 = of_web.iter().map(|r| num(r, "bytes_up")).sum();
    assert_eq!(web["bytes_up"].as_f64().unwrap(), up);
    let mut sizes: Vec<f64> = of_web
        .iter()
        .map(|r| num(r, "bytes_up") + num(r, "bytes_down"))
        .collect();
    for (q, key) in [(0.5, "p50"), (0.9, "p90"), (0.99, "p99")] {
        assert_eq!(
            web["size"][key].as_f64().unwrap(),
            nearest_rank(&mut sizes, q),
            "size {key}"
        );
    }
    let mut durations: Vec<f64> = of_web
        .iter()
        .map(|r| num(r, "last_seen") - num(r, "first_seen"))
        .collect();
    let p90 = nearest_rank(&mut durations, 0.9);
    assert!((web["duration"]["p90"].as_f64().unwrap() - p90).abs() < 1e-6);
    let histogram: u64 = web["size_histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(histogram as usize, of_web.len());
    // Unnamed peers keep their address; the named share says how much.
    let share = sv["named_share"].as_f64().unwrap();
    assert!(share > 0.0 && share < 1.0, "named share {share}");
    assert!(services.iter().any(|s| s["by"] == "address"));
    // The VPN lab's tunnels are counted as such.
    assert!(sv["tunnelled_bytes"].as_i64().unwrap() > 0);
    // The other files, with their header rows.
    for (file, first) in [("services.csv", "service,"), ("verdicts.csv", "at,")] {
        let text = std::fs::read_to_string(csv_dir.join(file)).unwrap();
        assert!(
            text.starts_with(first),
            "{file}: {:?}",
            &text[..text.len().min(80)]
        );
        assert!(text.lines().count() > 1, "{file} has no rows");
    }
}

#[test]
fn real_captures_name_their_services() {
    let Some(corpus) = vpnfp_tests::corpus::for_test("real_captures_name_their_services") else {
        return;
    };
    let dir = TempDir::new("corpus-services");
    let db = dir.join("c.db");
    for f in [
        "reddit.pcap",
        "wa_voice.pcap",
        "facebook.pcap",
        "tls_heur__vmess-websocket.pcapng",
    ] {
        let out = vpnfp()
            .args(["replay", "--store"])
            .arg(&db)
            .arg(corpus.join("pcap").join(f))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let r = report_json(&db, &[]);
    let services: Vec<(String, String)> = r["services"]["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["service"].as_str().unwrap().to_string(),
                s["organisation"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    for (service, organisation) in [
        ("Reddit", "Reddit"),
        ("WhatsApp", "Meta"),
        ("Facebook", "Meta"),
        ("YouTube", "Google"),
    ] {
        assert!(
            services
                .iter()
                .any(|(s, o)| s == service && o == organisation),
            "{service} not among {services:?}"
        );
    }
}
