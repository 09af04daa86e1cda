//! `cargo xtask lab`: real VPN software in network namespaces behind a NAT
//! router that vpnfp watches, next to ordinary hosts; prints what vpnfp
//! concluded about each host. Needs root; leaves nothing behind.

use std::{path::PathBuf, process::ExitCode};

use clap::Parser;
use vpnfp_tests::{
    scenario::Watch,
    vpnlab::{self, LabOptions},
};

#[derive(Parser)]
#[command(about = "A lab of real VPNs, fingerprinted by vpnfp")]
struct Args {
    /// Only these groups (comma-separated). The VPN lab (the default):
    /// wireguard, openvpn, anyconnect, ipsec, shadowsocks, ssh, ordinary,
    /// failures, multi. The tools that hide: hiding (all of them, with the
    /// ordinary hosts), or v2ray, trojan, ss-plugins, obfs4, stunnel,
    /// kcptun, tinc, iodine, dns2tcp, ptunnel, tls-crypt-v2.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Seconds of traffic once the tunnels are up.
    #[arg(long, default_value_t = 40)]
    secs: u64,
    /// Write one pcap per host (taken at the LAN switch) into DIR, and
    /// compare vpnfp replay with nDPI's ndpiReader on each.
    #[arg(long, value_name = "DIR")]
    capture: Option<PathBuf>,
    /// Keep the lab's directory (configurations and logs) afterwards.
    #[arg(long)]
    keep: bool,
    /// How vpnfp watches the router: xdp, nfqueue or both.
    #[arg(long, default_value = "both")]
    mode: String,
    /// An enforcement policy for vpnfp (`vpnfp run --policy`), to see what
    /// it blocks among real tunnels; see docs/enforcement.md.
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // SAFETY: no arguments.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("vpnfp-lab: needs root (network namespaces, XDP): run `sudo cargo xtask lab`");
        return ExitCode::FAILURE;
    }
    let watch = match args.mode.as_str() {
        "xdp" => Watch::Xdp,
        "nfqueue" => Watch::Nfqueue,
        "both" => Watch::Both,
        other => {
            eprintln!("vpnfp-lab: --mode is xdp, nfqueue or both (got {other:?})");
            return ExitCode::FAILURE;
        }
    };
    let policy = match &args.policy {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => Some(text),
            Err(e) => {
                eprintln!("vpnfp-lab: reading the policy {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let options = LabOptions {
        policy,
        only: args.only.clone(),
        secs: args.secs,
        // Absolute: the lab's processes run elsewhere.
        capture: match args.capture.as_deref().map(std::path::absolute).transpose() {
            Ok(dir) => dir,
            Err(e) => {
                eprintln!("vpnfp-lab: --capture: {e}");
                return ExitCode::FAILURE;
            }
        },
        keep: args.keep,
        ..LabOptions::new(vpnfp_tests::vpnfp_bin(), watch)
    };
    println!(
        "vpnfp lab: real VPN software in network namespaces, vpnfp on the NAT router's LAN side ({}).",
        args.mode
    );
    let report = match vpnlab::run(options, |line| {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        if let Some(text) = vpnlab::describe(&v) {
            println!("  {text}");
        }
    }) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("vpnfp-lab: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let modes: Vec<&str> = match watch {
        Watch::Xdp => vec!["xdp"],
        Watch::Nfqueue => vec!["nfqueue"],
        Watch::Both => vec!["xdp", "nfqueue"],
    };
    let (table, all_right) = vpnlab::summary(&report, &modes);
    println!("\n{table}");
    if !report.hiding_rows(modes[0]).is_empty() {
        println!(
            "The tools that hide ({} mode):\n\n{}",
            modes[0],
            report.hiding_table(modes[0])
        );
    }
    if let Some(dir) = &args.capture {
        println!(
            "\nCaptures in {}: vpnfp replay and nDPI (ndpiReader) on each:",
            dir.display()
        );
        for h in &report.hosts {
            let pcap = dir.join(format!("{}.pcap", h.name));
            let ours = std::process::Command::new(vpnfp_tests::vpnfp_bin())
                .args(["replay", "--json"])
                .arg(&pcap)
                .output()
                .map(|o| {
                    let mut p: Vec<String> = String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                        .filter(|v| v["event"] == "vpn_detected")
                        .filter_map(|v| v["protocol"].as_str().map(str::to_string))
                        .collect();
                    p.sort();
                    p.dedup();
                    p.join(",")
                })
                .unwrap_or_else(|e| format!("error: {e}"));
            let ndpi = vpnfp_tests::captures::ndpi_protocols(&pcap)
                .unwrap_or_else(|e| format!("error: {e}"));
            println!(
                "  {:<6} vpnfp: {:<28} ndpiReader: {}",
                h.name,
                if ours.is_empty() { "-" } else { &ours },
                ndpi
            );
        }
    }
    if report.status.success() && all_right {
        println!("\nEvery host judged as expected. The lab's namespaces and processes are gone.");
        ExitCode::SUCCESS
    } else {
        println!(
            "\nSome hosts were not judged as expected (vpnfp exit {}).",
            report.status
        );
        ExitCode::FAILURE
    }
}
