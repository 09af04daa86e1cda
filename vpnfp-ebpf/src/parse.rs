//! The XDP side of `vpnfp_common::parse::Bytes`: every read is checked
//! against `data_end` before the packet is touched, in the form the verifier
//! tracks (pointer + size compared with data_end).

use aya_ebpf::programs::XdpContext;
use vpnfp_common::parse::Bytes;

pub struct XdpFrame<'a>(pub &'a XdpContext);

impl Bytes for XdpFrame<'_> {
    #[inline(always)]
    fn array<const N: usize>(&self, offset: usize) -> Option<[u8; N]> {
        let start = self.0.data() + offset;
        if start + N > self.0.data_end() {
            return None;
        }
        // SAFETY: the N bytes at `start` lie inside the frame (checked above).
        Some(unsafe { *(start as *const [u8; N]) })
    }
}
