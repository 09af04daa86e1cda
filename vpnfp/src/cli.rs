//! The command line. clap lives only here, at the binary's edge; the
//! library's types are plain.

use clap::{Args, Parser, Subcommand, ValueEnum};
use vpnfp::{
    settings::{Cidr, DEFAULT_INSPECT_PACKETS, SettingsInput},
    source::{kernel::AttachMode, nfqueue::Chain},
};
use vpnfp_common::{
    decision::{DEFAULT_COUNT, DEFAULT_OVERLAP_RATIO, DEFAULT_WINDOW_SECS},
    maps::{DEFAULT_MAX_FLOWS, DEFAULT_MAX_HOSTS, DEFAULT_RING_BYTES, DEFAULT_SAMPLE_RING_BYTES},
    record::SAMPLE_MAX,
};

/// Spot hosts that use a VPN: a VPN user sends almost all its traffic to one
/// external address for a long time (the "VPN fingerprinting at the home
/// router" research, decision for decision), and every flow is kept,
/// both directions, IPv4 and IPv6.
#[derive(Parser, Debug)]
#[command(version, propagate_version = true)]
pub struct Cli {
    /// More log output: -v debug (every window, every flow, and the verifier
    /// log on load errors), -vv trace.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Watch live traffic (XDP + TC, NFQUEUE or both) and report suspected
    /// VPN users and flows.
    ///
    /// Monitor mode: every packet is passed on unchanged (XDP_PASS and
    /// TC_ACT_OK; NFQUEUE accepts every packet, its rules carry
    /// --queue-bypass and the queue is fail-open). Needs root (or CAP_BPF +
    /// CAP_NET_ADMIN). Stops on Ctrl-C, SIGTERM, SIGHUP or SIGQUIT, detaches
    /// and removes its rules.
    #[command(after_help = "\
Examples:
  vpnfp run --iface lan0
      The research's settings on a router's LAN-facing interface: XDP sees
      what the LAN hosts send, TC egress the replies (after de-NAT), so a
      window counts both directions as the research's FORWARD queue does.
  vpnfp run --iface lan0 --iface lan1 --json > events.jsonl
      Two LAN interfaces, one shared state; one JSON object per event.
  vpnfp run --iface veth0 --window 2 --count 100 --duration 30
      Small numbers for a lab, stop after 30 s.
  vpnfp run --mode nfqueue --chain FORWARD --iface lan0
      The research's own path: netfilter queue 1, both directions of lan0.
  vpnfp run --mode both --iface lan0 --iface lan1 --compare-interval 60
      XDP and NFQUEUE on the same traffic; an agreement report every minute.
  vpnfp run --local
      On a laptop or server: its own traffic, each flow with its program
      (\"which program opened this WireGuard tunnel\"); `vpnfp report`
      then groups by program.")]
    Run(RunArgs),
    /// Replay capture files (pcap or pcapng; - for standard input) through
    /// the same decisions, each packet at its own timestamp; several files
    /// are read as one stream.
    ///
    /// Link types: Ethernet, Linux cooked v1/v2 (tcpdump -i any), raw IP
    /// (IPv4, IPv6), BSD loopback (NULL, LOOP), PPP, Cisco HDLC, PPI, IEEE
    /// 802.11 and radiotap; GTP-U is read inside out. A summary goes to
    /// stderr. A
    /// truncated or corrupt file is reported with its byte offset and the
    /// replay goes on with the next file; the exit code is then 1.
    #[command(after_help = "\
Examples:
  vpnfp replay capture.pcap
  vpnfp replay monday.pcapng tuesday.pcapng --json --internal-hosts-only
      The research's offline entry point also skips transit traffic.
  tcpdump -i eth0 -w - | vpnfp replay - --json
  vpnfp replay capture.pcap --store capture.db && vpnfp report --store capture.db")]
    Replay(ReplayArgs),
    /// What the store holds: per host its verdicts (protocols, peers, when),
    /// traffic up and down, flows by protocol and top peers; overall the
    /// hosts flagged and the protocols over time. Tables, JSON, or one
    /// static HTML page.
    #[command(after_help = "\
Examples:
  vpnfp report                          the default store, everything in it
  vpnfp report --since 7d --host 192.168.1.20
  vpnfp report --json | jq '.flagged'
  vpnfp report --html report.html       a self-contained page with timelines")]
    Report(ReportArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// The store to read.
    #[arg(long, value_name = "PATH", default_value = vpnfp::store::DEFAULT_STORE, env = "VPNFP_STORE")]
    pub store: std::path::PathBuf,
    /// Only the last DURATION of what the store holds (30m, 24h, 7d; all).
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Only this host.
    #[arg(long, value_name = "ADDR")]
    pub host: Option<std::net::IpAddr>,
    /// One JSON object on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Write one self-contained HTML page (no script, no network).
    #[arg(long, value_name = "FILE")]
    pub html: Option<std::path::PathBuf>,
    /// Which source's rows: xdp, nfqueue or replay [default: the first
    /// of these the store has].
    #[arg(long)]
    pub mode: Option<String>,
    /// More services, tried before the built-in list: sections
    /// `[Service] Organisation` then one domain per line (`full:NAME`,
    /// `keyword:WORD` too); see docs/store-and-report.md.
    #[arg(long, value_name = "FILE")]
    pub services: Option<std::path::PathBuf>,
    /// Also write flows.csv (with service and protocol), services.csv
    /// (per-service statistics) and verdicts.csv into DIR, each with a
    /// header row, for pandas or R.
    #[arg(long, value_name = "DIR")]
    pub csv: Option<std::path::PathBuf>,
}

/// What leaves vpnfp besides its output lines: IPFIX, names.
#[derive(Args, Debug, Clone)]
pub struct ExportArgs {
    /// Export every flow record as IPFIX (RFC 7011) over UDP to this
    /// collector (nfcapd, pmacct, GoFlow2, ...): standard elements plus
    /// vpnfp's protocol, verdict and peer name (enterprise 32473).
    #[arg(long, value_name = "HOST:PORT")]
    pub ipfix: Option<std::net::SocketAddr>,
    /// Also name peers by reverse DNS (the system resolver; at most 20
    /// lookups a second, cached, off the packet path). Names are learnt
    /// passively from the DNS answers and TLS server names seen anyway.
    #[arg(long)]
    pub resolve: bool,
    /// Keep this long in the store: `run` prunes rows older than this
    /// before the wall clock, in the background, with a log line. A replay
    /// deletes nothing.
    #[arg(long, value_name = "DURATION", default_value = "30d")]
    pub retain: String,
    /// `run`: the most the store's rows may take (e.g. 500MiB, 2GiB); past
    /// it the oldest rows are deleted, counted and logged, so a flood of
    /// new flows cannot fill the disk.
    #[arg(long, value_name = "SIZE", default_value = "2GiB")]
    pub store_max_size: String,
}

impl ExportArgs {
    pub fn store_max_bytes(&self) -> anyhow::Result<u64> {
        let size: bytesize::ByteSize = self.store_max_size.parse().map_err(|e| {
            anyhow::anyhow!(
                "--store-max-size {:?}: a size like 500MiB or 2GiB ({e})",
                self.store_max_size
            )
        })?;
        if size.as_u64() < 1 << 20 {
            anyhow::bail!("--store-max-size {}: at least 1 MiB", self.store_max_size);
        }
        Ok(size.as_u64())
    }

    pub fn retain(&self) -> anyhow::Result<std::time::Duration> {
        humantime::parse_duration(&self.retain).map_err(|e| {
            anyhow::anyhow!("--retain {:?}: a duration like 12h, 30d ({e})", self.retain)
        })
    }
}

#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    /// Capture files, read in this order as one stream (- : standard input).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
    #[command(flatten)]
    pub fingerprint: FingerprintArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Hosts kept at most per address family; beyond it the least recently
    /// seen are evicted (counted in the summary). About 100 bytes per host.
    #[arg(long, default_value_t = vpnfp::engine::DEFAULT_MAX_HOSTS)]
    pub max_hosts: usize,
    /// Flows kept at most per address family; beyond it the least recently
    /// seen flow is ended (emitted with end_reason "evicted").
    #[arg(long, default_value_t = vpnfp::engine::DEFAULT_MAX_FLOWS)]
    pub max_flows: usize,
    /// Keep the research's reports, verdicts, identifications and flows in
    /// this SQLite file (for `vpnfp report`); off unless given.
    #[arg(long, value_name = "PATH")]
    pub store: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub export: ExportArgs,
}

/// Which path sees the packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RunMode {
    /// The kernel programs: XDP on ingress, TC on egress (line rate, no
    /// packet copies).
    Xdp,
    /// Netfilter queue, as the research's Python version (slower).
    Nfqueue,
    /// Both on the same traffic, with an agreement report.
    Both,
}

/// XDP attach mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum XdpModeArg {
    /// Native (driver) first, generic (skb) if the driver has none.
    Auto,
    Native,
    Skb,
}

impl From<XdpModeArg> for AttachMode {
    fn from(m: XdpModeArg) -> Self {
        match m {
            XdpModeArg::Auto => AttachMode::Auto,
            XdpModeArg::Native => AttachMode::Native,
            XdpModeArg::Skb => AttachMode::Skb,
        }
    }
}

/// Netfilter chain for the NFQUEUE rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ChainArg {
    /// Packets to the machine itself.
    #[value(name = "INPUT", alias = "input")]
    Input,
    /// Packets the machine routes (a router's LAN traffic).
    #[value(name = "FORWARD", alias = "forward")]
    Forward,
    /// Every packet arriving, before routing.
    #[value(name = "PREROUTING", alias = "prerouting")]
    Prerouting,
}

impl From<ChainArg> for Chain {
    fn from(c: ChainArg) -> Self {
        match c {
            ChainArg::Input => Chain::Input,
            ChainArg::Forward => Chain::Forward,
            ChainArg::Prerouting => Chain::Prerouting,
        }
    }
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Where packets are read: the kernel programs, NFQUEUE, or both.
    #[arg(long, value_enum, default_value_t = RunMode::Xdp)]
    pub mode: RunMode,
    /// LAN-facing interface to watch (repeat for several, one shared
    /// state). XDP: required. NFQUEUE: its traffic in both directions
    /// (none: every packet of the chain).
    #[arg(long = "iface", short = 'i', value_name = "IF")]
    pub ifaces: Vec<String>,
    /// XDP attach mode.
    #[arg(long, value_enum)]
    pub xdp_mode: Option<XdpModeArg>,
    /// XDP only, no TC egress program: see what arrives on the interface
    /// only, as vpnfp did before (for parity with earlier results).
    #[arg(long)]
    pub ingress_only: bool,
    /// The watched interfaces are not LAN ports (a mirror port, or this
    /// host's own uplink), so replies arrive on them too. By default a
    /// frame arriving on a watched interface with an external source is
    /// taken as forged by a LAN device: counted (ignored_spoofed) and never
    /// used as evidence, so it can neither accuse a host nor block a pair.
    #[arg(long)]
    pub no_spoof_check: bool,
    /// Endpoint mode: watch this machine's own traffic (its uplinks: the
    /// Ethernet interfaces up with a default route; or the --iface ones)
    /// and name the process behind each
    /// flow: pid, command, executable, uid and cgroup, in the flow,
    /// vpn_detected and host_verdict events, the store and `vpnfp report`.
    /// A policy may then block programs (`programs = [...]`).
    #[arg(long)]
    pub local: bool,
    /// With --local: only the processes in this cgroup (v2) directory and
    /// below it are named, e.g. /sys/fs/cgroup/system.slice/foo.service
    /// [default: the hierarchy's root: every process].
    #[arg(long, value_name = "DIR", requires = "local")]
    pub cgroup: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub nfqueue: NfqueueArgs,
    /// Serve vpnfp's own counters in Prometheus text format at
    /// http://ADDR/metrics (e.g. 127.0.0.1:9105; port 0 picks one and logs it).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    /// With --mode both: print the agreement report every SECS too (0: only at exit).
    #[arg(long, value_name = "SECS")]
    pub compare_interval: Option<f64>,
    #[command(flatten)]
    pub fingerprint: FingerprintArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Stop after this many seconds (default: run until stopped).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Print the counters every SECS seconds (0: only at exit).
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub stats_interval: f64,
    /// Hosts kept at most per address family (XDP: the kernel's LRU maps;
    /// NFQUEUE: the engine's tables); beyond it the least recently seen are
    /// evicted, and counted.
    #[arg(long, default_value_t = DEFAULT_MAX_HOSTS)]
    pub max_hosts: u32,
    /// Flows kept at most per address family; a nearly full table ends its
    /// least recently seen flows (emitted with end_reason "evicted").
    #[arg(long, default_value_t = DEFAULT_MAX_FLOWS)]
    pub max_flows: u32,
    /// XDP: keep the state maps pinned in a BPF filesystem (default
    /// /sys/fs/bpf/vpnfp, mounted if needed), so a restart continues every
    /// window; without it each run starts fresh. One vpnfp per directory.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = vpnfp::source::kernel::pin::DEFAULT_PIN_DIR)]
    pub pin: Option<std::path::PathBuf>,
    /// Size of the kernel's event ring buffer in bytes (window closes, flow
    /// events): a power of two from 4096 to 256 MiB.
    #[arg(long, default_value_t = DEFAULT_RING_BYTES)]
    pub ring_bytes: u32,
    /// Size of the kernel's payload-sample ring buffer in bytes: a power of
    /// two from 4096 to 256 MiB.
    #[arg(long, default_value_t = DEFAULT_SAMPLE_RING_BYTES)]
    pub sample_ring_bytes: u32,
    /// Keep the research's reports, verdicts, identifications and flows in
    /// this SQLite file (WAL, batched off the packet path; `vpnfp report`
    /// reads it).
    #[arg(long, value_name = "PATH", default_value = vpnfp::store::DEFAULT_STORE, env = "VPNFP_STORE")]
    pub store: std::path::PathBuf,
    /// Keep no store.
    #[arg(long, env = "VPNFP_NO_STORE", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_store: bool,
    /// Enforcement, opt-in: a policy file (TOML, or JSON if it ends in
    /// .json) naming protocols and/or host verdicts to block, for which
    /// hosts, with allowlists, in mode monitor (default), dry_run or
    /// enforce. Validated before anything
    /// starts; SIGHUP reloads it. Without it nothing is ever dropped.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub export: ExportArgs,
}

/// NFQUEUE mode's settings (the research: queue 1, 2048 packets).
#[derive(Args, Debug, Clone)]
pub struct NfqueueArgs {
    /// Netfilter queue number.
    #[arg(long)]
    pub queue_num: Option<u16>,
    /// Chain of the mangle table the NFQUEUE rules go in (FORWARD on a router).
    #[arg(long, value_enum)]
    pub chain: Option<ChainArg>,
    /// Queue length in packets; beyond it the kernel passes packets unseen
    /// (fail-open) and they are counted as missed.
    #[arg(long)]
    pub queue_len: Option<u32>,
    /// Bytes of each packet copied to vpnfp. The default copies whole
    /// packets (ports, flows and payload samples); 20 is the research's
    /// setting (the IPv4 header only: no ports, no identification).
    #[arg(long, value_parser = clap::value_parser!(u16).range(20..))]
    pub copy_range: Option<u16>,
}

/// How events are printed, shared by every mode.
#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// Print every event (suspected VPN, flow, ...) as one JSON object per
    /// line on stdout.
    #[arg(long)]
    pub json: bool,
    /// Also report windows that were not suspected ("event": "window_closed"):
    /// a log line each, and a JSON line with --json.
    #[arg(long)]
    pub all_windows: bool,
}

/// The fingerprint's knobs, shared by every mode.
#[derive(Args, Debug, Clone)]
pub struct FingerprintArgs {
    /// COUNT: flag a host when one window to one peer holds more than N packets.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_COUNT)]
    pub count: u64,
    /// WINDOW in seconds: a window closes at the host's first packet more
    /// than this after it began (at most a week).
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_WINDOW_SECS as f64)]
    pub window: f64,
    /// OVERLAP = R * COUNT: flag when the last two windows together hold more than that.
    #[arg(long, value_name = "R", default_value_t = DEFAULT_OVERLAP_RATIO)]
    pub overlap_ratio: f64,
    /// An internal range, IPv4 or IPv6 (repeatable); the ranges given for a
    /// family replace its defaults: IPv4 the research's list (0.0.0.0/32
    /// 10/8 127/8 169.254/16 172.16/12 192.168/16 224/4 255.255.255.255/32),
    /// IPv6 ::/128 ::1/128 fc00::/7 fe80::/10 ff00::/8.
    #[arg(long = "internal-range", value_name = "CIDR")]
    pub internal_ranges: Vec<Cidr>,
    /// Only follow internal hosts: skip transit traffic between two external
    /// addresses (the research's pcap entry point does this; its live mode does not).
    #[arg(long)]
    pub internal_hosts_only: bool,
    /// The concentration mode's window in seconds (0: off): the share of a
    /// host's packets that went to its top peer, robust to stray packets.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub concentration_window: f64,
    /// A concentration window is "concentrated" above this share (0.5 to 1).
    #[arg(long, value_name = "SHARE", default_value_t = 0.9)]
    pub concentration_share: f64,
    /// Concentration windows with fewer packets are not judged.
    #[arg(long, value_name = "N", default_value_t = 600)]
    pub concentration_min_packets: u32,
    /// Keep no flows (the research's decision does not need them).
    #[arg(long, alias = "no-flow-counters")]
    pub no_flows: bool,
    /// A flow without a packet for this many seconds ends (end_reason "idle").
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub flow_idle: f64,
    /// A long flow reports a delta record every SECS seconds
    /// (end_reason "active_timeout"; 0: never).
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    pub flow_active: f64,
    /// Payload-carrying packets per flow handed to protocol identification
    /// (0: none). After them a flow costs what counting it costs.
    #[arg(long, value_name = "K", default_value_t = DEFAULT_INSPECT_PACKETS)]
    pub inspect_packets: u32,
    /// At most this many payload bytes per inspected packet.
    #[arg(long, value_name = "N", default_value_t = SAMPLE_MAX as u32)]
    pub sample_bytes: u32,
    /// More TLS server names of VPN tunnels, one `<name> <protocol>` per
    /// line (a name matches itself and the names under it), added to the
    /// built-in list.
    #[arg(long, value_name = "FILE")]
    pub vpn_names: Option<std::path::PathBuf>,
    /// A host's verdict holds this many seconds after its evidence was
    /// last seen [default: the longest of 600, 2 x --window,
    /// 2 x --concentration-window, 2 x --flow-active].
    #[arg(long, value_name = "SECS")]
    pub verdict_hold: Option<f64>,
}

impl FingerprintArgs {
    pub fn input(&self) -> SettingsInput {
        SettingsInput {
            count: self.count,
            window_secs: self.window,
            overlap_ratio: self.overlap_ratio,
            ranges: self.internal_ranges.clone(),
            internal_hosts_only: self.internal_hosts_only,
            concentration_window_secs: self.concentration_window,
            concentration_share: self.concentration_share,
            concentration_min_packets: self.concentration_min_packets,
            flows: !self.no_flows,
            flow_idle_secs: self.flow_idle,
            flow_active_secs: self.flow_active,
            inspect_packets: self.inspect_packets,
            sample_bytes: self.sample_bytes,
            verdict_hold_secs: self.verdict_hold,
        }
    }

    /// Identification's name list and the verdicts' settings.
    pub fn judging(
        &self,
        settings: &vpnfp::settings::Settings,
        max_flows: usize,
        max_hosts: usize,
        resolve: bool,
    ) -> anyhow::Result<vpnfp::pipeline::Judging> {
        let providers = match &self.vpn_names {
            Some(path) => vpnfp::judge::providers::Providers::with_file(path)?,
            None => vpnfp::judge::providers::Providers::built_in(),
        };
        Ok(vpnfp::pipeline::Judging {
            providers,
            settings: vpnfp::judge::verdict::JudgeSettings {
                concentration_share: settings.concentration_share,
                hold_ns: settings.verdict_hold_ns,
            },
            max_flows,
            max_hosts,
            resolve,
        })
    }

    pub fn settings(&self) -> Result<vpnfp::settings::Settings, vpnfp::settings::SettingsError> {
        vpnfp::settings::Settings::new(&self.input())
    }
}
