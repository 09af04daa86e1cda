//! The "concentration" mode: beside the research's rule, never changing it.
//!
//! The research restarts a host's window whenever one packet goes to another
//! external address, so a VPN user whose machine sends one DNS query outside
//! the tunnel every few seconds is never flagged. Concentration asks a
//! question that survives such strays: over a window, what share of the
//! host's packets went to its top peer?
//!
//! The top peer is found in constant space with the Boyer-Moore majority
//! vote: a candidate and a margin; a packet to the candidate raises the
//! margin, any other lowers it, and at zero the next peer takes over. Any
//! peer with more than half of the window's packets is the candidate at its
//! end, and `candidate_packets` counts its packets since it became the
//! candidate (all of them, once the majority peer took over early). A
//! window closes at the host's first packet after it expired (no timer, as
//! in the research); that packet opens the next window.

use crate::net::addr::Address;

/// Per-host concentration state. Field order keeps IPv4's at 24 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Concentration<A> {
    /// 0: no window open yet.
    pub window_start_ns: u64,
    pub packets: u32,
    pub candidate_packets: u32,
    pub margin: u32,
    pub candidate: A,
}

/// A closed concentration window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ConcentrationClose<A> {
    pub host: A,
    /// The top peer of the window (the majority candidate at its end).
    pub peer: A,
    pub window_start_ns: u64,
    /// The packet that closed it (which opens the next window).
    pub window_end_ns: u64,
    pub packets: u32,
    pub peer_packets: u32,
}

impl<A> ConcentrationClose<A> {
    /// The top peer's share of the window's packets, 0 to 1.
    pub fn share(&self) -> f64 {
        if self.packets == 0 {
            0.0
        } else {
            self.peer_packets as f64 / self.packets as f64
        }
    }
}

impl<A: Address> Concentration<A> {
    /// One analysed packet of `host` to or from `peer`. Returns the window
    /// it closes if that window held at least `min_packets` (so quiet hosts
    /// produce no records). Plain updates: on the kernel's rare cross-CPU
    /// race a vote can be lost, which this heuristic tolerates.
    #[inline(always)]
    pub fn observe(
        &mut self,
        host: A,
        peer: A,
        now_ns: u64,
        window_ns: u64,
        min_packets: u32,
    ) -> Option<ConcentrationClose<A>> {
        let mut closed = None;
        if self.window_start_ns == 0 || now_ns.saturating_sub(self.window_start_ns) > window_ns {
            if self.window_start_ns != 0 && self.packets >= min_packets {
                closed = Some(ConcentrationClose {
                    host,
                    peer: self.candidate,
                    window_start_ns: self.window_start_ns,
                    window_end_ns: now_ns,
                    packets: self.packets,
                    peer_packets: self.candidate_packets,
                });
            }
            // A clock reading of 0 would look like "no window": start at 1.
            self.window_start_ns = if now_ns == 0 { 1 } else { now_ns };
            self.packets = 0;
            self.candidate_packets = 0;
            self.margin = 0;
        }
        self.packets = self.packets.saturating_add(1);
        if self.margin > 0 && self.candidate == peer {
            self.margin += 1;
            self.candidate_packets = self.candidate_packets.saturating_add(1);
        } else if self.margin == 0 {
            self.candidate = peer;
            self.margin = 1;
            self.candidate_packets = 1;
        } else {
            self.margin -= 1;
        }
        closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NANOS_PER_SEC;

    const VPN: u32 = 0xc633_6407;
    const DNS: u32 = 0x0808_0808;

    #[test]
    fn stray_packets_do_not_hide_the_top_peer() {
        // 100 packets/s to the VPN server, one DNS query every 5 s outside
        // the tunnel; 10 s windows.
        let mut c = Concentration::<u32>::default();
        let w = 10 * NANOS_PER_SEC;
        let mut closes = Vec::new();
        for i in 0..3_100u64 {
            let t = NANOS_PER_SEC + i * NANOS_PER_SEC / 100;
            let peer = if i % 500 == 250 { DNS } else { VPN };
            closes.extend(c.observe(1, peer, t, w, 100));
        }
        assert_eq!(closes.len(), 3);
        for close in &closes {
            assert_eq!(close.peer, VPN);
            assert!(close.share() > 0.99, "{close:?}");
            assert!((1000..=1002).contains(&close.packets), "{close:?}");
        }
    }

    #[test]
    fn spread_traffic_has_no_majority_and_quiet_hosts_no_records() {
        let mut c = Concentration::<u32>::default();
        let w = NANOS_PER_SEC;
        let mut closes = Vec::new();
        for i in 0..5_000u64 {
            closes.extend(c.observe(1, (i % 50) as u32 + 10, i * 1_000_000 + 1, w, 100));
        }
        assert!(!closes.is_empty());
        assert!(closes.iter().all(|c| c.share() < 0.1), "{closes:?}");
        let mut quiet = Concentration::<u32>::default();
        for i in 0..50u64 {
            assert_eq!(quiet.observe(1, VPN, i * NANOS_PER_SEC, w, 100), None);
        }
    }
}
