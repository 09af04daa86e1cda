//! What the programs (and userspace) keep per host: the research's state and
//! the concentration mode's, side by side, one map value.

use crate::{
    cells::Cells,
    concentration::{Concentration, ConcentrationClose},
    net::addr::Address,
    research::window::{HostState, WindowClose},
};

/// The hosts map's value. IPv4: 56 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct HostEntry<A> {
    pub research: HostState<A>,
    pub concentration: Concentration<A>,
}

/// What one packet closed: where [`HostEntry::observe`] writes closes
/// (out-parameters: the kernel keeps them in map memory, off its small
/// stack), and whether it did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct HostUpdate<A> {
    pub window: WindowClose<A>,
    pub window_closed: bool,
    pub concentration: ConcentrationClose<A>,
    pub concentration_closed: bool,
}

impl<A: Copy> HostUpdate<A> {
    pub fn window(&self) -> Option<WindowClose<A>> {
        self.window_closed.then_some(self.window)
    }

    pub fn concentration(&self) -> Option<ConcentrationClose<A>> {
        self.concentration_closed.then_some(self.concentration)
    }
}

/// The host-side settings of one packet's update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostSettings {
    pub window_ns: u64,
    /// 0: concentration off.
    pub concentration_window_ns: u64,
    pub concentration_min_packets: u32,
}

impl<A: Address> HostEntry<A> {
    /// One analysed packet of `host` with `peer` at `now_ns`: the research's
    /// state machine, then concentration (which never touches it). What
    /// closed is written to `update`.
    #[inline(always)]
    pub fn observe<C: Cells>(
        &mut self,
        host: A,
        peer: A,
        now_ns: u64,
        settings: &HostSettings,
        update: &mut HostUpdate<A>,
    ) {
        update.window_closed = false;
        update.concentration_closed = false;
        if let Some(w) = self
            .research
            .observe::<C>(host, peer, now_ns, settings.window_ns)
        {
            update.window = w;
            update.window_closed = true;
        }
        if settings.concentration_window_ns != 0
            && let Some(c) = self.concentration.observe(
                host,
                peer,
                now_ns,
                settings.concentration_window_ns,
                settings.concentration_min_packets,
            )
        {
            update.concentration = c;
            update.concentration_closed = true;
        }
    }
}

const _: () = assert!(core::mem::size_of::<HostEntry<u32>>() == 56);
