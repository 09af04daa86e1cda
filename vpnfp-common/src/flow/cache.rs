//! The kernel's per-CPU flow cache: one CPU's most recent flow, counted
//! without a map lookup while its packets change nothing but counts.
//!
//! A packet costs a hash lookup in the flow table and four atomic adds.
//! Most packets of a busy flow only add to its counts: no flag the flow
//! has not seen, no payload left to inspect, no timeout due. Those are
//! counted here, in this CPU's own memory, and added to the table
//! (atomically) when the CPU meets another flow, when the flow needs the
//! full update, once a [`FLUSH_NS`], and whenever userspace asks (before
//! it reads or ends flows: the `vpnfp_flush_flows` program, run on every
//! CPU). So the table's counts are exact at every point userspace reads
//! them, and a packet of the cached flow costs a key comparison.
//!
//! Correctness rests on one property: whatever [`FlowCache::count`]
//! accepts, [`FlowValue::record`] would have done with only the counts
//! and the last-seen time changing. The tests check it packet by packet.

use crate::{
    cells::Cells,
    flow::{Direction, FlowKey, FlowSettings, FlowValue},
    net::{
        addr::Address,
        parse::{Ip, L4Kind, tcp_flags},
    },
};

/// The longest a cached flow's counts wait before they reach the table,
/// measured at the flow's next packet on the CPU (userspace flushes every
/// CPU before each read, so this only keeps the table fresh between).
pub const FLUSH_NS: u64 = 1_000_000_000;

/// Counts not yet in the flow table.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pending {
    pub packets_up: u64,
    pub packets_down: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// The first and last pending packet's time.
    pub first_ns: u64,
    pub last_ns: u64,
}

impl Pending {
    #[inline(always)]
    pub fn packets(&self) -> u64 {
        self.packets_up + self.packets_down
    }
}

/// One CPU's cached flow (in the kernel's per-CPU scratch memory).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FlowCache<A> {
    pub key: FlowKey<A>,
    pub pending: Pending,
    /// The flow's period start when it was cached: a later active-timeout
    /// cut (by any CPU) only moves it forward, so a timeout not due by this
    /// one is not due.
    pub first_seen_ns: u64,
    /// The latest packet time known for the flow here: the flow's would be
    /// no earlier, so a flow not idle by this one is not idle.
    pub last_seen_ns: u64,
    /// When the counts last went to the table.
    pub flushed_ns: u64,
    /// The TCP flags the flow had seen.
    pub tcp_flags: u8,
    /// Its first payloads were all handed to identification.
    pub inspected_all: u8,
    pub valid: u8,
    pub scope: u8,
    pub _pad: [u8; 4],
}

impl<A: Address> FlowCache<A> {
    /// Counts the packet here if it is the cached flow's and would change
    /// nothing in the flow but its counts and last-seen time; false sends
    /// it the full way (flush, then [`FlowValue::record`], then
    /// [`FlowCache::fill`]).
    #[inline(always)]
    pub fn count(
        &mut self,
        key: &FlowKey<A>,
        ip: &Ip<A>,
        direction: Direction,
        now_ns: u64,
        settings: &FlowSettings,
    ) -> bool {
        if self.valid == 0 || !self.key.same(key) {
            return false;
        }
        let flags = ip.l4.tcp_flags;
        // SYN may name the initiator, FIN and RST close: the full way.
        let changing = tcp_flags::SYN | tcp_flags::FIN | tcp_flags::RST;
        if flags & changing != 0 || flags & !self.tcp_flags != 0 {
            return false;
        }
        if ip.l4.payload_len > 0 && ip.l4.kind == L4Kind::Complete && self.inspected_all == 0 {
            return false;
        }
        if settings.idle_ns != 0 && now_ns.saturating_sub(self.last_seen_ns) > settings.idle_ns {
            return false;
        }
        if settings.active_ns != 0
            && now_ns.saturating_sub(self.first_seen_ns) >= settings.active_ns
        {
            return false;
        }
        if now_ns.saturating_sub(self.flushed_ns) >= FLUSH_NS {
            return false;
        }
        let p = &mut self.pending;
        if p.packets() == 0 {
            p.first_ns = now_ns;
        }
        let bytes = ip.ip_len as u64;
        match direction {
            Direction::Outbound => {
                p.packets_up += 1;
                p.bytes_up += bytes;
            }
            Direction::Inbound => {
                p.packets_down += 1;
                p.bytes_down += bytes;
            }
        }
        if now_ns > p.last_ns {
            p.last_ns = now_ns;
        }
        if now_ns > self.last_seen_ns {
            self.last_seen_ns = now_ns;
        }
        true
    }

    /// Caches `key`'s flow after its full update at `now_ns`.
    #[inline(always)]
    pub fn fill(
        &mut self,
        key: &FlowKey<A>,
        flow: &FlowValue,
        now_ns: u64,
        settings: &FlowSettings,
    ) {
        self.key = *key;
        self.pending = Pending::default();
        self.first_seen_ns = flow.first_seen_ns;
        self.last_seen_ns = flow.last_seen_ns;
        self.flushed_ns = now_ns;
        self.tcp_flags = flow.tcp_flags;
        self.inspected_all = (flow.inspected >= settings.inspect_packets) as u8;
        self.scope = flow.scope;
        self.valid = 1;
    }

    /// The pending counts, taken out (the cache stays valid).
    #[inline(always)]
    pub fn take_pending(&mut self, now_ns: u64) -> Option<Pending> {
        if self.valid == 0 || self.pending.packets() == 0 {
            return None;
        }
        self.flushed_ns = now_ns;
        Some(core::mem::take(&mut self.pending))
    }

    /// A flow entry for pending counts whose flow left the table meanwhile
    /// (userspace ended it): they start its next flow, so none is lost.
    #[inline(always)]
    pub fn orphan(&self, pending: &Pending) -> FlowValue {
        FlowValue {
            packets_up: pending.packets_up,
            packets_down: pending.packets_down,
            bytes_up: pending.bytes_up,
            bytes_down: pending.bytes_down,
            first_seen_ns: pending.first_ns,
            last_seen_ns: pending.last_ns,
            scope: self.scope,
            inspected: u8::MAX,
            ..FlowValue::default()
        }
    }
}

impl<A: Address> FlowKey<A> {
    /// Field by field, without the padding: the derived `==` compares the
    /// padding bytes too, as an array.
    #[inline(always)]
    pub fn same(&self, other: &Self) -> bool {
        self.host == other.host
            && self.peer == other.peer
            && self.host_port == other.host_port
            && self.peer_port == other.peer_port
            && self.proto == other.proto
    }
}

impl FlowValue {
    /// Adds counts kept elsewhere (a CPU's cache) to the flow.
    #[inline(always)]
    pub fn absorb<C: Cells>(&mut self, pending: &Pending) {
        if pending.packets_up != 0 {
            C::add(&mut self.packets_up, pending.packets_up);
            C::add(&mut self.bytes_up, pending.bytes_up);
        }
        if pending.packets_down != 0 {
            C::add(&mut self.packets_down, pending.packets_down);
            C::add(&mut self.bytes_down, pending.bytes_down);
        }
        if pending.last_ns > self.last_seen_ns {
            self.last_seen_ns = pending.last_ns;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        cells::Plain,
        flow::FlowUpdate,
        net::{
            classify::{Ends, InternalRanges},
            parse::{Transport, ipproto},
        },
    };

    const LAN: u32 = 0xc0a8_010a;
    const WAN: u32 = 0xc633_6407;
    const MS: u64 = 1_000_000;

    fn tcp(out: bool, flags: u8, payload: u32) -> Ip<u32> {
        let (src, dst, sp, dp) = if out {
            (LAN, WAN, 40000, 443)
        } else {
            (WAN, LAN, 443, 40000)
        };
        Ip {
            src,
            dst,
            ip_len: 40 + payload,
            l4: Transport {
                proto: ipproto::TCP,
                src_port: sp,
                dst_port: dp,
                tcp_flags: flags,
                payload_len: payload,
                payload_offset: 54,
                ..Transport::default()
            },
        }
    }

    /// Runs packets through the table alone, and through cache + table as
    /// the kernel does; the flow and every update must agree.
    fn both_ways(packets: &[(u64, Ip<u32>)], settings: &FlowSettings) -> (FlowValue, usize) {
        let ranges = InternalRanges::research();
        let mut plain = FlowValue::default();
        let mut cached = FlowValue::default();
        let mut cache = FlowCache::<u32>::default();
        let mut fast = 0;
        let mut scratch = FlowValue::default();
        for (i, (t, ip)) in packets.iter().enumerate() {
            let ends = Ends::classify(&ranges, ip.src, ip.dst);
            let (key, dir) = FlowKey::of(ip, &ends);
            if i == 0 {
                plain = FlowValue::new(ends.scope(), *t);
                cached = plain;
            }
            let want: FlowUpdate = plain.record::<u32, Plain>(ip, dir, *t, settings, &mut scratch);
            let want_delta = scratch;
            if cache.count(&key, ip, dir, *t, settings) {
                fast += 1;
                assert_eq!(
                    want,
                    FlowUpdate::default(),
                    "packet {i} changed more than counts"
                );
                continue;
            }
            if let Some(p) = cache.take_pending(*t) {
                cached.absorb::<Plain>(&p);
            }
            let got = cached.record::<u32, Plain>(ip, dir, *t, settings, &mut scratch);
            assert_eq!(got, want, "packet {i}");
            if want.delta != crate::flow::Cut::None {
                assert_eq!(scratch, want_delta, "packet {i}'s delta");
            }
            cache.fill(&key, &cached, *t, settings);
        }
        if let Some(p) = cache.take_pending(u64::MAX) {
            cached.absorb::<Plain>(&p);
        }
        assert_eq!(cached, plain);
        (cached, fast)
    }

    #[test]
    fn a_cached_flow_counts_exactly_as_the_table_would() {
        let settings = FlowSettings {
            active_ns: 60_000 * MS,
            idle_ns: 30_000 * MS,
            inspect_packets: 3,
        };
        let mut packets = vec![
            (0, tcp(true, tcp_flags::SYN, 0)),
            (MS, tcp(false, tcp_flags::SYN | tcp_flags::ACK, 0)),
            (2 * MS, tcp(true, tcp_flags::ACK, 0)),
            (3 * MS, tcp(true, tcp_flags::ACK | tcp_flags::PSH, 300)),
            (4 * MS, tcp(false, tcp_flags::ACK | tcp_flags::PSH, 1400)),
            (5 * MS, tcp(true, tcp_flags::ACK, 0)),
            (6 * MS, tcp(false, tcp_flags::ACK | tcp_flags::PSH, 1400)),
        ];
        // A bulk transfer: 10 packets a ms for 150 s, through the active
        // timeout twice and past several cache flushes.
        for i in 0..1_500_000u64 {
            let t = 10 * MS + i * MS / 10;
            packets.push((t, tcp(i % 3 != 0, tcp_flags::ACK | tcp_flags::PSH, 1000)));
        }
        // A pause past the idle timeout: the next packet starts a new flow.
        let t = 200_000 * MS;
        packets.push((t, tcp(true, tcp_flags::ACK, 0)));
        packets.push((t + MS, tcp(true, tcp_flags::ACK, 100)));
        packets.push((t + 2 * MS, tcp(false, tcp_flags::FIN | tcp_flags::ACK, 0)));
        packets.push((t + 3 * MS, tcp(true, tcp_flags::ACK, 0)));
        packets.push((t + 4 * MS, tcp(true, tcp_flags::FIN | tcp_flags::ACK, 0)));
        packets.push((t + 5 * MS, tcp(false, tcp_flags::ACK, 0)));
        let (flow, fast) = both_ways(&packets, &settings);
        assert!(fast > 1_400_000, "most packets take the cache: {fast}");
        assert_ne!(flow.state, 0, "the close was seen");
    }

    #[test]
    fn pending_counts_outlive_their_flow_leaving_the_table() {
        let mut cache = FlowCache::<u32>::default();
        let settings = FlowSettings {
            active_ns: 0,
            idle_ns: 0,
            inspect_packets: 0,
        };
        let ip = tcp(true, tcp_flags::ACK, 0);
        let ends = Ends::classify(&InternalRanges::research(), ip.src, ip.dst);
        let (key, dir) = FlowKey::of(&ip, &ends);
        let mut flow = FlowValue::new(ends.scope(), 0);
        let mut delta = FlowValue::default();
        flow.record::<u32, Plain>(&ip, dir, 0, &settings, &mut delta);
        cache.fill(&key, &flow, 0, &settings);
        assert!(cache.count(&key, &ip, dir, MS, &settings));
        assert!(cache.count(&key, &ip, dir, 2 * MS, &settings));
        // Past FLUSH_NS the packet goes the full way, after a flush.
        assert!(!cache.count(&key, &ip, dir, FLUSH_NS, &settings));
        let pending = cache.take_pending(FLUSH_NS).expect("two packets wait");
        let orphan = cache.orphan(&pending);
        assert_eq!((orphan.packets_up, orphan.bytes_up), (2, 80));
        assert_eq!((orphan.first_seen_ns, orphan.last_seen_ns), (MS, 2 * MS));
        assert_eq!(cache.take_pending(FLUSH_NS), None);
    }
}
