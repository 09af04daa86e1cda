//! `vpnfp replay FILE...`

use log::info;
use vpnfp::{
    replay::replay_files,
    report::{Mode, Reporter},
};

use crate::cli::ReplayArgs;

pub fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let settings = args.fingerprint.settings()?;
    let mut reporter = Reporter::new(
        settings.thresholds,
        args.output.json,
        args.output.all_windows,
    );
    // Capture timestamps are Unix time already.
    if args.max_hosts < 2 {
        anyhow::bail!("--max-hosts must be at least 2");
    }
    let (engine, result) = replay_files(
        &args.files,
        settings.kernel_config(),
        args.max_hosts,
        |closed| {
            reporter.window_closed(Mode::Replay, closed, |ns| ns);
        },
    );
    let c = engine.counters();
    if let Err(e) = &result
        && e.offset.is_none()
    {
        // Nothing was read: a file could not be opened.
        anyhow::bail!("{e}");
    }
    info!(
        "replay: {} frames read: {} analysed, {} ignored, {} malformed; {} windows closed, {} suspected VPN reports, {} hosts ({} evicted over --max-hosts)",
        c.seen,
        c.analysed(),
        c.ignored(),
        c.malformed(),
        c.windows_closed,
        reporter.reports,
        engine.hosts().len(),
        engine.hosts().evicted()
    );
    result?;
    Ok(())
}
