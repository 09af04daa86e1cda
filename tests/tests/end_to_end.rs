//! vpnfp run, attached for real to a veth in network namespaces, with real
//! traffic from a VPN-like host and a browsing host.

use std::{
    net::{Ipv4Addr, SocketAddrV4, UdpSocket},
    process::Stdio,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use vpnfp_tests::{
    lab::{ChildGuard, Lab, ROUTER_IF, Sender, send_paced},
    privileged,
    scenario::{self, BROWSING_HOST, VPN_HOST, VPN_SERVER, Watch},
    vpnfp_bin,
};

#[test]
fn reports_the_vpn_like_host_and_never_the_browsing_host() {
    if !privileged("reports_the_vpn_like_host_and_never_the_browsing_host") {
        return;
    }
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let outcome = scenario::vpn_and_browser(&vpnfp_bin(), Watch::Xdp, |_| {});
    let ended = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(outcome.status.success(), "vpnfp exit: {}", outcome.status);
    assert!(outcome.sent.iter().all(|&n| n == outcome.sent[0]));
    // 5 s of traffic with 2 s windows: at least one window closes and is
    // judged (a close needs a packet after the window expired).
    assert!(
        !outcome.reports.is_empty(),
        "no report for the VPN-like host"
    );
    for r in &outcome.reports {
        assert_eq!(r["event"], "suspected_vpn", "{r}");
        assert_eq!(r["mode"], "xdp", "{r}");
        assert_eq!(
            r["host"],
            VPN_HOST.to_string(),
            "only the VPN-like host: {r}"
        );
        assert_eq!(r["peer"], VPN_SERVER.to_string(), "{r}");
        assert_eq!(r["reason"], "count", "{r}");
        let start = r["window_start"].as_f64().expect("window_start");
        let end = r["window_end"].as_f64().expect("window_end");
        let secs = r["window_secs"].as_f64().expect("window_secs");
        assert!(
            start >= started - 1.0 && end <= ended + 1.0,
            "Unix times within the test: {r}"
        );
        // Strictly more than WINDOW; the upper bound leaves room for a busy
        // machine delaying the closing packet.
        assert!(secs > 2.0 && secs < 4.0, "a window closes after 2 s: {r}");
        assert!((end - start - secs).abs() < 2e-6, "{r}");
        // 300 packets/s, paced against the clock, over the window.
        let count = r["count_this"].as_u64().expect("count_this") as f64;
        assert!(count >= 480.0 && count <= 300.0 * secs * 1.2 + 10.0, "{r}");
        assert!(r["count_prev"].as_u64().is_some(), "{r}");
    }
    assert!(
        outcome
            .reports
            .iter()
            .all(|r| r["host"] != BROWSING_HOST.to_string()),
        "the browsing host is never reported"
    );
}

#[test]
fn monitor_mode_passes_every_packet() {
    if !privileged("monitor_mode_passes_every_packet") {
        return;
    }
    let host = Ipv4Addr::new(192, 168, 77, 30);
    let lab = Lab::new(&[host]);
    let mut child = ChildGuard(Some(
        lab.router
            .command(vpnfp_bin())
            .args([
                "run", "--iface", ROUTER_IF, "--count", "10", "--window", "0.1",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("starting vpnfp"),
    ));
    lab.wait_for_xdp(child.child(), Duration::from_secs(20));
    let (sent, received) = lab.traffic_to_router(host, 1_000, Duration::from_millis(500));
    assert_eq!(received, sent, "every packet reached the router's socket");
    assert!(child.terminate(Duration::from_secs(10)).success());
    assert!(!lab.router.has_xdp(ROUTER_IF), "detached on SIGTERM");
}

#[test]
fn clear_errors_for_bad_interfaces_and_settings() {
    if !privileged("clear_errors_for_bad_interfaces_and_settings") {
        return;
    }
    for (args, message) in [
        (
            &["run", "--iface", "vpnfp-nope0"][..],
            "unknown network interface 'vpnfp-nope0'",
        ),
        (
            &["run", "--iface", "lo", "--window", "0"],
            "--window must be a positive number",
        ),
        (
            &["run", "--iface", "lo", "--overlap-ratio", "1.5"],
            "--overlap-ratio must be in (0, 1]",
        ),
        (
            &["run", "--iface", "lo", "--count", "0"],
            "--count must be at least 1",
        ),
    ] {
        let out = std::process::Command::new(vpnfp_bin())
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    }
}

/// kill -9: the kernel detaches the program with the process (aya attaches
/// through a BPF link), and traffic keeps flowing.
#[test]
fn a_killed_vpnfp_leaves_no_program_and_traffic_flows() {
    if !privileged("a_killed_vpnfp_leaves_no_program_and_traffic_flows") {
        return;
    }
    let host = Ipv4Addr::new(192, 168, 77, 50);
    let lab = Lab::new(&[host]);
    let mut child = ChildGuard(Some(
        lab.router
            .command(vpnfp_bin())
            .args(["run", "--iface", ROUTER_IF])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting vpnfp"),
    ));
    lab.wait_for_xdp(child.child(), Duration::from_secs(20));
    child.child().kill().unwrap();
    child.child().wait().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while lab.router.has_xdp(ROUTER_IF) {
        assert!(
            std::time::Instant::now() < deadline,
            "XDP still attached after kill -9"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let (sent, received) = lab.traffic_to_router(host, 1_000, Duration::from_millis(300));
    assert_eq!(received, sent);
}

/// Two interfaces, one state: the VPN host's packets out (on the router's
/// LAN side) and the server's packets back (on its WAN side) count in the
/// same window.
#[test]
fn several_interfaces_share_one_state() {
    if !privileged("several_interfaces_share_one_state") {
        return;
    }
    let lab = Lab::new(&[VPN_HOST]);
    lab.wan
        .ip(&["addr", "add", &format!("{VPN_SERVER}/32"), "dev", "wan0"]);
    lab.wan
        .ip(&["route", "add", "192.168.77.0/24", "via", "10.200.0.1"]);
    let mut child = ChildGuard(Some(
        lab.router
            .command(vpnfp_bin())
            .args([
                "run", "--iface", ROUTER_IF, "--iface", "up0", "--json", "--window", "2",
                "--count", "100",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting vpnfp"),
    ));
    lab.wait_for_xdp(child.child(), Duration::from_secs(20));
    assert!(lab.router.has_xdp("up0"));
    let back = lab
        .wan
        .enter(|| UdpSocket::bind(SocketAddrV4::new(VPN_SERVER, 0)).unwrap());
    let mut senders = [
        Sender::new(lab.socket(VPN_HOST), vec![VPN_SERVER]),
        Sender::new(back, vec![VPN_HOST]),
    ];
    let sent = send_paced(&mut senders, 150, Duration::from_secs(3));
    assert!(child.terminate(Duration::from_secs(10)).success());
    let out = child.0.take().unwrap().wait_with_output().unwrap();
    let reports: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let first = reports.first().expect("a report");
    assert_eq!(first["host"], VPN_HOST.to_string());
    // 150 packets/s each way over a little more than 2 s: ~600 together,
    // ~300 if only one interface counted.
    let count = first["count_this"].as_u64().unwrap();
    assert!(
        count > 450,
        "both directions, both interfaces: {first} (sent {sent:?})"
    );
}
