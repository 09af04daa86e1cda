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

/// Parts only `--only` runs: `steady` is a few of `cost`'s rows, in
/// seconds, for work on the per-packet path.
pub const EXTRA_PARTS: [&str; 1] = ["steady"];

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
            other => panic!("no bench part {other}; parts: {PARTS:?}"),
        });
    }
    figures
}
