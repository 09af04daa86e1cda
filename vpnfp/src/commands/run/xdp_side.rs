//! `vpnfp run`'s XDP side: load, configure, attach, and read window
//! closes from the ring buffer.

use std::future::pending;

use anyhow::Context;
use aya::maps::{MapData, RingBuf};
use log::{debug, info, warn};
use tokio::io::unix::AsyncFd;
use vpnfp::{
    clock::KernelClock,
    compare::Comparison,
    report::{Mode, Reporter},
    xdp::{Capacities, XdpFingerprinter},
};
use vpnfp_common::WindowClose;

use crate::cli::RunArgs;

/// The XDP side: the loaded program and its window-close ring buffer.
pub(super) struct XdpSide {
    pub(super) fingerprinter: XdpFingerprinter,
    pub(super) ring: AsyncFd<RingBuf<MapData>>,
    pub(super) clock: KernelClock,
}

pub(super) fn start_xdp(
    args: &RunArgs,
    config: &vpnfp_common::KernelConfig,
) -> anyhow::Result<XdpSide> {
    let capacities = Capacities {
        max_hosts: args.max_hosts,
        max_flows: args.max_flows,
        ring_bytes: args.ring_bytes,
        pin_dir: args.pin.clone(),
    };
    let mut fingerprinter = XdpFingerprinter::load(capacities, u8::MAX)?;
    spawn_kernel_log_reader(&mut fingerprinter);
    fingerprinter.configure(config)?;
    for iface in &args.ifaces {
        let mode = fingerprinter.attach(iface, args.xdp_mode)?;
        info!("xdp: attached to {iface} in {mode} mode (monitor: every packet passes)");
    }
    let ring = watch_readable(fingerprinter.take_window_closes()?)
        .context("watching the window-close ring buffer")?;
    Ok(XdpSide {
        fingerprinter,
        ring,
        clock: KernelClock::now().context("reading the clocks")?,
    })
}

/// Reads every committed window-close record and reports it.
pub(super) fn drain_ring(
    ring: &mut RingBuf<MapData>,
    reporter: &mut Reporter,
    mut comparison: Option<&mut Comparison>,
    clock: KernelClock,
) {
    while let Some(item) = ring.next() {
        match WindowClose::from_bytes(&item) {
            Some(closed) => super::on_close(
                Mode::Xdp,
                &closed,
                |ns| clock.to_unix_ns(ns),
                reporter,
                comparison.as_deref_mut(),
            ),
            None => warn!(
                "ignoring a ring-buffer record of {} bytes (expected {}): object and controller differ",
                item.len(),
                size_of::<WindowClose>()
            ),
        }
    }
}

pub(super) async fn ring_ready(
    xdp: &mut Option<XdpSide>,
) -> std::io::Result<tokio::io::unix::AsyncFdReadyMutGuard<'_, RingBuf<MapData>>> {
    match xdp {
        Some(side) => side.ring.readable_mut().await,
        None => pending().await,
    }
}

/// Registers a map-backed reader (ring buffer) with the runtime.
pub(super) fn watch_readable<T: std::os::fd::AsRawFd>(inner: T) -> std::io::Result<AsyncFd<T>> {
    // SAFETY: aya's RingBuf and EbpfLogger own their map fd and keep it open
    // and unchanged until dropped, which is when the AsyncFd drops them.
    unsafe { AsyncFd::register_with_interest(inner, tokio::io::Interest::READABLE) }
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// aya-log lines from the program (window closes with -v) go to our logger.
pub(super) fn spawn_kernel_log_reader(fingerprinter: &mut XdpFingerprinter) {
    match aya_log::EbpfLogger::init(fingerprinter.ebpf_mut()) {
        Ok(logger) => match watch_readable(logger) {
            Ok(mut logger) => {
                tokio::spawn(async move {
                    while let Ok(mut guard) = logger.readable_mut().await {
                        guard.get_inner_mut().flush();
                        guard.clear_ready();
                    }
                });
            }
            Err(e) => warn!("kernel log lines unavailable: {e}"),
        },
        Err(e) => debug!("kernel log lines unavailable: {e}"),
    }
}
