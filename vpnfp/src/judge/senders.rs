//! Which LAN device sends each host's packets. A host's address that moves
//! to another device (another source MAC) is noted: DHCP gave the address
//! to a new machine, or a device on the LAN is forging the host's packets.
//! It is a note, not evidence; the forged packets' own names are judged as
//! usual (one-way names accuse no one).

use std::{collections::HashMap, net::IpAddr};

use serde::Serialize;

use crate::clock::MINUTE_NS;

/// A host's packets came from another device: the `sender_changed` event.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SenderChanged {
    pub event: &'static str,
    pub host: IpAddr,
    pub mac: String,
    pub previous: String,
    /// Changes for this host not reported since the last event (at most
    /// one event per host a minute).
    pub unreported: u64,
    pub at: f64,
}

struct Known {
    mac: [u8; 6],
    reported_ns: u64,
    unreported: u64,
}

/// The last device seen for each host, for at most `capacity` hosts.
pub struct Senders {
    known: HashMap<IpAddr, Known>,
    capacity: usize,
}

fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Senders {
    pub fn new(capacity: usize) -> Self {
        Self {
            known: HashMap::new(),
            capacity,
        }
    }

    /// `host` sent a packet from `mac` at `at_ns` (Unix ns). A change is
    /// reported at most once a minute per host, with the count of those
    /// in between, so a forger flapping the address cannot flood the log.
    pub fn observe(&mut self, host: IpAddr, mac: [u8; 6], at_ns: u64) -> Option<SenderChanged> {
        if !self.known.contains_key(&host) && self.known.len() >= self.capacity {
            // Full: start over rather than grow (a flood of spoofed
            // sources must not grow memory); the next change is missed.
            self.known.clear();
        }
        let known = self.known.entry(host).or_insert(Known {
            mac,
            reported_ns: 0,
            unreported: 0,
        });
        if known.mac == mac {
            return None;
        }
        let previous = std::mem::replace(&mut known.mac, mac);
        if known.reported_ns != 0 && at_ns.saturating_sub(known.reported_ns) < MINUTE_NS {
            known.unreported += 1;
            return None;
        }
        known.reported_ns = at_ns.max(1);
        Some(SenderChanged {
            event: "sender_changed",
            host,
            mac: mac_text(mac),
            previous: mac_text(previous),
            unreported: std::mem::take(&mut known.unreported),
            at: crate::clock::unix_secs(at_ns),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_device_for_an_address_is_noted_at_most_once_a_minute() {
        let mut s = Senders::new(2);
        let host: IpAddr = "192.168.90.21".parse().unwrap();
        let (own, forger) = ([2, 0, 0, 0, 0, 21], [2, 0, 0, 0, 0, 23]);
        assert_eq!(s.observe(host, own, 1), None);
        assert_eq!(s.observe(host, own, 2), None);
        let noted = s.observe(host, forger, 10).expect("a change");
        assert_eq!(
            (noted.mac.as_str(), noted.previous.as_str()),
            ("02:00:00:00:00:17", "02:00:00:00:00:15")
        );
        assert!(noted.human().contains("forges"));
        // Flapping within the minute: counted, not reported.
        assert_eq!(s.observe(host, own, 20), None);
        assert_eq!(s.observe(host, forger, 30), None);
        let later = s
            .observe(host, own, 10 + MINUTE_NS)
            .expect("a minute later");
        assert_eq!(later.unreported, 2);
        // Bounded: a third host empties the table instead of growing it.
        s.observe("10.0.0.1".parse().unwrap(), own, 1);
        s.observe("10.0.0.2".parse().unwrap(), own, 1);
        assert!(s.known.len() <= 2);
    }
}
