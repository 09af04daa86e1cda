//! `cargo xtask demo`: real WireGuard and OpenVPN tunnels next to ordinary
//! hosts, in throwaway network namespaces behind a NAT router, caught by
//! the real XDP program. Needs root; leaves nothing behind.

use std::process::ExitCode;

use vpnfp_tests::{
    scenario::Watch,
    vpnlab::{self, LabOptions},
};

fn main() -> ExitCode {
    // SAFETY: no arguments.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("vpnfp-demo: needs root (network namespaces, XDP): run `sudo cargo xtask demo`");
        return ExitCode::FAILURE;
    }
    println!(
        "vpnfp demo: a home network in network namespaces. Its router masquerades like a home\n\
         router; vpnfp watches the router's LAN interface with the XDP program.\n  \
         wg     runs WireGuard (wireguard-go), and leaks a DNS query outside the tunnel every second\n  \
         ovpnu  runs OpenVPN over UDP, ovpnt OpenVPN over TCP 443 with tls-crypt\n  \
         web    browses (HTTPS and HTTP to many servers), video streams TLS from one server,\n  \
         dnsq   sends DNS and QUIC-like UDP, download fetches one large file over HTTPS\n\
         vpnfp runs with {} (small windows so seconds count).\n",
        vpnlab::LAB_ARGS.join(" ")
    );
    let options = LabOptions {
        only: vec!["wireguard".into(), "openvpn".into(), "ordinary".into()],
        secs: 15,
        ..LabOptions::new(vpnfp_tests::vpnfp_bin(), Watch::Xdp)
    };
    let report = match vpnlab::run(options, |line| {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        if let Some(text) = vpnlab::describe(&v) {
            println!("{text}");
        }
    }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vpnfp-demo: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let (table, all_right) = vpnlab::summary(&report, &["xdp"]);
    let suspected = |name: &str| {
        report
            .hosts
            .iter()
            .find(|h| h.name == name)
            .map_or(0, |h| report.of("suspected_vpn", "xdp", h.addr).count())
    };
    println!("\n{table}");
    println!(
        "The research's rule alone: wg flagged {} times (its DNS leak restarts every window), video {} times (a long stream looks like a VPN to it).\n\
         The verdicts combine the rule with protocol identification and the concentration mode.",
        suspected("wg"),
        suspected("video"),
    );
    if report.status.success() && all_right {
        println!(
            "Every host judged as expected. The lab is gone. On a real network: cargo xtask run --iface eth0"
        );
        ExitCode::SUCCESS
    } else {
        println!("Unexpected result (vpnfp exit {}).", report.status);
        ExitCode::FAILURE
    }
}
