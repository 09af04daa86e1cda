//! The contract between the kernel programs and userspace, and the one
//! implementation of everything both sides do: parsing (`net`), the
//! research's rule (`research`), the concentration mode, flows, and the
//! records the programs send (`contract`).
//!
//! Everything here is plain integers and `#[repr(C)]` records so the same
//! code runs inside the XDP and TC programs (`no_std`, bpf target), in the
//! NFQUEUE and replay paths, and in host unit tests. IPv4 addresses are
//! `u32` in host byte order (`u32::from(Ipv4Addr)`), IPv6 addresses their 16
//! bytes in network order ([`net::addr::V6`]).
#![cfg_attr(target_arch = "bpf", no_std)]

pub mod cells;
pub mod concentration;
pub mod contract;
pub mod flow;
pub mod identify;
pub mod net;
pub mod research;

#[cfg(feature = "user")]
pub mod user;

pub use contract::{
    block,
    config::{self, KernelConfig},
    counters::{self, Counters, Outcome},
    host::{HostEntry, HostSettings, HostUpdate},
    local, maps,
    record::{self, RecordHeader},
};
pub use flow::{Direction, FlowKey, FlowValue};
pub use net::{
    addr::{Address, V6},
    classify::{self, InternalRanges, InternalRanges6, Ipv4Range, Ipv6Range, Orientation, Scope},
    parse::{self, Parsed},
};
pub use research::{
    decision::{self, Reason, Thresholds, decide},
    window::{self, HostState, WindowClose},
};

/// Nanoseconds per second: timestamps are `u64` nanoseconds everywhere.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;
