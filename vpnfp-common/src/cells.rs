//! How shared state is updated. Userspace owns each state on one thread and
//! updates it plainly ([`Plain`]); in the kernel, the XDP and TC programs on
//! several CPUs can update the same host at the same instant, so the eBPF
//! crate implements these with atomic instructions. The state machines are
//! written once against this trait, so both run the same logic.

pub trait Cells {
    /// `*cell += n`.
    fn add(cell: &mut u64, n: u64);
    /// Returns the value and leaves 0.
    fn take(cell: &mut u64) -> u64;
    /// If `*cell == expected`, sets it to `new` and returns true (only one
    /// of several racing updaters wins).
    fn claim(cell: &mut u64, expected: u64, new: u64) -> bool;
}

/// Single-owner updates.
pub struct Plain;

impl Cells for Plain {
    #[inline(always)]
    fn add(cell: &mut u64, n: u64) {
        *cell = cell.wrapping_add(n);
    }

    #[inline(always)]
    fn take(cell: &mut u64) -> u64 {
        core::mem::take(cell)
    }

    #[inline(always)]
    fn claim(cell: &mut u64, expected: u64, new: u64) -> bool {
        if *cell == expected {
            *cell = new;
            true
        } else {
            false
        }
    }
}
