//! Names and default sizes of the programs and maps the two sides share.

/// The XDP entry point (ingress).
pub const PROGRAM: &str = "vpnfp";
/// The TC classifier (egress): the same fingerprint on packets leaving the
/// interface, i.e. the replies to the LAN hosts after de-NAT.
pub const PROGRAM_TC: &str = "vpnfp_tc_egress";
/// Flushes the calling CPU's flow cache into the flow maps; userspace
/// runs it on every CPU (test run) before it reads or ends flows.
pub const FLUSH_FLOWS: &str = "vpnfp_flush_flows";
/// Benchmark-only programs in the same object (never attached by vpnfp).
pub const BENCH_BASELINE: &str = "vpnfp_baseline";
pub const BENCH_TX: &str = "vpnfp_bench_tx";
pub const BENCH_TC_BASELINE: &str = "vpnfp_tc_baseline";
/// The floor program (`cargo xtask bench`): parse, one LRU update, one clock read.
pub const BENCH_FLOOR: &str = "vpnfp_floor";
/// The floor program's per-host map.
pub const BENCH_FLOOR_MAP: &str = "VPNFP_BENCH_FLOOR";

/// `Array<KernelConfig>`, one entry.
pub const CONFIG: &str = "VPNFP_CONFIG";
/// `LruHashMap<u32 host, HostEntry<u32>>`.
pub const HOSTS4: &str = "VPNFP_HOSTS4";
/// `LruHashMap<V6 host, HostEntry<V6>>`.
pub const HOSTS6: &str = "VPNFP_HOSTS6";
/// `HashMap<FlowKey<u32>, FlowValue>`: a plain hash, not LRU, so that no
/// flow is ever evicted silently; userspace ends and evicts flows, and
/// emits each one's counts.
pub const FLOWS4: &str = "VPNFP_FLOWS4";
/// `HashMap<FlowKey<V6>, FlowValue>`.
pub const FLOWS6: &str = "VPNFP_FLOWS6";
/// `RingBuf` of records (window closes, concentration closes, flow events).
pub const EVENTS: &str = "VPNFP_EVENTS";
/// `RingBuf` of payload samples for identification; apart from the events
/// so that a burst of new flows can never crowd out a window close.
pub const SAMPLES: &str = "VPNFP_SAMPLES";
/// `PerCpuArray<Counters>`, one entry.
pub const COUNTERS: &str = "VPNFP_COUNTERS";
/// `HashMap<PairKey<u32>, BlockValue>` and its IPv6 twin: what a policy blocks.
pub const BLOCK4: &str = "VPNFP_BLOCK4";
pub const BLOCK6: &str = "VPNFP_BLOCK6";
/// Pairs a policy can block at once, per family.
pub const MAX_BLOCKS: u32 = 16_384;

pub const DEFAULT_MAX_HOSTS: u32 = 131_072;
pub const DEFAULT_MAX_FLOWS: u32 = 262_144;
/// 4 MiB: about 47,000 window-close records (80 bytes + 8 of ring header),
/// room for a burst of closes while identification has its turn.
pub const DEFAULT_RING_BYTES: u32 = 4 << 20;
/// 4 MiB: about 2,500 payload samples in flight.
pub const DEFAULT_SAMPLE_RING_BYTES: u32 = 4 << 20;
