//! The fingerprint in userspace (replay and NFQUEUE modes): the same parse,
//! orientation, state machines and flow logic as the kernel programs, with
//! hosts and flows in bounded tables and the same counters.

pub mod flows;
pub mod hosts;
pub mod linger;

use std::{hash::Hash, net::IpAddr};

use vpnfp_common::{
    Counters, FlowKey, HostEntry, HostUpdate, KernelConfig, Outcome, Parsed, V6,
    cells::Plain,
    config::{Arrival, FLAG_NO_FLOWS, Family},
    flow::Cut,
    net::parse::{Ip, L4Kind},
    record::SAMPLE_MAX,
};

use crate::model::{
    EndReason, Fact, FlowEnded, FlowId, IntoIp, Sample, concentration_erased, window_erased,
};
pub use flows::FlowTable;
pub use hosts::HostTable;

pub use crate::lru::Stage;

/// Default host capacity of the userspace engine: 1,000,000 hosts.
pub const DEFAULT_MAX_HOSTS: usize = 1_000_000;
/// Default flow capacity of the userspace engine.
pub const DEFAULT_MAX_FLOWS: usize = 1_000_000;

/// The engine's own settings beside the kernel config it shares.
#[derive(Clone, Copy, Debug)]
pub struct EngineSettings {
    pub config: KernelConfig,
    pub max_hosts: usize,
    pub max_flows: usize,
    /// A flow that saw a FIN or RST ends after this long without a packet.
    pub close_linger_ns: u64,
}

impl EngineSettings {
    pub fn new(config: KernelConfig) -> Self {
        Self {
            config,
            max_hosts: DEFAULT_MAX_HOSTS,
            max_flows: DEFAULT_MAX_FLOWS,
            close_linger_ns: flows::CLOSE_LINGER_NS,
        }
    }
}

/// One family's tables.
struct Tables<A> {
    hosts: HostTable<A>,
    flows: FlowTable<A>,
}

pub struct Engine {
    settings: EngineSettings,
    v4: Tables<u32>,
    v6: Tables<V6>,
    counters: Counters,
    /// Idle flows are looked for at most once per this much packet time.
    next_expiry_ns: u64,
}

/// How often (in packet time) the engine looks for idle flows.
const EXPIRY_EVERY_NS: u64 = 1_000_000_000;

impl Engine {
    pub fn new(settings: EngineSettings) -> Self {
        let (hosts, flows, linger) = (
            settings.max_hosts,
            settings.max_flows,
            settings.close_linger_ns,
        );
        Self {
            v4: Tables {
                hosts: HostTable::new(hosts),
                flows: FlowTable::new(flows, linger),
            },
            v6: Tables {
                hosts: HostTable::new(hosts),
                flows: FlowTable::new(flows, linger),
            },
            settings,
            counters: Counters::default(),
            next_expiry_ns: 0,
        }
    }

    /// One frame (`frame`: the bytes `parsed` was read from) that entered
    /// as `arrival` says, seen at `now_ns`; what it causes goes to `out`.
    #[inline]
    pub fn frame(
        &mut self,
        frame: &[u8],
        parsed: Result<Parsed, Outcome>,
        arrival: Arrival,
        now_ns: u64,
        out: &mut impl FnMut(Fact<'_>),
    ) {
        self.counters.seen += 1;
        let outcome = match parsed {
            Err(outcome) => outcome,
            Ok(Parsed::V4(ip)) => packet(
                &self.settings,
                &mut self.v4,
                &mut self.counters,
                Arrived {
                    frame,
                    ip: &ip,
                    arrival,
                    now_ns,
                },
                out,
            ),
            Ok(Parsed::V6(ip)) => {
                self.counters.ipv6 += 1;
                packet(
                    &self.settings,
                    &mut self.v6,
                    &mut self.counters,
                    Arrived {
                        frame,
                        ip: &ip,
                        arrival,
                        now_ns,
                    },
                    out,
                )
            }
        };
        self.counters.outcomes[outcome as usize] += 1;
        if now_ns >= self.next_expiry_ns {
            self.expire(now_ns, out);
        }
    }

    /// Starts loading the host and flow entries of a packet still to come
    /// (replay reads records ahead, `Packet::ahead`), so that they
    /// are in cache when its turn comes.
    #[inline]
    pub fn prefetch(&self, parsed: &Parsed, stage: Stage) {
        match parsed {
            Parsed::V4(ip) => prefetch(&self.settings, &self.v4, ip, stage),
            Parsed::V6(ip) => prefetch(&self.settings, &self.v6, ip, stage),
        }
    }

    /// The (host, peer) a parsed packet belongs to, oriented as its flow
    /// (what an enforcement policy's blocks are keyed by).
    pub fn pair(&self, parsed: &Parsed) -> (IpAddr, IpAddr) {
        let config = &self.settings.config;
        match parsed {
            Parsed::V4(ip) => {
                let (key, _) = FlowKey::of(ip, &u32::ends(config, ip.src, ip.dst));
                (key.host.ip(), key.peer.ip())
            }
            Parsed::V6(ip) => {
                let (key, _) = FlowKey::of(ip, &V6::ends(config, ip.src, ip.dst));
                (key.host.ip(), key.peer.ip())
            }
        }
    }

    /// Ends flows that went idle or closed by `now_ns` (packet time). The
    /// NFQUEUE thread calls it when no packet comes.
    pub fn expire(&mut self, now_ns: u64, out: &mut impl FnMut(Fact<'_>)) {
        self.next_expiry_ns = now_ns.saturating_add(EXPIRY_EVERY_NS);
        // 0: flows never go idle (the kernel config's meaning).
        let idle = match self.settings.config.flow_idle_ns {
            0 => u64::MAX,
            ns => ns,
        };
        self.v4.flows.expire(now_ns, idle, &mut emit_flow(out));
        self.v6.flows.expire(now_ns, idle, &mut emit_flow(out));
    }

    /// Ends every flow (`exit`): at the end of a replay or when NFQUEUE
    /// mode stops.
    pub fn finish(&mut self, out: &mut impl FnMut(Fact<'_>)) {
        self.v4.flows.drain(&mut emit_flow(out));
        self.v6.flows.drain(&mut emit_flow(out));
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn hosts_tracked(&self) -> usize {
        self.v4.hosts.len() + self.v6.hosts.len()
    }

    pub fn hosts_evicted(&self) -> u64 {
        self.v4.hosts.evicted() + self.v6.hosts.evicted()
    }

    pub fn hosts4(&self) -> &HostTable<u32> {
        &self.v4.hosts
    }

    pub fn hosts6(&self) -> &HostTable<V6> {
        &self.v6.hosts
    }

    pub fn flows_tracked(&self) -> usize {
        self.v4.flows.len() + self.v6.flows.len()
    }

    pub fn flows_evicted(&self) -> u64 {
        self.v4.flows.evicted + self.v6.flows.evicted
    }

    /// Bytes the host tables have allocated.
    pub fn host_bytes(&self) -> usize {
        self.v4.hosts.allocated_bytes() + self.v6.hosts.allocated_bytes()
    }

    /// Hosts whose open (never judged) window holds more than `count`
    /// packets: the research has no timer, so it never judges them.
    pub fn open_windows_above(&self, count: u64) -> usize {
        self.v4
            .hosts
            .iter()
            .filter(|(_, e)| e.research.count_this > count)
            .count()
            + self
                .v6
                .hosts
                .iter()
                .filter(|(_, e)| e.research.count_this > count)
                .count()
    }
}

/// A flow leaving a table, as a fact.
fn emit_flow<'o, A: IntoIp>(
    out: &'o mut impl FnMut(Fact<'_>),
) -> impl FnMut(FlowKey<A>, vpnfp_common::FlowValue, EndReason) + 'o {
    move |key, value, end| {
        out(Fact::Flow(FlowEnded {
            id: FlowId::of(&key),
            value,
            end,
        }))
    }
}

/// [`Engine::prefetch`] for one family: the entries [`packet`] will look up.
#[inline]
fn prefetch<A: Family + Hash>(
    settings: &EngineSettings,
    tables: &Tables<A>,
    ip: &Ip<A>,
    stage: Stage,
) {
    let config = &settings.config;
    let ends = A::ends(config, ip.src, ip.dst);
    if stage == Stage::Entry
        && let Ok((host, _)) = config.analysed(&ends)
    {
        tables.hosts.prefetch(host);
    }
    if !config.has(FLAG_NO_FLOWS) {
        tables.flows.prefetch(&FlowKey::of(ip, &ends).0, stage);
    }
}

/// A parsed packet as it arrived: the frame's bytes, what was parsed from
/// them, where and when it came in.
struct Arrived<'f, A> {
    frame: &'f [u8],
    ip: &'f Ip<A>,
    arrival: Arrival,
    now_ns: u64,
}

/// One parsed IP packet through a family's tables: the kernel programs'
/// `packet`, step for step.
#[inline]
fn packet<A: Family + IntoIp + Hash>(
    settings: &EngineSettings,
    tables: &mut Tables<A>,
    counters: &mut Counters,
    arrived: Arrived<'_, A>,
    out: &mut impl FnMut(Fact<'_>),
) -> Outcome {
    let Arrived {
        frame,
        ip,
        arrival,
        now_ns,
    } = arrived;
    let config = &settings.config;
    let ends = A::ends(config, ip.src, ip.dst);
    if config.spoofed(&ends, || arrival) {
        return Outcome::IgnoredSpoofed;
    }
    let outcome = match config.analysed(&ends) {
        Err(outcome) => outcome,
        Ok((host, peer)) => {
            let (entry, created): (&mut HostEntry<A>, bool) = tables.hosts.entry(host);
            if created {
                counters.hosts_created += 1;
            }
            let mut update = HostUpdate::default();
            entry.observe::<Plain>(host, peer, now_ns, &config.host_settings(), &mut update);
            if let Some(closed) = update.window() {
                counters.windows_closed += 1;
                out(Fact::Window(window_erased(&closed)));
            }
            if let Some(closed) = update.concentration() {
                counters.concentration_closes += 1;
                out(Fact::Concentration(concentration_erased(&closed)));
            }
            Outcome::Analysed
        }
    };
    if ip.l4.kind == L4Kind::Fragment {
        counters.fragments += 1;
    }
    if config.has(FLAG_NO_FLOWS) {
        return outcome;
    }
    let (key, direction) = FlowKey::of(ip, &ends);
    let flows = &mut tables.flows;
    let created_before = flows.created;
    let flow = flows.touch(key, ends.scope(), now_ns, &mut emit_flow(out));
    let mut delta = vpnfp_common::FlowValue::default();
    let update =
        flow.record::<A, Plain>(ip, direction, now_ns, &config.flow_settings(), &mut delta);
    let end = match update.delta {
        Cut::None => None,
        Cut::Active => Some(EndReason::ActiveTimeout),
        Cut::Idle => Some(EndReason::Idle),
    };
    if let Some(end) = end {
        out(Fact::Flow(FlowEnded {
            id: FlowId::of(&key),
            value: delta,
            end,
        }));
    }
    if update.inspect {
        let offset = ip.l4.payload_offset as usize;
        let captured = (ip.l4.payload_len as usize)
            .min(frame.len().saturating_sub(offset))
            .min(config.sample_bytes as usize)
            .min(SAMPLE_MAX);
        counters.samples += 1;
        out(Fact::Sample(Sample {
            id: FlowId::of(&key),
            direction,
            ts_ns: now_ns,
            payload_len: ip.l4.payload_len,
            payload: std::borrow::Cow::Borrowed(
                frame.get(offset..offset + captured).unwrap_or(&[]),
            ),
            flags: vpnfp_common::record::sample_flags::of(flow, direction, ip.l4.ah),
            scope: vpnfp_common::Scope::from_u8(flow.scope),
            // NFQUEUE sees IP packets; a capture's link layer is not kept.
            sender: None,
        }));
    }
    if update.closing {
        flows.closing(key, now_ns);
    }
    counters.flows_created += flows.created - created_before;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use vpnfp_common::{InternalRanges, NANOS_PER_SEC, parse};

    fn udp(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0u8; 12];
        f.extend_from_slice(&0x0800u16.to_be_bytes());
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&40u16.to_be_bytes());
        ip[9] = 17;
        ip[12..16].copy_from_slice(&src);
        ip[16..20].copy_from_slice(&dst);
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0x10, 0x00, 0x00, 0x35, 0, 20, 0, 0]);
        f.extend_from_slice(&[7u8; 12]);
        f
    }

    fn engine(max_hosts: usize) -> Engine {
        let mut config = KernelConfig::new(NANOS_PER_SEC, InternalRanges::research());
        config.inspect_packets = 1;
        config.sample_bytes = SAMPLE_MAX as u32;
        Engine::new(EngineSettings {
            max_hosts,
            ..EngineSettings::new(config)
        })
    }

    fn run(e: &mut Engine, frame: &[u8], t: u64) -> Vec<String> {
        run_from(e, frame, Arrival::Elsewhere, t)
    }

    fn run_from(e: &mut Engine, frame: &[u8], arrival: Arrival, t: u64) -> Vec<String> {
        let mut facts = Vec::new();
        e.frame(frame, parse::ethernet(frame), arrival, t, &mut |f| {
            facts.push(match f {
                Fact::Window(w) => format!("window {} {}", w.host, w.count_this),
                Fact::Concentration(_) => "concentration".into(),
                Fact::Flow(f) => format!("flow {} {} {:?}", f.id.host, f.value.packets(), f.end),
                Fact::Sample(s) => format!("sample {} {}", s.id.host, s.payload.len()),
                Fact::Process(_) | Fact::Attributed(..) => "process".into(),
            })
        });
        facts
    }

    #[test]
    fn counts_every_frame_once_and_runs_the_state_machine() {
        let mut e = engine(DEFAULT_MAX_HOSTS);
        let out = udp([192, 168, 1, 10], [198, 51, 100, 7]);
        let lan = udp([192, 168, 1, 10], [192, 168, 1, 1]);
        assert_eq!(run(&mut e, &out, 1), vec!["sample 192.168.1.10 12"]);
        assert_eq!(run(&mut e, &lan, 2), vec!["sample 192.168.1.10 12"]);
        assert!(run(&mut e, &out[..20], 3).is_empty());
        assert_eq!(
            run(&mut e, &out, NANOS_PER_SEC + 2),
            vec!["window 192.168.1.10 2"]
        );
        let c = *e.counters();
        assert_eq!(c.seen, 4);
        assert_eq!(c.analysed(), 2);
        assert_eq!(c.outcome(Outcome::IgnoredLanInternal), 1);
        assert_eq!(c.malformed(), 1);
        assert_eq!(
            (c.hosts_created, c.windows_closed, c.flows_created),
            (1, 1, 2)
        );
        let mut ended = Vec::new();
        e.finish(&mut |f| {
            if let Fact::Flow(f) = f {
                ended.push((f.value.packets(), f.end, f.scope()));
            }
        });
        ended.sort_by_key(|e| e.0);
        assert_eq!(
            ended,
            vec![
                (1, EndReason::Exit, vpnfp_common::Scope::Internal),
                (2, EndReason::Exit, vpnfp_common::Scope::External)
            ]
        );
    }

    #[test]
    fn a_frame_from_the_lan_port_with_an_external_source_is_only_counted() {
        let mut e = engine(DEFAULT_MAX_HOSTS);
        e.settings.config.flags |= vpnfp_common::config::FLAG_LAN_PORT;
        let forged_reply = udp([198, 51, 100, 7], [192, 168, 1, 10]);
        let honest = udp([192, 168, 1, 10], [198, 51, 100, 7]);
        assert!(run_from(&mut e, &forged_reply, Arrival::FromLanPort, 1).is_empty());
        assert_eq!(e.counters().outcome(Outcome::IgnoredSpoofed), 1);
        assert_eq!((e.hosts_tracked(), e.flows_tracked()), (0, 0));
        // The same frame from elsewhere is a reply, and a LAN host's own
        // frames from the LAN port are what the port is for.
        assert_eq!(
            run_from(&mut e, &forged_reply, Arrival::Elsewhere, 2),
            vec!["sample 192.168.1.10 12"]
        );
        assert_eq!(
            run_from(&mut e, &honest, Arrival::FromLanPort, 3),
            vec!["sample 192.168.1.10 12"]
        );
        // Without the LAN-port flag (a mirror port) nothing is spoofed.
        e.settings.config.flags &= !vpnfp_common::config::FLAG_LAN_PORT;
        run_from(&mut e, &forged_reply, Arrival::FromLanPort, 4);
        assert_eq!(e.counters().outcome(Outcome::IgnoredSpoofed), 1);
        assert_eq!(e.counters().analysed(), 3);
    }

    #[test]
    fn capacity_holds_under_a_flood_and_active_hosts_survive() {
        let mut e = engine(1_000);
        let vpn = udp([192, 168, 1, 10], [198, 51, 100, 7]);
        let mut closes = 0;
        for i in 0..100_000u32 {
            let spoofed = udp((0x0a00_0000 + i).to_be_bytes(), [198, 51, 100, 7]);
            run(&mut e, &spoofed, i as u64 * 100_000);
            if i % 100 == 0 {
                closes += run(&mut e, &vpn, i as u64 * 100_000)
                    .iter()
                    .filter(|f| f.starts_with("window 192.168.1.10"))
                    .count();
            }
            assert!(e.hosts_tracked() <= 1_000);
        }
        assert_eq!(
            e.counters().hosts_created,
            100_001,
            "the VPN host was created once"
        );
        assert_eq!(e.hosts_evicted() + e.hosts_tracked() as u64, 100_001);
        assert!(closes >= 9, "{closes}");
    }
}
