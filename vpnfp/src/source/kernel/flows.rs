//! Ending the kernel's flows. The programs count flows in plain hash maps
//! (never LRU: the kernel would evict silently); this side takes each flow
//! out when it ends and hands on its counts:
//! - a FIN or RST: the program says so once (a `FLOW_CLOSING` record), and
//!   the flow is taken out once it has been quiet for the linger;
//! - idle flows: found by a sweep over the maps every few seconds;
//! - a table nearly full: the least recently seen flows are evicted;
//! - at exit: every flow.
//!
//! Each is taken out with one lookup-and-delete, so no packet counted
//! meanwhile is lost. Before the maps are read, every CPU's flow cache is
//! flushed into them ([`FlowFlusher`]), so the counts read are exact.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use aya::{
    Pod,
    maps::{HashMap, MapData},
};
use vpnfp_common::{FlowKey, FlowValue, V6, flow::state, record::FlowKeyRecord};

use super::sys::{self, lookup_and_delete};
use crate::{
    clock::KernelClock,
    engine::linger::{CLOSE_LINGER_NS, CloseLinger},
    model::{EndReason, FlowEnded, FlowId},
};

/// One family's flow map, and its descriptor for the commands aya lacks.
pub struct FlowMap<A> {
    pub map: HashMap<MapData, FlowKey<A>, FlowValue>,
    pub fd: OwnedFd,
}

pub struct FlowMaps {
    pub v4: FlowMap<u32>,
    pub v6: FlowMap<V6>,
}

/// Runs the programs' `vpnfp_flush_flows` on every CPU: each CPU's cached
/// flow counts (`vpnfp_common::flow::cache`) go into the flow maps. It
/// must run on the CPU whose cache it empties, so the calling thread is
/// pinned to each CPU in turn, then given its affinity back.
pub struct FlowFlusher {
    program: OwnedFd,
    cpus: Vec<u32>,
    /// One warning for CPUs this process may not run on.
    warned: AtomicBool,
}

impl FlowFlusher {
    pub fn new(program: OwnedFd) -> std::io::Result<Self> {
        let cpus = aya::util::online_cpus().map_err(|(_, e)| e)?;
        Ok(Self {
            program,
            cpus,
            warned: AtomicBool::new(false),
        })
    }

    /// Another handle on the same program, for another thread.
    pub fn try_clone(&self) -> std::io::Result<Self> {
        Ok(Self {
            program: self.program.try_clone()?,
            cpus: self.cpus.clone(),
            warned: AtomicBool::new(self.warned.load(Ordering::Relaxed)),
        })
    }

    /// Flushes every CPU's cache. A CPU this process may not run on (a
    /// cpuset) keeps its counts until its cached flow's next packet, at
    /// most a second later (`FLUSH_NS`), or its next other flow.
    pub fn flush(&self) -> std::io::Result<()> {
        // The smallest frame XDP takes; the program does not read it.
        const FRAME: [u8; 64] = [0; 64];
        let own = sys::affinity()?;
        let mut refused = Vec::new();
        for &cpu in &self.cpus {
            if sys::pin_to_cpu(cpu as usize).is_err() {
                refused.push(cpu);
                continue;
            }
            let run = sys::test_run(self.program.as_fd(), &FRAME, 1);
            if let Err(e) = run {
                sys::set_affinity(&own)?;
                return Err(e);
            }
        }
        sys::set_affinity(&own)?;
        if !refused.is_empty() && !self.warned.swap(true, Ordering::Relaxed) {
            log::warn!(
                "cannot run on CPUs {refused:?} (cpuset): their cached flow counts reach the flow table at their flow's next packet instead of at each read"
            );
        }
        Ok(())
    }
}

/// Above this share of a table's capacity a sweep evicts the least recently
/// seen flows, down to [`EVICT_TO`].
const EVICT_ABOVE: f64 = 0.9;
const EVICT_TO: f64 = 0.8;

pub struct FlowKeeper {
    maps: FlowMaps,
    flusher: FlowFlusher,
    capacity: u32,
    idle_ns: u64,
    clock: KernelClock,
    /// Flows that saw a FIN or RST, until they are quiet (kernel time).
    closing: CloseLinger<FlowKeyRecord>,
    /// Flows taken out of the maps, and of those evicted.
    pub ended: u64,
    pub evicted: u64,
    /// Flows found in the maps by the last sweep.
    pub tracked: u64,
}

impl FlowKeeper {
    pub fn new(
        maps: FlowMaps,
        flusher: FlowFlusher,
        capacity: u32,
        idle_ns: u64,
        clock: KernelClock,
    ) -> Self {
        Self {
            maps,
            flusher,
            capacity,
            idle_ns,
            clock,
            closing: CloseLinger::new(CLOSE_LINGER_NS),
            ended: 0,
            evicted: 0,
            tracked: 0,
        }
    }

    /// A program's `FLOW_CLOSING` record arrived at kernel time `now_ns`.
    pub fn closing(&mut self, key: FlowKeyRecord, now_ns: u64) {
        self.closing.push(key, now_ns);
    }

    fn ended(&self, id: FlowId, mut value: FlowValue, end: EndReason) -> FlowEnded {
        value.first_seen_ns = self.clock.to_unix_ns(value.first_seen_ns);
        value.last_seen_ns = self.clock.to_unix_ns(value.last_seen_ns);
        FlowEnded { id, value, end }
    }

    /// Every CPU's cached counts into the maps, before they are read.
    fn flush(&self) {
        if let Err(e) = self.flusher.flush() {
            log::warn!("flushing the CPUs' flow caches failed: {e}");
        }
    }

    /// Takes one flow out of its map; `None` if it is no longer there.
    fn take(&mut self, key: &FlowKeyRecord) -> Option<FlowValue> {
        let taken = if let Some(k) = key.key::<u32>() {
            take_from(&self.maps.v4, &k)
        } else if let Some(k) = key.key::<V6>() {
            take_from(&self.maps.v6, &k)
        } else {
            None
        };
        if taken.is_some() {
            self.ended += 1;
        }
        taken
    }

    /// Ends the closed flows that have been quiet for the linger by kernel
    /// time `now_ns`.
    pub fn end_closed(&mut self, now_ns: u64, out: &mut impl FnMut(FlowEnded)) {
        if !self.closing.due(now_ns) {
            return;
        }
        self.flush();
        while let Some(key) = self
            .closing
            .next_quiet(now_ns, |k| peek(&self.maps, k).map(|v| v.last_seen_ns))
        {
            if let Some(value) = self.take(&key) {
                let record =
                    self.ended(FlowId::from_record(&key), value, EndReason::closed(&value));
                out(record);
            }
        }
    }

    /// Walks both maps: ends idle flows (and closed ones gone quiet), and
    /// evicts the least recently seen when a map is nearly full.
    pub fn sweep(&mut self, now_ns: u64, out: &mut impl FnMut(FlowEnded)) {
        self.flush();
        let v4 = snapshot(&self.maps.v4);
        let v6 = snapshot(&self.maps.v6);
        self.tracked = (v4.len() + v6.len()) as u64;
        self.sweep_family(v4, now_ns, out);
        self.sweep_family(v6, now_ns, out);
    }

    fn sweep_family<A: vpnfp_common::Address>(
        &mut self,
        mut flows: Vec<(FlowKey<A>, FlowValue)>,
        now_ns: u64,
        out: &mut impl FnMut(FlowEnded),
    ) where
        FlowKey<A>: Pod,
    {
        let mut live = Vec::with_capacity(flows.len());
        for (key, value) in flows.drain(..) {
            let closed_and_quiet = value.state & state::CLOSING != 0
                && value.last_seen_ns.saturating_add(CLOSE_LINGER_NS) <= now_ns;
            let idle = value.last_seen_ns.saturating_add(self.idle_ns) < now_ns;
            if idle || closed_and_quiet {
                let record = FlowKeyRecord::of(&key);
                if let Some(value) = self.take(&record) {
                    let end = if value.state & state::CLOSING != 0 {
                        EndReason::closed(&value)
                    } else {
                        EndReason::Idle
                    };
                    out(self.ended(FlowId::of(&key), value, end));
                }
            } else {
                live.push((key, value));
            }
        }
        let capacity = self.capacity as f64;
        if live.len() as f64 > capacity * EVICT_ABOVE {
            let keep = (capacity * EVICT_TO) as usize;
            live.sort_by_key(|(_, v)| v.last_seen_ns);
            let excess = live.len() - keep;
            for (key, _) in live.drain(..excess) {
                if let Some(value) = self.take(&FlowKeyRecord::of(&key)) {
                    self.evicted += 1;
                    out(self.ended(FlowId::of(&key), value, EndReason::Evicted));
                }
            }
        }
    }

    /// Ends every flow (`exit`).
    pub fn drain(&mut self, out: &mut impl FnMut(FlowEnded)) {
        self.closing.clear();
        self.flush();
        for (key, _) in snapshot(&self.maps.v4) {
            if let Some(value) = self.take(&FlowKeyRecord::of(&key)) {
                out(self.ended(FlowId::of(&key), value, EndReason::Exit));
            }
        }
        for (key, _) in snapshot(&self.maps.v6) {
            if let Some(value) = self.take(&FlowKeyRecord::of(&key)) {
                out(self.ended(FlowId::of(&key), value, EndReason::Exit));
            }
        }
    }
}

fn take_from<A>(map: &FlowMap<A>, key: &FlowKey<A>) -> Option<FlowValue>
where
    FlowKey<A>: Pod,
{
    match lookup_and_delete::<FlowKey<A>, FlowValue>(map.fd.as_fd(), key) {
        Ok(v) => v,
        Err(e) => {
            log::warn!("taking a flow out of the kernel's table failed: {e}");
            None
        }
    }
}

/// Every entry of a map now (entries may change while it is read).
fn snapshot<A>(map: &FlowMap<A>) -> Vec<(FlowKey<A>, FlowValue)>
where
    FlowKey<A>: Pod,
{
    map.map.iter().filter_map(Result::ok).collect()
}

/// A flow's value in the maps, without taking it out.
fn peek(maps: &FlowMaps, key: &FlowKeyRecord) -> Option<FlowValue> {
    if let Some(k) = key.key::<u32>() {
        maps.v4.map.get(&k, 0).ok()
    } else {
        key.key::<V6>().and_then(|k| maps.v6.map.get(&k, 0).ok())
    }
}
