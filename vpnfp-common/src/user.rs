//! Userspace-only glue: lets aya read and write the shared records.

use crate::{Counters, FlowCounters, FlowKey, HostState, KernelConfig, WindowClose};

// SAFETY: all are #[repr(C)] plain integers with explicit padding fields, so
// every bit pattern is valid and there are no uninitialised bytes.
unsafe impl aya::Pod for KernelConfig {}
unsafe impl aya::Pod for HostState {}
unsafe impl aya::Pod for WindowClose {}
unsafe impl aya::Pod for Counters {}
unsafe impl aya::Pod for FlowKey {}
unsafe impl aya::Pod for FlowCounters {}

impl WindowClose {
    /// Reads a record from ring-buffer bytes; `None` if the size is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        if bytes.len() != core::mem::size_of::<Self>() {
            return None;
        }
        // SAFETY: size checked, Pod type, unaligned read.
        Some(unsafe { core::ptr::read_unaligned(bytes.as_ptr().cast::<Self>()) })
    }
}
