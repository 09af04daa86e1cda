//! A fast hasher for userspace's per-packet tables (hosts, flows, the
//! identifier's flows; addresses and flow keys): the
//! std SipHash costs more than the rest of a packet's work in replay. Each
//! word is folded in FxHash's way; `finish` mixes the high bits down so
//! hashbrown's bucket index and its tag bits both vary.

use std::hash::{BuildHasherDefault, Hasher};

#[derive(Default)]
pub struct FastHasher(u64);

const K: u64 = 0x517c_c1b7_2722_0a95;

impl FastHasher {
    #[inline(always)]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    #[inline(always)]
    fn finish(&self) -> u64 {
        let h = self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        h ^ (h >> 29)
    }

    #[inline(always)]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.add(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut last = [0u8; 8];
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    #[inline(always)]
    fn write_u8(&mut self, n: u8) {
        self.add(n as u64);
    }
    #[inline(always)]
    fn write_u16(&mut self, n: u16) {
        self.add(n as u64);
    }
    #[inline(always)]
    fn write_u32(&mut self, n: u32) {
        self.add(n as u64);
    }
    #[inline(always)]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
    #[inline(always)]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

pub type FastBuild = BuildHasherDefault<FastHasher>;
