//! Names and default sizes of the maps and program the two sides share.

/// The XDP entry point.
pub const PROGRAM: &str = "vpnfp";
/// Benchmark-only programs in the same object (never attached by vpnfp).
pub const BENCH_BASELINE: &str = "vpnfp_baseline";
pub const BENCH_TX: &str = "vpnfp_bench_tx";

/// `Array<KernelConfig>`, one entry.
pub const CONFIG: &str = "VPNFP_CONFIG";
/// `LruHashMap<u32 host, HostState>`.
pub const HOSTS: &str = "VPNFP_HOSTS";
/// `LruHashMap<FlowKey, FlowCounters>`.
pub const FLOWS: &str = "VPNFP_FLOWS";
/// `RingBuf` of `WindowClose` records.
pub const WINDOW_CLOSES: &str = "VPNFP_WINDOWS";
/// `PerCpuArray<Counters>`, one entry.
pub const COUNTERS: &str = "VPNFP_COUNTERS";

pub const DEFAULT_MAX_HOSTS: u32 = 131_072;
pub const DEFAULT_MAX_FLOWS: u32 = 262_144;
/// 1 MiB: about 21,000 window-close records (40 bytes + 8 header).
pub const DEFAULT_RING_BYTES: u32 = 1 << 20;
