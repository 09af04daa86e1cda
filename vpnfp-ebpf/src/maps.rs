//! The programs' maps (named by the `vpnfp_common::maps` constants) and,
//! per address family, which of them a packet of that family uses.

use aya_ebpf::{
    EbpfContext,
    macros::map,
    maps::{Array, HashMap, LruHashMap, PerCpuArray, RingBuf},
};
use aya_log_ebpf::info;
use vpnfp_common::{
    Counters, FlowKey, FlowValue, HostEntry, HostUpdate, KernelConfig, V6,
    block::{BlockValue, PairKey},
    config::Family,
    flow::cache::FlowCache,
    local::{LocalConfig, MAX_OWNERS, MAX_PROGRAM_BLOCKS, MAX_SOCKET_FLOWS, Owner, ProgramBlock},
    maps::{
        DEFAULT_MAX_FLOWS, DEFAULT_MAX_HOSTS, DEFAULT_RING_BYTES, DEFAULT_SAMPLE_RING_BYTES,
        MAX_BLOCKS,
    },
    net::{classify::Ends, parse::Ip},
    window::WindowClose,
};

// Map names are the `vpnfp_common::maps` constants; userspace resizes the
// hash maps and the ring buffers at load time.
#[map]
pub(crate) static VPNFP_CONFIG: Array<KernelConfig> = Array::with_max_entries(1, 0);
#[map]
pub(crate) static VPNFP_HOSTS4: LruHashMap<u32, HostEntry<u32>> =
    LruHashMap::with_max_entries(DEFAULT_MAX_HOSTS, 0);
#[map]
pub(crate) static VPNFP_HOSTS6: LruHashMap<V6, HostEntry<V6>> =
    LruHashMap::with_max_entries(DEFAULT_MAX_HOSTS, 0);
#[map]
pub(crate) static VPNFP_FLOWS4: HashMap<FlowKey<u32>, FlowValue> =
    HashMap::with_max_entries(DEFAULT_MAX_FLOWS, 0);
#[map]
pub(crate) static VPNFP_FLOWS6: HashMap<FlowKey<V6>, FlowValue> =
    HashMap::with_max_entries(DEFAULT_MAX_FLOWS, 0);
#[map]
pub(crate) static VPNFP_EVENTS: RingBuf = RingBuf::with_byte_size(DEFAULT_RING_BYTES, 0);
#[map]
pub(crate) static VPNFP_SAMPLES: RingBuf = RingBuf::with_byte_size(DEFAULT_SAMPLE_RING_BYTES, 0);
#[map]
pub(crate) static VPNFP_COUNTERS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(1, 0);
#[map]
pub(crate) static VPNFP_BLOCK4: HashMap<PairKey<u32>, BlockValue> =
    HashMap::with_max_entries(MAX_BLOCKS, 0);
#[map]
pub(crate) static VPNFP_BLOCK6: HashMap<PairKey<V6>, BlockValue> =
    HashMap::with_max_entries(MAX_BLOCKS, 0);

// Endpoint mode (`--local`, `vpnfp_common::local`): sockets' owners, and
// each flow's socket. LRU: an old socket or flow gives way to a new one.
#[map]
pub(crate) static VPNFP_OWNERS: LruHashMap<u64, Owner> =
    LruHashMap::with_max_entries(MAX_OWNERS, 0);
#[map]
pub(crate) static VPNFP_SOCKETS4: LruHashMap<FlowKey<u32>, u64> =
    LruHashMap::with_max_entries(MAX_SOCKET_FLOWS, 0);
#[map]
pub(crate) static VPNFP_SOCKETS6: LruHashMap<FlowKey<V6>, u64> =
    LruHashMap::with_max_entries(MAX_SOCKET_FLOWS, 0);
#[map]
pub(crate) static VPNFP_PROGRAM_BLOCKS: HashMap<u32, ProgramBlock> =
    HashMap::with_max_entries(MAX_PROGRAM_BLOCKS, 0);
#[map]
pub(crate) static VPNFP_LOCAL: Array<LocalConfig> = Array::with_max_entries(1, 0);

/// Where a parsed packet waits between the parser and the rest. The
/// parser's paths (VLAN depths, IPv4 or IPv6, each extension header) end
/// with different precise offsets; read back from a map they are plain
/// numbers, so the verifier meets one state after the parser instead of
/// carrying every path's through the whole program.
/// It also holds the flow key and values the flow part builds: the BPF
/// stack is 512 bytes for a whole call chain.
#[derive(Clone, Copy)]
pub(crate) struct Scratch {
    pub(crate) v4: Ip<u32>,
    pub(crate) v6: Ip<V6>,
    pub(crate) ends4: Ends<u32>,
    pub(crate) ends6: Ends<V6>,
    pub(crate) host4: HostEntry<u32>,
    pub(crate) host6: HostEntry<V6>,
    pub(crate) update4: HostUpdate<u32>,
    pub(crate) update6: HostUpdate<V6>,
    pub(crate) key4: FlowKey<u32>,
    pub(crate) key6: FlowKey<V6>,
    pub(crate) flow: FlowValue,
    /// A new flow's value, counted before it is inserted.
    pub(crate) fresh_flow: FlowValue,
    /// This CPU's most recent flow per family (`vpnfp_common::flow::cache`).
    pub(crate) cache4: FlowCache<u32>,
    pub(crate) cache6: FlowCache<V6>,
    /// This CPU's clock: the precise time read at the first packet after
    /// `jiffies` last moved (see `clock_ns` in main.rs).
    pub(crate) clock_jiffies: u64,
    pub(crate) clock_ns: u64,
    /// Endpoint mode: the flow and socket this CPU last noted, and when,
    /// so a steady flow's packets skip the socket map's lookup.
    pub(crate) noted_key4: FlowKey<u32>,
    pub(crate) noted_key6: FlowKey<V6>,
    pub(crate) noted_cookie: u64,
    pub(crate) noted_ns: u64,
    /// Set when a policy drops this packet.
    pub(crate) drop: u8,
}

#[map]
pub(crate) static VPNFP_SCRATCH: PerCpuArray<Scratch> = PerCpuArray::with_max_entries(1, 0);

/// The maps of one address family.
pub(crate) trait FamilyMaps: Family + 'static {
    fn host_slot(scratch: *mut Scratch) -> *mut HostEntry<Self>;
    fn update_slot(scratch: *mut Scratch) -> *mut HostUpdate<Self>;
    fn ip_slot(scratch: *mut Scratch) -> *mut Ip<Self>;
    fn key_slot(scratch: *mut Scratch) -> *mut FlowKey<Self>;
    fn ends_slot(scratch: *mut Scratch) -> *mut Ends<Self>;
    fn cache_slot(scratch: *mut Scratch) -> *mut FlowCache<Self>;
    fn noted_key_slot(scratch: *mut Scratch) -> *mut FlowKey<Self>;
    fn hosts() -> &'static LruHashMap<Self, HostEntry<Self>>;
    fn flows() -> &'static HashMap<FlowKey<Self>, FlowValue>;
    fn blocks() -> &'static HashMap<PairKey<Self>, BlockValue>;
    fn sockets() -> &'static LruHashMap<FlowKey<Self>, u64>;
    fn log_window<C: EbpfContext>(ctx: &C, closed: &WindowClose<Self>);
}

impl FamilyMaps for u32 {
    #[inline(always)]
    fn host_slot(scratch: *mut Scratch) -> *mut HostEntry<u32> {
        // SAFETY: a field of a valid scratch slot.
        unsafe { &raw mut (*scratch).host4 }
    }
    #[inline(always)]
    fn update_slot(scratch: *mut Scratch) -> *mut HostUpdate<u32> {
        // SAFETY: a field of a valid scratch slot.
        unsafe { &raw mut (*scratch).update4 }
    }
    #[inline(always)]
    fn ip_slot(scratch: *mut Scratch) -> *mut Ip<u32> {
        // SAFETY: a field of a valid scratch slot.
        unsafe { &raw mut (*scratch).v4 }
    }
    #[inline(always)]
    fn key_slot(scratch: *mut Scratch) -> *mut FlowKey<u32> {
        // SAFETY: a field of a valid scratch slot.
        unsafe { &raw mut (*scratch).key4 }
    }
    #[inline(always)]
    fn ends_slot(scratch: *mut Scratch) -> *mut Ends<u32> {
        // SAFETY: a field of a valid scratch slot.
        unsafe { &raw mut (*scratch).ends4 }
    }
    #[inline(always)]
    fn cache_slot(scratch: *mut Scratch) -> *mut FlowCache<u32> {
        // SAFETY: a field of a valid scratch slot.
        unsafe { &raw mut (*scratch).cache4 }
    }
    #[inline(always)]
    fn noted_key_slot(scratch: *mut Scratch) -> *mut FlowKey<u32> {
        // SAFETY: a field of a valid scratch slot.
        unsafe { &raw mut (*scratch).noted_key4 }
    }
    #[inline(always)]
    fn hosts() -> &'static LruHashMap<u32, HostEntry<u32>> {
        &VPNFP_HOSTS4
    }
    #[inline(always)]
    fn flows() -> &'static HashMap<FlowKey<u32>, FlowValue> {
        &VPNFP_FLOWS4
    }
    #[inline(always)]
    fn blocks() -> &'static HashMap<PairKey<u32>, BlockValue> {
        &VPNFP_BLOCK4
    }
    #[inline(always)]
    fn sockets() -> &'static LruHashMap<FlowKey<u32>, u64> {
        &VPNFP_SOCKETS4
    }
    #[inline(always)]
    fn log_window<C: EbpfContext>(ctx: &C, c: &WindowClose<u32>) {
        info!(
            ctx,
            "window closed: host {:i} peer {:i} packets {} previous {}",
            c.host,
            c.peer,
            c.count_this,
            c.count_prev
        );
    }
}

impl FamilyMaps for V6 {
    #[inline(always)]
    fn host_slot(scratch: *mut Scratch) -> *mut HostEntry<V6> {
        // SAFETY: a field of a valid scratch slot.
        unsafe { &raw mut (*scratch).host6 }
    }
    #[inline(always)]
    fn update_slot(scratch: *mut Scratch) -> *mut HostUpdate<V6> {
        // SAFETY: a field of a valid scratch slot.
        unsafe { &raw mut (*scratch).update6 }
    }
    #[inline(always)]
    fn ip_slot(scratch: *mut Scratch) -> *mut Ip<V6> {
        // SAFETY: a field of a valid scratch slot.
        unsafe { &raw mut (*scratch).v6 }
    }
    #[inline(always)]
    fn key_slot(scratch: *mut Scratch) -> *mut FlowKey<V6> {
        // SAFETY: a field of a valid scratch slot.
        unsafe { &raw mut (*scratch).key6 }
    }
    #[inline(always)]
    fn ends_slot(scratch: *mut Scratch) -> *mut Ends<V6> {
        // SAFETY: a field of a valid scratch slot.
        unsafe { &raw mut (*scratch).ends6 }
    }
    #[inline(always)]
    fn cache_slot(scratch: *mut Scratch) -> *mut FlowCache<V6> {
        // SAFETY: a field of a valid scratch slot.
        unsafe { &raw mut (*scratch).cache6 }
    }
    #[inline(always)]
    fn noted_key_slot(scratch: *mut Scratch) -> *mut FlowKey<V6> {
        // SAFETY: a field of a valid scratch slot.
        unsafe { &raw mut (*scratch).noted_key6 }
    }
    #[inline(always)]
    fn hosts() -> &'static LruHashMap<V6, HostEntry<V6>> {
        &VPNFP_HOSTS6
    }
    #[inline(always)]
    fn flows() -> &'static HashMap<FlowKey<V6>, FlowValue> {
        &VPNFP_FLOWS6
    }
    #[inline(always)]
    fn blocks() -> &'static HashMap<PairKey<V6>, BlockValue> {
        &VPNFP_BLOCK6
    }
    #[inline(always)]
    fn sockets() -> &'static LruHashMap<FlowKey<V6>, u64> {
        &VPNFP_SOCKETS6
    }
    #[inline(always)]
    fn log_window<C: EbpfContext>(ctx: &C, c: &WindowClose<V6>) {
        info!(
            ctx,
            "window closed: host {:i} peer {:i} packets {} previous {}",
            c.host.0,
            c.peer.0,
            c.count_this,
            c.count_prev
        );
    }
}
