use clap::{Args, Parser, Subcommand};
use vpnfp::{nfqueue::Chain, settings::Cidr, xdp::AttachMode};
use vpnfp_common::{
    decision::{DEFAULT_COUNT, DEFAULT_OVERLAP_RATIO, DEFAULT_WINDOW_SECS},
    maps::{DEFAULT_MAX_FLOWS, DEFAULT_MAX_HOSTS, DEFAULT_RING_BYTES},
};

/// Spot hosts that use a VPN: a VPN user sends almost all its traffic to one
/// external address for a long time (the "VPN fingerprinting at the home
/// router" research, decision for decision).
#[derive(Parser, Debug)]
#[command(version, propagate_version = true)]
pub struct Cli {
    /// More log output: -v debug (and the verifier log on load errors), -vv trace.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Watch live traffic (XDP, NFQUEUE or both) and report suspected VPN users.
    ///
    /// Monitor mode: every packet is passed on unchanged (XDP_PASS; NFQUEUE
    /// accepts every packet, its rule carries --queue-bypass and the queue is
    /// fail-open). Needs root (or CAP_BPF + CAP_NET_ADMIN). Stops on Ctrl-C /
    /// SIGTERM, detaches and removes its rule.
    #[command(after_help = "\
Examples:
  vpnfp run --iface eth0
      The research's settings: flag a host when a 20-minute window to one
      peer holds more than 10000 packets (or the last two windows together
      more than 7500).
  vpnfp run --iface eth0 --iface eth1 --json > reports.jsonl
      Two interfaces, one shared state; one JSON object per report on stdout.
  vpnfp run --iface veth0 --window 2 --count 100 --duration 30
      Small numbers for a lab, stop after 30 s.
  vpnfp run --mode nfqueue --chain FORWARD --iface eth1
      The research's own path: netfilter queue 1, first 20 bytes of each packet.
  vpnfp run --mode both --iface eth1 --chain FORWARD --compare-interval 60
      XDP and NFQUEUE on the same traffic; an agreement report every minute.")]
    Run(RunArgs),
    /// Replay capture files (pcap or pcapng) through the same decisions, each
    /// packet at its own timestamp; several files are read as one stream.
    ///
    /// Link types: Ethernet, Linux cooked v1/v2 (tcpdump -i any), raw IPv4.
    /// A summary goes to stderr; a truncated or corrupt file stops the replay
    /// with the file and byte offset, after reporting what came before.
    #[command(after_help = "\
Examples:
  vpnfp replay capture.pcap
  vpnfp replay monday.pcapng tuesday.pcapng --json --internal-hosts-only
      The research's offline entry point also skips transit traffic.")]
    Replay(ReplayArgs),
}

#[derive(Args, Debug, Clone)]
pub struct ReplayArgs {
    /// Capture files, read in this order as one stream.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<std::path::PathBuf>,
    #[command(flatten)]
    pub fingerprint: FingerprintArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Hosts kept at most; beyond it the least recently seen are evicted
    /// (counted in the summary). About 72 bytes per host.
    #[arg(long, default_value_t = vpnfp::engine::DEFAULT_MAX_HOSTS)]
    pub max_hosts: usize,
}

/// Which path sees the packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RunMode {
    /// The XDP program (line rate, no packet copies).
    Xdp,
    /// Netfilter queue, as the research's Python version (fallback, slower).
    Nfqueue,
    /// Both on the same traffic, with an agreement report.
    Both,
}

#[derive(Args, Debug, Clone)]
pub struct RunArgs {
    /// Where packets are read: XDP, NFQUEUE, or both side by side.
    #[arg(long, value_enum, default_value_t = RunMode::Xdp)]
    pub mode: RunMode,
    /// Interface to watch (XDP: repeat for several, one shared state;
    /// NFQUEUE: at most one, the rule's `-i`, or all interfaces if none).
    #[arg(long = "iface", short = 'i', value_name = "IF")]
    pub ifaces: Vec<String>,
    /// XDP attach mode: native (driver) first with fallback to skb (generic), or one of them only.
    #[arg(long, value_enum, default_value_t = AttachMode::Auto)]
    pub xdp_mode: AttachMode,
    #[command(flatten)]
    pub nfqueue: NfqueueArgs,
    /// Serve vpnfp's own counters in Prometheus text format at http://ADDR/metrics
    /// (e.g. 127.0.0.1:9105).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
    /// With --mode both: print the agreement report every SECS too (0: only at exit).
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub compare_interval: f64,
    #[command(flatten)]
    pub fingerprint: FingerprintArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Stop after this many seconds (default: run until Ctrl-C / SIGTERM).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Print the program's counters every SECS seconds (0: only at exit).
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub stats_interval: f64,
    /// Hosts kept at most (XDP: the kernel's LRU map; NFQUEUE: the engine's
    /// table); beyond it the least recently seen are evicted, and counted.
    #[arg(long, default_value_t = DEFAULT_MAX_HOSTS)]
    pub max_hosts: u32,
    /// XDP: keep the state maps pinned in a BPF filesystem (default
    /// /sys/fs/bpf/vpnfp, mounted if needed), so a restart continues every
    /// window; without it each run starts fresh.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = vpnfp::xdp::pin::DEFAULT_PIN_DIR)]
    pub pin: Option<std::path::PathBuf>,
    /// XDP: skip the per-flow counters (packets and bytes per host/peer); the
    /// decisions do not use them, and they are about a third of the per-packet cost.
    #[arg(long)]
    pub no_flow_counters: bool,
    /// Capacity of the per-flow LRU map.
    #[arg(long, default_value_t = DEFAULT_MAX_FLOWS)]
    pub max_flows: u32,
    /// Size of the window-close ring buffer in bytes (a power of two, at least one page).
    #[arg(long, default_value_t = DEFAULT_RING_BYTES)]
    pub ring_bytes: u32,
}

/// NFQUEUE mode's settings (the research: queue 1, 20-byte copy range, 2048 packets).
#[derive(Args, Debug, Clone)]
pub struct NfqueueArgs {
    /// Netfilter queue number.
    #[arg(long, default_value_t = 1)]
    pub queue_num: u16,
    /// Chain of the mangle table the NFQUEUE rule goes in (FORWARD on a router).
    #[arg(long, value_enum, default_value_t = Chain::Forward)]
    pub chain: Chain,
    /// Queue length in packets; beyond it the kernel passes packets unseen (fail-open) and they are counted as missed.
    #[arg(long, default_value_t = 2048)]
    pub queue_len: u32,
    /// Bytes of each packet copied to vpnfp (20: the IPv4 header, as the research).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(20..))]
    pub copy_range: u16,
}

/// How reports are printed, shared by every mode.
#[derive(Args, Debug, Clone)]
pub struct OutputArgs {
    /// Print each report as one JSON object per line on stdout.
    #[arg(long)]
    pub json: bool,
    /// With --json, also print windows that were not suspected ("event": "window_closed").
    #[arg(long)]
    pub all_windows: bool,
}

/// The research's knobs, shared by every mode.
#[derive(Args, Debug, Clone)]
pub struct FingerprintArgs {
    /// COUNT: flag a host when one window to one peer holds more than N packets.
    #[arg(long, value_name = "N", default_value_t = DEFAULT_COUNT)]
    pub count: u64,
    /// WINDOW in seconds: a window closes at the host's first packet more than this after it began.
    #[arg(long, value_name = "SECS", default_value_t = DEFAULT_WINDOW_SECS as f64)]
    pub window: f64,
    /// OVERLAP = R * COUNT: flag when the last two windows together hold more than that.
    #[arg(long, value_name = "R", default_value_t = DEFAULT_OVERLAP_RATIO)]
    pub overlap_ratio: f64,
    /// An internal range (repeatable); replaces the research's list
    /// (0.0.0.0/32 10/8 127/8 169.254/16 172.16/12 192.168/16 224/4 255.255.255.255/32).
    #[arg(long = "internal-range", value_name = "CIDR")]
    pub internal_ranges: Vec<Cidr>,
    /// Only follow internal hosts: skip transit traffic between two external
    /// addresses (the research's pcap entry point does this; its live mode does not).
    #[arg(long)]
    pub internal_hosts_only: bool,
}

impl FingerprintArgs {
    pub fn settings(&self) -> Result<vpnfp::settings::Settings, vpnfp::settings::SettingsError> {
        vpnfp::settings::Settings::new(
            self.count,
            self.window,
            self.overlap_ratio,
            &self.internal_ranges,
            self.internal_hosts_only,
        )
    }
}
