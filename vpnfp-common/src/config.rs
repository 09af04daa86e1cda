//! The configuration userspace writes into the kernel's config map. The XDP
//! program reads it on every packet, so changes need no reload.

use crate::{Direction, InternalRanges, Ipv4Fields, Orientation, Outcome};

/// Set in [`KernelConfig::magic`] by userspace. A zeroed (never written)
/// config, or one written by another layout version, is not used.
pub const CONFIG_MAGIC: u32 = 0x7670_0001; // "vp", layout 1

/// Use [`KernelConfig::test_clock_ns`] instead of the kernel clock, so tests
/// can script timestamps through BPF_PROG_TEST_RUN.
pub const FLAG_TEST_CLOCK: u32 = 1 << 0;
/// Analyse only packets whose host is internal (the reference's pcap entry
/// point filter); transit traffic is then counted as ignored.
pub const FLAG_INTERNAL_HOSTS_ONLY: u32 = 1 << 1;
/// Emit an aya-log line on every window close (debugging).
pub const FLAG_LOG_WINDOWS: u32 = 1 << 2;
/// Skip the per-flow counters (the decision does not use them): about half
/// of the program's per-packet cost (see the README's Performance section).
pub const FLAG_NO_FLOWS: u32 = 1 << 3;

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelConfig {
    pub magic: u32,
    pub flags: u32,
    pub window_ns: u64,
    pub test_clock_ns: u64,
    pub internal: InternalRanges,
}

impl KernelConfig {
    pub const fn new(window_ns: u64, internal: InternalRanges) -> Self {
        Self {
            magic: CONFIG_MAGIC,
            flags: 0,
            window_ns,
            test_clock_ns: 0,
            internal,
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

    /// Step 1 with this config's ranges and filters: the packet's (host,
    /// peer, direction), or why it is not analysed.
    #[inline(always)]
    pub fn analysed(&self, ip: &Ipv4Fields) -> Result<(u32, u32, Direction), Outcome> {
        match self.internal.orient(ip.src, ip.dst) {
            Orientation::LanInternal => Err(Outcome::IgnoredLanInternal),
            Orientation::Outbound {
                host,
                peer,
                direction,
            } => Ok((host, peer, direction)),
            Orientation::Transit { .. } if self.has(FLAG_INTERNAL_HOSTS_ONLY) => {
                Err(Outcome::IgnoredTransit)
            }
            // The source was external, so host is the original destination.
            Orientation::Transit { host, peer } => Ok((host, peer, Direction::Inbound)),
        }
    }
}

const _: () = assert!(core::mem::size_of::<KernelConfig>() == 24 + 8 + 16 * 8);
