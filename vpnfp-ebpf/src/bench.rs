//! Trivial programs for `cargo xtask bench`, loaded only by it: the
//! baselines that per-packet cost is measured against (XDP and TC), and a transmitter for
//! the live-rate test (BPF_F_TEST_XDP_LIVE_FRAMES turns XDP_TX into a send).
//! The controller never loads them.

use aya_ebpf::{
    bindings::{TC_ACT_OK, xdp_action},
    macros::{classifier, xdp},
    programs::{TcContext, XdpContext},
};

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
