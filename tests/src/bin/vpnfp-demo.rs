//! `cargo xtask demo`: a throwaway lab in network namespaces, fingerprinted by
//! the real XDP program. Needs root; leaves nothing behind.

use std::process::ExitCode;

use vpnfp_tests::scenario::{self, BROWSING_HOST, SWITCHING_HOST, VPN_HOST, VPN_SERVER, Watch};

fn main() -> ExitCode {
    // SAFETY: no arguments.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("vpnfp-demo: needs root (network namespaces, XDP): run `sudo cargo xtask demo`");
        return ExitCode::FAILURE;
    }
    println!(
        "vpnfp demo: a LAN in a network namespace, watched at the router's LAN interface.\n  \
         {VPN_HOST} sends all its traffic to {VPN_SERVER} (a VPN user)\n  \
         {BROWSING_HOST} sends to 200 different addresses (an ordinary host)\n  \
         {SWITCHING_HOST} changes its one peer every half second\n  \
         {} packets/s each for {} s; vpnfp runs with {} (the research uses 20-minute windows and 10000 packets).\n",
        scenario::RATE_PPS,
        scenario::TRAFFIC.as_secs(),
        scenario::LAB_ARGS.join(" ")
    );
    let outcome = scenario::vpn_and_browser(&vpnfp_tests::vpnfp_bin(), Watch::Xdp, |line| {
        if line.contains("\"suspected_vpn\"") {
            println!("JSON report: {line}")
        }
    });
    let reports = outcome.of("suspected_vpn");
    let flagged: Vec<&str> = reports.iter().filter_map(|r| r["host"].as_str()).collect();
    println!();
    let vpn_found = flagged.contains(&VPN_HOST.to_string().as_str());
    let browser_flagged = flagged.contains(&BROWSING_HOST.to_string().as_str())
        || flagged.contains(&SWITCHING_HOST.to_string().as_str());
    if vpn_found && !browser_flagged && outcome.status.success() {
        println!(
            "Result: {VPN_HOST} flagged as a suspected VPN user ({} reports); {BROWSING_HOST} and {SWITCHING_HOST} not flagged.",
            reports.len()
        );
        println!("The lab's namespaces are gone. On a real network: cargo xtask run --iface eth0");
        ExitCode::SUCCESS
    } else {
        println!(
            "Unexpected result: flagged {flagged:?} (vpnfp exit {}); expected only {VPN_HOST}.",
            outcome.status
        );
        ExitCode::FAILURE
    }
}
