//! Every source's facts go through one pipeline: the research's decision
//! on window closes, protocol identification on payload samples, one
//! verdict per host, flow records with their protocol and peer name, the
//! agreement report of `--mode both`, and on to the outputs: the log, JSON,
//! the store and IPFIX.

use std::sync::{Arc, atomic::Ordering};

use vpnfp_common::{
    Thresholds,
    identify::{Class, Confidence},
};

use crate::{
    judge::{
        identify::{Detection, Identifier},
        providers::Providers,
        verdict::{Judge, JudgeSettings, Level, Verdict},
    },
    model::{EndReason, Fact, FlowReport, Mode, WindowReport},
    output::{Outputs, compare::Comparison, ipfix::Exporter, metrics::PipelineCounts},
    store::{Row, Store},
};

/// Where a pipeline keeps and sends what it learns, besides its outputs.
pub struct Sinks {
    pub store: Option<StoreSink>,
    /// Replay stops on a store it cannot open; `run` goes on without it
    /// (the store is a record of what vpnfp saw, not its job).
    pub store_required: bool,
    /// An IPFIX collector.
    pub ipfix: Option<std::net::SocketAddr>,
}

/// A store to open: where, what it deletes, the run it records.
pub struct StoreSink {
    pub path: std::path::PathBuf,
    pub keeping: crate::store::Keeping,
    pub run: crate::store::RunInfo,
    pub when_full: crate::store::WhenFull,
}

/// What identification and the verdicts need.
pub struct Judging {
    pub providers: Providers,
    pub settings: JudgeSettings,
    /// Flows identification tracks at once, hosts the judge tracks.
    pub max_flows: usize,
    pub max_hosts: usize,
    /// Reverse DNS for peers without a name (`--resolve`).
    pub resolve: bool,
}

pub struct Pipeline {
    pub thresholds: Thresholds,
    pub identifier: Identifier,
    pub judge: Judge,
    /// Flows named a VPN or tunnel, and verdict changes, so far.
    pub detections: u64,
    /// Weak patterns reported as hints (not names) so far.
    pub hints: u64,
    pub verdicts: u64,
    pub outputs: Outputs,
    pub comparison: Option<Comparison>,
    /// Windows closed and suspected-VPN reports so far (all modes).
    pub closes: u64,
    pub reports: u64,
    /// Flow records emitted.
    pub flows: u64,
    /// The same counts for the metrics thread.
    pub counts: Arc<PipelineCounts>,
    /// `--store`: every report, detection, verdict and flow.
    pub store: Option<Store>,
    /// `--ipfix`: every flow record.
    pub ipfix: Option<Exporter>,
    /// `--policy`: what to block.
    pub enforcer: Option<crate::enforce::Enforcer>,
    /// Which LAN device sent each host's packets (XDP samples only).
    senders: crate::judge::senders::Senders,
    /// `run --local`: the process behind each flow.
    pub processes: Option<crate::judge::processes::Processes>,
}

impl Pipeline {
    pub fn new(thresholds: Thresholds, outputs: Outputs, compare: bool, judging: Judging) -> Self {
        Self {
            thresholds,
            identifier: Identifier::new(judging.providers, judging.max_flows, judging.resolve),
            judge: Judge::new(judging.settings, judging.max_hosts),
            detections: 0,
            hints: 0,
            verdicts: 0,
            outputs,
            comparison: compare.then(|| Comparison::new(thresholds)),
            closes: 0,
            reports: 0,
            flows: 0,
            counts: Arc::default(),
            store: None,
            ipfix: None,
            enforcer: None,
            senders: crate::judge::senders::Senders::new(65_536),
            processes: None,
        }
    }

    /// Opens the store and the IPFIX exporter the caller asked for (run
    /// and replay alike). A store that cannot be opened fails the call
    /// when `sinks.store_required`, else it is logged and the pipeline
    /// goes on without it; an IPFIX target that cannot be reached fails.
    pub fn open_sinks(&mut self, sinks: Sinks) -> anyhow::Result<()> {
        if let Some(s) = sinks.store {
            match Store::open(&s.path, s.keeping, &s.run, s.when_full) {
                Ok(store) => {
                    log::info!("store: {}", s.path.display());
                    self.store = Some(store);
                }
                Err(e) if sinks.store_required => return Err(e),
                Err(e) => {
                    log::error!("store: {e:#}; running without it (--no-store to say so)")
                }
            }
        }
        if let Some(target) = sinks.ipfix {
            self.ipfix = Some(
                Exporter::connect(target).map_err(|e| anyhow::anyhow!("--ipfix {target}: {e}"))?,
            );
            log::info!("ipfix: exporting flow records to {target} over UDP");
        }
        Ok(())
    }

    fn blocked(&mut self, blocked: Vec<crate::enforce::Blocked>) {
        for b in blocked {
            log::warn!("{}", b.human());
            self.outputs.event(&b);
            self.keep(|| Row::Blocked(b));
        }
    }

    fn program_decided(&mut self, decided: Option<crate::enforce::programs::ProgramBlocked>) {
        if let Some(d) = decided {
            if d.failed.is_some() {
                log::error!("{}", d.human());
            } else {
                log::warn!("{}", d.human());
            }
            self.outputs.event(&d);
        }
    }

    /// The process behind a flow: `Off` without `--local`.
    fn process_of(&mut self, id: &crate::model::FlowId) -> crate::model::ProcessField {
        self.processes
            .as_mut()
            .map_or(crate::model::ProcessField::Off, |p| p.flow(id))
    }

    fn keep(&self, row: impl FnOnce() -> Row) {
        if let Some(store) = &self.store {
            store.keep(row());
        }
    }

    /// Publishes the counts for the metrics thread.
    pub fn publish(&self) {
        let c = &self.counts;
        c.reports.store(self.reports, Ordering::Relaxed);
        c.windows.store(self.closes, Ordering::Relaxed);
        c.flows.store(self.flows, Ordering::Relaxed);
        c.json_lost.store(self.outputs.lost(), Ordering::Relaxed);
        c.detections.store(self.detections, Ordering::Relaxed);
        c.verdicts.store(self.verdicts, Ordering::Relaxed);
        if let Some(store) = &self.store {
            let s = &store.counts;
            c.store_written
                .store(s.written.load(Ordering::Relaxed), Ordering::Relaxed);
            c.store_lost.store(s.lost(), Ordering::Relaxed);
        }
        if let Some(enforcer) = &self.enforcer
            && let Ok(mut policy) = c.policy.lock()
        {
            *policy = enforcer.drops();
        }
        if let Some(ipfix) = &self.ipfix {
            c.ipfix_records
                .store(ipfix.counts.records, Ordering::Relaxed);
            c.ipfix_send_errors
                .store(ipfix.counts.send_errors, Ordering::Relaxed);
        }
    }

    pub fn fact(&mut self, mode: Mode, fact: Fact<'_>) {
        match fact {
            Fact::Window(closed) => {
                let report = WindowReport::judge(mode, &closed, &self.thresholds);
                self.closes += 1;
                if report.reason.is_some() {
                    self.reports += 1;
                }
                if let Some(c) = &mut self.comparison {
                    c.record(mode, &closed);
                }
                self.outputs.window(&report);
                if report.reason.is_some() {
                    self.keep(|| Row::Suspected(report.clone()));
                }
                if let Some(reason) = report.reason {
                    let v = self.judge.research(
                        mode,
                        report.host,
                        report.peer,
                        reason.as_str(),
                        report.window_end_ns,
                    );
                    self.verdict(v);
                }
            }
            Fact::Concentration(c) => {
                let v = self.judge.concentration(mode, &c);
                self.verdict(v);
            }
            Fact::Flow(flow) => {
                self.flows += 1;
                let ended = flow.end != EndReason::ActiveTimeout;
                let (naming, detections) =
                    self.identifier
                        .flow_record(mode, &flow.id, ended, flow.value.last_seen_ns);
                self.detected(detections);
                let v = self.judge.flow(mode, &flow, naming.as_ref());
                let peer_name = naming
                    .as_ref()
                    .and_then(|n| n.server_name.clone())
                    .or_else(|| {
                        self.identifier
                            .names
                            .name(flow.id.peer, flow.value.last_seen_ns)
                    });
                // A hint names the flow only once the host's verdict
                // confirms it through this peer.
                let confirmed = naming.as_ref().is_some_and(|n| {
                    !n.is_hint() || self.judge.confirms(mode, flow.id.host, flow.id.peer)
                });
                let report = FlowReport {
                    mode,
                    flow,
                    protocol: naming.as_ref().filter(|_| confirmed).map(|n| n.protocol),
                    hint: naming.as_ref().filter(|_| !confirmed).map(|n| n.protocol),
                    peer_name,
                    process: self.process_of(&flow.id),
                };
                self.outputs.flow(&report);
                if let Some(ipfix) = &mut self.ipfix {
                    ipfix.flow(
                        &report,
                        self.judge.level(mode, report.flow.id.host).as_str(),
                    );
                }
                self.keep(|| Row::Flow(report));
                self.verdict(v);
            }
            Fact::Sample(sample) => {
                if let (Some(mac), vpnfp_common::Direction::Outbound) =
                    (sample.sender, sample.direction)
                    && let Some(changed) = self.senders.observe(sample.id.host, mac, sample.ts_ns)
                {
                    log::warn!("{}", changed.human());
                    self.outputs.event(&changed);
                }
                let detections = self.identifier.sample(mode, &sample);
                self.detected(detections);
            }
            Fact::Process(process) => {
                let at_ns = crate::clock::unix_now_ns();
                let decided = self
                    .enforcer
                    .as_mut()
                    .and_then(|e| e.process(&process, at_ns));
                self.program_decided(decided);
            }
            Fact::Attributed(id, process) => {
                if let Some(p) = self.processes.as_mut() {
                    p.note(id, process);
                }
            }
        }
    }

    fn detected(&mut self, namings: Vec<Detection>) {
        for mut d in namings {
            d.process = self.process_of(&d.id);
            let v = if d.naming.class == Class::Benign {
                self.judge.explain(&d)
            } else {
                self.outputs.detection(&d);
                if d.naming.is_hint() {
                    // The store keeps names; a hint lives on in the
                    // host's `suspected` verdict and its reasons.
                    self.hints += 1;
                } else {
                    self.detections += 1;
                    self.keep(|| Row::Detection(d.clone()));
                    // Only evidence both ways blocks: a pattern is no
                    // proof, and one way is what a forger can send.
                    if d.naming.confidence == Confidence::High {
                        let blocked = self.enforcer.as_mut().and_then(|e| e.detection(&d));
                        self.blocked(blocked.into_iter().collect());
                    }
                    // A program's own flow, seen by its own kernel: no
                    // forger on the LAN can make it.
                    if let (Some(e), Some(process)) =
                        (self.enforcer.as_mut(), d.process.arc().cloned())
                    {
                        let decided = e.program_named(&process, &d);
                        self.program_decided(decided);
                    }
                }
                self.judge.detected(&d)
            };
            self.verdict(v);
        }
    }

    fn verdict(&mut self, v: Option<Verdict>) {
        if let Some(mut v) = v {
            if let Some(p) = self.processes.as_mut() {
                v.process = p.pair(v.host, &v.peers);
            }
            for peer in &v.peers {
                if let Some(name) = self.identifier.names.name(*peer, v.at_ns) {
                    v.peer_names.insert(*peer, name);
                }
            }
            self.verdicts += 1;
            self.outputs.verdict(&v);
            if matches!(v.level, Level::Tunnel | Level::Vpn) {
                let confirmed = self.identifier.confirm_hints(
                    v.mode,
                    v.host,
                    &v.peers,
                    &format!("{}-verdict", v.level.as_str()),
                    v.at_ns,
                );
                for d in confirmed {
                    self.detections += 1;
                    self.outputs.detection(&d);
                    self.keep(|| Row::Detection(d.clone()));
                    let blocked = self.enforcer.as_mut().and_then(|e| e.detection(&d));
                    self.blocked(blocked.into_iter().collect());
                }
            }
            let blocked = self
                .enforcer
                .as_mut()
                .map(|e| e.verdict(&v))
                .unwrap_or_default();
            self.keep(|| Row::Verdict(v));
            self.blocked(blocked);
        }
    }

    /// Ages every host's evidence to `now_ns` (Unix nanoseconds), lifts
    /// the blocks whose pairs went quiet, and sends the pending IPFIX
    /// records.
    pub fn tick(&mut self, now_ns: u64) {
        for v in self.judge.tick(now_ns) {
            self.verdict(Some(v));
        }
        let lifted = self
            .enforcer
            .as_mut()
            .map(|e| e.tick(now_ns))
            .unwrap_or_default();
        for u in lifted {
            log::warn!("{}", u.human());
            self.outputs.event(&u);
        }
        if let Some(ipfix) = &mut self.ipfix {
            ipfix.flush();
        }
    }

    /// Sends what IPFIX holds and writes what the store holds; a line on
    /// each, and how many records either lost.
    pub fn finish(&mut self) -> u64 {
        let mut lost = 0;
        let drops = self
            .enforcer
            .as_ref()
            .map(|e| e.drops())
            .unwrap_or_default();
        {
            for d in drops {
                log::info!("{}", d.human());
                self.outputs.event(&d.event());
                self.keep(|| Row::Drops(d));
            }
            let program_drops = self
                .enforcer
                .as_ref()
                .map(|e| e.programs.drops())
                .unwrap_or_default();
            for (d, packets) in program_drops {
                log::info!(
                    "policy: {} packets of {} ({})",
                    packets,
                    d.process.human(),
                    d.action
                );
                self.outputs.event(&serde_json::json!({
                    "event": "program_drops",
                    "process": &*d.process,
                    "protocol": d.what,
                    "action": d.action,
                    "packets": packets,
                }));
            }
        }
        if let Some(ipfix) = &mut self.ipfix {
            ipfix.flush();
            log::info!("{}", ipfix.human());
        }
        if let Some(store) = self.store.take() {
            let path = store.path().display().to_string();
            let c = store.close();
            let (written, l) = (c.written.load(Ordering::Relaxed), c.lost());
            lost += l;
            let line = crate::output::report::store_summary(&path, written, l);
            if l > 0 {
                log::error!("{line}");
            } else {
                log::info!("{line}");
            }
        }
        lost
    }

    /// The hosts with a verdict above none, for the log at the end.
    pub fn summary(&self) -> Vec<String> {
        self.judge
            .current()
            .into_iter()
            .map(|(mode, host, level, protocols)| {
                crate::output::report::verdict_summary(mode, host, level, &protocols)
            })
            .collect()
    }

    /// The agreement report of `--mode both`, to the log and (with
    /// `--json`) as one JSON line.
    pub fn print_comparison(&mut self, final_report: bool) {
        let Some(c) = &self.comparison else { return };
        let report = c.report(final_report);
        for line in report.human().lines() {
            log::info!("{line}");
        }
        self.outputs.event(&report.json());
    }
}
