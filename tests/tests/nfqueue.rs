//! NFQUEUE mode and `--mode both` on real traffic in network namespaces:
//! the same decisions as XDP, every packet accepted, rules cleaned up.

use std::{
    collections::{BTreeMap, BTreeSet},
    net::Ipv4Addr,
    process::Stdio,
    time::Duration,
};

use vpnfp_tests::{
    fixtures::{Expected, parse_vectors},
    lab::{ChildGuard, Lab, ROUTER_IF, Sender, send_paced},
    privileged,
    scenario::{self, VPN_HOST, VPN_SERVER, Watch},
    vpnfp_bin,
};

#[test]
fn nfqueue_mode_reports_the_vpn_like_host_only() {
    if !privileged("nfqueue_mode_reports_the_vpn_like_host_only") {
        return;
    }
    let outcome = scenario::vpn_and_browser(&vpnfp_bin(), Watch::Nfqueue, |_| {});
    assert!(outcome.status.success(), "vpnfp exit: {}", outcome.status);
    let reports = outcome.of("suspected_vpn");
    assert!(!reports.is_empty(), "no report for the VPN-like host");
    for r in &reports {
        assert_eq!(r["event"], "suspected_vpn", "{r}");
        assert_eq!(r["mode"], "nfqueue", "{r}");
        assert_eq!(r["host"], VPN_HOST.to_string(), "{r}");
        assert_eq!(r["peer"], VPN_SERVER.to_string(), "{r}");
        let count = r["count_this"].as_u64().unwrap() as f64;
        let secs = r["window_secs"].as_f64().unwrap();
        assert!(
            secs > 2.0 && count >= 480.0 && count <= 300.0 * secs * 1.2 + 10.0,
            "{r}"
        );
    }
}

/// XDP and NFQUEUE on the same traffic: the same hosts flagged, the same
/// windows with counts within the packets in flight at a boundary.
#[test]
fn both_modes_agree_on_live_traffic() {
    if !privileged("both_modes_agree_on_live_traffic") {
        return;
    }
    let outcome = scenario::vpn_and_browser(&vpnfp_bin(), Watch::Both, |_| {});
    assert!(outcome.status.success(), "vpnfp exit: {}", outcome.status);
    let mut flagged: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut windows: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let mut comparison = None;
    for r in &outcome.events {
        match r["event"].as_str() {
            Some("suspected_vpn") => {
                let mode = r["mode"].as_str().unwrap();
                let mode = if mode == "xdp" { "xdp" } else { "nfqueue" };
                flagged
                    .entry(mode)
                    .or_default()
                    .insert(r["host"].as_str().unwrap().to_string());
                windows
                    .entry(mode)
                    .or_default()
                    .push(r["count_this"].as_u64().unwrap());
            }
            Some("comparison") => comparison = Some(r.clone()),
            Some("flow" | "host_verdict" | "vpn_detected") => {}
            other => panic!("unexpected event {other:?}: {r}"),
        }
    }
    let vpn: BTreeSet<String> = [VPN_HOST.to_string()].into();
    assert_eq!(flagged.get("xdp"), Some(&vpn));
    assert_eq!(flagged.get("nfqueue"), Some(&vpn));
    let (x, n) = (&windows["xdp"], &windows["nfqueue"]);
    assert_eq!(x.len(), n.len(), "xdp {x:?} nfqueue {n:?}");
    // 300 packets/s: 3.3 ms apart. The two paths stamp a packet microseconds
    // to a millisecond apart, so a boundary can move by a packet or two.
    for (a, b) in x.iter().zip(n) {
        assert!(a.abs_diff(*b) <= 3, "xdp {x:?} nfqueue {n:?}");
    }
    let c = comparison.expect("a final comparison report");
    assert_eq!(
        c["hosts_flagged_xdp"],
        serde_json::json!([VPN_HOST.to_string()])
    );
    assert_eq!(
        c["hosts_flagged_nfqueue"],
        serde_json::json!([VPN_HOST.to_string()])
    );
    assert_eq!(c["share_identical"].as_f64(), Some(1.0), "{c}");
    assert!(c["max_count_difference"].as_u64().unwrap() <= 3, "{c}");
    eprintln!("measured: XDP {x:?} vs NFQUEUE {n:?} packets per window; {c}");
}

/// The research's parse vectors on the wire: each frame twice, 20 ms apart,
/// with a 1 ms window, so every analysed frame closes one window that names
/// its host and peer. XDP sees every frame; NFQUEUE (PREROUTING) sees those
/// the router's stack takes: the untagged IPv4 ones.
#[test]
fn parse_vectors_on_the_wire_in_both_modes() {
    if !privileged("parse_vectors_on_the_wire_in_both_modes") {
        return;
    }
    let lab = Lab::new(&[]);
    let mut child = ChildGuard(Some(
        lab.router
            .command(vpnfp_bin())
            .args([
                "run",
                "--mode",
                "both",
                "--chain",
                "PREROUTING",
                "--iface",
                ROUTER_IF,
                // The vectors hold replies (external sources), sent here
                // from the LAN side as a mirror port would show them.
                "--no-spoof-check",
            ])
            .args([
                "--window",
                "0.001",
                "--count",
                "1000",
                "--json",
                "--all-windows",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting vpnfp"),
    ));
    lab.wait_for_xdp(child.child(), Duration::from_secs(20));
    lab.wait_for_rule(child.child(), Duration::from_secs(20));
    let vectors = parse_vectors();
    let frames: Vec<Vec<u8>> = vectors
        .iter()
        .flat_map(|v| [v.frame.clone(), v.frame.clone()])
        .collect();
    lab.send_raw(&frames, Duration::from_millis(20));
    std::thread::sleep(Duration::from_millis(200));
    assert!(child.terminate(Duration::from_secs(10)).success());
    let out = child.0.take().unwrap().wait_with_output().unwrap();
    let mut seen: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let r: serde_json::Value = serde_json::from_str(line).unwrap();
        if r["event"] == "window_closed" || r["event"] == "suspected_vpn" {
            seen.entry(r["mode"].as_str().unwrap().to_string())
                .or_default()
                .insert((
                    r["host"].as_str().unwrap().to_string(),
                    r["peer"].as_str().unwrap().to_string(),
                ));
        }
    }
    let analysed = |untagged_only: bool| -> BTreeSet<(String, String)> {
        vectors
            .iter()
            .filter(|v| !untagged_only || v.frame[12..14] == [0x08, 0x00])
            .filter_map(|v| match v.expected {
                Expected::Analysed { host, peer } => Some((host.to_string(), peer.to_string())),
                _ => None,
            })
            .collect()
    };
    assert_eq!(seen.get("xdp"), Some(&analysed(false)), "xdp");
    assert_eq!(seen.get("nfqueue"), Some(&analysed(true)), "nfqueue");
    // Frames 4 and 5 are one (host, peer) pair.
    assert_eq!(analysed(false).len(), 4);
    assert_eq!(analysed(true).len(), 2);
}

/// Waits (up to 10 s) until `done`.
fn wait_for(done: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends 300 packets from a LAN host to the router itself; returns (sent,
/// arrived).
fn traffic_flows(lab: &Lab, host: Ipv4Addr) -> (u64, u64) {
    lab.traffic_to_router(host, 1_000, Duration::from_millis(300))
}

fn start_nfqueue(lab: &Lab, extra: &[&str]) -> ChildGuard {
    let mut child = ChildGuard(Some(
        lab.router
            .command(vpnfp_bin())
            .args([
                "run", "--mode", "nfqueue", "--chain", "INPUT", "--iface", ROUTER_IF,
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting vpnfp"),
    ));
    lab.wait_for_rule(child.child(), Duration::from_secs(20));
    child
}

#[test]
fn nfqueue_rules_are_removed_and_traffic_always_flows() {
    if !privileged("nfqueue_rules_are_removed_and_traffic_always_flows") {
        return;
    }
    let host = Ipv4Addr::new(192, 168, 77, 40);
    let lab = Lab::new(&[host]);
    let rule_count = || lab.router.vpnfp_rules().len();

    // Running: every packet is accepted.
    let mut child = start_nfqueue(&lab, &[]);
    // INPUT -i router0, in both families.
    let rule = lab.router.vpnfp_rules();
    assert_eq!(rule.len(), 2, "{rule:?}");
    assert!(
        rule.iter().all(|r| r.contains("--queue-bypass")),
        "{rule:?}"
    );
    let (sent, received) = traffic_flows(&lab, host);
    assert_eq!(received, sent, "NFQUEUE accepts every packet");

    // SIGTERM: the rule goes, traffic flows.
    assert!(child.terminate(Duration::from_secs(10)).success());
    let stderr = std::io::read_to_string(child.0.take().unwrap().stderr.unwrap()).unwrap();
    // Every packet sent, and maybe an IPv6 neighbour message or two.
    let seen: u64 = stderr
        .split("frames: ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        seen >= sent && seen <= sent + 5,
        "counted every packet: {stderr}"
    );
    assert!(stderr.contains("missed 0"), "{stderr}");
    assert_eq!(rule_count(), 0, "rule removed on SIGTERM");
    let (sent, received) = traffic_flows(&lab, host);
    assert_eq!(received, sent);

    // SIGKILL: the rule stays, but --queue-bypass keeps traffic flowing.
    let mut child = start_nfqueue(&lab, &[]);
    child.child().kill().unwrap();
    child.child().wait().unwrap();
    assert_eq!(rule_count(), 2, "a killed vpnfp cannot clean up");
    let (sent, received) = traffic_flows(&lab, host);
    assert_eq!(
        received, sent,
        "queue-bypass passes packets with nobody listening"
    );

    // The next start removes the stale rules (two while running), the
    // next stop leaves none.
    let mut child = start_nfqueue(&lab, &[]);
    // (Its rules read like the stale ones: give it time to swap them.)
    std::thread::sleep(Duration::from_millis(500));
    wait_for(|| rule_count() == 2);
    assert!(child.terminate(Duration::from_secs(10)).success());
    let stderr = std::io::read_to_string(child.0.take().unwrap().stderr.unwrap()).unwrap();
    assert!(stderr.contains("removed 1 stale iptables rule"), "{stderr}");
    assert!(
        stderr.contains("removed 1 stale ip6tables rule"),
        "{stderr}"
    );
    assert_eq!(rule_count(), 0);

    // A killed vpnfp on another queue: its rules go at the next start
    // (nobody listens on their queue), whatever queue that start uses.
    let mut child = start_nfqueue(&lab, &["--queue-num", "5"]);
    child.child().kill().unwrap();
    child.child().wait().unwrap();
    assert_eq!(rule_count(), 2);
    let mut child = start_nfqueue(&lab, &["--queue-num", "6"]);
    wait_for(|| {
        let rules = lab.router.vpnfp_rules();
        rules.len() == 2 && rules.iter().all(|r| r.contains("vpnfp-queue-6"))
    });
    assert!(child.terminate(Duration::from_secs(10)).success());
    assert_eq!(rule_count(), 0);
}

#[test]
fn a_queue_in_use_is_refused_before_any_rule_is_added() {
    if !privileged("a_queue_in_use_is_refused_before_any_rule_is_added") {
        return;
    }
    let lab = Lab::new(&[]);
    let mut first = start_nfqueue(&lab, &["--queue-num", "7"]);
    let second = lab
        .router
        .command(vpnfp_bin())
        .args([
            "run",
            "--mode",
            "nfqueue",
            "--chain",
            "FORWARD",
            "--queue-num",
            "7",
        ])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("queue 7 is in use"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    let rules = lab.router.vpnfp_rules();
    assert_eq!(rules.len(), 2, "only the first instance's rules: {rules:?}");
    assert!(rules.iter().all(|r| r.contains("-A INPUT")), "{rules:?}");
    assert!(first.terminate(Duration::from_secs(10)).success());
    assert!(lab.router.vpnfp_rules().is_empty());
}

/// `--metrics`: a real HTTP client (curl) scrapes the Prometheus text while
/// both modes run.
#[test]
fn metrics_are_served_in_prometheus_format() {
    if !privileged("metrics_are_served_in_prometheus_format") {
        return;
    }
    let lab = Lab::new(&[VPN_HOST]);
    let mut child = ChildGuard(Some(
        lab.router
            .command(vpnfp_bin())
            .args([
                "run", "--mode", "both", "--chain", "FORWARD", "--iface", ROUTER_IF,
            ])
            .args([
                "--window",
                "0.5",
                "--count",
                "50",
                "--metrics",
                "127.0.0.1:9105",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("starting vpnfp"),
    ));
    lab.wait_for_xdp(child.child(), Duration::from_secs(20));
    lab.wait_for_rule(child.child(), Duration::from_secs(20));
    let mut senders = [Sender::new(lab.socket(VPN_HOST), vec![VPN_SERVER])];
    let sent = send_paced(&mut senders, 400, Duration::from_millis(1500))[0];
    // What a scrape reads is published every second or so.
    std::thread::sleep(Duration::from_millis(1_500));
    let text = lab.router.run(
        "curl",
        &["-sS", "--max-time", "5", "http://127.0.0.1:9105/metrics"],
    );
    let value = |series: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    for mode in ["xdp", "nfqueue"] {
        let seen = value(&format!("vpnfp_frames_seen_total{{mode=\"{mode}\"}}"));
        assert!(seen >= sent, "{mode}: {seen} < {sent}");
        assert_eq!(
            value(&format!(
                "vpnfp_frames_verdict_total{{mode=\"{mode}\",verdict=\"pass\"}}"
            )),
            seen
        );
        assert!(
            value(&format!(
                "vpnfp_frames_total{{mode=\"{mode}\",outcome=\"analysed\"}}"
            )) >= sent
        );
        assert!(value(&format!("vpnfp_windows_closed_total{{mode=\"{mode}\"}}")) >= 2);
        assert_eq!(value(&format!("vpnfp_hosts_tracked{{mode=\"{mode}\"}}")), 1);
        assert_eq!(
            value(&format!("vpnfp_host_evictions_total{{mode=\"{mode}\"}}")),
            0
        );
    }
    assert_eq!(value("vpnfp_ringbuf_records_lost_total{mode=\"xdp\"}"), 0);
    assert_eq!(
        value("vpnfp_nfqueue_packets_missed_total{mode=\"nfqueue\"}"),
        0
    );
    assert!(value("vpnfp_reports_total") >= 4, "both modes report");
    assert!(text.contains("# TYPE vpnfp_frames counter"), "{text}");
    // Anything but /metrics is a 404.
    let out = lab
        .router
        .command("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "http://127.0.0.1:9105/other",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "404");
    // Only GET (and HEAD): anything else is a 405.
    for method in ["POST", "PUT", "DELETE"] {
        let out = lab
            .router
            .command("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method])
            .arg("http://127.0.0.1:9105/metrics")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "405", "{method}");
    }
    assert!(child.terminate(Duration::from_secs(10)).success());
}

/// An error after the NFQUEUE rule went in (here: native XDP on loopback,
/// which has no driver support) still removes the rule.
#[test]
fn an_error_after_the_rule_is_installed_still_removes_it() {
    if !privileged("an_error_after_the_rule_is_installed_still_removes_it") {
        return;
    }
    let ns = vpnfp_tests::netns::NetNs::new("err");
    let out = ns
        .command(vpnfp_bin())
        .args([
            "run",
            "--mode",
            "both",
            "--iface",
            "lo",
            "--chain",
            "INPUT",
            "--xdp-mode",
            "native",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rule(s) in mangle INPUT"),
        "the rules went in first: {stderr}"
    );
    assert!(
        stderr.contains("attaching XDP to lo in native mode failed"),
        "{stderr}"
    );
    assert!(
        ns.vpnfp_rules().is_empty(),
        "rule removed on the error path"
    );
}

/// `--mode both` on a router with two LAN interfaces: both paths see the
/// same packets of both LANs (NFQUEUE: -i and -o rules per interface, in
/// both families) and agree.
#[test]
fn both_modes_compare_on_two_lan_interfaces() {
    if !privileged("both_modes_compare_on_two_lan_interfaces") {
        return;
    }
    let lab = vpnfp_tests::lab::Lab::with(
        &[VPN_HOST],
        &[],
        vpnfp_tests::lab::LabOptions {
            second_lan: true,
            ..Default::default()
        },
    );
    let lan2 = lab.lan2.as_ref().unwrap();
    let host2 = Ipv4Addr::new(192, 168, 78, 20);
    lan2.ip(&[
        "addr",
        "add",
        &format!("{host2}/32"),
        "dev",
        vpnfp_tests::lab::LAN2_IF,
    ]);
    let mut child = ChildGuard(Some(
        lab.router
            .command(vpnfp_bin())
            .args([
                "run",
                "--mode",
                "both",
                "--iface",
                ROUTER_IF,
                "--iface",
                vpnfp_tests::lab::ROUTER2_IF,
            ])
            .args(["--window", "2", "--count", "100", "--json"])
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting vpnfp"),
    ));
    lab.wait_for_xdp(child.child(), Duration::from_secs(20));
    lab.wait_for_rule(child.child(), Duration::from_secs(20));
    let rules = lab.router.vpnfp_rules();
    assert_eq!(
        rules.len(),
        8,
        "-i and -o per interface, both families: {rules:?}"
    );
    let socket2 = lan2.enter(|| std::net::UdpSocket::bind((host2, 0)).unwrap());
    let mut senders = [
        Sender::new(lab.socket(VPN_HOST), vec![VPN_SERVER]),
        Sender::new(socket2, vec![Ipv4Addr::new(198, 51, 100, 8)]),
    ];
    send_paced(&mut senders, 200, Duration::from_millis(4_500));
    assert!(child.terminate(Duration::from_secs(10)).success());
    assert!(lab.router.vpnfp_rules().is_empty(), "every rule removed");
    let out = child.0.take().unwrap().wait_with_output().unwrap();
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let c = events
        .iter()
        .rfind(|e| e["event"] == "comparison")
        .expect("a comparison report");
    let both: serde_json::Value = serde_json::json!([VPN_HOST.to_string(), host2.to_string()]);
    assert_eq!(c["hosts_flagged_xdp"], both, "{c}");
    assert_eq!(c["hosts_flagged_nfqueue"], both, "{c}");
    assert_eq!(c["share_identical"].as_f64(), Some(1.0), "{c}");
}

/// The same known flows (IPv4, IPv6, IPv6 with extension headers) through
/// the kernel programs and NFQUEUE at once: both give each flow exactly the
/// packets and IP bytes that were sent.
#[test]
fn flows_have_exact_counts_in_xdp_and_nfqueue_mode() {
    if !privileged("flows_have_exact_counts_in_xdp_and_nfqueue_mode") {
        return;
    }
    use vpnfp_tests::frames;
    let lab = Lab::new(&[]);
    let mut child = ChildGuard(Some(
        lab.router
            .command(vpnfp_bin())
            .args([
                "run",
                "--mode",
                "both",
                "--chain",
                "PREROUTING",
                "--iface",
                ROUTER_IF,
                "--json",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting vpnfp"),
    ));
    lab.wait_for_xdp(child.child(), Duration::from_secs(20));
    lab.wait_for_rule(child.child(), Duration::from_secs(20));
    let h4 = Ipv4Addr::new(192, 168, 77, 60);
    let p4 = Ipv4Addr::new(198, 51, 100, 60);
    let h6: std::net::Ipv6Addr = "fd00:77::60".parse().unwrap();
    let p6: std::net::Ipv6Addr = "2001:db8:77::60".parse().unwrap();
    let mut sent = Vec::new();
    for i in 0..40u16 {
        sent.push(frames::udp_with(
            h4,
            p4,
            40_001,
            5_000,
            &vec![1; 100 + i as usize],
        ));
        sent.push(frames::udp6(h6, p6, 40_002, 5_000, &[2; 300], None));
        sent.push(frames::udp6_with_ext(
            h6,
            p6,
            &[frames::HOP_BY_HOP, frames::DEST_OPTS],
            40_003,
            5_000,
            &[3; 50],
        ));
    }
    lab.send_raw(&sent, Duration::from_millis(2));
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.terminate(Duration::from_secs(10)).success());
    let out = child.0.take().unwrap().wait_with_output().unwrap();
    let flows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "flow")
        .collect();
    let ip_bytes4: u64 = (0..40u64).map(|i| 20 + 8 + 100 + i).sum();
    for (port, packets, bytes) in [
        (40_001u64, 40u64, ip_bytes4),
        (40_002, 40, 40 * (40 + 8 + 300)),
        (40_003, 40, 40 * (40 + 16 + 8 + 50)),
    ] {
        for mode in ["xdp", "nfqueue"] {
            let f: Vec<_> = flows
                .iter()
                .filter(|f| f["mode"] == mode && f["host_port"] == port)
                .collect();
            assert_eq!(f.len(), 1, "{mode} port {port}: {flows:?}");
            assert_eq!(
                (f[0]["packets_up"].as_u64(), f[0]["bytes_up"].as_u64()),
                (Some(packets), Some(bytes)),
                "{mode}: {}",
                f[0]
            );
        }
    }
}

/// A reader that leaves the pipe ends `vpnfp run` cleanly: rules removed,
/// exit 0.
#[test]
fn a_closed_stdout_pipe_stops_run_cleanly() {
    if !privileged("a_closed_stdout_pipe_stops_run_cleanly") {
        return;
    }
    let lab = Lab::new(&[VPN_HOST]);
    let mut child = ChildGuard(Some(
        lab.router
            .command(vpnfp_bin())
            .args([
                "run", "--mode", "both", "--chain", "FORWARD", "--iface", ROUTER_IF, "--json",
            ])
            .args(["--window", "0.2", "--count", "5"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting vpnfp"),
    ));
    lab.wait_for_xdp(child.child(), Duration::from_secs(20));
    lab.wait_for_rule(child.child(), Duration::from_secs(20));
    let stdout = child.child().stdout.take().unwrap();
    let mut senders = [Sender::new(lab.socket(VPN_HOST), vec![VPN_SERVER])];
    send_paced(&mut senders, 200, Duration::from_millis(1_500));
    {
        use std::io::BufRead;
        let mut first = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut first)
            .unwrap();
        assert!(first.starts_with('{'), "{first}");
        // The reader goes away here.
    }
    send_paced(&mut senders, 200, Duration::from_millis(1_500));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.child().try_wait().unwrap() {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "vpnfp kept running");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    let stderr = std::io::read_to_string(child.0.take().unwrap().stderr.unwrap()).unwrap();
    assert!(
        stderr.contains("standard output was closed: stopping"),
        "{stderr}"
    );
    assert!(lab.router.vpnfp_rules().is_empty(), "rules removed");
    assert!(!lab.router.has_xdp(ROUTER_IF));
}
