//! Step 2 of the research: the per-host window state machine.

/// Per-host state, exactly the research's four variables. A new host starts
/// with all of them zero ([`HostState::NEW`]).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct HostState {
    pub peer: u32,
    pub _pad: u32,
    pub window_start_ns: u64,
    pub count_this: u64,
    pub count_prev: u64,
}

/// What a window close hands to the decision: the values *before* the reset.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct WindowClose {
    pub host: u32,
    pub peer: u32,
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

impl WindowClose {
    pub const fn window_ns(&self) -> u64 {
        self.window_end_ns.saturating_sub(self.window_start_ns)
    }
}

impl HostState {
    pub const NEW: Self = Self {
        peer: 0,
        _pad: 0,
        window_start_ns: 0,
        count_this: 0,
        count_prev: 0,
    };

    /// Whether the precise time of this packet can matter, given a coarse
    /// time at most [`COARSE_CLOCK_SLACK_NS`] behind it. It cannot when the
    /// peer is unchanged and the window is surely still open: then
    /// [`HostState::observe`] with the coarse time does exactly what it would
    /// do with the precise one (count the packet, close nothing), and a
    /// reader of the clock can skip the expensive precise read. Window starts
    /// and ends are always precise: they happen only when this says so.
    #[inline(always)]
    pub fn needs_precise_time(&self, peer: u32, coarse_ns: u64, window_ns: u64) -> bool {
        self.peer != peer
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
    #[inline(always)]
    pub fn observe(
        &mut self,
        host: u32,
        peer: u32,
        now_ns: u64,
        window_ns: u64,
    ) -> Option<WindowClose> {
        if self.peer != peer {
            self.peer = peer;
            self.window_start_ns = now_ns;
            self.count_this = 0;
        }
        self.count_this += 1;
        if now_ns.saturating_sub(self.window_start_ns) > window_ns {
            let closed = WindowClose {
                host,
                peer,
                window_start_ns: self.window_start_ns,
                window_end_ns: now_ns,
                count_this: self.count_this,
                count_prev: self.count_prev,
            };
            self.window_start_ns = now_ns;
            self.count_prev = self.count_this;
            self.count_this = 0;
            Some(closed)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NANOS_PER_SEC, Reason, Thresholds, decide};
    use std::net::Ipv4Addr;

    fn ip(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    const MS: u64 = 1_000_000;

    /// Feeds (t_ns, peer) packets for one host; returns every window close.
    fn run(host: u32, packets: &[(u64, u32)], window_ns: u64) -> Vec<WindowClose> {
        let mut state = HostState::NEW;
        packets
            .iter()
            .filter_map(|&(t, peer)| state.observe(host, peer, t, window_ns))
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
        let mut state = HostState::NEW;
        let w = 5 * NANOS_PER_SEC;
        for i in 0..8 {
            // t = 0.0 .. 2.8
            assert_eq!(state.observe(host, vpn, i * 400 * MS, w), None);
        }
        assert_eq!(state.observe(host, other, 3_000 * MS, w), None);
        assert_eq!(state.peer, other);
        assert_eq!(state.window_start_ns, 3_000 * MS);
        assert_eq!(state.count_this, 1);
        // The next packet to the VPN peer restarts it again.
        assert_eq!(state.observe(host, vpn, 3_200 * MS, w), None);
        assert_eq!(state.window_start_ns, 3_200 * MS);
        assert_eq!(state.count_this, 1);
        // So the first close comes only 5 s after 3.2, not after 0.0.
        let mut t = 3_200 * MS;
        let close = loop {
            t += 400 * MS;
            if let Some(c) = state.observe(host, vpn, t, w) {
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
        let mut state = HostState::NEW;
        for &(t, peer) in &packets {
            assert_eq!(state.observe(host, peer, t, 5 * NANOS_PER_SEC), None);
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
        let mut state = HostState::NEW;
        assert_eq!(state.observe(host, peer, 0, w), None);
        assert_eq!(state.observe(host, peer, w, w), None, "exactly WINDOW");
        let close = state.observe(host, peer, w + 1, w).expect("WINDOW + 1 ns");
        assert_eq!(close.window_ns(), w + 1);
        assert_eq!(close.count_this, 3);
    }

    #[test]
    fn count_prev_survives_a_peer_change() {
        let host = ip("10.0.0.5");
        let a = ip("192.0.2.1");
        let b = ip("192.0.2.2");
        let w = NANOS_PER_SEC;
        let mut state = HostState::NEW;
        // A window for peer a closes with 3 packets.
        state.observe(host, a, 0, w);
        state.observe(host, a, 500 * MS, w);
        let first = state.observe(host, a, 1_001 * MS, w).unwrap();
        assert_eq!(first.count_this, 3);
        assert_eq!(state.count_prev, 3);
        // Peer changes to b: count_this resets, count_prev does not.
        state.observe(host, b, 1_100 * MS, w);
        assert_eq!(state.count_this, 1);
        assert_eq!(state.count_prev, 3);
        let second = state.observe(host, b, 2_200 * MS, w).unwrap();
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
    fn a_new_host_starts_from_zero_including_window_start() {
        // The reference's corner: a new host's peer is 0 and window_start 0,
        // so a first packet to 0.0.0.0 (only possible with custom ranges)
        // does not restart the window and closes it at once.
        let mut state = HostState::NEW;
        let close = state.observe(1, 0, 10 * NANOS_PER_SEC, NANOS_PER_SEC);
        assert_eq!(
            close,
            Some(WindowClose {
                host: 1,
                peer: 0,
                window_start_ns: 0,
                window_end_ns: 10 * NANOS_PER_SEC,
                count_this: 1,
                count_prev: 0
            })
        );
    }

    #[test]
    fn time_going_backwards_never_closes() {
        let mut state = HostState::NEW;
        state.observe(1, 2, 10 * NANOS_PER_SEC, NANOS_PER_SEC);
        assert_eq!(state.observe(1, 2, 0, NANOS_PER_SEC), None);
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
            let mut exact = HostState::NEW;
            let mut lazy = HostState::NEW;
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
                    lazy.observe(1, peer, now, window_ns),
                    exact.observe(1, peer, t, window_ns)
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
        assert_eq!(core::mem::size_of::<HostState>(), 32);
        assert_eq!(core::mem::size_of::<WindowClose>(), 40);
    }
}
