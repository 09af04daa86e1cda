//! Per-flow counters: (host, peer) after orientation, both directions.

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct FlowKey {
    pub host: u32,
    pub peer: u32,
}

/// Whether the packet went host -> peer or came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Outbound,
    Inbound,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct FlowCounters {
    pub packets_out: u64,
    /// Bytes as the IPv4 total-length field says (link headers not counted).
    pub bytes_out: u64,
    pub packets_in: u64,
    pub bytes_in: u64,
    /// Kernel monotonic time; to a clock tick (a few ms) in XDP mode, which
    /// reads the precise clock only where a decision needs it.
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
}

impl FlowCounters {
    pub const fn new(now_ns: u64) -> Self {
        Self {
            packets_out: 0,
            bytes_out: 0,
            packets_in: 0,
            bytes_in: 0,
            first_seen_ns: now_ns,
            last_seen_ns: now_ns,
        }
    }

    #[inline(always)]
    pub fn record(&mut self, direction: Direction, ip_total_len: u16, now_ns: u64) {
        match direction {
            Direction::Outbound => {
                self.packets_out += 1;
                self.bytes_out += ip_total_len as u64;
            }
            Direction::Inbound => {
                self.packets_in += 1;
                self.bytes_in += ip_total_len as u64;
            }
        }
        self.last_seen_ns = now_ns;
    }
}

const _: () = assert!(core::mem::size_of::<FlowKey>() == 8);
const _: () = assert!(core::mem::size_of::<FlowCounters>() == 48);
