//! A lab of real VPNs: real clients and servers from Debian in network
//! namespaces behind a NAT router that vpnfp watches, next to ordinary
//! hosts, with the failure scenarios of the Phantom tunnel's harness.
//! Used by `cargo xtask lab`, the end-to-end lab test and the demo.

pub mod hiding;
pub mod procs;
pub mod software;
pub mod topology;
pub mod traffic;

use std::{
    io::{BufRead, BufReader},
    net::{Ipv4Addr, SocketAddr},
    path::{Path, PathBuf},
    process::{ExitStatus, Stdio},
    sync::{Arc, atomic::AtomicU64, mpsc},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use crate::{lab::ChildGuard, scenario::Watch};

use procs::Procs;
use software::{Charon, OpenVpn, Pki, TlsCrypt, wait_for};
use topology::{ROUTER_IF, Topology};
use traffic::Stop;

/// What a host must be judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Named as these VPN protocols, verdict `vpn`.
    Vpn(&'static [&'static str]),
    /// Named as this tunnel, verdict `tunnel`.
    Tunnel(&'static str),
    /// Never a VPN or tunnel verdict, never named one.
    Ordinary,
    /// A tool made not to be seen: at least `suspected`; named, if at
    /// all, as one of these.
    Hiding(&'static [&'static str]),
}

impl Expect {
    pub fn describe(self) -> String {
        match self {
            Expect::Vpn(p) => format!("vpn ({})", p.join(", ")),
            Expect::Tunnel(p) => format!("tunnel ({p})"),
            Expect::Ordinary => "none".to_string(),
            Expect::Hiding(p) => format!(">= suspected ({})", p.join("|")),
        }
    }
}

pub struct HostSpec {
    pub name: &'static str,
    pub addr: Ipv4Addr,
    /// What `--only` selects it by.
    pub group: &'static str,
    pub expect: Expect,
    pub about: &'static str,
}

const fn lan(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 90, last)
}

pub const HOSTS: &[HostSpec] = &[
    HostSpec {
        name: "wg",
        addr: lan(11),
        group: "wireguard",
        expect: Expect::Vpn(&["wireguard"]),
        about: "WireGuard (wireguard-go); leaks one DNS query outside the tunnel every second",
    },
    HostSpec {
        name: "ovpnu",
        addr: lan(12),
        group: "openvpn",
        expect: Expect::Vpn(&["openvpn"]),
        about: "OpenVPN 2.6 over UDP 1194",
    },
    HostSpec {
        name: "ovpnt",
        addr: lan(13),
        group: "openvpn",
        expect: Expect::Vpn(&["openvpn"]),
        about: "OpenVPN 2.6 over TCP 443 with tls-crypt",
    },
    HostSpec {
        name: "anyc",
        addr: lan(14),
        group: "anyconnect",
        expect: Expect::Vpn(&["anyconnect"]),
        about: "AnyConnect: openconnect to ocserv, TLS then DTLS",
    },
    HostSpec {
        name: "ipsec",
        addr: lan(15),
        group: "ipsec",
        expect: Expect::Vpn(&["ipsec"]),
        about: "IKEv2 with ESP in UDP over NAT-T (strongSwan, kernel-libipsec)",
    },
    HostSpec {
        name: "ss",
        addr: lan(16),
        group: "shadowsocks",
        expect: Expect::Tunnel("fully_encrypted"),
        about: "shadowsocks-libev (AEAD), a port forward and a SOCKS proxy",
    },
    HostSpec {
        name: "ssh",
        addr: lan(17),
        group: "ssh",
        expect: Expect::Tunnel("ssh"),
        about: "OpenSSH port forwarding",
    },
    HostSpec {
        name: "web",
        addr: lan(21),
        group: "ordinary",
        expect: Expect::Ordinary,
        about: "browsing: HTTPS (with SNI) and HTTP to many servers",
    },
    HostSpec {
        name: "video",
        addr: lan(22),
        group: "ordinary",
        expect: Expect::Ordinary,
        about: "one long TLS stream from one server (the research rule's classic false positive)",
    },
    HostSpec {
        name: "dnsq",
        addr: lan(23),
        group: "ordinary",
        expect: Expect::Ordinary,
        about: "DNS queries and QUIC-like UDP to one server",
    },
    HostSpec {
        name: "late",
        addr: lan(31),
        group: "failures",
        expect: Expect::Vpn(&["wireguard"]),
        about: "WireGuard: server absent at first, then a reconnect from a new port, then idle, then traffic again",
    },
    HostSpec {
        name: "multi",
        addr: lan(32),
        group: "multi",
        expect: Expect::Vpn(&["openvpn", "wireguard"]),
        about: "two VPN clients on one host (WireGuard and OpenVPN)",
    },
    HostSpec {
        name: "vmess",
        addr: lan(41),
        group: "v2ray",
        expect: Expect::Hiding(&["fully_encrypted"]),
        about: "v2ray 4.34: VMess over TCP (AEAD header)",
    },
    HostSpec {
        name: "vmesswss",
        addr: lan(42),
        group: "v2ray",
        expect: Expect::Hiding(&["tls_in_tls", "websocket_tunnel"]),
        about: "v2ray 4.34: VMess over WebSocket over TLS",
    },
    HostSpec {
        name: "vless",
        addr: lan(43),
        group: "v2ray",
        expect: Expect::Hiding(&["tls_in_tls"]),
        about: "v2ray 4.34: VLESS over TLS",
    },
    HostSpec {
        name: "v2trojan",
        addr: lan(44),
        group: "v2ray",
        expect: Expect::Hiding(&["tls_in_tls"]),
        about: "v2ray 4.34: Trojan over TLS",
    },
    HostSpec {
        name: "v2ss",
        addr: lan(45),
        group: "v2ray",
        expect: Expect::Hiding(&["fully_encrypted"]),
        about: "v2ray 4.34: Shadowsocks (aes-256-gcm)",
    },
    HostSpec {
        name: "trojan",
        addr: lan(46),
        group: "trojan",
        expect: Expect::Hiding(&["tls_in_tls"]),
        about: "trojan 1.16 (trojan-gfw), TLS with a fallback web server",
    },
    HostSpec {
        name: "ssws",
        addr: lan(47),
        group: "ss-plugins",
        expect: Expect::Hiding(&["websocket_tunnel"]),
        about: "shadowsocks-libev with v2ray-plugin, WebSocket",
    },
    HostSpec {
        name: "sswss",
        addr: lan(48),
        group: "ss-plugins",
        expect: Expect::Hiding(&["tls_in_tls", "websocket_tunnel"]),
        about: "shadowsocks-libev with v2ray-plugin, WebSocket over TLS",
    },
    HostSpec {
        name: "obfshttp",
        addr: lan(49),
        group: "ss-plugins",
        expect: Expect::Hiding(&["http_camouflage", "websocket_tunnel"]),
        about: "shadowsocks-libev with simple-obfs, HTTP",
    },
    HostSpec {
        name: "obfstls",
        addr: lan(50),
        group: "ss-plugins",
        expect: Expect::Hiding(&["tls_in_tls"]),
        about: "shadowsocks-libev with simple-obfs, TLS",
    },
    HostSpec {
        name: "obfs4",
        addr: lan(51),
        group: "obfs4",
        expect: Expect::Hiding(&["fully_encrypted"]),
        about: "obfs4proxy standalone (pluggable-transport environment) before a plain TCP service",
    },
    HostSpec {
        name: "stunnel",
        addr: lan(52),
        group: "stunnel",
        expect: Expect::Hiding(&["tls_in_tls", "openvpn"]),
        about: "OpenVPN over TCP inside stunnel4",
    },
    HostSpec {
        name: "kcp",
        addr: lan(53),
        group: "kcptun",
        expect: Expect::Hiding(&["kcp"]),
        about: "kcptun, --crypt none",
    },
    HostSpec {
        name: "kcpaes",
        addr: lan(54),
        group: "kcptun",
        expect: Expect::Hiding(&["kcp"]),
        about: "kcptun, --crypt aes (the default)",
    },
    HostSpec {
        name: "tinc",
        addr: lan(55),
        group: "tinc",
        expect: Expect::Hiding(&["tinc"]),
        about: "tinc 1.0, router mode",
    },
    HostSpec {
        name: "iodine",
        addr: lan(56),
        group: "iodine",
        expect: Expect::Hiding(&["dns_tunnel"]),
        about: "iodine, DNS mode (-r), straight to its server",
    },
    HostSpec {
        name: "dns2tcp",
        addr: lan(57),
        group: "dns2tcp",
        expect: Expect::Hiding(&["dns_tunnel"]),
        about: "dns2tcp, TXT queries",
    },
    HostSpec {
        name: "ptunnel",
        addr: lan(58),
        group: "ptunnel",
        expect: Expect::Hiding(&["icmp_tunnel"]),
        about: "ptunnel-ng, TCP over ICMP echo",
    },
    HostSpec {
        name: "ovpnv2",
        addr: lan(59),
        group: "tls-crypt-v2",
        expect: Expect::Hiding(&["openvpn"]),
        about: "OpenVPN 2.6 over UDP with tls-crypt-v2",
    },
    HostSpec {
        name: "vlessmux",
        addr: lan(60),
        group: "v2ray",
        expect: Expect::Hiding(&["tls_in_tls"]),
        about: "v2ray 4.34: VLESS over TLS with mux (8 connections in one)",
    },
    HostSpec {
        name: "download",
        addr: lan(24),
        group: "ordinary",
        expect: Expect::Ordinary,
        about: "one long HTTPS download from one server",
    },
];

// The WAN's addresses.
const WG_SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const OVPN_UDP_SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const OVPN_TCP_SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 3);
const OCSERV: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 4);
const IPSEC_SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 5);
const SS_SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 6);
/// Where tunnelled traffic ends: iperf3 servers and the HTTP server.
const TARGET: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const SSH_SERVER: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 8);
const DNS_SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 53);
const VIDEO_SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 80);
const QUIC_SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 43);
/// Web servers: HTTPS on the first few, HTTP on all.
const WEB_SERVERS: u8 = 24;
const HTTPS_SERVERS: u8 = 6;

fn web(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, i)
}

/// vpnfp's settings in the lab: small windows so seconds of traffic count.
pub const LAB_ARGS: &[&str] = &[
    "--window",
    "2",
    "--count",
    "60",
    "--concentration-window",
    "4",
    "--concentration-min-packets",
    "40",
    "--flow-idle",
    "8",
];

pub struct LabOptions {
    /// Groups to run (see [`LabOptions::groups`]); the VPN lab when
    /// empty, every tool that hides with [`HIDING`].
    pub only: Vec<String>,
    /// Seconds of traffic after the tunnels are up.
    pub secs: u64,
    /// Per-host captures (at the switch) go here.
    pub capture: Option<PathBuf>,
    /// Keep the lab's directory (configurations, logs).
    pub keep: bool,
    pub watch: Watch,
    pub vpnfp: PathBuf,
    /// More arguments for `vpnfp run`.
    pub vpnfp_args: Vec<String>,
    /// An enforcement policy (TOML) for `vpnfp run --policy`.
    pub policy: Option<String>,
    /// Runs once the tunnels carry traffic; its result is in the report.
    pub probe: Option<Probe>,
}

/// A look at the lab while it runs (see [`LabOptions::probe`]).
pub type Probe = Box<dyn FnOnce(&ProbeCtx<'_>) -> anyhow::Result<serde_json::Value>>;

pub struct ProbeCtx<'a> {
    pub topo: &'a Topology,
    pub vpnfp_pid: u32,
    /// Where the lab wrote [`LabOptions::policy`], if it did.
    pub policy_path: Option<PathBuf>,
}

impl ProbeCtx<'_> {
    /// Whether `host` gets an answer from `addr` (`count` pings, 1 s
    /// timeout each): how many answered.
    pub fn ping(&self, host: &str, addr: &str, count: u32) -> u32 {
        let out = self
            .topo
            .host(host)
            .ns
            .command("ping")
            .args(["-c", &count.to_string(), "-i", "0.2", "-W", "1", addr])
            .output();
        out.map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .filter(|l| l.contains("bytes from"))
                .count() as u32
        })
        .unwrap_or(0)
    }

    /// Writes a new policy and sends vpnfp SIGHUP, as an operator would.
    pub fn reload_policy(&self, text: &str) -> anyhow::Result<()> {
        let path = self
            .policy_path
            .as_ref()
            .context("the lab was started without a policy")?;
        std::fs::write(path, text)?;
        // SAFETY: signalling the vpnfp this lab started.
        unsafe { libc::kill(self.vpnfp_pid as i32, libc::SIGHUP) };
        Ok(())
    }

    /// Frames a LAN device sends from `host`'s interface to the router's
    /// MAC, whatever addresses they carry: what an attacker on the LAN can
    /// forge.
    pub fn forge(&self, host: &str, frames: &[Vec<u8>]) {
        let router_mac = self.topo.router.mac(topology::ROUTER_IF);
        self.topo.host(host).ns.send_frames(
            topology::HOST_IF,
            router_mac,
            frames,
            std::time::Duration::from_millis(5),
        );
    }

    /// SIGKILL to vpnfp (by its PID): what a crash leaves behind.
    pub fn kill_vpnfp(&self) {
        // SAFETY: signalling the vpnfp this lab started.
        unsafe { libc::kill(self.vpnfp_pid as i32, libc::SIGKILL) };
    }
}

impl LabOptions {
    /// The defaults the lab command uses, for `vpnfp` in `watch` mode.
    pub fn new(vpnfp: PathBuf, watch: Watch) -> Self {
        Self {
            only: Vec::new(),
            secs: 40,
            capture: None,
            keep: false,
            watch,
            vpnfp,
            vpnfp_args: Vec::new(),
            policy: None,
            probe: None,
        }
    }

    pub fn groups() -> Vec<&'static str> {
        let mut g: Vec<&str> = Vec::new();
        for h in HOSTS {
            if !g.contains(&h.group) {
                g.push(h.group);
            }
        }
        g.push(HIDING);
        g
    }
}

pub struct LabReport {
    pub hosts: Vec<&'static HostSpec>,
    /// Every JSON line vpnfp printed.
    pub events: Vec<serde_json::Value>,
    pub status: ExitStatus,
    /// When the failure scenarios' idle gap ended (Unix seconds), if run.
    pub idle_ended_at: Option<f64>,
    /// What the probe returned.
    pub probe: Option<serde_json::Value>,
    /// When the clients started (Unix seconds).
    pub traffic_started_at: f64,
    /// Tools that hide that never carried a page (each logged why).
    pub silent: Vec<&'static str>,
    /// What vpnfp logged (its stderr), read before the lab is removed.
    pub log: String,
    pub dir: PathBuf,
}

impl LabReport {
    pub fn of<'a>(
        &'a self,
        event: &'a str,
        mode: &'a str,
        host: Ipv4Addr,
    ) -> impl Iterator<Item = &'a serde_json::Value> + 'a {
        let host = host.to_string();
        self.events.iter().filter(move |e| {
            e["event"] == event && e["mode"] == mode && e["host"].as_str() == Some(host.as_str())
        })
    }

    /// The host's last verdict in `mode` ("none" if it never had one).
    pub fn verdict(&self, mode: &str, host: Ipv4Addr) -> (String, Vec<String>) {
        self.of("host_verdict", mode, host)
            .last()
            .map(|v| {
                (
                    v["verdict"].as_str().unwrap_or("?").to_string(),
                    strings(&v["protocols"]),
                )
            })
            .unwrap_or_else(|| ("none".to_string(), Vec::new()))
    }

    /// Protocols vpnfp named on the host's flows in `mode`.
    pub fn named(&self, mode: &str, host: Ipv4Addr) -> Vec<String> {
        let mut v: Vec<String> = self
            .of("vpn_detected", mode, host)
            .filter_map(|e| e["protocol"].as_str().map(str::to_string))
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

pub fn strings(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Removes the lab's directory unless asked to keep it.
struct Workdir {
    path: PathBuf,
    keep: bool,
}

impl Drop for Workdir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

fn selected(only: &[String]) -> anyhow::Result<Vec<&'static HostSpec>> {
    let groups = LabOptions::groups();
    for g in only {
        if !groups.contains(&g.as_str()) {
            bail!(
                "unknown lab group {g:?}: the groups are {}",
                groups.join(", ")
            );
        }
    }
    let hiding = |h: &HostSpec| matches!(h.expect, Expect::Hiding(_));
    Ok(HOSTS
        .iter()
        .filter(|h| {
            if only.is_empty() {
                // The VPN lab; the tools that hide are `--only hiding`.
                return !hiding(h);
            }
            only.iter()
                .any(|g| g == h.group || (g == HIDING && (hiding(h) || h.group == "ordinary")))
        })
        .collect())
}

/// The group of every tool that hides, with the ordinary hosts.
pub const HIDING: &str = "hiding";

/// Builds the lab, runs vpnfp on the router with `options.watch`, drives
/// the traffic and the failure scenarios, and tears everything down.
/// `on_line` sees vpnfp's JSON lines as they come.
pub fn run(mut options: LabOptions, on_line: impl FnMut(&str)) -> anyhow::Result<LabReport> {
    // One lab at a time per process: two would fight over the machine's
    // two cores and over wireguard-go's shared control sockets.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let run_n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let probe = options.probe.take();
    let options = &options;
    let hosts = selected(&options.only)?;
    let dir = std::env::temp_dir().join(format!("vpnfp-lab-{}-{run_n}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let workdir = Workdir {
        path: dir.clone(),
        keep: options.keep,
    };
    let mut wan_addrs = vec![
        WG_SERVER,
        OVPN_UDP_SERVER,
        OVPN_TCP_SERVER,
        OCSERV,
        IPSEC_SERVER,
        SS_SERVER,
        TARGET,
        SSH_SERVER,
        DNS_SERVER,
        VIDEO_SERVER,
        QUIC_SERVER,
    ];
    wan_addrs.extend((1..=WEB_SERVERS).map(web));
    wan_addrs.extend(hiding::TOOLS.iter().map(|(_, a)| *a));
    wan_addrs.push(hiding::DOWNLOAD_SERVER);
    let topo = Topology::new(
        &hosts.iter().map(|h| (h.name, h.addr)).collect::<Vec<_>>(),
        &wan_addrs,
    );
    let procs = Procs::new(&dir);
    let stop = Stop::default();
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let result = (|| -> anyhow::Result<LabReport> {
        let pki = Pki::new(&dir, &wan_addrs)?;
        servers(&topo, &procs, &pki, &dir, &hosts, &stop, &mut threads)?;
        if let Some(cap) = &options.capture {
            std::fs::create_dir_all(cap)?;
            for h in &topo.hosts {
                let mut cmd = topo.switch.command("tcpdump");
                cmd.args(["-i", &h.switch_port, "-s", "0", "-U", "-w"])
                    .arg(cap.join(format!("{}.pcap", h.name)));
                procs.spawn(&format!("tcpdump-{}", h.name), cmd)?;
            }
        }
        // vpnfp first: it must see the tunnels' handshakes.
        // vpnfp resolves peers' reverse names through the lab's DNS server:
        // its own /etc/resolv.conf in a mount namespace of its own.
        let resolv = dir.join("resolv.conf");
        std::fs::write(&resolv, format!("nameserver {DNS_SERVER}\n"))?;
        let mut policy_args = Vec::new();
        let mut policy_path = None;
        if let Some(policy) = &options.policy {
            // The file's name tells vpnfp its format.
            let json = policy.trim_start().starts_with('{');
            let path = dir.join(if json { "policy.json" } else { "policy.toml" });
            std::fs::write(&path, policy)?;
            policy_args = vec!["--policy".to_string(), path.display().to_string()];
            policy_path = Some(path);
        }
        let mut vpnfp = ChildGuard(Some(
            topo.router
                .command("unshare")
                .args(["-m", "sh", "-c"])
                .arg(format!(
                    "mount --bind {} /etc/resolv.conf && exec \"$0\" \"$@\"",
                    resolv.display()
                ))
                .arg(&options.vpnfp)
                .args(["run", "--iface", ROUTER_IF, "--json", "--resolve"])
                .args(options.watch.args())
                .args(LAB_ARGS)
                .args(&options.vpnfp_args)
                .args(policy_args)
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(dir.join("vpnfp.log"))?)
                .spawn()
                .context("starting vpnfp")?,
        ));
        let stdout = vpnfp.child().stdout.take().context("vpnfp's stdout")?;
        let (tx, lines) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        wait_for("vpnfp attached", Duration::from_secs(30), || {
            if vpnfp.child().try_wait().ok().flatten().is_some() {
                return true; // exited: reported below
            }
            let xdp = options.watch == Watch::Nfqueue || topo.router.has_xdp(ROUTER_IF);
            let nfq = options.watch == Watch::Xdp
                || (topo.router.nfqueue_bound() && !topo.router.vpnfp_rules().is_empty());
            xdp && nfq
        })
        .with_context(|| {
            format!(
                "vpnfp did not attach; its log:\n{}",
                std::fs::read_to_string(dir.join("vpnfp.log")).unwrap_or_default()
            )
        })?;
        if let Some(status) = vpnfp.child().try_wait()? {
            bail!(
                "vpnfp exited ({status}); its log:\n{}",
                std::fs::read_to_string(dir.join("vpnfp.log")).unwrap_or_default()
            );
        }
        let mut on_line = on_line;
        let mut collected = Vec::new();
        let mut drain = |collected: &mut Vec<String>, wait: Duration| {
            let end = Instant::now() + wait;
            loop {
                let left = end.saturating_duration_since(Instant::now());
                match lines.recv_timeout(left.max(Duration::from_millis(1))) {
                    Ok(line) => {
                        on_line(&line);
                        collected.push(line);
                    }
                    Err(_) if Instant::now() >= end => break,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    Err(_) => {}
                }
            }
        };
        let started = Instant::now();
        let mut silent = Vec::new();
        let traffic_started_at = unix_now();
        let idle_ended_at = clients_and_traffic(
            &topo,
            &procs,
            &pki,
            &dir,
            &hosts,
            options.secs,
            &stop,
            &mut threads,
            &mut |wait| drain(&mut collected, wait),
            options.policy.is_some(),
            &mut silent,
        )?;
        let probed = match probe {
            Some(probe) => {
                let ctx = ProbeCtx {
                    topo: &topo,
                    vpnfp_pid: vpnfp.child().id(),
                    policy_path: policy_path.clone(),
                };
                Some(probe(&ctx)?)
            }
            None => None,
        };
        let left = Duration::from_secs(options.secs).saturating_sub(started.elapsed());
        drain(&mut collected, left);
        stop.set();
        // The tunnels close; what they did is in vpnfp's flows.
        drain(&mut collected, Duration::from_millis(500));
        let status = vpnfp.terminate(Duration::from_secs(20));
        reader.join().ok();
        drain(&mut collected, Duration::from_millis(10));
        let events = collected
            .iter()
            .map(|l| {
                serde_json::from_str(l).with_context(|| format!("vpnfp printed non-JSON {l:?}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(LabReport {
            hosts: hosts.clone(),
            events,
            status,
            idle_ended_at,
            traffic_started_at,
            silent,
            probe: probed,
            log: std::fs::read_to_string(dir.join("vpnfp.log")).unwrap_or_default(),
            dir: workdir.path.clone(),
        })
    })();
    stop.set();
    procs.stop_all();
    for t in threads {
        let _ = t.join();
    }
    drop(topo);
    drop(workdir);
    result
}

/// The WAN's servers for the selected hosts.
fn servers(
    topo: &Topology,
    procs: &Procs,
    pki: &Pki,
    dir: &Path,
    hosts: &[&HostSpec],
    stop: &Stop,
    threads: &mut Vec<JoinHandle<()>>,
) -> anyhow::Result<()> {
    let wan = &topo.wan;
    let has = |name: &str| hosts.iter().any(|h| h.name == name);
    threads.push(traffic::http_server(wan, 80, stop.clone()));
    threads.push(traffic::http_server(wan, 8080, stop.clone()));
    software::dnsmasq(procs, wan, dir, DNS_SERVER)?;
    for (i, h) in HOSTS.iter().enumerate() {
        if !hosts.iter().any(|s| s.name == h.name) || matches!(h.expect, Expect::Hiding(_)) {
            continue;
        }
        let mut cmd = wan.command("iperf3");
        cmd.args(["-s", "-p", &(5201 + i).to_string()]);
        procs.spawn(&format!("iperf3-server-{i}"), cmd)?;
    }
    if has("wg") || has("multi") {
        let keys = software::wg_keys(dir, "wg-server")?;
        let iface = software::wg_name("s");
        software::wireguard(
            procs,
            wan,
            "wg-server",
            &iface,
            &keys,
            "10.101.0.1/24",
            51820,
        )?;
        for (host, tunnel_addr) in [("wg", "10.101.0.2"), ("multi", "10.101.0.3")] {
            if has(host) {
                let client = software::wg_keys(dir, &format!("wg-{host}"))?;
                software::wg_peer(
                    wan,
                    &iface,
                    &client.public,
                    &format!("{tunnel_addr}/32"),
                    None,
                )?;
            }
        }
    }
    if has("ovpnu") {
        ovpn_udp(pki).server(procs, wan, "ovpnu-server", "ovs0")?;
    }
    if has("multi") {
        ovpn_multi(pki).server(procs, wan, "multi-ovpn-server", "ovs2")?;
    }
    if has("ovpnt") {
        ovpn_tcp(pki).server(procs, wan, "ovpnt-server", "ovs1")?;
    }
    if has("anyc") {
        software::ocserv(procs, wan, dir, pki, OCSERV)?;
    }
    if has("ipsec") {
        wan.ip(&["addr", "add", "10.105.0.1/32", "dev", "lo"]);
        Charon::start(
            procs,
            wan,
            dir,
            "charon-server",
            &software::ikev2_connection(false, IPSEC_SERVER, IPSEC_TUNNEL),
        )?;
    }
    if has("ss") {
        software::ss_server(procs, wan, SS_SERVER)?;
    }
    if has("ssh") {
        software::sshd(procs, wan, dir, SSH_SERVER)?;
    }
    if has("web") {
        for i in 1..=HTTPS_SERVERS {
            let mut cmd = wan.command("openssl");
            cmd.args(["s_server", "-www", "-quiet", "-accept"])
                .arg(format!("{}:443", web(i)))
                .args([
                    "-cert",
                    &pki.path("server.crt"),
                    "-key",
                    &pki.path("server.key"),
                ]);
            procs.spawn(&format!("https-{i}"), cmd)?;
        }
    }
    if has("video") {
        let mut cmd = wan.command("openssl");
        cmd.args(["s_server", "-quiet", "-accept"])
            .arg(format!("{VIDEO_SERVER}:443"))
            .args([
                "-cert",
                &pki.path("server.crt"),
                "-key",
                &pki.path("server.key"),
            ]);
        let (_, stdin) = procs.spawn_piped("video-server", cmd)?;
        // 150 kB/s, paced at the server.
        threads.push(traffic::pace(stdin, 150_000, stop.clone()));
    }
    hiding::servers(
        &hiding::Ctx {
            topo,
            procs,
            pki,
            dir,
        },
        &has,
    )?;
    if has("dnsq") {
        threads.push(traffic::quic_server(
            wan,
            SocketAddr::new(QUIC_SERVER.into(), 443),
            stop.clone(),
        ));
    }
    Ok(())
}

const IPSEC_TUNNEL: (Ipv4Addr, Ipv4Addr) =
    (Ipv4Addr::new(10, 105, 0, 1), Ipv4Addr::new(10, 105, 0, 2));

fn ovpn_udp(pki: &Pki) -> OpenVpn<'_> {
    OpenVpn {
        pki,
        proto: "udp",
        server: OVPN_UDP_SERVER,
        port: 1194,
        tls_crypt: TlsCrypt::None,
        tunnel: (Ipv4Addr::new(10, 102, 0, 1), Ipv4Addr::new(10, 102, 0, 2)),
    }
}

fn ovpn_multi(pki: &Pki) -> OpenVpn<'_> {
    OpenVpn {
        port: 1195,
        tunnel: (Ipv4Addr::new(10, 106, 0, 1), Ipv4Addr::new(10, 106, 0, 2)),
        ..ovpn_udp(pki)
    }
}

fn ovpn_tcp(pki: &Pki) -> OpenVpn<'_> {
    OpenVpn {
        pki,
        proto: "tcp",
        server: OVPN_TCP_SERVER,
        port: 443,
        tls_crypt: TlsCrypt::V1,
        tunnel: (Ipv4Addr::new(10, 104, 0, 1), Ipv4Addr::new(10, 104, 0, 2)),
    }
}

fn iperf_port(host: &str) -> u16 {
    5201 + HOSTS
        .iter()
        .position(|h| h.name == host)
        .expect("a lab host") as u16
}

/// iperf3 at a modest rate, through the tunnel, for the lab's duration.
fn iperf(
    procs: &Procs,
    topo: &Topology,
    host: &str,
    target: &str,
    port: u16,
    secs: u64,
    bind: Option<&str>,
) -> anyhow::Result<()> {
    let mut cmd = topo.host(host).ns.command("iperf3");
    cmd.args([
        "-c",
        target,
        "-p",
        &port.to_string(),
        "-b",
        "600K",
        "-t",
        &secs.to_string(),
    ]);
    if let Some(b) = bind {
        cmd.args(["-B", b]);
    }
    procs.spawn(&format!("iperf3-{host}"), cmd)?;
    Ok(())
}

/// Waits until `host` reaches `addr` (ping), i.e. its tunnel is up.
fn tunnel_up(
    topo: &Topology,
    host: &str,
    addr: &str,
    source: Option<&str>,
    procs: &Procs,
    proc_name: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let ns = &topo.host(host).ns;
    wait_for(&format!("{host}'s tunnel to {addr}"), timeout, || {
        let mut cmd = ns.command("ping");
        cmd.args(["-c", "1", "-W", "1"]);
        if let Some(s) = source {
            cmd.args(["-I", s]);
        }
        cmd.arg(addr).output().is_ok_and(|o| o.status.success())
    })
    .map_err(|e| with_log(e, procs, proc_name))
}

/// `e`, with the end of `proc_name`'s log if it has exited.
fn with_log(e: anyhow::Error, procs: &Procs, proc_name: &str) -> anyhow::Error {
    match procs.check(proc_name) {
        Ok(()) => e,
        Err(exited) => e.context(format!("{exited:#}")),
    }
}

/// Starts the clients and their traffic; runs the failure scenarios on
/// their timeline. `pause` waits while collecting vpnfp's output.
#[expect(
    clippy::too_many_arguments,
    reason = "the lab's parts, each its own; a struct would only rename them"
)]
fn clients_and_traffic(
    topo: &Topology,
    procs: &Procs,
    pki: &Pki,
    dir: &Path,
    hosts: &[&HostSpec],
    secs: u64,
    stop: &Stop,
    threads: &mut Vec<JoinHandle<()>>,
    pause: &mut dyn FnMut(Duration),
    blockable: bool,
    silent: &mut Vec<&'static str>,
) -> anyhow::Result<Option<f64>> {
    let has = |name: &str| hosts.iter().any(|h| h.name == name);
    let up = Duration::from_secs(30);
    let fetch = |host: &str, url: String, extra: &[&str]| {
        traffic::fetch_loop(
            &topo.host(host).ns,
            extra.iter().map(|s| s.to_string()).collect(),
            vec![url],
            Duration::from_millis(700),
            stop.clone(),
        )
    };
    if has("wg") {
        let ns = &topo.host("wg").ns;
        let keys = software::wg_keys(dir, "wg-wg")?;
        let iface = software::wg_name("a");
        software::wireguard(procs, ns, "wg-client", &iface, &keys, "10.101.0.2/24", 0)?;
        let server_pub = wg_public(dir, "wg-server")?;
        software::wg_peer(
            ns,
            &iface,
            &server_pub,
            "10.101.0.0/24",
            Some(&format!("{WG_SERVER}:51820")),
        )?;
    }
    if has("multi") {
        let ns = &topo.host("multi").ns;
        let keys = software::wg_keys(dir, "wg-multi")?;
        let iface = software::wg_name("m");
        software::wireguard(
            procs,
            ns,
            "multi-wg-client",
            &iface,
            &keys,
            "10.101.0.3/24",
            0,
        )?;
        let server_pub = wg_public(dir, "wg-server")?;
        software::wg_peer(
            ns,
            &iface,
            &server_pub,
            "10.101.0.0/24",
            Some(&format!("{WG_SERVER}:51820")),
        )?;
        ovpn_multi(pki).client(procs, ns, "multi-ovpn-client", "ovc2")?;
    }
    if has("ovpnu") {
        ovpn_udp(pki).client(procs, &topo.host("ovpnu").ns, "ovpnu-client", "ovc0")?;
    }
    if has("ovpnt") {
        ovpn_tcp(pki).client(procs, &topo.host("ovpnt").ns, "ovpnt-client", "ovc1")?;
    }
    if has("anyc") {
        software::openconnect(procs, &topo.host("anyc").ns, dir, pki, OCSERV, "oc0")?;
    }
    if has("ipsec") {
        let ns = &topo.host("ipsec").ns;
        ns.ip(&["addr", "add", "10.105.0.2/32", "dev", "lo"]);
        Charon::start(
            procs,
            ns,
            dir,
            "charon-client",
            &software::ikev2_connection(true, IPSEC_SERVER, IPSEC_TUNNEL),
        )?;
    }
    if has("ss") {
        let target = format!("{TARGET}:{}", iperf_port("ss"));
        software::ss_clients(procs, &topo.host("ss").ns, SS_SERVER, (5301, &target), 1080)?;
    }
    if has("ssh") {
        let key = dir.join("ssh").join("client_key");
        software::ssh_forward(
            procs,
            &topo.host("ssh").ns,
            &key,
            SSH_SERVER,
            &[
                (5302, format!("{TARGET}:{}", iperf_port("ssh"))),
                (8081, format!("{TARGET}:8080")),
            ],
        )?;
    }
    // The late server is absent while its client starts.
    let late_keys = if has("late") {
        let ns = &topo.host("late").ns;
        let keys = software::wg_keys(dir, "wg-late")?;
        let server = software::wg_keys(dir, "wg-late-server")?;
        let iface = software::wg_name("l");
        software::wireguard(procs, ns, "late-client", &iface, &keys, "10.107.0.2/24", 0)?;
        software::wg_peer(
            ns,
            &iface,
            &server.public,
            "10.107.0.0/24",
            Some(&format!("{WG_SERVER}:51822")),
        )?;
        // Traffic that drives its handshake attempts.
        let mut ping = ns.command("ping");
        ping.args(["-c", "60", "-i", "0.25", "10.107.0.1"]);
        procs.spawn("late-ping-1", ping)?;
        Some((keys, server))
    } else {
        None
    };

    // Tunnels up, then their traffic.
    let traffic_secs = secs.max(5);
    // Under a policy a tunnel may be blocked and never come up: that is
    // the point, not a failure of the lab (the lab reports what passed).
    let may_fail = |result: anyhow::Result<()>| -> anyhow::Result<()> {
        match result {
            Err(e) if blockable => {
                eprintln!("vpnfp-lab: {e:#} (blocked by the policy?)");
                Ok(())
            }
            other => other,
        }
    };
    let blockable_up = if blockable {
        up.min(Duration::from_secs(15))
    } else {
        up
    };
    if has("wg") {
        // Under a policy that blocks WireGuard its tunnel never comes up:
        // that is the point, not a failure of the lab.
        let wait = if blockable {
            Duration::from_secs(6)
        } else {
            up
        };
        let waited = tunnel_up(topo, "wg", "10.101.0.1", None, procs, "wg-client", wait);
        if !blockable {
            waited?;
        }
        iperf(
            procs,
            topo,
            "wg",
            "10.101.0.1",
            iperf_port("wg"),
            traffic_secs,
            None,
        )?;
        threads.push(fetch("wg", "http://10.101.0.1:8080/20000".into(), &[]));
        // The leak: one DNS query outside the tunnel every second.
        threads.push(traffic::dns_loop(
            &topo.host("wg").ns,
            DNS_SERVER,
            Duration::from_secs(1),
            stop.clone(),
            Arc::new(AtomicU64::new(0)),
        ));
    }
    // The tunnels that differ only in their addresses: (host, tunnel
    // server, the client's tunnel address where it must be the source,
    // the client's process).
    let tunnels = [
        ("ovpnu", "10.102.0.1", None, "ovpnu-client"),
        ("ovpnt", "10.104.0.1", None, "ovpnt-client"),
        ("anyc", "10.103.0.1", None, "openconnect"),
        ("ipsec", "10.105.0.1", Some("10.105.0.2"), "charon-client"),
    ];
    for (host, server, source, process) in tunnels {
        if !has(host) {
            continue;
        }
        may_fail(tunnel_up(
            topo,
            host,
            server,
            source,
            procs,
            process,
            blockable_up,
        ))?;
        iperf(
            procs,
            topo,
            host,
            server,
            iperf_port(host),
            traffic_secs,
            source,
        )?;
        let bind: Vec<&str> = source.map(|a| vec!["--interface", a]).unwrap_or_default();
        threads.push(fetch(host, format!("http://{server}:8080/20000"), &bind));
    }
    if has("ss") {
        pause(Duration::from_millis(300));
        iperf(procs, topo, "ss", "127.0.0.1", 5301, traffic_secs, None)?;
        threads.push(fetch(
            "ss",
            format!("http://{TARGET}:8080/20000"),
            &["--socks5-hostname", "127.0.0.1:1080"],
        ));
    }
    if has("ssh") {
        let ns = &topo.host("ssh").ns;
        may_fail(
            wait_for("ssh's forward", blockable_up, || {
                ns.command("bash")
                    .args(["-c", "exec 3<>/dev/tcp/127.0.0.1/8081"])
                    .output()
                    .is_ok_and(|o| o.status.success())
            })
            .map_err(|e| with_log(e, procs, "ssh")),
        )?;
        iperf(procs, topo, "ssh", "127.0.0.1", 5302, traffic_secs, None)?;
        threads.push(fetch("ssh", "http://127.0.0.1:8081/20000".into(), &[]));
    }
    if has("web") {
        let ns = &topo.host("web").ns;
        let mut urls: Vec<String> = (1..=HTTPS_SERVERS)
            .map(|i| format!("https://site{i}.lab.example/"))
            .collect();
        urls.extend((1..=WEB_SERVERS).map(|i| format!("http://{}/30000", web(i))));
        let mut args = vec!["-k".to_string()];
        for i in 1..=HTTPS_SERVERS {
            args.push("--resolve".into());
            args.push(format!("site{i}.lab.example:443:{}", web(i)));
        }
        threads.push(traffic::fetch_loop(
            ns,
            args,
            urls,
            Duration::from_millis(150),
            stop.clone(),
        ));
        threads.push(traffic::dns_loop(
            ns,
            DNS_SERVER,
            Duration::from_millis(400),
            stop.clone(),
            Arc::new(AtomicU64::new(0)),
        ));
    }
    if has("video") {
        // The stream must really flow: its bytes go to a file, and a
        // client that got nothing within seconds is started again.
        let received = dir.join("video-received");
        let start_client = |name: &str| -> anyhow::Result<()> {
            let mut cmd = topo.host("video").ns.command("sh");
            cmd.arg("-c").arg(format!(
                "exec openssl s_client -quiet -ign_eof -servername video.lab.example -connect {VIDEO_SERVER}:443 > {}",
                received.display()
            ));
            procs.spawn(name, cmd).map(|_| ())
        };
        start_client("video-client")?;
        let flowing = || std::fs::metadata(&received).is_ok_and(|m| m.len() > 10_000);
        if wait_for("the video stream", Duration::from_secs(8), flowing).is_err() {
            procs.stop("video-client");
            start_client("video-client-again")?;
            wait_for("the video stream", Duration::from_secs(8), flowing).map_err(|e| {
                with_log(
                    with_log(e, procs, "video-server"),
                    procs,
                    "video-client-again",
                )
            })?;
        }
    }
    if has("dnsq") {
        let ns = &topo.host("dnsq").ns;
        threads.push(traffic::dns_loop(
            ns,
            DNS_SERVER,
            Duration::from_millis(200),
            stop.clone(),
            Arc::new(AtomicU64::new(0)),
        ));
        threads.push(traffic::quic_loop(
            ns,
            SocketAddr::new(QUIC_SERVER.into(), 443),
            stop.clone(),
        ));
    }

    *silent = hiding::clients(
        &hiding::Ctx {
            topo,
            procs,
            pki,
            dir,
        },
        &has,
        stop,
        threads,
        blockable,
    )?;

    if has("multi") {
        tunnel_up(
            topo,
            "multi",
            "10.106.0.1",
            None,
            procs,
            "multi-ovpn-client",
            up,
        )?;
        tunnel_up(
            topo,
            "multi",
            "10.101.0.1",
            None,
            procs,
            "multi-wg-client",
            up,
        )?;
        let ns = &topo.host("multi").ns;
        let mut a = ns.command("ping");
        a.args(["-c", &(secs * 5).to_string(), "-i", "0.2", "10.106.0.1"]);
        procs.spawn("multi-ping-ovpn", a)?;
        let mut b = ns.command("ping");
        b.args(["-c", &(secs * 5).to_string(), "-i", "0.2", "10.101.0.1"]);
        procs.spawn("multi-ping-wg", b)?;
    }

    // The failure scenarios' timeline, from here.
    let Some((late_keys, late_server)) = late_keys else {
        return Ok(None);
    };
    let wan = &topo.wan;
    let late_ns = &topo.host("late").ns;
    // 1. The server is not there when the client connects: it comes 6 s later.
    pause(Duration::from_secs(6));
    let late_iface = software::wg_name("t");
    software::wireguard(
        procs,
        wan,
        "late-server",
        &late_iface,
        &late_server,
        "10.107.0.1/24",
        51822,
    )?;
    software::wg_peer(wan, &late_iface, &late_keys.public, "10.107.0.0/24", None)?;
    tunnel_up(
        topo,
        "late",
        "10.107.0.1",
        None,
        procs,
        "late-client",
        Duration::from_secs(20),
    )?;
    // 2. The server dies mid-tunnel and comes back.
    if has("ovpnu") {
        procs.stop("ovpnu-server");
        pause(Duration::from_secs(3));
        ovpn_udp(pki).server(procs, wan, "ovpnu-server-again", "ovs0")?;
    }
    // 3. The client reconnects from a new source port.
    procs.stop("late-ping-1");
    procs.stop("late-client");
    let iface2 = software::wg_name("u");
    software::wireguard(
        procs,
        late_ns,
        "late-client-again",
        &iface2,
        &late_keys,
        "10.107.0.2/24",
        0,
    )?;
    software::wg_peer(
        late_ns,
        &iface2,
        &late_server.public,
        "10.107.0.0/24",
        Some(&format!("{WG_SERVER}:51822")),
    )?;
    let mut ping = late_ns.command("ping");
    ping.args(["-c", "12", "-i", "0.25", "10.107.0.1"]);
    procs.spawn("late-ping-2", ping)?;
    // 4. The tunnel stays idle (longer than --flow-idle), then carries
    // traffic again.
    pause(Duration::from_secs(3 + 10));
    let idle_ended_at = unix_now();
    let mut ping = late_ns.command("ping");
    ping.args(["-c", "12", "-i", "0.25", "10.107.0.1"]);
    procs.spawn("late-ping-3", ping)?;
    pause(Duration::from_secs(4));
    Ok(Some(idle_ended_at))
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// What vpnfp made of one tool that hides, in `mode`.
pub struct HidingRow {
    pub host: &'static str,
    pub about: &'static str,
    pub verdict: String,
    /// The first flow name among the expected ones, with its confidence
    /// and how many payload packets it took.
    pub named: Option<(String, String, u64)>,
    /// Seconds from the clients' start to the first verdict above `none`.
    pub suspected_after: Option<f64>,
}

impl LabReport {
    pub fn hiding_rows(&self, mode: &str) -> Vec<HidingRow> {
        self.hosts
            .iter()
            .filter_map(|h| {
                let Expect::Hiding(names) = h.expect else {
                    return None;
                };
                // Named once the host's persistence confirmed a hint; the
                // packets are those of the flow's first evidence.
                let named = self
                    .of("vpn_detected", mode, h.addr)
                    .find(|e| names.iter().any(|n| e["protocol"] == *n))
                    .map(|e| {
                        let protocol = e["protocol"].as_str().unwrap_or("?").to_string();
                        let packets = self
                            .of("vpn_hint", mode, h.addr)
                            .chain(self.of("vpn_detected", mode, h.addr))
                            .filter(|x| x["protocol"] == protocol.as_str())
                            .filter_map(|x| x["packets_seen"].as_u64())
                            .min()
                            .unwrap_or(0);
                        (
                            protocol,
                            e["confidence"].as_str().unwrap_or("?").to_string(),
                            packets,
                        )
                    });
                let suspected_after = self
                    .of("host_verdict", mode, h.addr)
                    .find(|v| v["verdict"] != "none")
                    .and_then(|v| v["at"].as_f64())
                    .map(|at| at - self.traffic_started_at);
                Some(HidingRow {
                    host: h.name,
                    about: h.about,
                    verdict: self.verdict(mode, h.addr).0,
                    named,
                    suspected_after,
                })
            })
            .collect()
    }

    /// The tools that hide as a Markdown table (the README's).
    pub fn hiding_table(&self, mode: &str) -> String {
        let mut out = String::from(
            "| tool | verdict | named per flow | after packets | confidence | above `none` after |\n|---|---|---|---|---|---|\n",
        );
        for r in self.hiding_rows(mode) {
            let (name, confidence, packets) = match &r.named {
                Some((n, c, p)) => (n.as_str(), c.as_str(), p.to_string()),
                None => ("-", "-", "-".to_string()),
            };
            out.push_str(&format!(
                "| {} | {} | {name} | {packets} | {confidence} | {} |\n",
                r.about,
                r.verdict,
                r.suspected_after
                    .map_or("-".to_string(), |s| format!("{s:.0} s")),
            ));
        }
        out
    }
}

fn wg_public(dir: &Path, name: &str) -> anyhow::Result<String> {
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c").arg(format!(
        "wg pubkey < {}",
        dir.join(format!("{name}.wgkey")).display()
    ));
    let out = cmd.output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A table of every host: what it should be, and what vpnfp concluded in
/// each mode; and whether every host was judged as expected.
pub fn summary(report: &LabReport, modes: &[&str]) -> (String, bool) {
    let mut out = format!(
        "{:<8} {:<15} {:<34} {}\n",
        "host",
        "address",
        "expected",
        modes.iter().map(|m| format!("{m:<34}")).collect::<String>()
    );
    let mut all_right = true;
    for h in &report.hosts {
        let expected = h.expect.describe();
        let mut cells = String::new();
        for mode in modes {
            let (level, protocols) = report.verdict(mode, h.addr);
            let named = report.named(mode, h.addr);
            let right = match h.expect {
                Expect::Vpn(p) => level == "vpn" && p.iter().all(|x| named.iter().any(|n| n == x)),
                // A fully encrypted flow is a hint until the verdict
                // confirms it: the verdict names the protocol then.
                Expect::Tunnel(p) => {
                    level == "tunnel" && named.iter().chain(&protocols).any(|n| n == p)
                }
                Expect::Ordinary => level == "none" && named.is_empty(),
                Expect::Hiding(_) => level != "none" && !report.silent.contains(&h.name),
            };
            all_right &= right;
            let shown = if report.silent.contains(&h.name) {
                format!("{level} (the tool carried nothing)")
            } else if protocols.is_empty() {
                level
            } else {
                format!("{level} ({})", protocols.join(", "))
            };
            cells.push_str(&format!(
                "{:<34}",
                format!("{} {shown}", if right { "ok" } else { "WRONG" })
            ));
        }
        out.push_str(&format!(
            "{:<8} {:<15} {:<34} {cells}\n         {}\n",
            h.name,
            h.addr.to_string(),
            expected,
            h.about
        ));
    }
    (out, all_right)
}

/// One line for a `vpn_detected` or `host_verdict` JSON event.
pub fn describe(event: &serde_json::Value) -> Option<String> {
    let s = |k: &str| event[k].as_str().unwrap_or("").to_string();
    match event["event"].as_str()? {
        "vpn_detected" => Some(format!(
            "[{}] {} {} -> {} {}/{}: {} ({}, {} confidence)",
            s("mode"),
            if s("class") == "vpn" {
                "VPN detected:"
            } else {
                "tunnel detected:"
            },
            s("host"),
            s("peer"),
            s("transport"),
            event["peer_port"],
            s("protocol"),
            strings(&event["reasons"]).join(", "),
            s("confidence"),
        )),
        "host_verdict" => Some(format!(
            "[{}] verdict: host {} is {} (was {}){}; reasons: {}",
            s("mode"),
            s("host"),
            s("verdict"),
            s("previous"),
            {
                let p = strings(&event["protocols"]);
                if p.is_empty() {
                    String::new()
                } else {
                    format!(", protocols {}", p.join(", "))
                }
            },
            strings(&event["reasons"]).join("; "),
        )),
        "blocked" => Some(format!(
            "policy: {} {} between {} and {} (rule {})",
            if s("action") == "drop" {
                "blocking"
            } else {
                "would block (dry run)"
            },
            s("protocol"),
            s("host"),
            s("peer"),
            event["rule"],
        )),
        "policy_drops" => Some(format!(
            "policy: {} {}: {} packets between {} and {}",
            s("protocol"),
            if s("action") == "drop" {
                "dropped"
            } else {
                "counted"
            },
            event["packets"],
            s("host"),
            s("peer"),
        )),
        _ => None,
    }
}
