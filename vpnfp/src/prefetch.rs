//! Asking the CPU to load a table entry before it is needed. Replay reads
//! a capture ahead of the packet it works on (`Packet::ahead`); when
//! hosts and flows outgrow the caches, each packet's entries otherwise
//! cost a wait on memory in turn (perf: 60% of a 100,000-host replay on
//! the host table's key compare).

/// Starts loading the cache lines `value` spans; never waits, never faults.
#[inline(always)]
pub fn prefetch<T>(value: &T) {
    let first = std::ptr::from_ref(value).cast::<u8>();
    let last = first.wrapping_add(size_of::<T>().saturating_sub(1));
    line(first);
    line(last);
}

#[inline(always)]
fn line(at: *const u8) {
    // SAFETY: SSE is part of every x86_64 CPU, and a prefetch is a hint:
    // it reads nothing the program sees and never faults, whatever the
    // address.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(at.cast())
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}
