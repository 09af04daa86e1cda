//! `vpnfp replay FILE...`

use anyhow::bail;
use log::{info, warn};
use vpnfp::{
    engine::{Engine, EngineSettings},
    model::Mode,
    output::Outputs,
    pipeline::{Pipeline, Sinks, StoreSink},
    replay::replay_files,
};
use vpnfp_common::{Counters, Outcome};

use crate::cli::ReplayArgs;

pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let settings = args.fingerprint.settings()?;
    if args.max_hosts < 2 {
        bail!("--max-hosts must be at least 2");
    }
    if args.max_flows < 1 {
        bail!("--max-flows must be at least 1");
    }
    let judging = args.fingerprint.judging(
        &settings,
        args.max_flows,
        args.max_hosts,
        args.export.resolve,
    )?;
    let mut pipeline = Pipeline::new(
        settings.thresholds,
        Outputs::new(args.output.json, args.output.all_windows),
        false,
        judging,
    );
    pipeline.open_sinks(Sinks {
        store: args.store.clone().map(|path| StoreSink {
            path,
            keeping: vpnfp::store::Keeping::Everything,
            run: vpnfp::store::RunInfo {
                command: "replay",
                mode: "replay".into(),
                settings: format!("{settings:?}"),
            },
            when_full: vpnfp::store::WhenFull::Wait,
        }),
        store_required: true,
        ipfix: args.export.ipfix,
    })?;
    let mut engine = Engine::new(EngineSettings {
        config: settings.kernel_config(),
        max_hosts: args.max_hosts,
        max_flows: args.max_flows,
        close_linger_ns: vpnfp::engine::flows::CLOSE_LINGER_NS,
    });
    // Capture timestamps are Unix time already.
    let errors = replay_files(
        &args.files,
        &mut engine,
        |fact| pipeline.fact(Mode::Replay, fact),
        |e| log::error!("{e}"),
    );
    for line in pipeline.summary() {
        info!("verdict at the end: {line}");
    }
    let store_lost = pipeline.finish();
    pipeline.outputs.flush();
    let c = engine.counters();
    info!(
        "replay: {} frames read from {} of {} files: {} analysed, {} ignored, {} malformed; {} windows closed, {} suspected VPN reports; {} hosts ({} evicted over --max-hosts); {} flows ({} evicted over --max-flows)",
        c.seen,
        args.files.len() - errors.len(),
        args.files.len(),
        c.analysed(),
        c.ignored(),
        c.malformed(),
        c.windows_closed,
        pipeline.reports,
        engine.hosts_tracked(),
        engine.hosts_evicted(),
        c.flows_created,
        engine.flows_evicted(),
    );
    let details = categories(c);
    if !details.is_empty() {
        info!("replay: {details}");
    }
    let open = engine.open_windows_above(settings.thresholds.count);
    if open > 0 {
        warn!(
            "replay: {open} host(s) ended with an open window holding more than COUNT={} packets; the research never judges a last window (no timer), so they are not reported",
            settings.thresholds.count
        );
    }
    // Everything is written and flushed. The tables (a churning capture's
    // millions of flows) are left to the process's exit instead of freed
    // node by node: freeing them took 4.5% of such a replay (perf).
    let write_error = pipeline
        .outputs
        .write_error()
        .map(|e| (e.to_string(), pipeline.outputs.lost()));
    std::mem::forget(engine);
    std::mem::forget(pipeline);
    if let Some((e, lost)) = write_error {
        bail!("{lost} JSON records could not be written to standard output ({e})");
    }
    if store_lost > 0 {
        bail!("{store_lost} records could not be kept in the store (see above)");
    }
    if !errors.is_empty() {
        bail!(
            "{} of {} capture files failed (see above); what they held before the failure was replayed",
            errors.len(),
            args.files.len()
        );
    }
    Ok(())
}

/// Every non-zero ignored and malformed category, and the IPv6 and
/// fragment counts.
pub fn categories(c: &Counters) -> String {
    let mut parts: Vec<String> = Outcome::ALL
        .iter()
        .filter(|&&o| o != Outcome::Analysed && c.outcome(o) > 0)
        .map(|&o| format!("{} {}", o.name(), c.outcome(o)))
        .collect();
    for (name, value) in [
        ("ipv6", c.ipv6),
        ("fragments", c.fragments),
        ("samples", c.samples),
    ] {
        if value > 0 {
            parts.push(format!("{name} {value}"));
        }
    }
    parts.join(", ")
}
