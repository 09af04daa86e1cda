//! The precision scorecard: `vpnfp replay` over a corpus of real captures
//! laid out like nDPI's test suite (`pcap/FILE` and `expected/FILE.out`),
//! flow by flow against nDPI's own labels.
//!
//! nDPI's category `VPN` holds the tunnels, and also web traffic to a VPN
//! provider's site named by its TLS server name (`TLS.NordVPN`), which is
//! no tunnel: those are counted apart, as is SSH (a tunnel only when it
//! forwards ports). Everything else is ordinary traffic, on which any VPN
//! or tunnel name is a false one.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use vpnfp_common::identify::{Class, Protocol};

/// Where the corpus is: `VPNFP_CORPUS`, else `../shared/corpus/ndpi-dev`
/// beside the workspace. `None` when neither exists.
pub fn locate() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("VPNFP_CORPUS") {
        return Some(PathBuf::from(dir)).filter(|d| d.join("pcap").is_dir());
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    Some(root.join("../shared/corpus/ndpi-dev")).filter(|d| d.join("pcap").is_dir())
}

/// The corpus for `test`: under CI its absence fails the test; elsewhere
/// the test is skipped with a message (`None`).
pub fn for_test(test: &str) -> Option<PathBuf> {
    let dir = locate();
    if dir.is_none() {
        if std::env::var_os("CI").is_some() {
            panic!(
                "the nDPI corpus is missing: CI must have ../shared/corpus/ndpi-dev beside the clone (or VPNFP_CORPUS)"
            );
        }
        eprintln!(
            "SKIPPED {test}: no corpus at ../shared/corpus/ndpi-dev; set VPNFP_CORPUS to its directory"
        );
    }
    dir
}

/// What nDPI's label makes of a flow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Truth {
    /// A VPN or tunnel protocol (category VPN, not a web page; or a tunnel
    /// that carries IP in the clear).
    Tunnel,
    /// A VPN provider's web site or API, named by its server name.
    ProviderWeb,
    /// SSH: a tunnel only when it forwards ports, which nDPI cannot see.
    Ssh,
    /// A tunnel name nDPI guessed from the port alone (`Confidence: Match
    /// by port`): nDPI's own inspection did not confirm it.
    GuessedTunnel,
    Ordinary,
}

impl Truth {
    pub fn as_str(self) -> &'static str {
        match self {
            Truth::Tunnel => "tunnel",
            Truth::ProviderWeb => "vpn-provider-web",
            Truth::Ssh => "ssh",
            Truth::GuessedTunnel => "tunnel-guessed-by-port",
            Truth::Ordinary => "ordinary",
        }
    }
}

type Endpoint = (IpAddr, u16);

/// Where nDPI's label is wrong, with the evidence (docs/corpus.md): the
/// capture, nDPI's application name on the flows concerned, and what they
/// are.
pub struct Correction {
    pub file: &'static str,
    pub ndpi_app: &'static str,
    pub truth: Truth,
    pub evidence: &'static str,
}

pub const CORRECTIONS: &[Correction] = &[Correction {
    file: "bad-dns-traffic.pcap",
    ndpi_app: "DNS",
    truth: Truth::Tunnel,
    evidence: "dnscat2: hex-encoded sessions under skullseclabs.org (dnscat2's author's domain) decoding to \"console (sirvimes)\", \"command (sirvimes)\" and \"Welcome to dnscat! The flag is below, have fun!!\"; MX, TXT and CNAME questions; nDPI itself flags the flows \"Susp DNS Traffic\"",
}];

/// One flow line of an nDPI expected file.
#[derive(Clone, Debug)]
pub struct NdpiFlow {
    pub proto: u8,
    pub a: Endpoint,
    pub b: Endpoint,
    /// The application name (`IPSec`, `TLS.NordVPN`, `Unknown`).
    pub app: String,
    pub category: String,
    /// nDPI's confidence (`DPI`, `Match by port`, ...).
    pub confidence: String,
    pub line: String,
    /// A correction of nDPI's label (see [`CORRECTIONS`]).
    pub corrected: Option<Truth>,
}

impl NdpiFlow {
    pub fn truth(&self) -> Truth {
        self.corrected.unwrap_or_else(|| self.label())
    }

    /// What nDPI's own label says.
    pub fn label(&self) -> Truth {
        if self.app == "SSH" {
            return Truth::Ssh;
        }
        // nDPI's tunnel protocols, whatever category a capture's test
        // configuration gives them (custom_categories.pcapng files IPsec
        // under "Malware"); and tunnels by definition that nDPI files
        // under `Network`: GRE, IP in IP and Teredo (RFC 4380, "Tunneling
        // IPv6 over UDP") carry IP packets in the clear.
        const TUNNELS: [&str; 15] = [
            "IPSec",
            "OpenVPN",
            "WireGuard",
            "TINC",
            "Softether",
            "PPTP",
            "L2TP",
            "Tailscale",
            "CiscoVPN",
            "CloudflareWarp",
            "UltraSurf",
            "HotspotShield",
            "GRE",
            "IP_in_IP",
            "Teredo",
        ];
        let tunnel_protocol = TUNNELS.contains(&self.app.as_str());
        if self.category != "VPN" && !tunnel_protocol {
            return Truth::Ordinary;
        }
        let master = self.app.split('.').next().unwrap_or_default();
        if self.app.contains('.') && ["TLS", "QUIC", "HTTP", "DNS"].contains(&master) {
            Truth::ProviderWeb
        } else if self.confidence == "Match by port" {
            Truth::GuessedTunnel
        } else {
            Truth::Tunnel
        }
    }
}

/// IP protocol numbers by the names nDPI and vpnfp print.
fn ip_proto(name: &str) -> Option<u8> {
    Some(match name.to_ascii_lowercase().as_str() {
        "icmp" => 1,
        "igmp" => 2,
        "ipip" | "ip_in_ip" => 4,
        "tcp" => 6,
        "udp" => 17,
        "ipv6" => 41,
        "gre" => 47,
        "esp" => 50,
        "ah" => 51,
        "icmpv6" => 58,
        "pim" => 103,
        "vrrp" => 112,
        "sctp" => 132,
        "udplite" => 136,
        other => return other.parse().ok(),
    })
}

fn endpoint(s: &str) -> Option<Endpoint> {
    let (addr, port) = s.rsplit_once(':')?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    Some((addr.parse().ok()?, port.parse().ok()?))
}

fn bracketed<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!("[{key}: "))? + key.len() + 3;
    let end = line[start..].find(']')? + start;
    Some(&line[start..end])
}

/// The flow lines of an expected file (`\t<n>\t<L4> <a> <->|-> <b> [...]`).
pub fn read_expected(path: &Path) -> anyhow::Result<Vec<NdpiFlow>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut flows = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix('\t') else {
            continue;
        };
        let Some((n, rest)) = rest.split_once('\t') else {
            continue;
        };
        if n.parse::<u32>().is_err() {
            continue;
        }
        let mut words = rest.split(' ');
        let (Some(l4), Some(a), Some(arrow), Some(b)) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            continue;
        };
        if arrow != "<->" && arrow != "->" {
            continue;
        }
        let (Some(proto), Some(a), Some(b)) = (ip_proto(l4), endpoint(a), endpoint(b)) else {
            continue;
        };
        let app = bracketed(rest, "proto")
            .and_then(|p| p.rsplit('/').next())
            .unwrap_or("Unknown")
            .to_string();
        let category = bracketed(rest, "cat")
            .and_then(|c| c.split('/').next())
            .unwrap_or("Unspecified")
            .to_string();
        let confidence = bracketed(rest, "Confidence")
            .unwrap_or("Unknown")
            .to_string();
        flows.push(NdpiFlow {
            proto,
            a,
            b,
            app,
            category,
            confidence,
            line: rest.chars().take(160).collect(),
            corrected: None,
        });
    }
    Ok(flows)
}

/// One flow as vpnfp reported it (its records merged).
#[derive(Clone, Debug, Default)]
pub struct VpnfpFlow {
    pub proto: u8,
    pub host: Option<Endpoint>,
    pub peer: Option<Endpoint>,
    /// The protocol vpnfp named, if any.
    pub protocol: Option<String>,
    /// A weak indication that named nothing (the host is `suspected`).
    pub hint: Option<String>,
}

/// The class of a name vpnfp printed (unknown names count as tunnels, so
/// a new name can only make the scorecard stricter).
pub fn class_of(name: &str) -> Class {
    Protocol::ALL
        .iter()
        .find(|p| p.name() == name)
        .map_or(Class::Tunnel, |p| p.class())
}

/// The flow records of one `vpnfp replay --json FILE`, and its error
/// lines (empty when the file was read whole).
pub fn replay(vpnfp: &Path, capture: &Path) -> anyhow::Result<(Vec<VpnfpFlow>, Vec<String>)> {
    let out = Command::new(vpnfp)
        .arg("replay")
        .arg("--json")
        .arg(capture)
        .env("RUST_LOG", "warn")
        .output()
        .with_context(|| format!("starting {}", vpnfp.display()))?;
    let mut errors: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| l.contains("ERROR"))
        .map(str::to_string)
        .collect();
    if !out.status.success() && errors.is_empty() {
        errors.push(format!("vpnfp replay exited with {}", out.status));
    }
    let mut flows = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else {
            bail!("{}: not JSON: {line}", capture.display());
        };
        if v["event"] != "flow" {
            continue;
        }
        let proto = match &v["transport"] {
            Value::String(s) => ip_proto(s),
            Value::Number(n) => n.as_u64().and_then(|n| u8::try_from(n).ok()),
            _ => None,
        }
        .context("flow record without a transport")?;
        let ep = |addr: &str, port: &str| -> Option<Endpoint> {
            Some((
                v[addr].as_str()?.parse().ok()?,
                u16::try_from(v[port].as_u64()?).ok()?,
            ))
        };
        flows.push(VpnfpFlow {
            proto,
            host: ep("host", "host_port"),
            peer: ep("peer", "peer_port"),
            protocol: v["protocol"].as_str().map(str::to_string),
            hint: v["hint"].as_str().map(str::to_string),
        });
    }
    Ok((flows, errors))
}

type Key = (u8, Endpoint, Endpoint);

fn key(proto: u8, a: Endpoint, b: Endpoint) -> Key {
    if a <= b { (proto, a, b) } else { (proto, b, a) }
}

/// Portless flows (AH, ESP, IP in IP) match by their addresses alone:
/// vpnfp files a flow behind an AH header under the next protocol.
fn address_key(a: Endpoint, b: Endpoint) -> (IpAddr, IpAddr) {
    if a.0 <= b.0 { (a.0, b.0) } else { (b.0, a.0) }
}

/// One nDPI flow and what vpnfp made of it.
#[derive(Clone, Debug)]
pub struct Scored {
    pub file: String,
    pub ndpi: NdpiFlow,
    /// vpnfp kept a record of the flow.
    pub seen: bool,
    pub protocol: Option<String>,
    pub hint: Option<String>,
}

impl Scored {
    /// Named a VPN or a tunnel.
    pub fn tunnel_name(&self) -> Option<&str> {
        self.protocol
            .as_deref()
            .filter(|p| class_of(p) != Class::Benign)
    }

    fn json(&self) -> Value {
        json!({
            "file": self.file,
            "ndpi": self.ndpi.app,
            "category": self.ndpi.category,
            "flow": self.ndpi.line,
            "vpnfp": self.protocol,
            "hint": self.hint,
        })
    }
}

#[derive(Debug, Default)]
pub struct Scorecard {
    pub files: usize,
    pub flows: Vec<Scored>,
    /// Names vpnfp gave to flows nDPI does not list (the outer flow of a
    /// tunnel nDPI looked inside, for one): (file, flow, name).
    pub unlisted: Vec<(String, String, String)>,
    /// (file, error line)
    pub errors: Vec<(String, String)>,
    /// Corrections of nDPI's labels applied: (file, evidence).
    pub corrections: Vec<(String, &'static str)>,
}

impl Scorecard {
    fn of(&self, truth: Truth) -> impl Iterator<Item = &Scored> {
        self.flows.iter().filter(move |s| s.ndpi.truth() == truth)
    }

    pub fn ordinary(&self) -> usize {
        self.of(Truth::Ordinary).count()
    }

    /// Ordinary flows with a VPN or tunnel name.
    pub fn false_names(&self) -> Vec<&Scored> {
        self.of(Truth::Ordinary)
            .filter(|s| s.tunnel_name().is_some())
            .collect()
    }

    /// Ordinary flows named a VPN (class `vpn`).
    pub fn false_vpn(&self) -> Vec<&Scored> {
        self.of(Truth::Ordinary)
            .filter(|s| s.tunnel_name().is_some_and(|p| class_of(p) == Class::Vpn))
            .collect()
    }

    pub fn hints_on_ordinary(&self) -> usize {
        self.of(Truth::Ordinary)
            .filter(|s| s.hint.is_some() && s.tunnel_name().is_none())
            .count()
    }

    pub fn tunnels(&self) -> Vec<&Scored> {
        self.of(Truth::Tunnel).collect()
    }

    /// Tunnel flows named a VPN or tunnel, and all tunnel flows.
    pub fn recall(&self) -> (usize, usize) {
        let t = self.tunnels();
        (
            t.iter().filter(|s| s.tunnel_name().is_some()).count(),
            t.len(),
        )
    }

    /// Per nDPI application: what vpnfp named its flows ("-": nothing).
    pub fn by_app(&self) -> BTreeMap<String, BTreeMap<String, usize>> {
        let mut out: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
        for s in &self.flows {
            let name = match (&s.protocol, s.seen) {
                (Some(p), _) => p.clone(),
                (None, true) => "-".to_string(),
                (None, false) => "(not seen)".to_string(),
            };
            *out.entry(s.ndpi.app.clone())
                .or_default()
                .entry(name)
                .or_default() += 1;
        }
        out
    }

    pub fn to_json(&self) -> Value {
        let (found, tunnels) = self.recall();
        let ordinary = self.ordinary();
        let false_names = self.false_names();
        json!({
            "files": self.files,
            "flows": self.flows.len(),
            "ordinary_flows": ordinary,
            "false_names": {
                "count": false_names.len(),
                "percent": percent(false_names.len(), ordinary),
                "class_vpn": self.false_vpn().len(),
                "flows": false_names.iter().map(|s| s.json()).collect::<Vec<_>>(),
            },
            "hints_on_ordinary_flows": self.hints_on_ordinary(),
            "tunnel_recall": {
                "named": found,
                "flows": tunnels,
                "percent": percent(found, tunnels),
                "flows_list": self.tunnels().iter().map(|s| s.json()).collect::<Vec<_>>(),
            },
            "vpn_provider_web": self.of(Truth::ProviderWeb).map(|s| s.json()).collect::<Vec<_>>(),
            "ssh": self.of(Truth::Ssh).map(|s| s.json()).collect::<Vec<_>>(),
            "tunnels_guessed_by_port": self.of(Truth::GuessedTunnel).map(|s| s.json()).collect::<Vec<_>>(),
            "unlisted_names": self.unlisted.iter().map(|(f, flow, name)| json!({"file": f, "flow": flow, "vpnfp": name})).collect::<Vec<_>>(),
            "by_ndpi_protocol": self.by_app(),
            "errors": self.errors.iter().map(|(f, e)| json!({"file": f, "error": e})).collect::<Vec<_>>(),
            "corrections_of_ndpi": self.corrections.iter().map(|(f, e)| json!({"file": f, "evidence": e})).collect::<Vec<_>>(),
        })
    }

    /// The human report.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut o = String::new();
        let (found, tunnels) = self.recall();
        let ordinary = self.ordinary();
        let false_names = self.false_names();
        let _ = writeln!(o, "per nDPI protocol: what vpnfp named its flows");
        for (app, names) in self.by_app() {
            let names: Vec<String> = names.iter().map(|(n, c)| format!("{n} {c}")).collect();
            let _ = writeln!(o, "  {app:<28} {}", names.join(", "));
        }
        let _ = writeln!(
            o,
            "\ntunnel flows (nDPI category VPN, not a web site; clear tunnels; corrections):"
        );
        for s in self.tunnels() {
            let _ = writeln!(
                o,
                "  {} {}: {} [{}]{}",
                if s.tunnel_name().is_some() {
                    "found "
                } else {
                    "MISSED"
                },
                s.file,
                s.protocol.as_deref().unwrap_or("-"),
                s.ndpi.line,
                if s.ndpi.corrected.is_some() {
                    " (nDPI's label corrected)"
                } else {
                    ""
                }
            );
        }
        let guessed: Vec<_> = self.of(Truth::GuessedTunnel).collect();
        if !guessed.is_empty() {
            let _ = writeln!(
                o,
                "\ntunnel names nDPI guessed from the port (not counted in recall):"
            );
            for s in guessed {
                let _ = writeln!(
                    o,
                    "  {}: vpnfp {} [{}]",
                    s.file,
                    s.protocol.as_deref().unwrap_or("-"),
                    s.ndpi.line
                );
            }
        }
        let _ = writeln!(o, "\nfalse VPN or tunnel names on ordinary flows:");
        for s in &false_names {
            let _ = writeln!(
                o,
                "  {}: {} on {} [{}]",
                s.file,
                s.protocol.as_deref().unwrap_or("-"),
                s.ndpi.app,
                s.ndpi.line
            );
        }
        if !self.unlisted.is_empty() {
            let _ = writeln!(o, "\nnames on flows nDPI does not list:");
            for (file, flow, name) in &self.unlisted {
                let _ = writeln!(o, "  {file}: {name} on {flow}");
            }
        }
        if !self.corrections.is_empty() {
            let _ = writeln!(o, "\nwhere nDPI's label is corrected (docs/corpus.md):");
            for (file, evidence) in &self.corrections {
                let _ = writeln!(o, "  {file}: {evidence}");
            }
        }
        if !self.errors.is_empty() {
            let _ = writeln!(o, "\nreplay errors:");
            for (file, e) in &self.errors {
                let _ = writeln!(o, "  {file}: {e}");
            }
        }
        let _ = writeln!(
            o,
            "\nscorecard: {} captures, {} flows; tunnel recall {found}/{tunnels} ({:.1}%); false names on ordinary flows {}/{ordinary} ({:.2}%), {} of class vpn; {} ordinary flows carry only a hint; {} capture(s) with replay errors",
            self.files,
            self.flows.len(),
            percent(found, tunnels),
            false_names.len(),
            percent(false_names.len(), ordinary),
            self.false_vpn().len(),
            self.hints_on_ordinary(),
            self.errors
                .iter()
                .map(|(f, _)| f)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
        );
        o
    }
}

fn percent(n: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        100.0 * n as f64 / of as f64
    }
}

/// Replays every capture of `dir` with `vpnfp` and scores it.
pub fn score(vpnfp: &Path, dir: &Path) -> anyhow::Result<Scorecard> {
    let mut captures: Vec<PathBuf> = std::fs::read_dir(dir.join("pcap"))
        .with_context(|| format!("reading {}/pcap", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    captures.sort();
    if captures.is_empty() {
        bail!("{}/pcap holds no captures", dir.display());
    }
    let mut card = Scorecard::default();
    for capture in captures {
        let file = capture
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let expected = dir.join("expected").join(format!("{file}.out"));
        if !expected.is_file() {
            continue;
        }
        card.files += 1;
        let mut ndpi = read_expected(&expected)?;
        for c in CORRECTIONS.iter().filter(|c| c.file == file) {
            for n in ndpi.iter_mut().filter(|n| n.app == c.ndpi_app) {
                n.corrected = Some(c.truth);
            }
            card.corrections.push((file.clone(), c.evidence));
        }
        let (flows, errors) = replay(vpnfp, &capture)?;
        card.errors
            .extend(errors.into_iter().map(|e| (file.clone(), e)));
        score_file(&mut card, &file, ndpi, flows);
    }
    Ok(card)
}

fn score_file(card: &mut Scorecard, file: &str, ndpi: Vec<NdpiFlow>, flows: Vec<VpnfpFlow>) {
    // Records of one flow merged: a name on any of them names the flow.
    let mut by_key: HashMap<Key, VpnfpFlow> = HashMap::new();
    for f in flows {
        let (Some(h), Some(p)) = (f.host, f.peer) else {
            continue;
        };
        let e = by_key
            .entry(key(f.proto, h, p))
            .or_insert_with(|| f.clone());
        e.protocol = e.protocol.take().or(f.protocol);
        e.hint = e.hint.take().or(f.hint);
    }
    let mut portless: HashMap<(IpAddr, IpAddr), Key> = HashMap::new();
    for (k, _) in by_key.iter().filter(|(k, _)| k.1.1 == 0 && k.2.1 == 0) {
        portless.insert(address_key(k.1, k.2), *k);
    }
    let mut matched = std::collections::HashSet::new();
    for n in ndpi {
        let exact = key(n.proto, n.a, n.b);
        let k = if by_key.contains_key(&exact) {
            Some(exact)
        } else if n.a.1 == 0 && n.b.1 == 0 {
            portless.get(&address_key(n.a, n.b)).copied()
        } else {
            None
        };
        let v = k.and_then(|k| by_key.get(&k));
        if let Some(k) = k {
            matched.insert(k);
        }
        card.flows.push(Scored {
            file: file.to_string(),
            seen: v.is_some(),
            protocol: v.and_then(|v| v.protocol.clone()),
            hint: v.and_then(|v| v.hint.clone()),
            ndpi: n,
        });
    }
    let mut unlisted: Vec<_> = by_key
        .iter()
        .filter(|(k, v)| {
            !matched.contains(*k)
                && v.protocol
                    .as_deref()
                    .is_some_and(|p| class_of(p) != Class::Benign)
        })
        .map(|((proto, a, b), v)| {
            (
                file.to_string(),
                format!("proto {proto} {}:{} <-> {}:{}", a.0, a.1, b.0, b.1),
                v.protocol.clone().unwrap_or_default(),
            )
        })
        .collect();
    unlisted.sort();
    card.unlisted.extend(unlisted);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_ndpi_flow_lines() {
        let dir = std::env::temp_dir().join(format!("vpnfp-corpus-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.out");
        std::fs::write(
            &path,
            "DPI Packets (TCP):\t1\n\n\t1\tUDP 10.2.3.2:500 <-> 10.3.4.4:500 [proto: 79/IPSec][IP: 0/Unknown][cat: VPN/2][2 pkts]\n\t2\tTCP [2a01::1]:443 -> 192.0.2.1:5 [VLAN: 2][proto: 91.426/TLS.NordVPN][cat: VPN/2]\n\t3\t85 1.2.3.4:0 <-> 5.6.7.8:0 [proto: 0/Unknown][IP: 0/Unknown]\n\t1\t 10.132.0.23   \t 1\n",
        )
        .unwrap();
        let flows = read_expected(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(flows.len(), 3);
        assert_eq!(flows[0].proto, 17);
        assert_eq!(flows[0].truth(), Truth::Tunnel);
        assert_eq!(flows[1].a, ("2a01::1".parse().unwrap(), 443));
        assert_eq!(flows[1].truth(), Truth::ProviderWeb);
        assert_eq!(flows[2].proto, 85);
        assert_eq!(flows[2].truth(), Truth::Ordinary);
    }
}
