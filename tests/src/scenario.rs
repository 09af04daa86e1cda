//! The lab's standard scene, used by the end-to-end tests and the demo: one
//! LAN host talks to a single "VPN server" the whole time, another sprays
//! packets over many peers (like browsing), a third switches peer every half
//! second, and `vpnfp run --json` watches the router's LAN interface.

use std::{
    io::{BufRead, BufReader},
    net::Ipv4Addr,
    path::Path,
    process::{ExitStatus, Stdio},
    sync::mpsc,
    time::Duration,
};

use crate::lab::{ChildGuard, Lab, ROUTER_IF, Sender, send_paced};

pub const VPN_HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 10);
pub const BROWSING_HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 20);
pub const SWITCHING_HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 30);
pub const VPN_SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);

/// Small numbers so a detection happens in seconds: 2 s windows, COUNT 100.
pub const LAB_ARGS: &[&str] = &["--window", "2", "--count", "100"];
pub const RATE_PPS: u32 = 300;
pub const TRAFFIC: Duration = Duration::from_secs(5);

pub struct Outcome {
    /// Every JSON line vpnfp printed, parsed.
    pub events: Vec<serde_json::Value>,
    pub status: ExitStatus,
    /// Packets sent by the VPN-like, the browsing and the switching host.
    pub sent: Vec<u64>,
}

/// How vpnfp watches the router.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    Xdp,
    /// NFQUEUE in the FORWARD chain for packets from the LAN interface.
    Nfqueue,
    Both,
}

impl Watch {
    pub fn args(self) -> Vec<&'static str> {
        let nfqueue = ["--chain", "FORWARD"];
        match self {
            Watch::Xdp => vec!["--mode", "xdp"],
            Watch::Nfqueue => [&["--mode", "nfqueue"][..], &nfqueue].concat(),
            Watch::Both => [&["--mode", "both"][..], &nfqueue].concat(),
        }
    }
}

/// Runs the scene; `on_line` sees each stdout line as it arrives.
pub fn vpn_and_browser(vpnfp: &Path, watch: Watch, mut on_line: impl FnMut(&str)) -> Outcome {
    let lab = Lab::new(&[VPN_HOST, BROWSING_HOST, SWITCHING_HOST]);
    let mut child = ChildGuard(Some(
        lab.router
            .command(vpnfp)
            .args(["run", "--iface", ROUTER_IF, "--json"])
            .args(watch.args())
            .args(LAB_ARGS)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting vpnfp"),
    ));
    let stdout = child.child().stdout.take().expect("stdout");
    let (lines_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    if watch != Watch::Nfqueue {
        lab.wait_for_xdp(child.child(), Duration::from_secs(20));
    }
    if watch != Watch::Xdp {
        lab.wait_for_rule(child.child(), Duration::from_secs(20));
    }

    let browsing_peers: Vec<Ipv4Addr> = (1..=200).map(|i| Ipv4Addr::new(192, 0, 2, i)).collect();
    let switching_peers: Vec<Ipv4Addr> = (20..30).map(|i| Ipv4Addr::new(198, 51, 100, i)).collect();
    let mut senders = [
        Sender::new(lab.socket(VPN_HOST), vec![VPN_SERVER]),
        Sender::new(lab.socket(BROWSING_HOST), browsing_peers),
        // A new peer every half second: its windows never reach 2 s.
        Sender::with_dwell(
            lab.socket(SWITCHING_HOST),
            switching_peers,
            RATE_PPS as usize / 2,
        ),
    ];
    let mut collected = Vec::new();
    let sent = std::thread::scope(|s| {
        let traffic = s.spawn(|| send_paced(&mut senders, RATE_PPS, TRAFFIC));
        while !traffic.is_finished() {
            if let Ok(line) = lines.recv_timeout(Duration::from_millis(50)) {
                on_line(&line);
                collected.push(line);
            }
        }
        traffic.join().expect("traffic generator")
    });
    let status = child.terminate(Duration::from_secs(10));
    reader.join().expect("stdout reader");
    for line in lines.try_iter() {
        on_line(&line);
        collected.push(line);
    }
    let reports = collected
        .iter()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("vpnfp printed non-JSON {l:?}: {e}"))
        })
        .collect();
    Outcome {
        events: reports,
        status,
        sent,
    }
}

impl Outcome {
    /// The JSON lines of one event kind.
    pub fn of(&self, event: &str) -> Vec<&serde_json::Value> {
        self.events.iter().filter(|e| e["event"] == event).collect()
    }
}
