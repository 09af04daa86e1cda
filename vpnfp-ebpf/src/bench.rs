//! Trivial programs for `cargo xtask bench`, loaded only by it: the
//! baselines that per-packet cost is measured against (XDP and TC), and a transmitter for
//! the live-rate test (BPF_F_TEST_XDP_LIVE_FRAMES turns XDP_TX into a send).
//! The controller never loads them.

use aya_ebpf::{
    bindings::{TC_ACT_OK, xdp_action},
    helpers::bpf_ktime_get_ns,
    macros::{classifier, map, xdp},
    maps::LruHashMap,
    programs::{TcContext, XdpContext},
};

/// The floor's per-host state: a count and a time.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FloorEntry {
    packets: u64,
    last_ns: u64,
}

// Named by `vpnfp_common::maps::BENCH_FLOOR_MAP`; the bench resizes it.
#[map(name = "VPNFP_BENCH_FLOOR")]
static VPNFP_BENCH_FLOOR: LruHashMap<u32, FloorEntry> = LruHashMap::with_max_entries(16_384, 0);

/// The floor: the least any per-host fingerprinter does per packet. It
/// parses Ethernet and the IPv4 source, reads the clock once and updates
/// one LRU hash entry (plainly, no atomics). vpnfp's added cost is
/// reported as a ratio to this one's.
#[xdp]
pub fn vpnfp_floor(ctx: XdpContext) -> u32 {
    let (data, end) = (ctx.data(), ctx.data_end());
    if data + 34 > end {
        return xdp_action::XDP_PASS;
    }
    // SAFETY: the 34 bytes were checked against data_end above.
    let (ethertype, src) = unsafe {
        (
            core::ptr::read_unaligned((data + 12) as *const u16),
            core::ptr::read_unaligned((data + 26) as *const u32),
        )
    };
    if ethertype != 0x0008 {
        return xdp_action::XDP_PASS;
    }
    // SAFETY: a helper without arguments.
    let now = unsafe { bpf_ktime_get_ns() };
    match VPNFP_BENCH_FLOOR.get_ptr_mut(src) {
        // SAFETY: a live map value.
        Some(e) => unsafe {
            (*e).packets += 1;
            (*e).last_ns = now;
        },
        None => {
            let _ = VPNFP_BENCH_FLOOR.insert(
                src,
                FloorEntry {
                    packets: 1,
                    last_ns: now,
                },
                0,
            );
        }
    }
    xdp_action::XDP_PASS
}

/// Does nothing but pass: what "no fingerprinter" costs under test_run.
#[xdp]
pub fn vpnfp_baseline(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_PASS
}

/// Sends every frame it is given out of the device it runs on.
#[xdp]
pub fn vpnfp_bench_tx(_ctx: XdpContext) -> u32 {
    xdp_action::XDP_TX
}

/// Does nothing but let the packet go: the TC egress program's baseline.
#[classifier]
pub fn vpnfp_tc_baseline(_ctx: TcContext) -> i32 {
    TC_ACT_OK
}
