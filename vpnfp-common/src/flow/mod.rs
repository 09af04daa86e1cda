//! Flows by 5-tuple, both directions in one record, in every mode.
//!
//! A flow is (host, peer, L4 protocol, host port, peer port). Each 5-tuple
//! has one orientation whatever direction a packet goes: the internal end is
//! the host when exactly one end is internal; otherwise (LAN-internal or
//! transit flows) the end that is not a group address (a multicast group
//! or the broadcast address sends nothing: mDNS, SSDP and IGMP flows are
//! their senders'), then the end with the higher port, then the higher
//! address, is the host (the ephemeral side is usually the client). "Up"
//! is host to peer. Protocols without ports (ICMP, GRE, ESP, ...) have ports 0.
//!
//! The per-packet update ([`FlowValue::record`]) is the one implementation
//! the XDP/TC programs and userspace share; it also says when a flow's
//! first packets should be handed to identification and when a long flow
//! owes a delta record (the active timeout).

pub mod cache;

use crate::{
    cells::Cells,
    net::{
        addr::Address,
        classify::{Ends, Scope},
        parse::{Ip, L4Kind, tcp_flags},
    },
};

/// Whether the packet went host -> peer ("up") or came back ("down").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Host to peer.
    Outbound,
    /// Peer to host.
    Inbound,
}

/// The flow key. No padding bytes (keys are hashed bytewise by the kernel):
/// 16 bytes for IPv4, 40 for IPv6.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct FlowKey<A> {
    pub host: A,
    pub peer: A,
    pub host_port: u16,
    pub peer_port: u16,
    pub proto: u8,
    pub _pad: [u8; 3],
}

/// [`FlowValue::state`] bits.
pub mod state {
    /// A FIN or RST was seen and userspace was told (once).
    pub const CLOSING: u8 = 1;
    /// An RST was seen.
    pub const RESET: u8 = 2;
}

/// Per-flow counters. First and last seen are to a clock tick (a few ms)
/// in the kernel, which reads the precise clock only where a research
/// decision needs it.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FlowValue {
    pub packets_up: u64,
    pub packets_down: u64,
    /// IP bytes (IPv4 total length, IPv6 40 + payload length).
    pub bytes_up: u64,
    pub bytes_down: u64,
    /// Start of the period these counts cover: the flow's first packet, or
    /// the last active-timeout export.
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    /// TCP flags seen in either direction since the flow began.
    pub tcp_flags: u8,
    /// [`Scope`] as a number.
    pub scope: u8,
    /// Payload-carrying packets handed to identification so far.
    pub inspected: u8,
    /// [`state`] bits.
    pub state: u8,
    /// Reserved, always 0: enforcement blocks (host, peer) pairs in maps of
    /// their own (`contract/block.rs`), which also catch a tunnel's new
    /// flows; kept so the map layout (and pinned maps) stay as they were.
    pub label: u8,
    /// Which end started the flow ([`initiator`]): the sender of its
    /// first packet seen, or of its TCP SYN.
    pub initiator: u8,
    pub _pad: [u8; 2],
}

/// [`FlowValue::initiator`] values.
pub mod initiator {
    pub const UNKNOWN: u8 = 0;
    pub const HOST: u8 = 1;
    pub const PEER: u8 = 2;

    pub const fn of(direction: super::Direction) -> u8 {
        match direction {
            super::Direction::Outbound => HOST,
            super::Direction::Inbound => PEER,
        }
    }
}

const _: () = assert!(core::mem::size_of::<FlowKey<u32>>() == 16);
const _: () = assert!(core::mem::size_of::<FlowKey<crate::net::addr::V6>>() == 40);
const _: () = assert!(core::mem::size_of::<FlowValue>() == 56);

/// Why a packet cut its flow's counts off into a record of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Cut {
    #[default]
    None,
    /// The active timeout ran out: a delta record; the flow goes on.
    Active,
    /// The flow had been idle longer than the idle timeout: it ended before
    /// this packet, which starts the 5-tuple's next flow.
    Idle,
}

/// What one packet did to its flow, beyond counting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FlowUpdate {
    /// The counts before this packet, written to `record`'s `delta`, are a
    /// record to emit, and why.
    pub delta: Cut,
    /// The first FIN or RST of the flow: tell userspace it is ending.
    pub closing: bool,
    /// Hand this packet's payload to identification.
    pub inspect: bool,
}

impl FlowValue {
    /// Whether a packet in `direction` comes from the flow's initiator.
    #[inline(always)]
    pub fn from_initiator(&self, direction: Direction) -> bool {
        self.initiator == initiator::of(direction)
    }

    /// TCP: the connection's SYN was seen, so its first payload is the
    /// stream's start.
    #[inline(always)]
    pub fn start_seen(&self) -> bool {
        self.tcp_flags & tcp_flags::SYN != 0
    }
}

/// Flow settings the per-packet update needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowSettings {
    /// A long flow exports a delta record every this many ns (0: never).
    pub active_ns: u64,
    /// A flow idle longer than this has ended (0: never); a packet after
    /// such a gap starts a new flow, whenever the idle one is collected.
    pub idle_ns: u64,
    /// Payload-carrying packets per flow handed to identification.
    pub inspect_packets: u8,
}

/// Hashed as a few words, not field by field: userspace's flow tables hash
/// a key per packet, and one write per field cost replay a third of its
/// speed (measured with callgrind).
impl<A: Address> core::hash::Hash for FlowKey<A> {
    #[inline(always)]
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        let tail = (self.host_port as u64) << 24 | (self.peer_port as u64) << 8 | self.proto as u64;
        if A::FAMILY == crate::net::addr::FAMILY_V4 {
            let h = self.host.to_bytes16();
            let p = self.peer.to_bytes16();
            let words = u64::from_ne_bytes([h[0], h[1], h[2], h[3], p[0], p[1], p[2], p[3]]);
            state.write_u64(words);
        } else {
            for half in [self.host.to_bytes16(), self.peer.to_bytes16()] {
                let (a, b) = half.split_at(8);
                state.write_u64(u64::from_ne_bytes(a.try_into().unwrap_or([0; 8])));
                state.write_u64(u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])));
            }
        }
        state.write_u64(tail);
    }
}

impl<A: Address> FlowKey<A> {
    /// Writes the flow a packet belongs to into `self` (in place: the
    /// kernel keeps keys in map memory, off its small stack); returns the
    /// packet's direction in it.
    #[inline(always)]
    pub fn set_from(&mut self, ip: &Ip<A>, ends: &Ends<A>) -> Direction {
        let (sp, dp) = (ip.l4.src_port, ip.l4.dst_port);
        let src_is_host = if ends.src_internal != ends.dst_internal {
            ends.src_internal
        } else if ends.src.is_group() != ends.dst.is_group() {
            ends.dst.is_group()
        } else if sp != dp {
            sp > dp
        } else {
            ends.src >= ends.dst
        };
        self.proto = ip.l4.proto;
        self._pad = [0; 3];
        if src_is_host {
            self.host = ends.src;
            self.peer = ends.dst;
            self.host_port = sp;
            self.peer_port = dp;
            Direction::Outbound
        } else {
            self.host = ends.dst;
            self.peer = ends.src;
            self.host_port = dp;
            self.peer_port = sp;
            Direction::Inbound
        }
    }

    /// The flow a packet belongs to, and the packet's direction in it.
    #[inline(always)]
    pub fn of(ip: &Ip<A>, ends: &Ends<A>) -> (Self, Direction) {
        let mut key = Self {
            host: ends.src,
            peer: ends.dst,
            host_port: 0,
            peer_port: 0,
            proto: 0,
            _pad: [0; 3],
        };
        let direction = key.set_from(ip, ends);
        (key, direction)
    }
}

impl FlowValue {
    /// A flow's value before its first packet.
    #[inline(always)]
    pub fn new(scope: Scope, now_ns: u64) -> Self {
        Self {
            first_seen_ns: now_ns,
            last_seen_ns: now_ns,
            scope: scope as u8,
            ..Self::default()
        }
    }

    pub fn packets(&self) -> u64 {
        self.packets_up + self.packets_down
    }

    /// One packet of the flow. `delta` receives the counts of an
    /// active-timeout delta when [`FlowUpdate::delta`] says there is one (an
    /// out-parameter: the kernel keeps it in map memory, off its small
    /// stack).
    #[inline(always)]
    pub fn record<A: Address, C: Cells>(
        &mut self,
        ip: &Ip<A>,
        direction: Direction,
        now_ns: u64,
        settings: &FlowSettings,
        delta: &mut FlowValue,
    ) -> FlowUpdate {
        let mut update = FlowUpdate::default();
        let idle =
            settings.idle_ns != 0 && now_ns.saturating_sub(self.last_seen_ns) > settings.idle_ns;
        let active = settings.active_ns != 0
            && now_ns.saturating_sub(self.first_seen_ns) >= settings.active_ns;
        if idle || active {
            *delta = *self;
            delta.packets_up = C::take(&mut self.packets_up);
            delta.packets_down = C::take(&mut self.packets_down);
            delta.bytes_up = C::take(&mut self.bytes_up);
            delta.bytes_down = C::take(&mut self.bytes_down);
            self.first_seen_ns = now_ns;
            if idle {
                // A new flow on the same 5-tuple: everything starts over.
                self.tcp_flags = 0;
                self.state = 0;
                self.inspected = 0;
                self.initiator = initiator::UNKNOWN;
            }
            if delta.packets_up + delta.packets_down > 0 {
                update.delta = if idle { Cut::Idle } else { Cut::Active };
            }
        }
        let bytes = ip.ip_len as u64;
        match direction {
            Direction::Outbound => {
                C::add(&mut self.packets_up, 1);
                C::add(&mut self.bytes_up, bytes);
            }
            Direction::Inbound => {
                C::add(&mut self.packets_down, 1);
                C::add(&mut self.bytes_down, bytes);
            }
        }
        // CPUs' coarse clocks can differ by a tick: never move backwards.
        if now_ns > self.last_seen_ns {
            self.last_seen_ns = now_ns;
        }
        let flags = ip.l4.tcp_flags;
        // A SYN without ACK names the client even if an earlier packet (a
        // retransmitted reply) was seen first.
        if self.initiator == initiator::UNKNOWN
            || flags & (tcp_flags::SYN | tcp_flags::ACK) == tcp_flags::SYN
        {
            self.initiator = initiator::of(direction);
        }
        if flags != 0 {
            self.tcp_flags |= flags;
            if flags & (tcp_flags::FIN | tcp_flags::RST) != 0 {
                if flags & tcp_flags::RST != 0 {
                    self.state |= state::RESET;
                }
                if self.state & state::CLOSING == 0 {
                    self.state |= state::CLOSING;
                    update.closing = true;
                }
            }
        }
        if ip.l4.payload_len > 0
            && ip.l4.kind == L4Kind::Complete
            && self.inspected < settings.inspect_packets
        {
            self.inspected += 1;
            update.inspect = true;
        }
        update
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        cells::Plain,
        net::{
            classify::InternalRanges,
            parse::{Transport, ipproto},
        },
    };

    fn ip(src: u32, dst: u32, sp: u16, dp: u16, len: u32, flags: u8) -> Ip<u32> {
        Ip {
            src,
            dst,
            ip_len: len,
            l4: Transport {
                proto: ipproto::TCP,
                src_port: sp,
                dst_port: dp,
                tcp_flags: flags,
                payload_len: len.saturating_sub(40),
                payload_offset: 54,
                ..Transport::default()
            },
        }
    }

    const LAN: u32 = 0xc0a8_010a;
    const LAN2: u32 = 0xc0a8_0114;
    const WAN: u32 = 0xc633_6407;

    fn key(p: &Ip<u32>) -> (FlowKey<u32>, Direction) {
        FlowKey::of(
            p,
            &Ends::classify(&InternalRanges::research(), p.src, p.dst),
        )
    }

    #[test]
    fn both_directions_share_one_key() {
        let out = ip(LAN, WAN, 40000, 443, 100, 0);
        let back = ip(WAN, LAN, 443, 40000, 1500, 0);
        let (k1, d1) = key(&out);
        let (k2, d2) = key(&back);
        assert_eq!(k1, k2);
        assert_eq!((d1, d2), (Direction::Outbound, Direction::Inbound));
        assert_eq!(
            (k1.host, k1.peer, k1.host_port, k1.peer_port),
            (LAN, WAN, 40000, 443)
        );
        // LAN-internal and transit: the higher port is the host, then the
        // higher address.
        let (k, d) = key(&ip(LAN, LAN2, 22, 50000, 60, 0));
        assert_eq!((k.host, k.host_port, d), (LAN2, 50000, Direction::Inbound));
        let (k, _) = key(&ip(LAN, LAN2, 51820, 51820, 60, 0));
        let (k_back, _) = key(&ip(LAN2, LAN, 51820, 51820, 60, 0));
        assert_eq!(k, k_back);
        assert_eq!(k.host, LAN2);
        // Before ports and addresses: the end that sends to a group (mDNS,
        // SSDP, IGMP from 0.0.0.0) is the host, not the group.
        for group in [0xe000_00fb, 0xefff_fffa, 0xe000_0001, u32::MAX] {
            for (sport, dport) in [(1024, 5353), (5353, 5353)] {
                let (k, d) = key(&ip(LAN, group, sport, dport, 60, 0));
                assert_eq!((k.host, k.peer, d), (LAN, group, Direction::Outbound));
            }
            let (k, d) = key(&ip(0, group, 0, 0, 60, 0));
            assert_eq!((k.host, k.peer, d), (0, group, Direction::Outbound));
        }
    }

    #[test]
    fn counts_both_ways_closing_inspection_and_active_deltas() {
        let settings = FlowSettings {
            active_ns: 1_000,
            idle_ns: 0,
            inspect_packets: 2,
        };
        let out = ip(LAN, WAN, 40000, 443, 100, tcp_flags::ACK);
        let back = ip(WAN, LAN, 443, 40000, 1500, tcp_flags::ACK);
        let mut v = FlowValue::new(Scope::External, 10);
        let mut delta = FlowValue::default();
        let mut record = |v: &mut FlowValue, p: &Ip<u32>, d, t| {
            v.record::<u32, Plain>(p, d, t, &settings, &mut delta)
        };
        let u = record(&mut v, &out, Direction::Outbound, 10);
        assert!(u.inspect && !u.closing && u.delta == Cut::None);
        assert!(record(&mut v, &back, Direction::Inbound, 20).inspect);
        assert!(!record(&mut v, &back, Direction::Inbound, 30).inspect);
        assert_eq!(
            (v.packets_up, v.packets_down, v.bytes_up, v.bytes_down),
            (1, 2, 100, 3000)
        );
        let fin = ip(LAN, WAN, 40000, 443, 40, tcp_flags::FIN | tcp_flags::ACK);
        assert!(record(&mut v, &fin, Direction::Outbound, 40).closing);
        assert!(!record(&mut v, &fin, Direction::Outbound, 50).closing);
        // 1000 ns after the first packet: a delta of everything so far.
        assert_eq!(
            record(&mut v, &out, Direction::Outbound, 1_010).delta,
            Cut::Active
        );
        assert_eq!((delta.packets_up, delta.packets_down), (3, 2));
        assert_eq!((delta.first_seen_ns, delta.last_seen_ns), (10, 50));
        assert_eq!(
            (v.packets_up, v.packets_down, v.first_seen_ns),
            (1, 0, 1_010)
        );
        assert_eq!(v.tcp_flags, tcp_flags::ACK | tcp_flags::FIN);
    }

    #[test]
    fn a_packet_after_the_idle_timeout_starts_a_new_flow() {
        let settings = FlowSettings {
            active_ns: 0,
            idle_ns: 100,
            inspect_packets: 1,
        };
        let p = ip(LAN, WAN, 40000, 443, 100, tcp_flags::FIN);
        let mut v = FlowValue::new(Scope::External, 0);
        let mut delta = FlowValue::default();
        assert!(
            v.record::<u32, Plain>(&p, Direction::Outbound, 0, &settings, &mut delta)
                .inspect
        );
        let u = v.record::<u32, Plain>(&p, Direction::Outbound, 100, &settings, &mut delta);
        assert_eq!(
            u.delta,
            Cut::None,
            "a gap of exactly the timeout is not idle"
        );
        let u = v.record::<u32, Plain>(&p, Direction::Outbound, 201, &settings, &mut delta);
        assert_eq!(u.delta, Cut::Idle);
        assert!(u.inspect && u.closing, "identified and ended afresh");
        assert_eq!(
            (delta.packets_up, delta.first_seen_ns, delta.last_seen_ns),
            (2, 0, 100)
        );
        assert_eq!((v.packets_up, v.first_seen_ns), (1, 201));
    }
}
