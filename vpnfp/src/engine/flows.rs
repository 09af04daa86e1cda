//! The engine's flows within a capacity. Every flow that leaves the table
//! leaves through [`FlowTable`]'s callbacks with its counts: nothing is
//! dropped silently. Ordered by last packet, so the least recently seen
//! flow is at the front: idle expiry and eviction look only there.

use vpnfp_common::{FlowKey, FlowValue, Scope, flow::state};

use super::linger::CloseLinger;
use crate::{
    lru::{Inserted, SlabLru},
    model::EndReason,
};

pub use super::linger::CLOSE_LINGER_NS;

pub struct FlowTable<A> {
    flows: SlabLru<FlowKey<A>, FlowValue>,
    /// Flows that saw a FIN or RST, until they are quiet.
    closing: CloseLinger<FlowKey<A>>,
    pub created: u64,
    pub evicted: u64,
}

impl<A: vpnfp_common::Address> FlowTable<A> {
    /// At most `capacity` flows (at least 1); closed flows end after
    /// `linger_ns` of quiet.
    pub fn new(capacity: usize, linger_ns: u64) -> Self {
        Self {
            flows: SlabLru::new(capacity),
            closing: CloseLinger::new(linger_ns),
            created: 0,
            evicted: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// The flow's value for a packet at `now_ns`, created if new (evicting
    /// the least recently seen flow when full), and moved to the back.
    #[inline]
    pub fn touch(
        &mut self,
        key: FlowKey<A>,
        scope: Scope,
        now_ns: u64,
        ended: &mut impl FnMut(FlowKey<A>, FlowValue, EndReason),
    ) -> &mut FlowValue {
        let (value, inserted) = self
            .flows
            .get_or_insert_with(key, || FlowValue::new(scope, now_ns));
        match inserted {
            Inserted::No => {}
            Inserted::Yes => self.created += 1,
            Inserted::Evicting(old, old_value) => {
                self.created += 1;
                self.evicted += 1;
                ended(old, old_value, EndReason::Evicted);
            }
        }
        value
    }

    /// Starts loading `key`'s entry ([`SlabLru::prefetch`]).
    #[inline]
    pub fn prefetch(&self, key: &FlowKey<A>, stage: crate::lru::Stage) {
        self.flows.prefetch(key, stage);
    }

    /// Look at `key` again once it could have been quiet for the linger.
    pub fn closing(&mut self, key: FlowKey<A>, now_ns: u64) {
        self.closing.push(key, now_ns);
    }

    /// Ends the flows whose time has come at `now_ns`: closed ones quiet
    /// for the linger, and every one without a packet for `idle_ns`.
    pub fn expire(
        &mut self,
        now_ns: u64,
        idle_ns: u64,
        ended: &mut impl FnMut(FlowKey<A>, FlowValue, EndReason),
    ) {
        while let Some(key) = self
            .closing
            .next_quiet(now_ns, |k| self.flows.peek(k).map(|v| v.last_seen_ns))
        {
            let value = self.flows.remove(&key).expect("present");
            ended(key, value, EndReason::closed(&value));
        }
        while let Some((_, value)) = self.flows.front() {
            if value.last_seen_ns.saturating_add(idle_ns) >= now_ns {
                break;
            }
            let (key, value) = self.flows.pop_front().expect("front exists");
            let reason = if value.state & state::CLOSING != 0 {
                EndReason::closed(&value)
            } else {
                EndReason::Idle
            };
            ended(key, value, reason);
        }
    }

    /// Ends every flow (at exit or the end of a replay), oldest first.
    pub fn drain(&mut self, ended: &mut impl FnMut(FlowKey<A>, FlowValue, EndReason)) {
        self.closing.clear();
        self.flows
            .drain(|key, value| ended(key, value, EndReason::Exit));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&FlowKey<A>, &FlowValue)> {
        self.flows.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> FlowKey<u32> {
        FlowKey {
            host: n,
            peer: 1,
            host_port: 2,
            peer_port: 3,
            proto: 17,
            _pad: [0; 3],
        }
    }

    #[test]
    fn idle_closing_eviction_and_drain_emit_every_flow() {
        let mut t = FlowTable::<u32>::new(3, CLOSE_LINGER_NS);
        let mut out = Vec::new();
        let mut ended = |k: FlowKey<u32>, v: FlowValue, r| out.push((k.host, v.packets_up, r));
        for (n, at) in [(1, 0), (2, 10), (3, 20)] {
            t.touch(key(n), Scope::External, at, &mut ended).packets_up += 1;
        }
        // Flow 1 again: now 2 is the least recently seen, and goes first.
        t.touch(key(1), Scope::External, 30, &mut ended).packets_up += 1;
        t.touch(key(4), Scope::External, 40, &mut ended).packets_up += 1;
        assert_eq!(t.len(), 3);
        // Flow 3 closes at 50 and stays quiet.
        let v = t.touch(key(3), Scope::External, 50, &mut ended);
        v.state |= state::CLOSING;
        t.closing(key(3), 50);
        t.expire(50 + CLOSE_LINGER_NS, u64::MAX / 2, &mut ended);
        // Idle after 100 ns: flows 1 and 4.
        t.expire(50 + CLOSE_LINGER_NS + 1, 100, &mut ended);
        t.drain(&mut ended);
        assert_eq!(
            out,
            vec![
                (2, 1, EndReason::Evicted),
                (3, 1, EndReason::Fin),
                (1, 2, EndReason::Idle),
                (4, 1, EndReason::Idle),
            ]
        );
        assert_eq!((t.created, t.evicted), (4, 1));
    }

    #[test]
    fn freed_slots_are_reused_and_the_order_holds() {
        let mut t = FlowTable::<u32>::new(100, CLOSE_LINGER_NS);
        let mut out = Vec::new();
        let mut ended = |k: FlowKey<u32>, _v: FlowValue, r| out.push((k.host, r));
        for n in 0..1_000 {
            t.touch(key(n), Scope::External, n as u64, &mut ended)
                .last_seen_ns = n as u64;
            // Every tenth flow seen again right away: never the oldest.
            if n % 10 == 0 {
                t.touch(key(n / 10 * 10), Scope::External, n as u64, &mut ended);
            }
        }
        assert_eq!((t.len(), t.created, t.evicted), (100, 1_000, 900));
        let order: Vec<u32> = t.iter().map(|(k, _)| k.host).collect();
        assert_eq!(order, (900..1_000).collect::<Vec<_>>());
        // Idle before 950: the first 50 end, oldest first.
        t.expire(950 + 10, 10, &mut ended);
        t.drain(&mut ended);
        let ends: Vec<u32> = out.iter().skip(900).map(|(h, _)| *h).collect();
        assert_eq!(ends, (900..1_000).collect::<Vec<_>>());
        assert!(out[..900].iter().all(|(_, r)| *r == EndReason::Evicted));
        assert!(t.is_empty() && t.iter().next().is_none());
    }
}
