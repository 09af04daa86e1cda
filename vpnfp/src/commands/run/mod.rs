//! `vpnfp run`: XDP, NFQUEUE or both on live traffic; read window closes,
//! decide, report; on exit detach and remove the rule.

use std::{future::pending, sync::atomic::Ordering, time::Duration};

use anyhow::{Context, bail};
use log::{info, warn};
use tokio::{
    signal::unix::{SignalKind, signal},
    time::{Instant, Interval, interval_at},
};
use vpnfp::{
    clock::KernelClock,
    compare::Comparison,
    metrics::{self, ModeMetrics},
    privileges,
    report::{Mode, Reporter, seconds},
    settings::Settings,
    xdp::if_index,
};
use vpnfp_common::{
    Counters, Outcome, WindowClose,
    config::{FLAG_LOG_WINDOWS, FLAG_NO_FLOWS},
};

use crate::cli::{RunArgs, RunMode};

mod nfqueue_side;
mod xdp_side;

use nfqueue_side::{NfqueueSide, next_close, start_nfqueue};
use xdp_side::{XdpSide, drain_ring, ring_ready, start_xdp};

pub fn run(args: RunArgs, verbose: u8) -> anyhow::Result<()> {
    // Everything that can be checked is checked before anything is attached
    // or any rule is added.
    let settings = args.fingerprint.settings()?;
    let positive = |secs: f64, flag: &str| -> anyhow::Result<Option<Duration>> {
        if !(secs.is_finite() && secs >= 0.0) {
            bail!("--{flag} must be 0 or a positive number of seconds (got {secs})");
        }
        Ok((secs > 0.0).then(|| Duration::from_secs_f64(secs)))
    };
    let duration = match args.duration {
        Some(secs) if !(secs.is_finite() && secs > 0.0) => {
            bail!("--duration must be a positive number of seconds (got {secs})")
        }
        Some(secs) => Some(Duration::from_secs_f64(secs)),
        None => None,
    };
    let stats_every = positive(args.stats_interval, "stats-interval")?;
    let compare_every = positive(args.compare_interval, "compare-interval")?;
    if !args.ring_bytes.is_power_of_two() || args.ring_bytes < 4096 {
        bail!(
            "--ring-bytes must be a power of two of at least 4096 (got {})",
            args.ring_bytes
        );
    }
    if args.max_hosts == 0 || args.max_flows == 0 {
        bail!("--max-hosts and --max-flows must be at least 1");
    }
    if args.mode != RunMode::Nfqueue && args.ifaces.is_empty() {
        bail!("--mode xdp and --mode both need at least one --iface");
    }
    if args.mode != RunMode::Xdp && args.ifaces.len() > 1 {
        bail!("NFQUEUE mode takes at most one --iface (its rule's input interface)");
    }
    if args.mode == RunMode::Nfqueue && args.pin.is_some() {
        bail!("--pin keeps the XDP program's maps; NFQUEUE mode has none to keep");
    }
    if args.nfqueue.queue_len == 0 {
        bail!("--queue-len must be at least 1");
    }
    for iface in &args.ifaces {
        if_index(iface)?;
    }
    if args.mode != RunMode::Nfqueue
        && let Some(missing) = privileges::missing_for_xdp()
    {
        bail!(missing);
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run_modes(
            args,
            settings,
            Timers {
                duration,
                stats_every,
                compare_every,
            },
            verbose,
        ))
}

struct Timers {
    duration: Option<Duration>,
    stats_every: Option<Duration>,
    compare_every: Option<Duration>,
}

async fn run_modes(
    args: RunArgs,
    settings: Settings,
    timers: Timers,
    verbose: u8,
) -> anyhow::Result<()> {
    // Signals first: a SIGTERM during start-up is handled once started,
    // instead of killing us between installing a rule and removing it.
    let mut sigint = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let mut sigterm = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let metrics_listener = match args.metrics {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("--metrics {addr}: cannot listen there"))?,
        ),
        None => None,
    };
    let mut config = settings.kernel_config();
    if verbose > 0 {
        config.flags |= FLAG_LOG_WINDOWS;
    }
    if args.no_flow_counters {
        config.flags |= FLAG_NO_FLOWS;
    }
    let mut nfqueue = match args.mode {
        RunMode::Xdp => None,
        RunMode::Nfqueue | RunMode::Both => Some(start_nfqueue(&args, &settings)?),
    };
    let mut xdp = match args.mode {
        RunMode::Nfqueue => None,
        // If this fails, dropping `nfqueue` stops its thread and rule.
        RunMode::Xdp | RunMode::Both => Some(start_xdp(&args, &config)?),
    };
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

    let mut reporter = Reporter::new(
        settings.thresholds,
        args.output.json,
        args.output.all_windows,
    );
    let mut comparison = (args.mode == RunMode::Both).then(|| Comparison::new(settings.thresholds));
    let deadline = async {
        match timers.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => pending().await,
        }
    };
    tokio::pin!(deadline);
    let every = |d: Option<Duration>| d.map(|d| interval_at(Instant::now() + d, d));
    let mut stats = every(timers.stats_every);
    let mut compare = every(timers.compare_every);
    let mut records_lost_seen = 0;
    let mut nfqueue_failed = false;
    let xdp_clock = xdp.as_ref().map_or(KernelClock::zero(), |side| side.clock);

    loop {
        tokio::select! {
            ready = ring_ready(&mut xdp) => {
                let mut guard = ready.context("waiting for window-close records")?;
                drain_ring(guard.get_inner_mut(), &mut reporter, comparison.as_mut(), xdp_clock);
                guard.clear_ready();
            }
            closed = next_close(&mut nfqueue) => match closed {
                Some(closed) => on_close(Mode::Nfqueue, &closed, |ns| ns, &mut reporter, comparison.as_mut()),
                None => { nfqueue_failed = true; break; }
            },
            _ = sigint.recv() => { info!("SIGINT: stopping"); break; }
            _ = sigterm.recv() => { info!("SIGTERM: stopping"); break; }
            _ = &mut deadline => { info!("--duration reached: stopping"); break; }
            accepted = accept(&metrics_listener) => {
                if let Ok((stream, _)) = accepted {
                    let body = metrics_text(xdp.as_ref(), nfqueue.as_ref(), &reporter);
                    tokio::spawn(metrics::respond(stream, body));
                }
            }
            _ = tick(&mut stats) => {
                if let Some(side) = &xdp {
                    let counters = side.fingerprinter.counters()?;
                    if counters.records_lost > records_lost_seen {
                        warn!(
                            "{} window-close records lost: the ring buffer was full (raise --ring-bytes)",
                            counters.records_lost - records_lost_seen
                        );
                        records_lost_seen = counters.records_lost;
                    }
                    info!("xdp: {}", describe(&counters));
                }
                if let Some(side) = &nfqueue {
                    let live = *side.live.lock().expect("counters lock");
                    info!("nfqueue: {}", describe(&live.counters));
                }
            }
            _ = tick(&mut compare) => {
                if let Some(c) = &comparison {
                    print_comparison(c, false, args.output.json);
                }
            }
        }
    }

    // Stop both sides; what they committed before the stop is still reported.
    let mut result = Ok(());
    if let Some(mut side) = xdp {
        drain_ring(
            side.ring.get_mut(),
            &mut reporter,
            comparison.as_mut(),
            side.clock,
        );
        let counters = side.fingerprinter.counters()?;
        let hosts = side.fingerprinter.hosts().map(|h| h.len()).unwrap_or(0);
        info!(
            "xdp: {}; {hosts} hosts tracked; detaching",
            describe(&counters)
        );
    }
    if let Some(mut side) = nfqueue {
        side.stop.store(true, Ordering::Relaxed);
        let thread = side
            .thread
            .take()
            .expect("the NFQUEUE thread runs until stopped");
        let stats = tokio::task::spawn_blocking(move || thread.join())
            .await
            .context("joining the NFQUEUE thread")?
            .map_err(|_| anyhow::anyhow!("the NFQUEUE thread panicked"))?;
        while let Ok(closed) = side.closes.try_recv() {
            on_close(
                Mode::Nfqueue,
                &closed,
                |ns| ns,
                &mut reporter,
                comparison.as_mut(),
            );
        }
        match stats {
            Ok(stats) => {
                info!(
                    "nfqueue: {}; rule matched {}, missed {} (passed unseen by fail-open); rule removed",
                    describe(&stats.counters),
                    stats.matched,
                    stats.missed
                );
                if stats.missed > 0 {
                    warn!(
                        "NFQUEUE missed {} packets: the queue was full (raise --queue-len, or use XDP mode)",
                        stats.missed
                    );
                }
            }
            Err(e) => result = Err(e).context("NFQUEUE mode failed"),
        }
    }
    if let Some(c) = &comparison {
        print_comparison(c, true, args.output.json);
    }
    info!(
        "{} windows closed, {} suspected VPN reports",
        reporter.closes, reporter.reports
    );
    if nfqueue_failed && result.is_ok() {
        bail!("NFQUEUE mode stopped unexpectedly");
    }
    result
}

pub(super) fn on_close(
    mode: Mode,
    closed: &WindowClose,
    to_unix_ns: impl Fn(u64) -> u64,
    reporter: &mut Reporter,
    comparison: Option<&mut Comparison>,
) {
    reporter.window_closed(mode, closed, to_unix_ns);
    if let Some(c) = comparison {
        c.record(mode, closed);
    }
}

fn print_comparison(comparison: &Comparison, final_report: bool, json: bool) {
    let report = comparison.report(final_report);
    for line in report.human().lines() {
        info!("{line}");
    }
    if json {
        use std::io::Write;
        let _ = writeln!(std::io::stdout().lock(), "{}", report.json());
    }
}

/// The metrics of every running mode, now.
fn metrics_text(
    xdp: Option<&XdpSide>,
    nfqueue: Option<&NfqueueSide>,
    reporter: &Reporter,
) -> String {
    let mut modes = Vec::new();
    if let Some(side) = xdp {
        let counters = side.fingerprinter.counters().unwrap_or_default();
        // The kernel's LRU evicts silently: evicted = created - tracked.
        let tracked = side.fingerprinter.hosts().map_or(0, |h| h.len() as u64);
        modes.push((
            Mode::Xdp,
            ModeMetrics {
                counters,
                hosts_tracked: tracked,
                hosts_evicted: counters.hosts_created.saturating_sub(tracked),
                missed: None,
            },
        ));
    }
    if let Some(side) = nfqueue {
        let mut live = *side.live.lock().expect("counters lock");
        let matched = side.rule.as_ref().and_then(|r| r.packets_matched().ok());
        live.missed = Some(matched.map_or(0, |m| m.saturating_sub(live.counters.seen)));
        modes.push((Mode::Nfqueue, live));
    }
    metrics::render(&modes, reporter.reports, reporter.closes)
}

async fn accept(
    listener: &Option<tokio::net::TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, std::net::SocketAddr)> {
    match listener {
        Some(l) => l.accept().await,
        None => pending().await,
    }
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
        "frames: {} seen, {} analysed, {} ignored, {} malformed{}; windows closed {}, records lost {}",
        c.seen,
        c.analysed(),
        c.ignored(),
        c.malformed(),
        if outcomes.is_empty() {
            String::new()
        } else {
            format!(" ({})", outcomes.join(", "))
        },
        c.windows_closed,
        c.records_lost
    )
}
