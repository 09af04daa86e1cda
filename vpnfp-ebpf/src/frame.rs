//! The kernel side of `vpnfp_common::parse::Bytes`, for both hooks: every
//! read is checked against `data_end` before the packet is touched, in the
//! form the verifier tracks (pointer + size compared with data_end). Payload
//! samples are copied with the hooks' load helpers, which also reach data
//! beyond the linear part of a packet.

use aya_ebpf::{
    helpers::{bpf_skb_load_bytes, bpf_xdp_get_buff_len, bpf_xdp_load_bytes},
    programs::{TcContext, XdpContext},
};
use vpnfp_common::{config::Arrival, parse::Bytes, record::SAMPLE_MAX};

/// What the fingerprint needs from a hook.
pub trait Frame: Bytes {
    /// Whether this hook sees packets leaving the interface.
    const EGRESS: bool;
    /// Where this frame entered the watched interface.
    fn arrival(&self) -> Arrival;
    /// Bytes of the packet the hook can reach.
    fn len(&self) -> usize;
    /// Copies `len` bytes from `offset` into `dst` (`len` at most
    /// [`SAMPLE_MAX`]); false if the helper refused.
    fn load(&self, offset: u32, dst: &mut [u8; SAMPLE_MAX], len: u32) -> bool;
}

/// Checked direct access between `data` and `data_end`.
#[inline(always)]
fn direct<const N: usize>(data: usize, data_end: usize, offset: usize) -> Option<[u8; N]> {
    let start = data + offset;
    if start + N > data_end {
        return None;
    }
    // SAFETY: the N bytes at `start` lie inside the packet (checked above).
    Some(unsafe { *(start as *const [u8; N]) })
}

/// A checked load of a whole big-endian word. Byte loads (what an array
/// read compiles to on BPF) made the parse twice as slow, measured; C's
/// XDP programs load header fields whole the same way (`iph->saddr`).
#[inline(always)]
fn direct_word<T: Copy>(data: usize, data_end: usize, offset: usize) -> Option<T> {
    let start = data + offset;
    if start + core::mem::size_of::<T>() > data_end {
        return None;
    }
    // SAFETY: the bytes lie inside the packet (checked above). The address
    // may be unaligned: the kernel allows that for packet data (alignment
    // is enforced only under BPF_F_STRICT_ALIGNMENT, and headers after
    // Ethernet sit at NET_IP_ALIGN where it is not efficient).
    Some(unsafe { core::ptr::read_volatile(start as *const T) })
}

/// The frame's packet pointers, read from the context.
macro_rules! packet_bytes {
    ($self:ident, $bounds:expr) => {
        #[inline(always)]
        fn array<const N: usize>(&$self, offset: usize) -> Option<[u8; N]> {
            let (data, data_end) = $bounds;
            direct(data, data_end, offset)
        }

        #[inline(always)]
        fn be16(&$self, offset: usize) -> Option<u16> {
            let (data, data_end) = $bounds;
            direct_word::<u16>(data, data_end, offset).map(u16::from_be)
        }

        #[inline(always)]
        fn be32(&$self, offset: usize) -> Option<u32> {
            let (data, data_end) = $bounds;
            direct_word::<u32>(data, data_end, offset).map(u32::from_be)
        }
    };
}

pub struct XdpFrame<'a>(pub &'a XdpContext);

// The packet pointers are read from the context with volatile loads where
// they are used: a plain load lets LLVM hoist it into a caller and pass the
// pointer as a 32-bit argument (the context fields are u32), and a pointer
// that went through a 32-bit register is a plain number to the verifier.

impl Bytes for XdpFrame<'_> {
    packet_bytes!(self, {
        // SAFETY: reads of the program's own context.
        unsafe {
            (
                core::ptr::read_volatile(&(*self.0.ctx).data) as usize,
                core::ptr::read_volatile(&(*self.0.ctx).data_end) as usize,
            )
        }
    });
}

impl Frame for XdpFrame<'_> {
    const EGRESS: bool = false;

    #[inline(always)]
    fn arrival(&self) -> Arrival {
        Arrival::FromLanPort
    }

    /// The helper, not `data_end - data`: a length computed from packet
    /// pointers can end up spilled as a 32-bit value with BPF v3's 32-bit
    /// ALU, which the verifier refuses for pointers.
    #[inline(always)]
    fn len(&self) -> usize {
        // SAFETY: the program's own context.
        unsafe { bpf_xdp_get_buff_len(self.0.ctx) as usize }
    }

    #[inline(always)]
    fn load(&self, offset: u32, dst: &mut [u8; SAMPLE_MAX], len: u32) -> bool {
        // SAFETY: `dst` holds SAMPLE_MAX bytes and len is at most that.
        unsafe { bpf_xdp_load_bytes(self.0.ctx, offset, dst.as_mut_ptr().cast(), len) == 0 }
    }
}

pub struct TcFrame<'a>(pub &'a TcContext);

impl Bytes for TcFrame<'_> {
    packet_bytes!(self, {
        let skb = self.0.skb.skb;
        // SAFETY: reads of the program's own context.
        unsafe {
            (
                core::ptr::read_volatile(&(*skb).data) as usize,
                core::ptr::read_volatile(&(*skb).data_end) as usize,
            )
        }
    });
}

impl Frame for TcFrame<'_> {
    const EGRESS: bool = true;

    /// A frame leaving by the port it came in on was sent by a LAN host
    /// and forwarded back (a forged "reply" takes this way): it is judged
    /// as it was on arrival.
    #[inline(always)]
    fn arrival(&self) -> Arrival {
        let skb = self.0.skb.skb;
        // SAFETY: reads of the program's own context.
        let (came_in, goes_out) = unsafe { ((*skb).ingress_ifindex, (*skb).ifindex) };
        if came_in == goes_out {
            Arrival::FromLanPort
        } else {
            Arrival::Elsewhere
        }
    }

    #[inline(always)]
    fn len(&self) -> usize {
        self.0.len() as usize
    }

    #[inline(always)]
    fn load(&self, offset: u32, dst: &mut [u8; SAMPLE_MAX], len: u32) -> bool {
        // SAFETY: as above.
        unsafe {
            bpf_skb_load_bytes(
                self.0.skb.skb as *const _,
                offset,
                dst.as_mut_ptr().cast(),
                len,
            ) == 0
        }
    }
}
