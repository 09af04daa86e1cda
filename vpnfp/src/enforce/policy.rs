//! The enforcement policy: a TOML file, validated in full before anything
//! is enforced.
//!
//! ```toml
//! mode = "enforce"                  # "monitor" (default), "dry_run" or "enforce"
//!
//! [[block]]
//! protocols = ["wireguard"]         # names as in vpn_detected
//! hosts = ["192.168.90.0/24"]       # whose traffic (default: every host)
//!
//! [[block]]
//! verdicts = ["vpn"]                # host verdicts: vpn, tunnel, suspected
//!
//! [[block]]                         # endpoint mode (`run --local`) only:
//! programs = ["/usr/bin/curl"]      # an executable's path, or a command name
//! peer_ports = [443]                # optional; protocols = [...] too
//!
//! [allow]
//! hosts = ["192.168.90.50"]         # may use a VPN
//! peers = ["203.0.113.10"]          # the organisation's own VPN servers
//! programs = ["/usr/sbin/openvpn"]  # no block applies to its packets
//! ```
//!
//! A rule with `programs` drops that program's packets only (from its
//! first packet after vpnfp has seen it, or once its flow is named one of
//! `protocols`); another program talking to the same peer passes.
//!
//! Two budgets, at the top level, with their defaults:
//! `unblock_after_secs = 600` lifts a block once the pair has sent nothing
//! for that long (a tunnel that keeps retrying stays blocked), and
//! `new_blocks_per_host_per_minute = 8` refuses further new blocks for one
//! host within a minute, so forged traffic cannot fill the block map.

use std::{net::IpAddr, path::Path};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::{model::Process, settings::Cidr};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyMode {
    /// Nothing is dropped or counted as such (what vpnfp always does).
    #[default]
    Monitor,
    /// What would be dropped is logged and counted; nothing is dropped.
    DryRun,
    /// Drop it.
    Enforce,
}

impl PolicyMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            PolicyMode::Monitor => "monitor",
            PolicyMode::DryRun => "dry_run",
            PolicyMode::Enforce => "enforce",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    mode: PolicyMode,
    #[serde(default)]
    block: Vec<RawRule>,
    #[serde(default)]
    allow: RawAllow,
    unblock_after_secs: Option<u64>,
    new_blocks_per_host_per_minute: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    protocols: Vec<String>,
    #[serde(default)]
    verdicts: Vec<String>,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    programs: Vec<String>,
    #[serde(default)]
    peer_ports: Vec<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAllow {
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    peers: Vec<String>,
    #[serde(default)]
    programs: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub protocols: Vec<String>,
    pub verdicts: Vec<String>,
    /// Empty: every host.
    pub hosts: Vec<Cidr>,
    /// Executable paths or command names (`--local`): the rule blocks
    /// these programs' packets, not a host's pairs.
    pub programs: Vec<String>,
    /// With `programs`: only to these peer ports (empty: every port).
    pub peer_ports: Vec<u16>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub mode: PolicyMode,
    pub rules: Vec<Rule>,
    pub allow_hosts: Vec<Cidr>,
    pub allow_peers: Vec<Cidr>,
    pub allow_programs: Vec<String>,
    /// A block whose pair was quiet this long is lifted.
    pub unblock_after_secs: u64,
    /// New blocks one host may get per minute; more are refused.
    pub new_blocks_per_host_per_minute: u32,
}

pub const DEFAULT_UNBLOCK_AFTER_SECS: u64 = 600;
pub const DEFAULT_NEW_BLOCKS_PER_HOST_PER_MINUTE: u32 = 8;

const VERDICTS: [&str; 3] = ["vpn", "tunnel", "suspected"];

fn cidrs(list: &[String], what: &str) -> anyhow::Result<Vec<Cidr>> {
    list.iter()
        .map(|c| {
            let text = if c.contains('/') {
                c.clone()
            } else if c.contains(':') {
                format!("{c}/128")
            } else {
                format!("{c}/32")
            };
            text.parse::<Cidr>()
                .map_err(|e| anyhow::anyhow!("{what}: {c:?} is not an address or range ({e})"))
        })
        .collect()
}

impl Policy {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = read_policy_file(path)
            .with_context(|| format!("reading the policy {}", path.display()))?;
        let parsed = if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            Self::parse_json(&text)
        } else {
            Self::parse(&text)
        };
        parsed.with_context(|| format!("policy {}", path.display()))
    }

    /// The TOML form (the documented one).
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        Self::from_raw(toml::from_str(text)?)
    }

    /// The same policy as JSON (a `.json` file), for PyWall users.
    pub fn parse_json(text: &str) -> anyhow::Result<Self> {
        Self::from_raw(serde_json::from_str(text)?)
    }

    fn from_raw(raw: RawPolicy) -> anyhow::Result<Self> {
        let mut rules = Vec::new();
        for (i, r) in raw.block.iter().enumerate() {
            let at = format!("[[block]] number {}", i + 1);
            if r.protocols.is_empty() && r.verdicts.is_empty() && r.programs.is_empty() {
                bail!("{at}: names no protocols, verdicts or programs (it would block nothing)");
            }
            if r.programs.is_empty() && !r.peer_ports.is_empty() {
                bail!("{at}: peer_ports applies to a rule with programs");
            }
            if !r.programs.is_empty() {
                if !r.verdicts.is_empty() || !r.hosts.is_empty() {
                    bail!(
                        "{at}: a rule with programs takes protocols and peer_ports, not verdicts or hosts (a verdict is a host's, a program runs here)"
                    );
                }
                if r.peer_ports.len() > vpnfp_common::local::PROGRAM_BLOCK_PORTS
                    || r.peer_ports.contains(&0)
                {
                    bail!(
                        "{at}: peer_ports: 1 to {} ports from 1 to 65535",
                        vpnfp_common::local::PROGRAM_BLOCK_PORTS
                    );
                }
            }
            programs(&r.programs, &at)?;
            for p in &r.protocols {
                let ok = !p.is_empty()
                    && p.bytes()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_');
                if !ok {
                    bail!(
                        "{at}: protocol {p:?}: names are lowercase snake_case, as in vpn_detected (wireguard, openvpn, ...)"
                    );
                }
                if matches!(
                    p.as_str(),
                    "tls" | "dtls" | "quic" | "dns" | "http" | "stun"
                ) {
                    bail!(
                        "{at}: protocol {p:?} is ordinary traffic; vpnfp blocks VPNs and tunnels only"
                    );
                }
            }
            for v in &r.verdicts {
                if !VERDICTS.contains(&v.as_str()) {
                    bail!("{at}: verdict {v:?}: one of {}", VERDICTS.join(", "));
                }
            }
            rules.push(Rule {
                protocols: r.protocols.clone(),
                verdicts: r.verdicts.clone(),
                hosts: cidrs(&r.hosts, &format!("{at}, hosts"))?,
                programs: r.programs.clone(),
                peer_ports: r.peer_ports.clone(),
            });
        }
        if raw.mode != PolicyMode::Monitor && rules.is_empty() {
            bail!("mode {:?} with no [[block]] rules", raw.mode.as_str());
        }
        let unblock_after_secs = raw.unblock_after_secs.unwrap_or(DEFAULT_UNBLOCK_AFTER_SECS);
        if !(10..=7 * 86_400).contains(&unblock_after_secs) {
            bail!(
                "unblock_after_secs = {unblock_after_secs}: from 10 seconds to a week (blocks must end, and not before a retrying tunnel shows it is alive)"
            );
        }
        let new_blocks_per_host_per_minute = raw
            .new_blocks_per_host_per_minute
            .unwrap_or(DEFAULT_NEW_BLOCKS_PER_HOST_PER_MINUTE);
        if new_blocks_per_host_per_minute == 0 {
            bail!("new_blocks_per_host_per_minute = 0 would block nothing");
        }
        Ok(Self {
            mode: raw.mode,
            unblock_after_secs,
            new_blocks_per_host_per_minute,
            rules,
            allow_hosts: cidrs(&raw.allow.hosts, "[allow] hosts")?,
            allow_peers: cidrs(&raw.allow.peers, "[allow] peers")?,
            allow_programs: programs(&raw.allow.programs, "[allow]")?,
        })
    }

    /// Whether any rule or allowance names programs (`run --local` only).
    pub fn names_programs(&self) -> bool {
        !self.allow_programs.is_empty() || self.rules.iter().any(|r| !r.programs.is_empty())
    }

    /// `[allow] programs` names the process.
    pub fn allows_program(&self, process: &Process) -> bool {
        self.allow_programs.iter().any(|p| process.is(p))
    }

    /// The first program rule that blocks the process outright
    /// (`protocol` None: rules without protocols), or once one of its
    /// flows is named `protocol`.
    pub fn blocks_program(&self, process: &Process, protocol: Option<&str>) -> Option<usize> {
        if self.mode == PolicyMode::Monitor || self.allows_program(process) {
            return None;
        }
        self.rules.iter().position(|r| {
            r.programs.iter().any(|p| process.is(p))
                && match protocol {
                    None => r.protocols.is_empty(),
                    Some(name) => r.protocols.iter().any(|p| p == name),
                }
        })
    }

    fn allowed(&self, host: IpAddr, peer: IpAddr) -> bool {
        self.allow_hosts.iter().any(|c| c.contains(host))
            || self.allow_peers.iter().any(|c| c.contains(peer))
    }

    fn applies(rule: &Rule, host: IpAddr) -> bool {
        rule.hosts.is_empty() || rule.hosts.iter().any(|c| c.contains(host))
    }

    /// The first rule for `host` that `names` accepts, unless nothing is
    /// enforced or the pair is allowlisted.
    fn first_rule(
        &self,
        host: IpAddr,
        peer: IpAddr,
        names: impl Fn(&Rule) -> bool,
    ) -> Option<usize> {
        if self.mode == PolicyMode::Monitor || self.allowed(host, peer) {
            return None;
        }
        self.rules
            .iter()
            .position(|r| r.programs.is_empty() && Self::applies(r, host) && names(r))
    }

    /// The rule (its index) that blocks `protocol` between host and peer.
    pub fn blocks_protocol(&self, host: IpAddr, peer: IpAddr, protocol: &str) -> Option<usize> {
        self.first_rule(host, peer, |r| r.protocols.iter().any(|p| p == protocol))
    }

    /// The rule that blocks a host with this verdict from `peer`.
    pub fn blocks_verdict(&self, host: IpAddr, peer: IpAddr, verdict: &str) -> Option<usize> {
        self.first_rule(host, peer, |r| r.verdicts.iter().any(|v| v == verdict))
    }
}

/// A list of programs: absolute executable paths, or command names (at
/// most 15 bytes, as the kernel keeps them).
fn programs(list: &[String], at: &str) -> anyhow::Result<Vec<String>> {
    for p in list {
        let ok = if p.starts_with('/') {
            p.len() > 1
        } else {
            !p.is_empty() && p.len() <= 15 && !p.contains('/')
        };
        if !ok {
            bail!(
                "{at}: program {p:?}: an absolute executable path (/usr/bin/curl) or a command name of at most 15 bytes (curl)"
            );
        }
    }
    Ok(list.to_vec())
}

/// The most a policy file may hold.
const MAX_POLICY_BYTES: u64 = 1 << 20;

/// A policy file's text: a regular file of at most 1 MiB. A FIFO, a device
/// (`/dev/zero`) or a huge file is refused with a clear error instead of
/// blocking the loop that calls this, or filling memory.
fn read_policy_file(path: &Path) -> anyhow::Result<String> {
    use std::{io::Read, os::unix::fs::OpenOptionsExt};
    let regular = |meta: &std::fs::Metadata| -> anyhow::Result<()> {
        if !meta.is_file() {
            bail!("not a regular file");
        }
        if meta.len() > MAX_POLICY_BYTES {
            bail!("{} bytes, more than a policy's 1 MiB", meta.len());
        }
        Ok(())
    };
    // Checked before opening (opening a FIFO would wait for a writer), and
    // again on what was opened, without waiting, in case it was swapped.
    regular(&std::fs::metadata(path)?)?;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    regular(&file.metadata()?)?;
    let mut text = String::new();
    (&mut file)
        .take(MAX_POLICY_BYTES + 1)
        .read_to_string(&mut text)?;
    if text.len() as u64 > MAX_POLICY_BYTES {
        bail!("more than a policy's 1 MiB");
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_says_the_same_as_toml() {
        let json = r#"{"mode": "enforce",
            "block": [{"protocols": ["wireguard"], "hosts": ["192.168.90.0/24", "2001:db8:90::/48"]},
                      {"verdicts": ["vpn"], "hosts": ["10.0.0.0/8"]}],
            "allow": {"hosts": ["192.168.90.32"], "peers": ["203.0.113.10"]}}"#;
        assert_eq!(
            Policy::parse_json(json).unwrap(),
            Policy::parse(EXAMPLE).unwrap()
        );
        let err = Policy::parse_json(r#"{"mode": "enforce", "blok": []}"#).unwrap_err();
        assert!(format!("{err:#}").contains("blok"), "{err:#}");
    }

    const EXAMPLE: &str = r#"
mode = "enforce"

[[block]]
protocols = ["wireguard"]
hosts = ["192.168.90.0/24", "2001:db8:90::/48"]

[[block]]
verdicts = ["vpn"]
hosts = ["10.0.0.0/8"]

[allow]
hosts = ["192.168.90.32"]
peers = ["203.0.113.10"]
"#;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_example_means_what_it_says() {
        let p = Policy::parse(EXAMPLE).unwrap();
        assert_eq!(p.mode, PolicyMode::Enforce);
        let peer = ip("198.51.100.1");
        assert_eq!(
            p.blocks_protocol(ip("192.168.90.11"), peer, "wireguard"),
            Some(0)
        );
        assert_eq!(
            p.blocks_protocol(ip("2001:db8:90::5"), peer, "wireguard"),
            Some(0)
        );
        // Another protocol, another host, an allowlisted host or peer: no.
        assert_eq!(
            p.blocks_protocol(ip("192.168.90.11"), peer, "openvpn"),
            None
        );
        assert_eq!(
            p.blocks_protocol(ip("192.168.91.11"), peer, "wireguard"),
            None
        );
        assert_eq!(
            p.blocks_protocol(ip("192.168.90.32"), peer, "wireguard"),
            None
        );
        assert_eq!(
            p.blocks_protocol(ip("192.168.90.11"), ip("203.0.113.10"), "wireguard"),
            None
        );
        assert_eq!(p.blocks_verdict(ip("10.1.2.3"), peer, "vpn"), Some(1));
        assert_eq!(p.blocks_verdict(ip("10.1.2.3"), peer, "tunnel"), None);
        // Monitor mode blocks nothing, whatever the rules.
        let monitor = Policy::parse(&EXAMPLE.replace("\"enforce\"", "\"monitor\"")).unwrap();
        assert_eq!(
            monitor.blocks_protocol(ip("192.168.90.11"), peer, "wireguard"),
            None
        );
    }

    #[test]
    fn mistakes_are_refused_with_where_they_are() {
        let err = |text: &str| format!("{:#}", Policy::parse(text).unwrap_err());
        assert!(err("mode = \"block\"").contains("unknown variant"));
        assert!(
            err("mode = \"enforce\"\n[[block]]\nprotocols = [\"WireGuard\"]")
                .contains("[[block]] number 1")
        );
        assert!(
            err("mode = \"enforce\"\n[[block]]\nprotocols = [\"tls\"]")
                .contains("ordinary traffic")
        );
        assert!(err("mode = \"enforce\"\n[[block]]\nverdicts = [\"maybe\"]").contains("verdict"));
        assert!(
            err("mode = \"enforce\"\n[[block]]\nprotocols = [\"ssh\"]\nhosts = [\"300.1.1.1\"]")
                .contains("not an address")
        );
        assert!(err("mode = \"enforce\"").contains("no [[block]] rules"));
        assert!(
            err("mode = \"enforce\"\n[[block]]\nhosts = [\"10.0.0.0/8\"]")
                .contains("would block nothing")
        );
        assert!(
            err("mode = \"enforce\"\n[[block]]\nprotocols = [\"ssh\"]\ntypo = 1")
                .contains("unknown field")
        );
        // The default is monitor, with nothing to do.
        assert_eq!(Policy::parse("").unwrap().mode, PolicyMode::Monitor);
    }

    #[test]
    fn only_regular_files_of_at_most_a_mebibyte() {
        let dir = std::env::temp_dir().join(format!("vpnfp-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo.toml");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a NUL-terminated path we own.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let started = std::time::Instant::now();
        let e = Policy::load(&fifo).unwrap_err();
        assert!(format!("{e:#}").contains("not a regular file"), "{e:#}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let e = Policy::load(Path::new("/dev/zero")).unwrap_err();
        assert!(format!("{e:#}").contains("not a regular file"), "{e:#}");
        let big = dir.join("big.toml");
        std::fs::write(&big, vec![b'#'; (MAX_POLICY_BYTES + 1) as usize]).unwrap();
        let e = Policy::load(&big).unwrap_err();
        assert!(format!("{e:#}").contains("1 MiB"), "{e:#}");
        let good = dir.join("good.toml");
        std::fs::write(
            &good,
            "mode = \"enforce\"\n[[block]]\nprotocols = [\"wireguard\"]\n",
        )
        .unwrap();
        assert!(Policy::load(&good).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
