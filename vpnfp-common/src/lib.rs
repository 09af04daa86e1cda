//! The contract between the XDP program and userspace, and the one implementation
//! of the research's decision logic.
//!
//! Everything here is plain integers and `#[repr(C)]` records so the same code
//! runs inside the XDP program (`no_std`, bpf target), in the NFQUEUE and replay
//! paths, and in host unit tests. Addresses are IPv4 in host byte order
//! (`u32::from(Ipv4Addr)`), everywhere.
#![cfg_attr(target_arch = "bpf", no_std)]

pub mod classify;
pub mod config;
pub mod counters;
pub mod decision;
pub mod flow;
pub mod maps;
pub mod parse;
pub mod window;

#[cfg(feature = "user")]
pub mod user;

pub use classify::{InternalRanges, Ipv4Range, Orientation};
pub use config::KernelConfig;
pub use counters::{Counters, Outcome};
pub use decision::{Reason, Thresholds, decide};
pub use flow::{Direction, FlowCounters, FlowKey};
pub use parse::Ipv4Fields;
pub use window::{HostState, WindowClose};

/// Nanoseconds per second: timestamps are `u64` nanoseconds everywhere.
pub const NANOS_PER_SEC: u64 = 1_000_000_000;
