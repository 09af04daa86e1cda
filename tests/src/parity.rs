//! One script through the kernel programs (test_run) and through the
//! userspace engine (as replay and NFQUEUE mode run it), collected the same
//! way, so tests can hold the two to identical results.

use std::{collections::BTreeMap, net::IpAddr};

use vpnfp::{
    engine::{Engine, EngineSettings},
    model::{Fact, FlowEnded, FlowId},
    source::capture::LinkType,
};
use vpnfp_common::{
    Counters, Direction, KernelConfig, WindowClose, concentration::ConcentrationClose,
    config::Arrival,
};

use crate::{harness::TestProgram, script::Scripted};

/// A flow's counts summed over its records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub packets_up: u64,
    pub packets_down: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
    pub first_seen_ns: u64,
    pub last_seen_ns: u64,
    pub tcp_flags: u8,
    pub scope: u8,
}

impl Totals {
    pub fn add(&mut self, f: &FlowEnded) {
        let v = &f.value;
        let first = self.packets_up + self.packets_down == 0;
        self.packets_up += v.packets_up;
        self.packets_down += v.packets_down;
        self.bytes_up += v.bytes_up;
        self.bytes_down += v.bytes_down;
        self.first_seen_ns = if first {
            v.first_seen_ns
        } else {
            self.first_seen_ns.min(v.first_seen_ns)
        };
        self.last_seen_ns = self.last_seen_ns.max(v.last_seen_ns);
        self.tcp_flags |= v.tcp_flags;
        self.scope = v.scope;
    }
}

/// One sample as identification receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleSeen {
    pub id: FlowId,
    pub up: bool,
    pub ts_ns: u64,
    pub payload_len: u32,
    pub payload: Vec<u8>,
    pub flags: u8,
    pub scope: u8,
}

impl SampleSeen {
    pub fn sample(&self) -> vpnfp::model::Sample<'_> {
        vpnfp::model::Sample {
            id: self.id,
            direction: if self.up {
                Direction::Outbound
            } else {
                Direction::Inbound
            },
            ts_ns: self.ts_ns,
            payload_len: self.payload_len,
            payload: std::borrow::Cow::Borrowed(&self.payload),
            flags: self.flags,
            scope: vpnfp_common::Scope::from_u8(self.scope),
            sender: None,
        }
    }
}

/// What identification names each flow, from a run's samples.
pub fn named(samples: &[SampleSeen]) -> BTreeMap<FlowId, String> {
    let mut identifier = vpnfp::judge::identify::Identifier::new(
        vpnfp::judge::providers::Providers::built_in(),
        1 << 16,
        false,
    );
    let mut names = BTreeMap::new();
    for s in samples {
        for d in identifier.sample(vpnfp::model::Mode::Replay, &s.sample()) {
            names.insert(d.id, d.naming.protocol.to_string());
        }
    }
    // TLS flows whose hello never completed are named at their end.
    let ids: Vec<FlowId> = samples.iter().map(|s| s.id).collect();
    for id in ids {
        let (naming, more) =
            identifier.flow_record(vpnfp::model::Mode::Replay, &id, true, u64::MAX / 2);
        for d in more {
            names.insert(d.id, d.naming.protocol.to_string());
        }
        if let Some(n) = naming {
            names.entry(id).or_insert_with(|| n.protocol.to_string());
        }
    }
    names
}

#[derive(Debug, Default)]
pub struct Run {
    pub windows: Vec<WindowClose<IpAddr>>,
    pub concentration: Vec<ConcentrationClose<IpAddr>>,
    pub flows: BTreeMap<FlowId, Totals>,
    pub samples: Vec<SampleSeen>,
    pub counters: Counters,
}

/// The script through the XDP (ingress) and TC (egress) programs; flows are
/// what the maps hold at the end plus any active-timeout deltas.
pub fn through_kernel(program: &mut TestProgram, script: &[Scripted]) -> Run {
    let mut run = Run::default();
    let mut sent = crate::harness::Sent::default();
    // Drained as it goes, as the controller does: the rings are bounded.
    for (i, s) in script.iter().enumerate() {
        program.run(s.hook, &s.frame, s.ts_ns).expect("test_run");
        if i % 500 == 499 {
            sent.append(program.sent());
        }
    }
    sent.append(program.sent());
    run.windows = sent.windows;
    run.concentration = sent.concentration;
    for d in &sent.deltas {
        run.flows
            .entry(FlowId::from_record(&d.key))
            .or_default()
            .add(&FlowEnded {
                id: FlowId::from_record(&d.key),
                value: d.value,
                end: vpnfp::model::EndReason::ActiveTimeout,
            });
    }
    for f in program.flows() {
        run.flows.entry(f.id).or_default().add(&f);
    }
    run.samples = sent
        .samples
        .iter()
        .map(|s| SampleSeen {
            id: FlowId::from_record(&s.key),
            up: s.direction() == Direction::Outbound,
            ts_ns: s.ts_ns,
            payload_len: s.payload_len,
            payload: s.payload().to_vec(),
            flags: s.flags,
            scope: s.scope,
        })
        .collect();
    run.counters = program.counters();
    run
}

/// The script through the userspace engine, every flow ended at the end.
pub fn through_engine(config: KernelConfig, script: &[Scripted]) -> (Run, Engine) {
    let mut engine = Engine::new(EngineSettings {
        close_linger_ns: u64::MAX / 4,
        ..EngineSettings::new(config)
    });
    let mut run = Run::default();
    let mut on_fact = |fact: Fact<'_>| match fact {
        Fact::Window(w) => run.windows.push(w),
        Fact::Concentration(c) => run.concentration.push(c),
        Fact::Flow(f) => run.flows.entry(f.id).or_default().add(&f),
        Fact::Sample(s) => run.samples.push(SampleSeen {
            id: s.id,
            up: s.direction == Direction::Outbound,
            ts_ns: s.ts_ns,
            payload_len: s.payload_len,
            payload: s.payload.to_vec(),
            flags: s.flags,
            scope: s.scope as u8,
        }),
        Fact::Process(_) | Fact::Attributed(..) => panic!("a process from the engine"),
    };
    for s in script {
        engine.frame(
            &s.frame,
            LinkType::Ethernet.parse(&s.frame),
            // As the programs see it under test_run: XDP is the LAN port;
            // TC's frames have no ingress interface (never hairpinned).
            match s.hook {
                crate::harness::Hook::Ingress => Arrival::FromLanPort,
                crate::harness::Hook::Egress => Arrival::Elsewhere,
            },
            s.ts_ns,
            &mut on_fact,
        );
    }
    engine.finish(&mut on_fact);
    run.counters = *engine.counters();
    (run, engine)
}
