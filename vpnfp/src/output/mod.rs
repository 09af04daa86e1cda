//! Where what vpnfp learns goes: the log (human lines on stderr), JSON
//! lines on stdout, the agreement report of `--mode both`, Prometheus
//! metrics.

pub mod compare;
pub mod csv;
pub mod enforcement;
pub mod html;
pub mod ipfix;
pub mod json;
pub mod metrics;
pub mod report;
pub mod text;

use crate::model::{FlowReport, WindowReport};
use json::JsonLines;

use crate::judge::{identify::Detection, verdict::Verdict};

/// The log and the JSON stream, with what each shows.
pub struct Outputs {
    /// `--json`: every event as one JSON line on stdout.
    pub json: Option<JsonLines>,
    /// `--all-windows`: also the windows that were not suspected (a log
    /// line each, and a JSON line with `--json`).
    pub all_windows: bool,
}

impl Outputs {
    pub fn new(json: bool, all_windows: bool) -> Self {
        Self {
            json: json.then(JsonLines::stdout),
            all_windows,
        }
    }

    pub fn window(&mut self, report: &WindowReport) {
        let shown = report.reason.is_some() || self.all_windows;
        if shown {
            log::info!("{}", report.human());
        } else {
            log::debug!("{}", report.human());
        }
        if shown && let Some(json) = &mut self.json {
            json.write(report);
        }
    }

    pub fn flow(&mut self, report: &FlowReport) {
        log::debug!("{}", report.human());
        if let Some(json) = &mut self.json {
            json.write(report);
        }
    }

    /// A flow named a VPN or a tunnel: one log line, one JSON line.
    pub fn detection(&mut self, d: &Detection) {
        log::info!("{}", report::detection_human(d));
        if let Some(json) = &mut self.json {
            json.write(d);
        }
    }

    /// A host's verdict changed.
    pub fn verdict(&mut self, v: &Verdict) {
        log::info!("{}", v.human());
        if let Some(json) = &mut self.json {
            json.write(v);
        }
    }

    /// Any other JSON event (the comparison report, ...).
    pub fn event<T: serde::Serialize>(&mut self, event: &T) {
        if let Some(json) = &mut self.json {
            json.write(event);
        }
    }

    pub fn flush(&mut self) {
        if let Some(json) = &mut self.json {
            json.flush();
        }
    }

    /// Records that could not be written to stdout.
    pub fn lost(&self) -> u64 {
        self.json.as_ref().map_or(0, |j| j.lost)
    }

    pub fn write_error(&self) -> Option<&std::io::Error> {
        self.json.as_ref().and_then(JsonLines::error)
    }

    pub fn broken_pipe(&self) -> bool {
        self.json.as_ref().is_some_and(JsonLines::broken_pipe)
    }
}
