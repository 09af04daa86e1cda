//! `cargo xtask bench`: vpnfp's performance figures, each measured next to a
//! baseline in the same run (the machines are shared and noisy: ratios taken
//! together hold where absolute numbers drift).

pub mod cost;
pub mod flows;
pub mod live;
pub mod memory;
pub mod replay;

use std::{fmt::Write as _, path::Path};

/// How much work: `Full` for the numbers, `Smoke` (seconds) so the test
/// suite keeps the bench from rotting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Size {
    Full,
    Smoke,
}

/// One measured figure.
#[derive(Clone, Debug)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: &'static str,
    /// What it is compared with, in the same unit (if anything).
    pub baseline: Option<f64>,
    /// value / baseline.
    pub ratio: Option<f64>,
    /// The target and whether it was met, e.g. "<= 25 ns added: met".
    pub target: Option<String>,
    pub conditions: String,
}

impl Figure {
    pub fn new(
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
        conditions: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            value,
            unit,
            baseline: None,
            ratio: None,
            target: None,
            conditions: conditions.into(),
        }
    }

    pub fn against(mut self, baseline: f64) -> Self {
        self.baseline = Some(baseline);
        self.ratio = (baseline != 0.0).then(|| self.value / baseline);
        self
    }

    /// A ratio measured otherwise than value / baseline (a median of
    /// per-round ratios).
    pub fn ratio(mut self, ratio: f64) -> Self {
        self.ratio = Some(ratio);
        self
    }

    pub fn target(mut self, target: impl Into<String>, met: bool) -> Self {
        self.target = Some(format!(
            "{}: {}",
            target.into(),
            if met { "met" } else { "MISSED" }
        ));
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "baseline": self.baseline,
            "ratio": self.ratio,
            "target": self.target,
            "conditions": self.conditions,
        })
    }
}

fn number(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{:.3e}", v)
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// The table the bench prints (also pasted into docs/performance.md).
pub fn table(figures: &[Figure]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| figure | value | baseline | ratio | target | conditions |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|---|");
    for f in figures {
        let _ = writeln!(
            out,
            "| {} | {} {} | {} | {} | {} | {} |",
            f.name,
            number(f.value),
            f.unit,
            f.baseline.map_or("-".into(), number),
            f.ratio.map_or("-".into(), |r| format!("{r:.3}")),
            f.target.as_deref().unwrap_or("-"),
            f.conditions
        );
    }
    out
}

pub fn write_json(figures: &[Figure], path: &Path) -> std::io::Result<()> {
    let all: Vec<serde_json::Value> = figures.iter().map(Figure::json).collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, serde_json::to_string_pretty(&all)? + "\n")
}

/// The research's settings (20-minute windows, its internal ranges): what
/// every kernel figure runs under.
pub fn research_config() -> vpnfp_common::KernelConfig {
    vpnfp_common::KernelConfig::new(
        1200 * vpnfp_common::NANOS_PER_SEC,
        vpnfp_common::InternalRanges::research(),
    )
}

/// The programs loaded with `capacities` and configured with
/// [`research_config`].
pub fn loaded(
    capacities: vpnfp::source::kernel::Capacities,
) -> vpnfp::source::kernel::KernelFingerprinter {
    let mut fp =
        vpnfp::source::kernel::KernelFingerprinter::load(capacities, 0).expect("load the programs");
    fp.configure(&research_config()).expect("configure");
    fp
}

/// Median of a non-empty sample.
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// The bench's parts, in the order they run.
pub const PARTS: [&str; 5] = ["cost", "live", "replay", "memory", "flows"];

/// Parts only `--only` runs, for work on one path: `steady` is a few of
/// `cost`'s rows, `churn` a few of `replay`'s.
pub const EXTRA_PARTS: [&str; 2] = ["steady", "churn"];

/// The figures of `parts` (all of [`PARTS`] for the full table). `scratch`
/// holds the generated capture.
pub fn run(
    size: Size,
    parts: &[&str],
    scratch: &Path,
    mut progress: impl FnMut(&str),
) -> Vec<Figure> {
    let mut figures = Vec::new();
    for part in parts {
        progress(part);
        figures.extend(match *part {
            "cost" => cost::figures(size),
            "live" => live::figures(size),
            "replay" => replay::figures(size, scratch),
            "memory" => memory::figures(size),
            "flows" => flows::figures(size),
            "steady" => cost::steady_figures(size),
            "churn" => replay::churn(size, scratch, 3),
            other => panic!("no bench part {other}; parts: {PARTS:?}"),
        });
    }
    figures
}

/// `bench/baseline.json`: the one-host cost over the floor, as a ratio
/// measured in one run, against which `bench --smoke` guards.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Baseline {
    /// [`cost::ONE_HOST_OVER_FLOOR`]'s ratio.
    pub one_host_over_floor: f64,
}

/// How much the guarded ratio may grow over the baseline's.
pub const GUARD_GROWTH: f64 = 1.25;
/// Measurements before the guard fails: noise moves a whole run now and
/// then (seen: 1.22 to 1.58 within minutes), a regression stays.
const GUARD_ATTEMPTS: usize = 3;

impl Baseline {
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading the bench baseline {}: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| format!("the bench baseline {} is not valid: {e}", path.display()))
    }
}

/// The one-host ratio of `figures` (a run with the cost or steady part).
pub fn one_host_ratio(figures: &[Figure]) -> Option<f64> {
    figures
        .iter()
        .find(|f| f.name == cost::ONE_HOST_OVER_FLOOR)
        .and_then(|f| f.ratio)
}

/// Fails when the one-host cost over the floor grew by more than
/// [`GUARD_GROWTH`] over `baseline`'s: measured in `figures`, and again (a
/// smoke steady part) up to [`GUARD_ATTEMPTS`] times in all while it
/// stays above. The answer says what was measured.
pub fn guard(figures: &[Figure], baseline: &Baseline) -> Result<String, String> {
    let limit = baseline.one_host_over_floor * GUARD_GROWTH;
    let mut seen = Vec::new();
    let mut ratio = one_host_ratio(figures);
    for attempt in 0..GUARD_ATTEMPTS {
        let r = match ratio.take() {
            Some(r) => r,
            None => one_host_ratio(&cost::steady_figures(Size::Smoke))
                .ok_or("the steady part yielded no one-host ratio")?,
        };
        seen.push(format!("{r:.3}"));
        if r <= limit {
            return Ok(format!(
                "bench guard: one host over the floor {r:.3} <= {limit:.3} (baseline {:.3} x {GUARD_GROWTH}); attempt {}",
                baseline.one_host_over_floor,
                attempt + 1
            ));
        }
    }
    Err(format!(
        "bench guard: the one-host cost over the floor grew beyond {limit:.3} (baseline {:.3} x {GUARD_GROWTH}) in all {GUARD_ATTEMPTS} measurements: {}",
        baseline.one_host_over_floor,
        seen.join(", ")
    ))
}
