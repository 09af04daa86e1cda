//! The pairs NFQUEUE mode drops: its twin of the kernel's block maps
//! (`source::kernel::BlockMaps`), written by enforcement, read for each
//! packet's verdict.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use vpnfp_common::{block::ACTION_DROP, maps::MAX_BLOCKS};

/// The blocks NFQUEUE mode consults for each packet's verdict.
#[derive(Default)]
pub struct SharedBlocks {
    pairs: RwLock<HashMap<(IpAddr, IpAddr), (u32, AtomicU64)>>,
}

impl SharedBlocks {
    /// What to do with a packet between `host` and `peer`: drop it (true),
    /// counting it either way.
    pub fn drops(&self, host: IpAddr, peer: IpAddr) -> bool {
        let Ok(pairs) = self.pairs.read() else {
            return false; // poisoned: fail open
        };
        match pairs.get(&(host, peer)) {
            Some((action, packets)) => {
                packets.fetch_add(1, Ordering::Relaxed);
                *action == ACTION_DROP
            }
            None => false,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pairs.read().map_or(true, |p| p.is_empty())
    }

    /// Blocks the pair with `action`; refused when the set already holds as
    /// many pairs as the kernel's block map can.
    pub fn set(&self, host: IpAddr, peer: IpAddr, action: u32) -> anyhow::Result<()> {
        let mut pairs = self
            .pairs
            .write()
            .map_err(|_| anyhow::anyhow!("the NFQUEUE block set is poisoned"))?;
        if !pairs.contains_key(&(host, peer)) && pairs.len() >= MAX_BLOCKS as usize {
            anyhow::bail!("the block set is full ({MAX_BLOCKS} pairs)");
        }
        let entry = pairs
            .entry((host, peer))
            .or_insert((action, AtomicU64::new(0)));
        entry.0 = action;
        Ok(())
    }

    pub fn clear(&self, host: IpAddr, peer: IpAddr) {
        if let Ok(mut pairs) = self.pairs.write() {
            pairs.remove(&(host, peer));
        }
    }

    /// Packets the pair's block matched so far.
    pub fn packets(&self, host: IpAddr, peer: IpAddr) -> u64 {
        self.pairs
            .read()
            .ok()
            .and_then(|p| p.get(&(host, peer)).map(|(_, n)| n.load(Ordering::Relaxed)))
            .unwrap_or(0)
    }
}
