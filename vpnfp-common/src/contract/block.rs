//! Enforcement's contract: the pairs (host, peer) a policy blocks, written
//! by userspace, read by the programs on every packet when a policy is
//! loaded ([`crate::config::FLAG_POLICY`]). Without a policy the maps are
//! never looked at. The programs count each pair's packets in its value.

/// Drop the pair's packets.
pub const ACTION_DROP: u32 = 1;
/// Count them as dropped, and let them pass (`dry_run`).
pub const ACTION_COUNT: u32 = 2;

/// A host (the flow's internal end, as in [`crate::FlowKey`]) and a peer.
/// No padding: hashed bytewise.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct PairKey<A> {
    pub host: A,
    pub peer: A,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BlockValue {
    /// [`ACTION_DROP`] or [`ACTION_COUNT`].
    pub action: u32,
    pub _pad: u32,
    /// Packets matched (dropped, or counted in a dry run).
    pub packets: u64,
}

const _: () = assert!(core::mem::size_of::<PairKey<u32>>() == 8);
const _: () = assert!(core::mem::size_of::<PairKey<crate::net::addr::V6>>() == 32);
const _: () = assert!(core::mem::size_of::<BlockValue>() == 16);
