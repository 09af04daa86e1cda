//! Per-CPU counters of the XDP program: every frame ends in exactly one
//! [`Outcome`], so `seen` equals the sum of the outcomes.

/// What happened to one frame. The discriminant indexes [`Counters::outcomes`].
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// IPv4 with a host to follow: fed to the window state machine.
    Analysed = 0,
    /// Not IPv4 (ARP, IPv6, LLC, IPX, ...): ignored, as in the research.
    IgnoredNotIpv4 = 1,
    /// Both ends internal: skipped, as in the research.
    IgnoredLanInternal = 2,
    /// Neither end internal, with the internal-hosts-only option set.
    IgnoredTransit = 3,
    /// The config map was never written (the program runs unconfigured).
    IgnoredUnconfigured = 4,
    /// The frame ends before the headers it announces (Ethernet, a VLAN tag
    /// or the first 20 bytes of IPv4).
    MalformedTruncated = 5,
    /// Ethertype IPv4 but version is not 4 or IHL below 5.
    MalformedIpv4Header = 6,
    /// More than [`MAX_VLAN_TAGS`] VLAN tags: the research reads 0 to 3.
    MalformedVlanDepth = 7,
}

pub const OUTCOME_COUNT: usize = 8;

/// The research reads up to three stacked VLAN tags.
pub const MAX_VLAN_TAGS: usize = 3;

impl Outcome {
    pub const ALL: [Outcome; OUTCOME_COUNT] = [
        Outcome::Analysed,
        Outcome::IgnoredNotIpv4,
        Outcome::IgnoredLanInternal,
        Outcome::IgnoredTransit,
        Outcome::IgnoredUnconfigured,
        Outcome::MalformedTruncated,
        Outcome::MalformedIpv4Header,
        Outcome::MalformedVlanDepth,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Outcome::Analysed => "analysed",
            Outcome::IgnoredNotIpv4 => "ignored_not_ipv4",
            Outcome::IgnoredLanInternal => "ignored_lan_internal",
            Outcome::IgnoredTransit => "ignored_transit",
            Outcome::IgnoredUnconfigured => "ignored_unconfigured",
            Outcome::MalformedTruncated => "malformed_truncated",
            Outcome::MalformedIpv4Header => "malformed_ipv4_header",
            Outcome::MalformedVlanDepth => "malformed_vlan_depth",
        }
    }

    pub const fn is_malformed(self) -> bool {
        matches!(
            self,
            Outcome::MalformedTruncated
                | Outcome::MalformedIpv4Header
                | Outcome::MalformedVlanDepth
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
    /// Window-close records the ring buffer had no room for.
    pub records_lost: u64,
    /// Hosts and flows inserted: minus the live entries, the LRU evictions.
    pub hosts_created: u64,
    pub flows_created: u64,
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
        for (i, slot) in c.outcomes.iter_mut().enumerate() {
            *slot = 1 << i;
        }
        assert_eq!(c.analysed() + c.ignored() + c.malformed(), 0xff);
    }
}
