//! The XDP fingerprinter. It only parses (bounds-checked) and counts; the
//! research's logic is `vpnfp_common`'s, called here as in every other mode.
//! Monitor mode: every frame gets XDP_PASS, whatever happens.
#![no_std]
#![no_main]

mod bench;
mod parse;

use aya_ebpf::{
    bindings::{BPF_NOEXIST, xdp_action},
    helpers::{bpf_ktime_get_coarse_ns, bpf_ktime_get_ns},
    macros::{map, xdp},
    maps::{Array, LruHashMap, PerCpuArray, RingBuf},
    programs::XdpContext,
};
use aya_log_ebpf::info;
use vpnfp_common::{
    Counters, FlowCounters, FlowKey, HostState, KernelConfig, Outcome, WindowClose,
    config::{FLAG_LOG_WINDOWS, FLAG_NO_FLOWS, FLAG_TEST_CLOCK},
    counters::OUTCOME_COUNT,
    maps::{DEFAULT_MAX_FLOWS, DEFAULT_MAX_HOSTS, DEFAULT_RING_BYTES},
};

// Map names are the `vpnfp_common::maps` constants; userspace resizes the
// LRU maps and the ring buffer at load time.
#[map]
static VPNFP_CONFIG: Array<KernelConfig> = Array::with_max_entries(1, 0);
#[map]
static VPNFP_HOSTS: LruHashMap<u32, HostState> = LruHashMap::with_max_entries(DEFAULT_MAX_HOSTS, 0);
#[map]
static VPNFP_FLOWS: LruHashMap<FlowKey, FlowCounters> =
    LruHashMap::with_max_entries(DEFAULT_MAX_FLOWS, 0);
#[map]
static VPNFP_WINDOWS: RingBuf = RingBuf::with_byte_size(DEFAULT_RING_BYTES, 0);
#[map]
static VPNFP_COUNTERS: PerCpuArray<Counters> = PerCpuArray::with_max_entries(1, 0);

const _: () = assert!(OUTCOME_COUNT.is_power_of_two());

#[xdp]
pub fn vpnfp(ctx: XdpContext) -> u32 {
    // The one exit: count the frame's outcome on this CPU, then pass it.
    if let Some(counters) = VPNFP_COUNTERS.get_ptr_mut(0) {
        // SAFETY: per-CPU value, only this CPU touches it while we run.
        let counters = unsafe { &mut *counters };
        let outcome = match try_fingerprint(&ctx, counters) {
            Ok(outcome) | Err(outcome) => outcome,
        };
        counters.seen += 1;
        // The mask keeps the index provably in bounds for the verifier.
        counters.outcomes[(outcome as usize) & (OUTCOME_COUNT - 1)] += 1;
    }
    xdp_action::XDP_PASS
}

/// `Err` is an early exit (ignored or malformed), `Ok` a frame that reached
/// the state machine or the transit filter.
#[inline(always)]
fn try_fingerprint(ctx: &XdpContext, counters: &mut Counters) -> Result<Outcome, Outcome> {
    let ip = vpnfp_common::parse::ethernet(&parse::XdpFrame(ctx))?;
    let config = match VPNFP_CONFIG.get(0) {
        Some(config) if config.is_valid() => config,
        _ => return Err(Outcome::IgnoredUnconfigured),
    };
    let (host, peer, direction) = config.analysed(&ip)?;
    // Reading the precise clock costs about 20 ns more than the coarse one
    // on the machines measured, so it is read only when the packet's exact
    // time can matter (a peer change, or a window near its end); see
    // `HostState::needs_precise_time`. The test clock stands for both.
    let test_clock = config.has(FLAG_TEST_CLOCK);
    let precise_ns = || {
        if test_clock {
            config.test_clock_ns
        } else {
            // SAFETY: helper without arguments.
            unsafe { bpf_ktime_get_ns() }
        }
    };
    let mut now_ns = if test_clock {
        config.test_clock_ns
    } else {
        // SAFETY: helper without arguments.
        unsafe { bpf_ktime_get_coarse_ns() }
    };

    if let Some(state) = lookup_or_insert(
        &VPNFP_HOSTS,
        &host,
        || HostState::NEW,
        &mut counters.hosts_created,
    ) {
        // SAFETY: a live map value. Two CPUs updating the same host at once
        // can race here (documented limit); the kernel keeps it memory-safe.
        let state = unsafe { &mut *state };
        if state.needs_precise_time(peer, now_ns, config.window_ns) {
            now_ns = precise_ns();
        }
        if let Some(closed) = state.observe(host, peer, now_ns, config.window_ns) {
            counters.windows_closed += 1;
            if config.has(FLAG_LOG_WINDOWS) {
                info!(
                    ctx,
                    "window closed: host {:i} peer {:i} packets {} previous {}",
                    closed.host,
                    closed.peer,
                    closed.count_this,
                    closed.count_prev
                );
            }
            if VPNFP_WINDOWS.output::<WindowClose>(&closed, 0).is_err() {
                counters.records_lost += 1;
            }
        }
    }

    if config.has(FLAG_NO_FLOWS) {
        return Ok(Outcome::Analysed);
    }
    let key = FlowKey { host, peer };
    if let Some(flow) = lookup_or_insert(
        &VPNFP_FLOWS,
        &key,
        || FlowCounters::new(now_ns),
        &mut counters.flows_created,
    ) {
        // SAFETY: a live map value; counters only, a lost increment under a
        // cross-CPU race is tolerated.
        unsafe { &mut *flow }.record(direction, ip.total_len, now_ns);
    }
    Ok(Outcome::Analysed)
}

/// The value for `key`, inserting `new()` first if absent (built only
/// then, off the per-packet path). `None` only if the entry vanished
/// between insert and lookup (LRU pressure from other CPUs).
#[inline(always)]
fn lookup_or_insert<K, V>(
    map: &LruHashMap<K, V>,
    key: &K,
    new: impl FnOnce() -> V,
    created: &mut u64,
) -> Option<*mut V> {
    if let Some(value) = map.get_ptr_mut(key) {
        return Some(value);
    }
    // NOEXIST: another CPU may have inserted it meanwhile; keep theirs.
    if map.insert(key, new(), BPF_NOEXIST as u64).is_ok() {
        *created += 1;
    }
    map.get_ptr_mut(key)
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
