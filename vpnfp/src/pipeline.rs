//! Every source's facts go through one pipeline: the research's decision
//! on window closes, flow records, the agreement report of `--mode both`,
//! and on to the outputs.

use std::sync::{Arc, atomic::Ordering};

use vpnfp_common::Thresholds;

use crate::{
    model::{Fact, Mode},
    output::{
        Outputs,
        compare::Comparison,
        metrics::PipelineCounts,
        report::{FlowReport, WindowReport},
    },
};

pub struct Pipeline {
    pub thresholds: Thresholds,
    pub outputs: Outputs,
    pub comparison: Option<Comparison>,
    /// Windows closed and suspected-VPN reports so far (all modes).
    pub closes: u64,
    pub reports: u64,
    /// Flow records emitted.
    pub flows: u64,
    /// The same counts for the metrics thread.
    pub counts: Arc<PipelineCounts>,
}

impl Pipeline {
    pub fn new(thresholds: Thresholds, outputs: Outputs, compare: bool) -> Self {
        Self {
            thresholds,
            outputs,
            comparison: compare.then(|| Comparison::new(thresholds)),
            closes: 0,
            reports: 0,
            flows: 0,
            counts: Arc::default(),
        }
    }

    /// Publishes the counts for the metrics thread.
    pub fn publish(&self) {
        let c = &self.counts;
        c.reports.store(self.reports, Ordering::Relaxed);
        c.windows.store(self.closes, Ordering::Relaxed);
        c.flows.store(self.flows, Ordering::Relaxed);
        c.json_lost.store(self.outputs.lost(), Ordering::Relaxed);
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
            }
            Fact::Concentration(_) => {}
            Fact::Flow(flow) => {
                self.flows += 1;
                self.outputs.flow(&FlowReport {
                    mode,
                    flow,
                    protocol: None,
                    peer_name: None,
                });
            }
            Fact::Sample(_) => {}
        }
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
