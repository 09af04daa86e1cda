//! Records the programs send to userspace through the ring buffers. Each
//! starts with a [`RecordHeader`] (kind, version, size), so a record is
//! recognised by what it says it is, not by its length, and a controller
//! meeting a program of another version says so instead of misreading it.

use crate::{
    concentration::ConcentrationClose,
    flow::{Direction, FlowKey, FlowValue},
    net::addr::Address,
    research::window::WindowClose,
};

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct RecordHeader {
    pub kind: u16,
    pub version: u16,
    /// The whole record's size in bytes, header included.
    pub size: u32,
}

/// Record kinds.
pub mod kind {
    /// [`super::WindowCloseRecord`]: the research's window closed.
    pub const WINDOW_CLOSE: u16 = 1;
    /// [`super::ConcentrationRecord`].
    pub const CONCENTRATION: u16 = 2;
    /// [`super::FlowRecord`]: the flow's first FIN or RST (the value is a
    /// snapshot; userspace ends the flow once it is quiet).
    pub const FLOW_CLOSING: u16 = 3;
    /// [`super::FlowRecord`]: an active-timeout delta of a long flow.
    pub const FLOW_DELTA: u16 = 4;
    /// [`super::SampleRecord`]: payload for identification.
    pub const SAMPLE: u16 = 5;
    /// [`super::FlowRecord`]: a flow that had been idle past the idle
    /// timeout when its 5-tuple came back (the counts of the ended flow).
    pub const FLOW_IDLE: u16 = 6;
    /// [`crate::local::OwnerRecord`]: a socket got a new owner (`--local`).
    pub const OWNER: u16 = 7;
}

/// The layout version of every record kind above.
pub const RECORD_VERSION: u16 = 1;

/// At most this many payload bytes per sample: a full Ethernet MTU's
/// payload, so a TLS ClientHello segment arrives whole.
pub const SAMPLE_MAX: usize = 1536;

impl RecordHeader {
    pub const fn of<T>(kind: u16) -> Self {
        Self {
            kind,
            version: RECORD_VERSION,
            size: core::mem::size_of::<T>() as u32,
        }
    }
}

/// A flow key of either family.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct FlowKeyRecord {
    pub family: u8,
    pub proto: u8,
    pub host_port: u16,
    pub peer_port: u16,
    pub _pad: u16,
    pub host: [u8; 16],
    pub peer: [u8; 16],
}

impl FlowKeyRecord {
    #[inline(always)]
    pub fn of<A: Address>(key: &FlowKey<A>) -> Self {
        Self {
            family: A::FAMILY,
            proto: key.proto,
            host_port: key.host_port,
            peer_port: key.peer_port,
            _pad: 0,
            host: key.host.to_bytes16(),
            peer: key.peer.to_bytes16(),
        }
    }

    /// Back to the family's key (`None` if the family is another).
    pub fn key<A: Address>(&self) -> Option<FlowKey<A>> {
        (self.family == A::FAMILY).then(|| FlowKey {
            host: A::from_bytes16(self.host),
            peer: A::from_bytes16(self.peer),
            host_port: self.host_port,
            peer_port: self.peer_port,
            proto: self.proto,
            _pad: [0; 3],
        })
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct WindowCloseRecord {
    pub header: RecordHeader,
    pub family: u8,
    pub _pad: [u8; 7],
    pub host: [u8; 16],
    pub peer: [u8; 16],
    pub window_start_ns: u64,
    pub window_end_ns: u64,
    pub count_this: u64,
    pub count_prev: u64,
}

impl WindowCloseRecord {
    #[inline(always)]
    pub fn of<A: Address>(c: &WindowClose<A>) -> Self {
        Self {
            header: RecordHeader::of::<Self>(kind::WINDOW_CLOSE),
            family: A::FAMILY,
            _pad: [0; 7],
            host: c.host.to_bytes16(),
            peer: c.peer.to_bytes16(),
            window_start_ns: c.window_start_ns,
            window_end_ns: c.window_end_ns,
            count_this: c.count_this,
            count_prev: c.count_prev,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ConcentrationRecord {
    pub header: RecordHeader,
    pub family: u8,
    pub _pad: [u8; 7],
    pub host: [u8; 16],
    pub peer: [u8; 16],
    pub window_start_ns: u64,
    pub window_end_ns: u64,
    pub packets: u32,
    pub peer_packets: u32,
}

impl ConcentrationRecord {
    #[inline(always)]
    pub fn of<A: Address>(c: &ConcentrationClose<A>) -> Self {
        Self {
            header: RecordHeader::of::<Self>(kind::CONCENTRATION),
            family: A::FAMILY,
            _pad: [0; 7],
            host: c.host.to_bytes16(),
            peer: c.peer.to_bytes16(),
            window_start_ns: c.window_start_ns,
            window_end_ns: c.window_end_ns,
            packets: c.packets,
            peer_packets: c.peer_packets,
        }
    }
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FlowRecord {
    pub header: RecordHeader,
    pub key: FlowKeyRecord,
    pub value: FlowValue,
}

impl FlowRecord {
    #[inline(always)]
    pub fn of<A: Address>(kind: u16, key: &FlowKey<A>, value: &FlowValue) -> Self {
        Self {
            header: RecordHeader::of::<Self>(kind),
            key: FlowKeyRecord::of(key),
            value: *value,
        }
    }
}

/// [`SampleRecord::flags`] bits.
pub mod sample_flags {
    /// The packet went host -> peer.
    pub const UP: u8 = 1;
    /// The packet carried an IPsec authentication header.
    pub const AH: u8 = 2;
    /// The packet came from the end that started the flow.
    pub const FROM_INITIATOR: u8 = 4;
    /// TCP: the flow's SYN was seen.
    pub const START_SEEN: u8 = 8;

    /// The flags for a packet of `flow` going `direction`.
    #[inline(always)]
    pub fn of(flow: &crate::FlowValue, direction: crate::Direction, ah: bool) -> u8 {
        let mut flags = 0;
        if direction == crate::Direction::Outbound {
            flags |= UP;
        }
        if ah {
            flags |= AH;
        }
        if flow.from_initiator(direction) {
            flags |= FROM_INITIATOR;
        }
        if flow.start_seen() {
            flags |= START_SEEN;
        }
        flags
    }
}

/// One payload-carrying packet of a flow's first few, for identification.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleRecord {
    pub header: RecordHeader,
    pub key: FlowKeyRecord,
    pub ts_ns: u64,
    /// The payload's length as the IP header says.
    pub payload_len: u32,
    /// How many of its bytes follow in `data`.
    pub captured: u32,
    pub flags: u8,
    /// The flow's [`crate::Scope`] as a number.
    pub scope: u8,
    /// The sending device's Ethernet address, for a frame that arrived on
    /// the LAN port (XDP); zero otherwise.
    pub src_mac: [u8; 6],
    pub data: [u8; SAMPLE_MAX],
}

/// The fixed part of a sample, before `data`.
pub const SAMPLE_HEADER_LEN: usize = core::mem::size_of::<SampleRecord>() - SAMPLE_MAX;

impl SampleRecord {
    #[inline(always)]
    pub fn direction(&self) -> Direction {
        if self.flags & sample_flags::UP != 0 {
            Direction::Outbound
        } else {
            Direction::Inbound
        }
    }

    /// [`SampleRecord::src_mac`], if the frame had one.
    pub fn sender(&self) -> Option<[u8; 6]> {
        (self.src_mac != [0; 6]).then_some(self.src_mac)
    }

    /// The captured payload.
    pub fn payload(&self) -> &[u8] {
        &self.data[..(self.captured as usize).min(SAMPLE_MAX)]
    }
}

const _: () = assert!(core::mem::size_of::<RecordHeader>() == 8);
const _: () = assert!(core::mem::size_of::<FlowKeyRecord>() == 40);
const _: () = assert!(core::mem::size_of::<WindowCloseRecord>() == 80);
const _: () = assert!(core::mem::size_of::<ConcentrationRecord>() == 72);
const _: () = assert!(core::mem::size_of::<FlowRecord>() == 104);
const _: () = assert!(SAMPLE_HEADER_LEN == 72);
