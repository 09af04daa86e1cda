//! `vpnfp run`: attach, read window-close records, decide, report, detach.

use std::{future::pending, time::Duration};

use anyhow::{Context, bail};
use aya::maps::{MapData, RingBuf};
use log::{debug, info, warn};
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
    time::{Instant, Interval, interval_at},
};
use vpnfp::{
    clock::BootClock,
    privileges,
    report::{Mode, Reporter, seconds},
    settings::Settings,
    xdp::{Capacities, XdpFingerprinter, if_index},
};
use vpnfp_common::{Counters, Outcome, WindowClose, config::FLAG_LOG_WINDOWS};

use crate::cli::RunArgs;

pub fn run(args: RunArgs, verbose: u8) -> anyhow::Result<()> {
    // Everything that can be checked is checked before anything is attached.
    let settings = args.fingerprint.settings()?;
    let duration = match args.duration {
        Some(secs) if !(secs.is_finite() && secs > 0.0) => {
            bail!("--duration must be a positive number of seconds (got {secs})")
        }
        Some(secs) => Some(Duration::from_secs_f64(secs)),
        None => None,
    };
    if !(args.stats_interval.is_finite() && args.stats_interval >= 0.0) {
        bail!("--stats-interval must be 0 or a positive number of seconds");
    }
    if !args.ring_bytes.is_power_of_two() || args.ring_bytes < 4096 {
        bail!(
            "--ring-bytes must be a power of two of at least 4096 (got {})",
            args.ring_bytes
        );
    }
    if args.max_hosts == 0 || args.max_flows == 0 {
        bail!("--max-hosts and --max-flows must be at least 1");
    }
    for iface in &args.ifaces {
        if_index(iface)?;
    }
    if let Some(missing) = privileges::missing_for_xdp() {
        bail!(missing);
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run_xdp(args, settings, duration, verbose))
}

async fn run_xdp(
    args: RunArgs,
    settings: Settings,
    duration: Option<Duration>,
    verbose: u8,
) -> anyhow::Result<()> {
    let capacities = Capacities {
        max_hosts: args.max_hosts,
        max_flows: args.max_flows,
        ring_bytes: args.ring_bytes,
    };
    let mut fingerprinter = XdpFingerprinter::load(capacities, u8::MAX)?;
    spawn_kernel_log_reader(&mut fingerprinter);

    let mut config = settings.kernel_config();
    if verbose > 0 {
        config.flags |= FLAG_LOG_WINDOWS;
    }
    fingerprinter.configure(&config)?;
    for iface in &args.ifaces {
        let mode = fingerprinter.attach(iface, args.xdp_mode)?;
        info!("attached to {iface} in {mode} mode (monitor: every packet passes)");
    }
    info!(
        "fingerprinting with COUNT={} WINDOW={} s OVERLAP={} ({} internal ranges{})",
        settings.thresholds.count,
        seconds(settings.window_ns),
        settings.thresholds.overlap,
        settings.internal.len,
        if settings.internal_hosts_only {
            ", internal hosts only"
        } else {
            ""
        }
    );

    let clock = BootClock::now().context("reading the clocks")?;
    let mut reporter = Reporter::new(
        settings.thresholds,
        args.output.json,
        args.output.all_windows,
    );
    let mut ring = watch_readable(fingerprinter.take_window_closes()?)
        .context("watching the window-close ring buffer")?;
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let deadline = async {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => pending().await,
        }
    };
    tokio::pin!(deadline);
    let mut stats = (args.stats_interval > 0.0).then(|| {
        let period = Duration::from_secs_f64(args.stats_interval);
        interval_at(Instant::now() + period, period)
    });
    let mut records_lost_seen = 0;

    loop {
        tokio::select! {
            guard = ring.readable_mut() => {
                let mut guard = guard.context("waiting for window-close records")?;
                drain(guard.get_inner_mut(), &mut reporter, clock);
                guard.clear_ready();
            }
            _ = sigint.recv() => { info!("SIGINT: stopping"); break; }
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); break; }
            _ = &mut deadline => { info!("--duration reached: stopping"); break; }
            _ = tick(&mut stats) => {
                let counters = fingerprinter.counters()?;
                if counters.records_lost > records_lost_seen {
                    warn!(
                        "{} window-close records lost: the ring buffer was full (raise --ring-bytes)",
                        counters.records_lost - records_lost_seen
                    );
                    records_lost_seen = counters.records_lost;
                }
                info!("{}", describe(&counters));
            }
        }
    }
    // Records committed before the stop are still reported.
    drain(ring.get_mut(), &mut reporter, clock);
    let counters = fingerprinter.counters()?;
    let hosts = fingerprinter.hosts().map(|h| h.len()).unwrap_or(0);
    info!("{}", describe(&counters));
    info!(
        "{} windows closed, {} suspected VPN reports, {} hosts tracked; detaching",
        reporter.closes, reporter.reports, hosts
    );
    drop(ring);
    drop(fingerprinter);
    Ok(())
}

/// Reads every committed window-close record and reports it.
fn drain(ring: &mut RingBuf<MapData>, reporter: &mut Reporter, clock: BootClock) {
    while let Some(item) = ring.next() {
        match WindowClose::from_bytes(&item) {
            Some(closed) => {
                reporter.window_closed(Mode::Xdp, &closed, |ns| clock.to_unix_ns(ns));
            }
            None => warn!(
                "ignoring a ring-buffer record of {} bytes (expected {}): object and controller differ",
                item.len(),
                size_of::<WindowClose>()
            ),
        }
    }
}

/// Registers a map-backed reader (ring buffer) with the runtime.
fn watch_readable<T: std::os::fd::AsRawFd>(inner: T) -> std::io::Result<AsyncFd<T>> {
    // SAFETY: aya's RingBuf and EbpfLogger own their map fd and keep it open
    // and unchanged until dropped, which is when the AsyncFd drops them.
    unsafe { AsyncFd::register_with_interest(inner, tokio::io::Interest::READABLE) }
        .map_err(|e| std::io::Error::other(e.to_string()))
}

async fn tick(interval: &mut Option<Interval>) {
    match interval {
        Some(i) => {
            i.tick().await;
        }
        None => pending().await,
    }
}

fn describe(c: &Counters) -> String {
    let outcomes: Vec<String> = Outcome::ALL
        .iter()
        .filter(|&&o| o != Outcome::Analysed && c.outcome(o) > 0)
        .map(|&o| format!("{} {}", o.name(), c.outcome(o)))
        .collect();
    format!(
        "frames: {} seen, {} analysed, {} ignored, {} malformed{}{}; windows closed {}, records lost {}",
        c.seen,
        c.analysed(),
        c.ignored(),
        c.malformed(),
        if outcomes.is_empty() { "" } else { " (" },
        if outcomes.is_empty() {
            String::new()
        } else {
            outcomes.join(", ") + ")"
        },
        c.windows_closed,
        c.records_lost
    )
}

/// aya-log lines from the program (window closes with -v) go to our logger.
fn spawn_kernel_log_reader(fingerprinter: &mut XdpFingerprinter) {
    match aya_log::EbpfLogger::init(fingerprinter.ebpf_mut()) {
        Ok(logger) => match watch_readable(logger) {
            Ok(mut logger) => {
                tokio::spawn(async move {
                    while let Ok(mut guard) = logger.readable_mut().await {
                        guard.get_inner_mut().flush();
                        guard.clear_ready();
                    }
                });
            }
            Err(e) => warn!("kernel log lines unavailable: {e}"),
        },
        Err(e) => debug!("kernel log lines unavailable: {e}"),
    }
}
