//! `vpnfp run`: XDP, NFQUEUE or both on live traffic; read window closes,
//! decide, report; on exit detach and remove the rule.

use std::{
    future::pending,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::{Context, bail};
use aya::maps::{MapData, RingBuf};
use log::{debug, info, warn};
use tokio::{
    io::unix::AsyncFd,
    signal::unix::{SignalKind, signal},
    sync::mpsc,
    time::{Instant, Interval, interval_at},
};
use vpnfp::{
    clock::KernelClock,
    compare::Comparison,
    metrics::{self, ModeMetrics},
    nfqueue::{NfqueueError, NfqueueFingerprinter, NfqueueOptions, NfqueueStats, QueueRule},
    privileges,
    report::{Mode, Reporter, seconds},
    settings::Settings,
    xdp::{Capacities, XdpFingerprinter, if_index},
};
use vpnfp_common::{
    Counters, Outcome, WindowClose,
    config::{FLAG_LOG_WINDOWS, FLAG_NO_FLOWS},
};

use crate::cli::{RunArgs, RunMode};

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

/// The XDP side: the loaded program and its window-close ring buffer.
struct XdpSide {
    fingerprinter: XdpFingerprinter,
    ring: AsyncFd<RingBuf<MapData>>,
    clock: KernelClock,
}

/// The NFQUEUE side: its own thread, window closes over a channel.
struct NfqueueSide {
    stop: Arc<AtomicBool>,
    /// Taken by the orderly stop; if still here on drop (an error path),
    /// the drop stops the thread, which removes the rule.
    thread: Option<JoinHandle<Result<NfqueueStats, NfqueueError>>>,
    closes: mpsc::UnboundedReceiver<WindowClose>,
    /// What the thread has counted so far (for stats and metrics).
    live: Arc<Mutex<ModeMetrics>>,
    rule: Option<QueueRule>,
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

impl Drop for NfqueueSide {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            self.stop.store(true, Ordering::Relaxed);
            match thread.join() {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => warn!("stopping NFQUEUE: {e:#}"),
                Err(_) => warn!("the NFQUEUE thread panicked"),
            }
        }
    }
}

fn start_xdp(args: &RunArgs, config: &vpnfp_common::KernelConfig) -> anyhow::Result<XdpSide> {
    let capacities = Capacities {
        max_hosts: args.max_hosts,
        max_flows: args.max_flows,
        ring_bytes: args.ring_bytes,
        pin_dir: args.pin.clone(),
    };
    let mut fingerprinter = XdpFingerprinter::load(capacities, u8::MAX)?;
    spawn_kernel_log_reader(&mut fingerprinter);
    fingerprinter.configure(config)?;
    for iface in &args.ifaces {
        let mode = fingerprinter.attach(iface, args.xdp_mode)?;
        info!("xdp: attached to {iface} in {mode} mode (monitor: every packet passes)");
    }
    let ring = watch_readable(fingerprinter.take_window_closes()?)
        .context("watching the window-close ring buffer")?;
    Ok(XdpSide {
        fingerprinter,
        ring,
        clock: KernelClock::now().context("reading the clocks")?,
    })
}

fn start_nfqueue(args: &RunArgs, settings: &Settings) -> anyhow::Result<NfqueueSide> {
    let options = NfqueueOptions {
        queue_num: args.nfqueue.queue_num,
        chain: args.nfqueue.chain,
        iface: args.ifaces.first().cloned(),
        queue_len: args.nfqueue.queue_len,
        copy_range: args.nfqueue.copy_range,
        max_hosts: args.max_hosts as usize,
    };
    let mut fingerprinter = NfqueueFingerprinter::start(options.clone(), settings.kernel_config())?;
    info!(
        "nfqueue: queue {} (fail-open, {} packets, copy range {}), rule in mangle {}{} with --queue-bypass",
        options.queue_num,
        options.queue_len,
        options.copy_range,
        options.chain.name(),
        options
            .iface
            .as_ref()
            .map_or(String::new(), |i| format!(" -i {i}"))
    );
    let stop = Arc::new(AtomicBool::new(false));
    let live = Arc::new(Mutex::new(ModeMetrics::default()));
    let rule = fingerprinter.rule().cloned();
    let (tx, closes) = mpsc::unbounded_channel();
    let thread = {
        let (stop, live) = (stop.clone(), live.clone());
        std::thread::Builder::new()
            .name("vpnfp-nfqueue".into())
            .spawn(move || {
                let send = |closed: &WindowClose| {
                    let _ = tx.send(*closed);
                };
                while !stop.load(Ordering::Relaxed) {
                    match fingerprinter.poll(send) {
                        // Nothing queued: the packets wait in the kernel
                        // queue meanwhile (and fail open if it fills).
                        Ok(0) => std::thread::sleep(Duration::from_millis(1)),
                        Ok(_) => {
                            *live.lock().expect("counters lock") = ModeMetrics {
                                counters: *fingerprinter.counters(),
                                hosts_tracked: fingerprinter.hosts_tracked() as u64,
                                hosts_evicted: fingerprinter.hosts_evicted(),
                                missed: None,
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
                fingerprinter.stop(send)
            })
            .context("starting the NFQUEUE thread")?
    };
    Ok(NfqueueSide {
        stop,
        thread: Some(thread),
        closes,
        live,
        rule,
    })
}

fn on_close(
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

/// Reads every committed window-close record and reports it.
fn drain_ring(
    ring: &mut RingBuf<MapData>,
    reporter: &mut Reporter,
    mut comparison: Option<&mut Comparison>,
    clock: KernelClock,
) {
    while let Some(item) = ring.next() {
        match WindowClose::from_bytes(&item) {
            Some(closed) => on_close(
                Mode::Xdp,
                &closed,
                |ns| clock.to_unix_ns(ns),
                reporter,
                comparison.as_deref_mut(),
            ),
            None => warn!(
                "ignoring a ring-buffer record of {} bytes (expected {}): object and controller differ",
                item.len(),
                size_of::<WindowClose>()
            ),
        }
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

async fn ring_ready(
    xdp: &mut Option<XdpSide>,
) -> std::io::Result<tokio::io::unix::AsyncFdReadyMutGuard<'_, RingBuf<MapData>>> {
    match xdp {
        Some(side) => side.ring.readable_mut().await,
        None => pending().await,
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

async fn next_close(nfqueue: &mut Option<NfqueueSide>) -> Option<WindowClose> {
    match nfqueue {
        Some(side) => side.closes.recv().await,
        None => pending().await,
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
