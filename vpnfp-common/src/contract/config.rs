//! The configuration userspace writes into the kernel's config map. The
//! programs read it on every packet, so changes need no reload.

use crate::{
    Outcome,
    contract::host::HostSettings,
    flow::FlowSettings,
    net::{
        addr::{Address, V6},
        classify::{Ends, InternalRanges, InternalRanges6, Orientation},
    },
};

/// Set in [`KernelConfig::magic`] by userspace. A zeroed (never written)
/// config, or one written by another layout version, is not used.
pub const CONFIG_MAGIC: u32 = 0x7670_0003; // "vp", layout 3

/// Use [`KernelConfig::test_clock_ns`] instead of the kernel clock, so tests
/// can script timestamps through BPF_PROG_TEST_RUN.
pub const FLAG_TEST_CLOCK: u32 = 1 << 0;
/// Analyse only packets whose host is internal (the reference's pcap entry
/// point filter); transit traffic is then counted as ignored.
pub const FLAG_INTERNAL_HOSTS_ONLY: u32 = 1 << 1;
/// Emit an aya-log line on every window close (debugging).
pub const FLAG_LOG_WINDOWS: u32 = 1 << 2;
/// Skip flows entirely (the research's decision does not use them).
pub const FLAG_NO_FLOWS: u32 = 1 << 3;
/// An enforcement policy is loaded: look each packet's (host, peer) up in
/// the block maps.
pub const FLAG_POLICY: u32 = 1 << 4;
/// The watched interface is a LAN port: what arrives on it was sent by LAN
/// hosts, so a frame arriving with an external source is spoofed. Off for a
/// mirror port or a host's own uplink, where replies arrive too.
pub const FLAG_LAN_PORT: u32 = 1 << 5;
/// Endpoint mode (`--local`): TC egress notes each flow's socket, and with
/// a policy applies the per-program blocks (`crate::local`).
pub const FLAG_LOCAL: u32 = 1 << 6;

/// Where a frame entered the interface vpnfp watches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// It arrived on the LAN port (XDP; TC egress for a frame the router
    /// forwards back out of the port it came in on; NFQUEUE when its
    /// in-interface is a watched one).
    FromLanPort,
    /// From elsewhere (the WAN side, the router itself), or not known
    /// (replay): never taken as spoofed.
    Elsewhere,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelConfig {
    pub magic: u32,
    pub flags: u32,
    /// The research's WINDOW.
    pub window_ns: u64,
    pub test_clock_ns: u64,
    /// The concentration mode's window (0: off).
    pub concentration_window_ns: u64,
    /// Flows export a delta record every this many ns (0: never).
    pub flow_active_ns: u64,
    /// A flow idle this long has ended (0: never).
    pub flow_idle_ns: u64,
    /// Concentration windows with fewer packets are not reported.
    pub concentration_min_packets: u32,
    /// Payload-carrying packets per flow handed to identification.
    pub inspect_packets: u32,
    /// At most this many payload bytes per sample.
    pub sample_bytes: u32,
    pub _pad: u32,
    pub internal: InternalRanges,
    pub internal6: InternalRanges6,
}

/// The per-family part of the config: which ranges apply.
pub trait Family: Address {
    fn ends(config: &KernelConfig, src: Self, dst: Self) -> Ends<Self>;
}

impl Family for u32 {
    #[inline(always)]
    fn ends(config: &KernelConfig, src: u32, dst: u32) -> Ends<u32> {
        Ends::classify(&config.internal, src, dst)
    }
}

impl Family for V6 {
    #[inline(always)]
    fn ends(config: &KernelConfig, src: V6, dst: V6) -> Ends<V6> {
        Ends::classify(&config.internal6, src, dst)
    }
}

impl KernelConfig {
    pub const fn new(window_ns: u64, internal: InternalRanges) -> Self {
        Self {
            magic: CONFIG_MAGIC,
            flags: 0,
            window_ns,
            test_clock_ns: 0,
            concentration_window_ns: 0,
            flow_active_ns: 0,
            flow_idle_ns: 0,
            concentration_min_packets: 0,
            inspect_packets: 0,
            sample_bytes: 0,
            _pad: 0,
            internal,
            internal6: InternalRanges6::default_list(),
        }
    }

    #[inline(always)]
    pub const fn is_valid(&self) -> bool {
        self.magic == CONFIG_MAGIC
    }

    #[inline(always)]
    pub const fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    #[inline(always)]
    pub fn flow_settings(&self) -> FlowSettings {
        FlowSettings {
            active_ns: self.flow_active_ns,
            idle_ns: self.flow_idle_ns,
            inspect_packets: if self.inspect_packets > 255 {
                255
            } else {
                self.inspect_packets as u8
            },
        }
    }

    #[inline(always)]
    pub fn host_settings(&self) -> HostSettings {
        HostSettings {
            window_ns: self.window_ns,
            concentration_window_ns: self.concentration_window_ns,
            concentration_min_packets: self.concentration_min_packets,
        }
    }

    /// A frame no LAN host could honestly send: from the LAN port with an
    /// external source. Only such a frame could impersonate a server, so
    /// it is counted and nothing else (`Outcome::IgnoredSpoofed`).
    /// `arrival` is asked last, only for a frame with an external source
    /// on a LAN port (TC reads it from the packet's metadata).
    #[inline(always)]
    pub fn spoofed<A: Address>(&self, ends: &Ends<A>, arrival: impl FnOnce() -> Arrival) -> bool {
        self.has(FLAG_LAN_PORT) && !ends.src_internal && matches!(arrival(), Arrival::FromLanPort)
    }

    /// Step 1 with this config's filters: the packet's (host, peer) for the
    /// research, or why it is not analysed.
    #[inline(always)]
    pub fn analysed<A: Address>(&self, ends: &Ends<A>) -> Result<(A, A), Outcome> {
        match ends.orient() {
            Orientation::LanInternal => Err(Outcome::IgnoredLanInternal),
            Orientation::Outbound { host, peer, .. } => Ok((host, peer)),
            Orientation::Transit { .. } if self.has(FLAG_INTERNAL_HOSTS_ONLY) => {
                Err(Outcome::IgnoredTransit)
            }
            Orientation::Transit { host, peer } => Ok((host, peer)),
        }
    }
}

const _: () = assert!(
    core::mem::size_of::<KernelConfig>()
        == 8 + 8 * 5 + 4 * 4 + (8 + 16 * 8 + 32) + (8 + 16 * 32 + 32)
);
