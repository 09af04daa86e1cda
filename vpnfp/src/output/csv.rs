//! `vpnfp report --csv DIR`: the report's flows, per-service statistics
//! and verdicts as CSV files with a header row (RFC 4180, through the
//! `csv` crate), ready for pandas or R.

use std::path::Path;

use serde::Serialize;

use crate::store::{
    query::{FlowExport, VerdictExport},
    services::{Quantiles, ServicesReport},
};

/// One row of services.csv: a service's totals and quantiles, flat.
#[derive(Serialize)]
struct ServiceRow<'a> {
    service: &'a str,
    organisation: Option<&'a str>,
    by: &'a str,
    flows: i64,
    bytes_up: i64,
    bytes_down: i64,
    tunnelled_bytes: i64,
    size_p50: f64,
    size_p90: f64,
    size_p99: f64,
    duration_p50: f64,
    duration_p90: f64,
    duration_p99: f64,
    packets_p50: f64,
    packets_p90: f64,
    packets_p99: f64,
    up_down_ratio_p50: f64,
    up_down_ratio_p90: f64,
    up_down_ratio_p99: f64,
    hosts: usize,
}

fn write<T: Serialize>(path: &Path, rows: impl IntoIterator<Item = T>) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_path(path)?;
    let mut any = false;
    for row in rows {
        w.serialize(row)?;
        any = true;
    }
    if !any {
        // No row, so serde gave no header: an empty file is still a file
        // pandas reads.
        std::fs::write(path, "")?;
        return Ok(());
    }
    w.flush()?;
    Ok(())
}

pub fn write_dir(
    dir: &Path,
    flows: &[FlowExport],
    services: &ServicesReport,
    verdicts: &[VerdictExport],
) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    write(&dir.join("flows.csv"), flows)?;
    let q = |q: &Quantiles| (q.p50, q.p90, q.p99);
    write(
        &dir.join("services.csv"),
        services.services.iter().map(|s| {
            let (size_p50, size_p90, size_p99) = q(&s.size);
            let (duration_p50, duration_p90, duration_p99) = q(&s.duration);
            let (packets_p50, packets_p90, packets_p99) = q(&s.packets);
            let (up_down_ratio_p50, up_down_ratio_p90, up_down_ratio_p99) = q(&s.up_down_ratio);
            ServiceRow {
                service: &s.service,
                organisation: s.organisation.as_deref(),
                by: s.by,
                flows: s.flows,
                bytes_up: s.bytes_up,
                bytes_down: s.bytes_down,
                tunnelled_bytes: s.tunnelled_bytes,
                size_p50,
                size_p90,
                size_p99,
                duration_p50,
                duration_p90,
                duration_p99,
                packets_p50,
                packets_p90,
                packets_p99,
                up_down_ratio_p50,
                up_down_ratio_p90,
                up_down_ratio_p99,
                hosts: s.hosts.len(),
            }
        }),
    )?;
    write(&dir.join("verdicts.csv"), verdicts)?;
    Ok(())
}
