//! `vpnfp report`: what the store holds, per host and overall, as tables,
//! JSON or one static HTML page.

use anyhow::{Context, bail};
use vpnfp::{
    output::{csv, html::page, text},
    store::{query, schema, services::Catalog},
};

use crate::cli::ReportArgs;

pub fn run(args: ReportArgs) -> anyhow::Result<()> {
    if !args.store.exists() {
        bail!(
            "no store at {} (vpnfp run keeps one there by default; replay with --store PATH)",
            args.store.display()
        );
    }
    let conn = schema::open_read(&args.store)
        .with_context(|| format!("opening the store {}", args.store.display()))?;
    let version = schema::version(&conn)?;
    if version == 0 || version > schema::VERSION {
        bail!(
            "{} is not a vpnfp store this version reads (schema {version}, known up to {})",
            args.store.display(),
            schema::VERSION
        );
    }
    let since_secs = match args.since.as_deref() {
        None | Some("all") => None,
        Some(d) => Some(
            humantime::parse_duration(d)
                .with_context(|| format!("--since {d:?}: a duration like 30m, 24h, 7d or all"))?
                .as_secs_f64(),
        ),
    };
    let catalog = match &args.services {
        None => Catalog::built_in(),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading the service list {}", path.display()))?;
            Catalog::with_user(&text).with_context(|| format!("in {}", path.display()))?
        }
    };
    let q = query::ReportQuery {
        catalog,
        since_secs,
        host: args.host.map(|h| h.to_string()),
        mode: args.mode,
    };
    let report = query::report(&conn, &q).context("reading the store")?;
    if let Some(dir) = &args.csv {
        let (flows, verdicts) = query::export(&conn, &q, &report).context("reading the store")?;
        csv::write_dir(dir, &flows, &report.services, &verdicts)
            .with_context(|| format!("writing CSV files into {}", dir.display()))?;
        eprintln!(
            "report: {}/flows.csv ({} flows), services.csv ({} services), verdicts.csv ({} verdicts) written",
            dir.display(),
            flows.len(),
            report.services.services.len(),
            verdicts.len()
        );
    }
    if let Some(path) = &args.html {
        std::fs::write(path, page(&report))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("report: {} written", path.display());
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else if args.html.is_none() {
        print!("{}", text::report(&report));
    }
    Ok(())
}
