//! The two address families as the fingerprint keys them: IPv4 as a `u32`
//! in host byte order (4-byte map keys, as before IPv6 existed), IPv6 as its
//! 16 bytes in network order. Code that is the same for both is generic over
//! [`Address`]; records that carry either use the 16-byte form with a family.

/// An IPv6 address, network byte order. Aligned to 8 so the kernel reads
/// it as two 64-bit words: byte by byte, its comparisons and range checks
/// spill 32 registers' worth onto BPF's 512-byte stack.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct V6(pub [u8; 16]);

/// Address family numbers as records carry them (the AF_* values).
pub const FAMILY_V4: u8 = 2;
pub const FAMILY_V6: u8 = 10;

pub trait Address: Copy + Eq + Default + PartialOrd + core::fmt::Debug {
    /// [`FAMILY_V4`] or [`FAMILY_V6`].
    const FAMILY: u8;
    /// The 16-byte record form: IPv4 in the first four bytes, network
    /// order, the rest zero (the family says which it is).
    fn to_bytes16(self) -> [u8; 16];
    fn from_bytes16(bytes: [u8; 16]) -> Self;
    /// A group address: multicast, or IPv4's limited broadcast. Never a
    /// flow's host when the other end is not one (a group sends nothing).
    fn is_group(self) -> bool;
}

impl Address for u32 {
    const FAMILY: u8 = FAMILY_V4;

    #[inline(always)]
    fn to_bytes16(self) -> [u8; 16] {
        let b = self.to_be_bytes();
        let mut out = [0u8; 16];
        out[0] = b[0];
        out[1] = b[1];
        out[2] = b[2];
        out[3] = b[3];
        out
    }

    #[inline(always)]
    fn from_bytes16(bytes: [u8; 16]) -> Self {
        u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
    }

    /// 224.0.0.0/4, 255.255.255.255 (host order, as the programs keep it).
    #[inline(always)]
    fn is_group(self) -> bool {
        self >> 28 == 0xe || self == u32::MAX
    }
}

impl Address for V6 {
    const FAMILY: u8 = FAMILY_V6;

    #[inline(always)]
    fn to_bytes16(self) -> [u8; 16] {
        self.0
    }

    #[inline(always)]
    fn from_bytes16(bytes: [u8; 16]) -> Self {
        V6(bytes)
    }

    /// ff00::/8.
    #[inline(always)]
    fn is_group(self) -> bool {
        self.0[0] == 0xff
    }
}

impl V6 {
    /// The two halves as big-endian integers (range checks work on these:
    /// the bpf target has no 128-bit arithmetic to rely on).
    #[inline(always)]
    pub fn halves(&self) -> [u64; 2] {
        // SAFETY: V6 is 16 bytes aligned to 8: two whole words (read as
        // words, not byte by byte: see the type's note).
        let words = unsafe { &*(self as *const V6).cast::<[u64; 2]>() };
        [u64::from_be(words[0]), u64::from_be(words[1])]
    }
}

#[cfg(not(target_arch = "bpf"))]
mod std_conv {
    use super::{FAMILY_V4, V6};
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    impl From<Ipv6Addr> for V6 {
        fn from(a: Ipv6Addr) -> Self {
            V6(a.octets())
        }
    }

    impl From<V6> for Ipv6Addr {
        fn from(a: V6) -> Self {
            Ipv6Addr::from(a.0)
        }
    }

    /// A record's 16-byte address back into `IpAddr`, by its family.
    pub fn ip_from_record(family: u8, bytes: [u8; 16]) -> IpAddr {
        if family == FAMILY_V4 {
            IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
        } else {
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
    }
}

#[cfg(not(target_arch = "bpf"))]
pub use std_conv::ip_from_record;
