//! Step 2 of the research: the per-host window state machine.

use crate::{cells::Cells, net::addr::Address};

/// Set in [`HostState::flags`] once the host has had a peer.
pub const HAS_PEER: u32 = 1;

/// Per-host state: the research's four variables (peer, window start, count
/// of this window, count of the previous one), and whether a peer was ever
/// set. The research starts a new host with all four at zero, which makes
/// "no peer yet" the same as "peer 0.0.0.0": with custom ranges that make
/// 0.0.0.0 external, a first packet to it would close a window that began
/// at the epoch. The flag keeps the two apart; nothing else changes.
///
/// Field order keeps IPv4's value at 32 bytes without padding.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct HostState<A> {
    pub window_start_ns: u64,
    pub count_this: u64,
    pub count_prev: u64,
    pub flags: u32,
    pub peer: A,
}

/// What a window close hands to the decision: the values *before* the reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct WindowClose<A> {
    pub host: A,
    pub peer: A,
    pub window_start_ns: u64,
    /// The timestamp of the packet that closed the window (it counts in it).
    pub window_end_ns: u64,
    pub count_this: u64,
    /// The count of the last closed window, which may have been for another
    /// peer: the research does not reset it on a peer change.
    pub count_prev: u64,
}

/// How far behind the precise clock a coarse one may be: the kernel's
/// coarse clock is the time of the last tick (4 ms at HZ=250, 10 ms at
/// HZ=100); 50 ms leaves room for a late tick.
pub const COARSE_CLOCK_SLACK_NS: u64 = 50_000_000;

impl<A> WindowClose<A> {
    pub const fn window_ns(&self) -> u64 {
        self.window_end_ns.saturating_sub(self.window_start_ns)
    }
}

impl<A: Address> HostState<A> {
    /// A host never seen: no peer, all counts zero.
    pub fn new() -> Self {
        Self::default()
    }

    #[inline(always)]
    pub fn has_peer(&self) -> bool {
        self.flags & HAS_PEER != 0
    }

    #[inline(always)]
    fn same_peer(&self, peer: A) -> bool {
        self.has_peer() && self.peer == peer
    }

    /// Whether the precise time of this packet can matter, given a coarse
    /// time at most [`COARSE_CLOCK_SLACK_NS`] behind it. It cannot when the
    /// peer is unchanged and the window is surely still open: then
    /// [`HostState::observe`] with the coarse time does exactly what it would
    /// do with the precise one (count the packet, close nothing), and a
    /// reader of the clock can skip the expensive precise read. Window starts
    /// and ends are always precise: they happen only when this says so.
    #[inline(always)]
    pub fn needs_precise_time(&self, peer: A, coarse_ns: u64, window_ns: u64) -> bool {
        !self.same_peer(peer)
            || coarse_ns
                .saturating_add(COARSE_CLOCK_SLACK_NS)
                .saturating_sub(self.window_start_ns)
                > window_ns
    }

    /// One analysed packet of this host at `now_ns`, talking to `peer`.
    /// Returns the closed window when this packet closes it (algorithm.md
    /// step 2, bit for bit). A timestamp earlier than the window start (a
    /// capture out of order) counts as elapsed time zero, as the reference's
    /// negative difference never exceeds the window either.
    ///
    /// With atomic [`Cells`], packets of one host on several CPUs at once
    /// are each counted exactly once: the count is an atomic add, and of
    /// the packets that find the window expired exactly one (the one whose
    /// claim of the window start succeeds) closes it, taking the count with
    /// an exchange; the others were counted before they looked. Only a peer
    /// change racing with another CPU is last-writer-wins, as it must be.
    #[inline(always)]
    pub fn observe<C: Cells>(
        &mut self,
        host: A,
        peer: A,
        now_ns: u64,
        window_ns: u64,
    ) -> Option<WindowClose<A>> {
        if !self.same_peer(peer) {
            self.peer = peer;
            self.flags |= HAS_PEER;
            self.window_start_ns = now_ns;
            C::take(&mut self.count_this);
        }
        C::add(&mut self.count_this, 1);
        let start = self.window_start_ns;
        if now_ns.saturating_sub(start) > window_ns {
            if !C::claim(&mut self.window_start_ns, start, now_ns) {
                return None;
            }
            let count_this = C::take(&mut self.count_this);
            let count_prev = self.count_prev;
            self.count_prev = count_this;
            Some(WindowClose {
                host,
                peer,
                window_start_ns: start,
                window_end_ns: now_ns,
                count_this,
                count_prev,
            })
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NANOS_PER_SEC, Reason, Thresholds, cells::Plain, decide};
    use std::net::Ipv4Addr;

    fn ip(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    const MS: u64 = 1_000_000;

    /// Feeds (t_ns, peer) packets for one host; returns every window close.
    fn run(host: u32, packets: &[(u64, u32)], window_ns: u64) -> Vec<WindowClose<u32>> {
        let mut state = HostState::new();
        packets
            .iter()
            .filter_map(|&(t, peer)| state.observe::<Plain>(host, peer, t, window_ns))
            .collect()
    }

    #[test]
    fn worked_scenario_from_algorithm_md() {
        // COUNT=10, WINDOW=5 s, OVERLAP=7.5; one packet every 0.4 s.
        let host = ip("192.168.1.10");
        let vpn = ip("198.51.100.7");
        let th = Thresholds::from_ratio(10, 0.75);
        assert_eq!(th.overlap, 7);
        let packets: Vec<(u64, u32)> = (0..=26).map(|i| (i * 400 * MS, vpn)).collect();
        let closes = run(host, &packets, 5 * NANOS_PER_SEC);
        assert_eq!(closes.len(), 2);
        let first = closes[0];
        assert_eq!(
            first,
            WindowClose {
                host,
                peer: vpn,
                window_start_ns: 0,
                window_end_ns: 5_200 * MS,
                count_this: 14,
                count_prev: 0,
            }
        );
        assert_eq!(first.window_ns(), 5_200 * MS);
        assert_eq!(decide(&first, &th), Some(Reason::Count));
        let second = closes[1];
        assert_eq!(second.window_start_ns, 5_200 * MS);
        assert_eq!(second.window_end_ns, 10_400 * MS);
        assert_eq!(second.count_this, 13, "5.6..10.4 is 13 packets");
        assert_eq!(second.count_prev, 14);
        assert_eq!(decide(&second, &th), Some(Reason::Count));
    }

    #[test]
    fn one_packet_to_another_peer_restarts_the_window() {
        let host = ip("192.168.1.10");
        let vpn = ip("198.51.100.7");
        let other = ip("198.51.100.99");
        let mut state = HostState::<u32>::new();
        let w = 5 * NANOS_PER_SEC;
        for i in 0..8 {
            // t = 0.0 .. 2.8
            assert_eq!(state.observe::<Plain>(host, vpn, i * 400 * MS, w), None);
        }
        assert_eq!(state.observe::<Plain>(host, other, 3_000 * MS, w), None);
        assert_eq!(state.peer, other);
        assert_eq!(state.window_start_ns, 3_000 * MS);
        assert_eq!(state.count_this, 1);
        // The next packet to the VPN peer restarts it again.
        assert_eq!(state.observe::<Plain>(host, vpn, 3_200 * MS, w), None);
        assert_eq!(state.window_start_ns, 3_200 * MS);
        assert_eq!(state.count_this, 1);
        // So the first close comes only 5 s after 3.2, not after 0.0.
        let mut t = 3_200 * MS;
        let close = loop {
            t += 400 * MS;
            if let Some(c) = state.observe::<Plain>(host, vpn, t, w) {
                break c;
            }
        };
        assert_eq!(close.window_start_ns, 3_200 * MS);
        assert_eq!(close.window_end_ns, 8_400 * MS, "8.4 - 3.2 = 5.2 > 5");
    }

    #[test]
    fn a_window_ended_by_a_peer_change_is_discarded_without_decision() {
        let host = ip("10.0.0.5");
        let mut packets: Vec<(u64, u32)> = (0..1000).map(|i| (i * MS, ip("192.0.2.1"))).collect();
        // 1000 packets in one second, then the peer changes: no close at all.
        packets.push((6_000 * MS, ip("192.0.2.2")));
        assert!(run(host, &packets, 5 * NANOS_PER_SEC).is_empty());
    }

    #[test]
    fn no_timer_a_silent_host_is_never_judged() {
        let host = ip("10.0.0.5");
        // 50 packets in 4.9 s and then silence: however long the silence,
        // nothing closes the window, so it is never judged.
        let packets: Vec<(u64, u32)> = (0..50).map(|i| (i * 100 * MS, ip("192.0.2.1"))).collect();
        let mut state = HostState::<u32>::new();
        for &(t, peer) in &packets {
            assert_eq!(
                state.observe::<Plain>(host, peer, t, 5 * NANOS_PER_SEC),
                None
            );
        }
        assert_eq!(state.count_this, 50, "the window stays open, unjudged");
    }

    #[test]
    fn the_closing_packet_counts_into_the_window() {
        let host = ip("10.0.0.5");
        let peer = ip("192.0.2.1");
        let w = 5 * NANOS_PER_SEC;
        let closes = run(host, &[(0, peer), (w + 1, peer)], w);
        assert_eq!(closes.len(), 1);
        assert_eq!(closes[0].count_this, 2);
    }

    #[test]
    fn exact_boundary_a_gap_of_window_does_not_close_window_plus_one_ns_does() {
        let host = ip("10.0.0.5");
        let peer = ip("192.0.2.1");
        let w = 1200 * NANOS_PER_SEC;
        let mut state = HostState::<u32>::new();
        assert_eq!(state.observe::<Plain>(host, peer, 0, w), None);
        assert_eq!(
            state.observe::<Plain>(host, peer, w, w),
            None,
            "exactly WINDOW"
        );
        let close = state
            .observe::<Plain>(host, peer, w + 1, w)
            .expect("WINDOW + 1 ns");
        assert_eq!(close.window_ns(), w + 1);
        assert_eq!(close.count_this, 3);
    }

    #[test]
    fn count_prev_survives_a_peer_change() {
        let host = ip("10.0.0.5");
        let a = ip("192.0.2.1");
        let b = ip("192.0.2.2");
        let w = NANOS_PER_SEC;
        let mut state = HostState::<u32>::new();
        // A window for peer a closes with 3 packets.
        state.observe::<Plain>(host, a, 0, w);
        state.observe::<Plain>(host, a, 500 * MS, w);
        let first = state.observe::<Plain>(host, a, 1_001 * MS, w).unwrap();
        assert_eq!(first.count_this, 3);
        assert_eq!(state.count_prev, 3);
        // Peer changes to b: count_this resets, count_prev does not.
        state.observe::<Plain>(host, b, 1_100 * MS, w);
        assert_eq!(state.count_this, 1);
        assert_eq!(state.count_prev, 3);
        let second = state.observe::<Plain>(host, b, 2_200 * MS, w).unwrap();
        assert_eq!(second.peer, b);
        assert_eq!(second.count_this, 2);
        assert_eq!(
            second.count_prev, 3,
            "the last closed window was for peer a"
        );
        // And it drives the overlap rule: 3 + 2 > floor(0.75 * 5) = 3.
        let th = Thresholds::from_ratio(5, 0.75);
        assert_eq!(decide(&second, &th), Some(Reason::Overlap));
    }

    #[test]
    fn no_peer_yet_is_not_peer_zero() {
        // The research's state starts at peer 0 and window start 0, so with
        // ranges that make 0.0.0.0 external a first packet to it would close
        // a window begun at the epoch. "No peer yet" is explicit instead: the
        // first packet starts the window, whatever its peer.
        let mut state = HostState::<u32>::new();
        assert!(!state.has_peer());
        assert_eq!(
            state.observe::<Plain>(1, 0, 10 * NANOS_PER_SEC, NANOS_PER_SEC),
            None
        );
        assert!(state.has_peer());
        assert_eq!(state.window_start_ns, 10 * NANOS_PER_SEC);
        assert_eq!(state.count_this, 1);
        // Everything else is as before: a first packet to any peer.
        let mut other = HostState::<u32>::new();
        other.observe::<Plain>(1, 7, 10 * NANOS_PER_SEC, NANOS_PER_SEC);
        assert_eq!(
            (other.window_start_ns, other.count_this),
            (10 * NANOS_PER_SEC, 1)
        );
    }

    #[test]
    fn time_going_backwards_never_closes() {
        let mut state = HostState::<u32>::new();
        state.observe::<Plain>(1, 2, 10 * NANOS_PER_SEC, NANOS_PER_SEC);
        assert_eq!(state.observe::<Plain>(1, 2, 0, NANOS_PER_SEC), None);
        assert_eq!(state.count_this, 2);
    }

    /// With any coarse time within the slack below the precise one, skipping
    /// the precise read when it is not needed changes nothing.
    #[test]
    fn a_coarse_time_is_used_only_where_it_cannot_change_anything() {
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let peers = [ip("192.0.2.1"), ip("192.0.2.2")];
        for window_ns in [
            1,
            1_000_000,
            40 * MS,
            2 * NANOS_PER_SEC,
            1200 * NANOS_PER_SEC,
        ] {
            let mut exact = HostState::<u32>::new();
            let mut lazy = HostState::<u32>::new();
            let mut t = 10 * NANOS_PER_SEC;
            let mut coarse_reads = 0;
            for _ in 0..20_000 {
                t += next(window_ns / 50 + 2);
                let peer = peers[(next(100) == 0) as usize];
                let coarse = t - next(COARSE_CLOCK_SLACK_NS + 1).min(t);
                let now = if lazy.needs_precise_time(peer, coarse, window_ns) {
                    t
                } else {
                    coarse_reads += 1;
                    coarse
                };
                assert_eq!(
                    lazy.observe::<Plain>(1, peer, now, window_ns),
                    exact.observe::<Plain>(1, peer, t, window_ns)
                );
                assert_eq!(lazy, exact);
            }
            if window_ns >= 2 * NANOS_PER_SEC {
                assert!(coarse_reads > 10_000, "the coarse time serves most packets");
            }
        }
    }

    #[test]
    fn record_layouts_are_fixed() {
        assert_eq!(core::mem::size_of::<HostState<u32>>(), 32);
        assert_eq!(
            core::mem::size_of::<HostState<crate::net::addr::V6>>(),
            48,
            "44 bytes and 4 of trailing padding (a value, never a key)"
        );
    }
}
