//! The kernel's [`Cells`]: atomic instructions on map values, so packets of
//! one host handled by several CPUs at once (XDP ingress on one, TC egress on
//! another, RSS spreading a host's flows) are each counted exactly once.
//! `core::sync::atomic` offers no read-modify-write on the bpf target (it
//! declares no compare-and-swap), so the intrinsics are called directly; with
//! `-C target-cpu=v3` they become BPF_ATOMIC instructions.

use core::intrinsics::{AtomicOrdering, atomic_cxchg, atomic_xadd, atomic_xchg};

use vpnfp_common::cells::Cells;

pub struct Atomic;

impl Cells for Atomic {
    #[inline(always)]
    fn add(cell: &mut u64, n: u64) {
        // SAFETY: a valid, aligned u64 in a map value.
        unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(cell, n) };
    }

    #[inline(always)]
    fn take(cell: &mut u64) -> u64 {
        // SAFETY: as above.
        unsafe { atomic_xchg::<u64, { AtomicOrdering::Relaxed }>(cell, 0) }
    }

    #[inline(always)]
    fn claim(cell: &mut u64, expected: u64, new: u64) -> bool {
        // SAFETY: as above.
        unsafe {
            atomic_cxchg::<u64, { AtomicOrdering::Relaxed }, { AtomicOrdering::Relaxed }>(
                cell, expected, new,
            )
        }
        .1
    }
}
