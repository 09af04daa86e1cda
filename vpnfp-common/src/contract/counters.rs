//! Per-CPU counters of the XDP and TC programs (and the same counters in
//! userspace): every frame ends in exactly one [`Outcome`], so `seen`
//! equals the sum of the outcomes. The outcomes are the research's view of
//! a frame; flows and samples have counters of their own.

/// What happened to one frame. The discriminant indexes [`Counters::outcomes`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// IPv4 or IPv6 with a host to follow: fed to the window state machine.
    Analysed = 0,
    /// Not IP (ARP, LLC, IPX, ...): ignored.
    IgnoredNotIp = 1,
    /// Both ends internal: skipped, as in the research.
    IgnoredLanInternal = 2,
    /// Neither end internal, with the internal-hosts-only option set.
    IgnoredTransit = 3,
    /// The config map was never written (the program runs unconfigured).
    IgnoredUnconfigured = 4,
    /// The frame ends before the headers it announces (Ethernet, a VLAN tag,
    /// the first 20 bytes of IPv4 or the 40 of IPv6).
    MalformedTruncated = 5,
    /// Ethertype IPv4 but version not 4 or IHL below 5; ethertype IPv6 but
    /// version not 6.
    MalformedIpHeader = 6,
    /// More than [`MAX_VLAN_TAGS`] VLAN tags: the research reads 0 to 3.
    MalformedVlanDepth = 7,
    /// Arrived on the LAN port with an external source address: a LAN
    /// device forged it (real replies enter from the WAN side). Counted,
    /// never evidence: it reaches neither the research, nor flows, nor
    /// identification.
    IgnoredSpoofed = 8,
}

/// Counter slots: a power of two, so the kernel can mask an index into
/// bounds; the slots past the last outcome stay 0.
pub const OUTCOME_COUNT: usize = 16;

pub use crate::net::parse::MAX_VLAN_TAGS;

impl Outcome {
    pub const ALL: [Outcome; 9] = [
        Outcome::Analysed,
        Outcome::IgnoredNotIp,
        Outcome::IgnoredLanInternal,
        Outcome::IgnoredTransit,
        Outcome::IgnoredUnconfigured,
        Outcome::MalformedTruncated,
        Outcome::MalformedIpHeader,
        Outcome::MalformedVlanDepth,
        Outcome::IgnoredSpoofed,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Outcome::Analysed => "analysed",
            Outcome::IgnoredNotIp => "ignored_not_ip",
            Outcome::IgnoredLanInternal => "ignored_lan_internal",
            Outcome::IgnoredTransit => "ignored_transit",
            Outcome::IgnoredUnconfigured => "ignored_unconfigured",
            Outcome::MalformedTruncated => "malformed_truncated",
            Outcome::MalformedIpHeader => "malformed_ip_header",
            Outcome::MalformedVlanDepth => "malformed_vlan_depth",
            Outcome::IgnoredSpoofed => "ignored_spoofed",
        }
    }

    pub const fn is_malformed(self) -> bool {
        matches!(
            self,
            Outcome::MalformedTruncated | Outcome::MalformedIpHeader | Outcome::MalformedVlanDepth
        )
    }

    pub const fn is_ignored(self) -> bool {
        !self.is_malformed() && !matches!(self, Outcome::Analysed)
    }
}

/// One CPU's counters (the value of the per-CPU counters map).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Counters {
    pub seen: u64,
    pub outcomes: [u64; OUTCOME_COUNT],
    pub windows_closed: u64,
    /// Event records (window closes, flow events) the ring buffer had no
    /// room for.
    pub records_lost: u64,
    /// Hosts inserted: minus the live entries, the LRU evictions.
    pub hosts_created: u64,
    /// Flows inserted (userspace counts the ones it ends and evicts).
    pub flows_created: u64,
    /// Frames the TC egress program saw (also counted in `seen`).
    pub seen_egress: u64,
    /// IPv6 packets parsed (whatever their outcome).
    pub ipv6: u64,
    /// Fragments after the first: no transport header, counted in a flow
    /// with ports 0.
    pub fragments: u64,
    /// Packets of a new flow that found the flow table full: in no flow
    /// record (the research's counts still have them).
    pub flow_table_full: u64,
    /// Packets of flows whose record was not sent: the event ring was full.
    pub flow_records_lost: u64,
    /// Payload samples handed to identification, and those the sample ring
    /// had no room for.
    pub samples: u64,
    pub samples_lost: u64,
    /// Concentration windows reported.
    pub concentration_closes: u64,
    /// Packets a policy dropped, and packets a dry run would have dropped.
    pub dropped: u64,
    pub would_drop: u64,
    /// `--local`: packets leaving that no socket sent (forwarded).
    pub unowned: u64,
}

impl Counters {
    pub fn outcome(&self, outcome: Outcome) -> u64 {
        self.outcomes[outcome as usize]
    }

    pub fn analysed(&self) -> u64 {
        self.outcome(Outcome::Analysed)
    }

    pub fn ignored(&self) -> u64 {
        Outcome::ALL
            .iter()
            .filter(|o| o.is_ignored())
            .map(|&o| self.outcome(o))
            .sum()
    }

    pub fn malformed(&self) -> u64 {
        Outcome::ALL
            .iter()
            .filter(|o| o.is_malformed())
            .map(|&o| self.outcome(o))
            .sum()
    }

    /// Sum over CPUs.
    pub fn add(&mut self, other: &Counters) {
        self.seen += other.seen;
        for (a, b) in self.outcomes.iter_mut().zip(other.outcomes.iter()) {
            *a += b;
        }
        self.windows_closed += other.windows_closed;
        self.records_lost += other.records_lost;
        self.hosts_created += other.hosts_created;
        self.flows_created += other.flows_created;
        self.seen_egress += other.seen_egress;
        self.ipv6 += other.ipv6;
        self.fragments += other.fragments;
        self.flow_table_full += other.flow_table_full;
        self.flow_records_lost += other.flow_records_lost;
        self.samples += other.samples;
        self.samples_lost += other.samples_lost;
        self.concentration_closes += other.concentration_closes;
        self.dropped += other.dropped;
        self.would_drop += other.would_drop;
        self.unowned += other.unowned;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_indexed_by_discriminant_and_partitioned() {
        for (i, o) in Outcome::ALL.iter().enumerate() {
            assert_eq!(*o as usize, i);
            assert!(
                matches!(o, Outcome::Analysed) ^ o.is_ignored() ^ o.is_malformed(),
                "{o:?} is in exactly one class"
            );
        }
        let mut c = Counters::default();
        for (i, slot) in c.outcomes.iter_mut().enumerate().take(Outcome::ALL.len()) {
            *slot = 1 << i;
        }
        assert_eq!(c.analysed() + c.ignored() + c.malformed(), 0x1ff);
    }
}
