//! `vpnfp run`: the kernel programs, NFQUEUE or both on live traffic; facts
//! through the pipeline to the outputs; on exit detach, remove the rules,
//! end every flow.

pub mod kernel_side;
pub mod nfqueue_side;

use std::{collections::BTreeSet, future::pending, sync::atomic::Ordering, time::Duration};

use anyhow::{Context, bail};
use log::{info, warn};
use tokio::{
    signal::unix::{SignalKind, signal},
    time::{Instant, Interval, interval_at},
};
use vpnfp::{
    clock::seconds,
    model::{Fact, Mode},
    output::{
        Outputs,
        metrics::{self, MetricsSource},
    },
    pipeline::{Pipeline, Sinks, StoreSink},
    privileges,
    settings::{self, MAX_WINDOW_SECS, Settings},
    source::kernel::{if_index, if_index_now, ifaces},
};
use vpnfp_common::{Counters, Outcome, config::FLAG_LOG_WINDOWS};

use crate::cli::{RunArgs, RunMode};
use vpnfp::source::{
    kernel::driver::{self as kernel_driver, KernelDriver},
    nfqueue::driver::NfqueueDriver,
};

/// Map sizes beyond this are refused: the kernel preallocates host maps, and
/// 64 Mi entries already take about 8 GiB.
pub const MAX_TABLE_ENTRIES: u32 = 1 << 26;
/// Ring buffers beyond 256 MiB are refused (and each is preallocated).
pub const MAX_RING_BYTES: u32 = 256 << 20;

pub struct Timers {
    pub duration: Option<Duration>,
    pub stats_every: Option<Duration>,
    pub compare_every: Option<Duration>,
    pub flow_sweep: Duration,
    /// The store's `--retain` and `--store-max-size`.
    pub retain: Duration,
    pub store_max_bytes: u64,
}

/// Refuses what does not apply to the chosen mode, and everything invalid,
/// before anything is attached or any rule added.
fn validate(args: &RunArgs, settings: &Settings) -> anyhow::Result<Timers> {
    let duration = match args.duration {
        Some(secs) => Some(settings::duration(
            "duration",
            secs,
            1e-3,
            365.0 * 86_400.0,
        )?),
        None => None,
    };
    let every = |flag: &'static str, secs: f64| -> anyhow::Result<Option<Duration>> {
        let d = settings::duration(flag, secs, 0.0, MAX_WINDOW_SECS)?;
        Ok((!d.is_zero()).then_some(d))
    };
    let stats_every = every("stats-interval", args.stats_interval)?;
    let retain = args.export.retain()?;
    let store_max_bytes = args.export.store_max_bytes()?;
    let compare_every = every("compare-interval", args.compare_interval.unwrap_or(0.0))?;
    let kernel = args.mode != RunMode::Nfqueue;
    let nfqueue = args.mode != RunMode::Xdp;
    for (flag, bytes) in [
        ("--ring-bytes", args.ring_bytes),
        ("--sample-ring-bytes", args.sample_ring_bytes),
    ] {
        if !bytes.is_power_of_two() || !(4096..=MAX_RING_BYTES).contains(&bytes) {
            bail!("{flag} must be a power of two from 4096 to {MAX_RING_BYTES} (got {bytes})");
        }
    }
    for (flag, n) in [
        ("--max-hosts", args.max_hosts),
        ("--max-flows", args.max_flows),
    ] {
        if n == 0 || n > MAX_TABLE_ENTRIES {
            bail!(
                "{flag} must be from 1 to {MAX_TABLE_ENTRIES} (the kernel preallocates its tables: at that size hosts take about 8 GiB); got {n}"
            );
        }
    }
    if kernel && args.ifaces.is_empty() {
        bail!("--mode xdp and --mode both need at least one --iface (the LAN-facing interface)");
    }
    let mut seen = BTreeSet::new();
    for iface in &args.ifaces {
        if !seen.insert(iface) {
            bail!("--iface {iface} is given twice");
        }
        if_index(iface)?;
    }
    let inapplicable: Vec<&str> = [
        (!kernel && args.xdp_mode.is_some(), "--xdp-mode"),
        (!kernel && args.ingress_only, "--ingress-only"),
        (!kernel && args.pin.is_some(), "--pin"),
        (!nfqueue && args.nfqueue.queue_num.is_some(), "--queue-num"),
        (!nfqueue && args.nfqueue.chain.is_some(), "--chain"),
        (!nfqueue && args.nfqueue.queue_len.is_some(), "--queue-len"),
        (
            !nfqueue && args.nfqueue.copy_range.is_some(),
            "--copy-range",
        ),
        (
            args.mode != RunMode::Both && args.compare_interval.is_some(),
            "--compare-interval",
        ),
    ]
    .into_iter()
    .filter_map(|(bad, flag)| bad.then_some(flag))
    .collect();
    if !inapplicable.is_empty() {
        bail!(
            "{} do(es) not apply to --mode {}",
            inapplicable.join(", "),
            match args.mode {
                RunMode::Xdp => "xdp",
                RunMode::Nfqueue => "nfqueue",
                RunMode::Both => "both",
            }
        );
    }
    if args.nfqueue.queue_len == Some(0) {
        bail!("--queue-len must be at least 1");
    }
    if kernel && let Some(missing) = privileges::missing_for_xdp() {
        bail!(missing);
    }
    Ok(Timers {
        duration,
        stats_every,
        compare_every,
        flow_sweep: Duration::from_nanos(settings.flow_idle_ns / 4).min(Duration::from_secs(10)),
        retain,
        store_max_bytes,
    })
}

/// The soft limit on open files raised to the hard one: systemd's default
/// 1,024 is what a few idle clients can exhaust.
fn raise_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit to fill, then to set.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

pub fn run(mut args: RunArgs, verbose: u8) -> anyhow::Result<()> {
    raise_file_limit();
    if args.local && args.mode != RunMode::Xdp {
        bail!(
            "--local runs the kernel programs only (--mode xdp): the process behind a packet is known where its socket sends it"
        );
    }
    if args.local && args.ifaces.is_empty() {
        args.ifaces = own_interfaces()?;
    }
    let settings = args.fingerprint.settings()?;
    let timers = validate(&args, &settings)?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run_modes(args, settings, timers, verbose))
}

/// `--local` without `--iface`: this machine's uplinks, the Ethernet
/// interfaces that are up and hold a default route (IPv4 or IPv6); all the
/// Ethernet interfaces that are up if none does. Not loopback, not a
/// tunnel's own device (its packets are the tunnel's inside, without an
/// Ethernet header), not a bridge or container veth without a default
/// route (what crosses them is forwarded, not this machine's own).
fn own_interfaces() -> anyhow::Result<Vec<String>> {
    let ethernet = ifaces::ethernet_up().context("listing the interfaces")?;
    let uplinks = ifaces::with_default_route();
    let mut names: Vec<String> = ethernet
        .iter()
        .filter(|n| uplinks.contains(n))
        .cloned()
        .collect();
    if names.is_empty() {
        names = ethernet;
    }
    if names.is_empty() {
        bail!(
            "--local: this machine has no Ethernet interface up to watch (name one with --iface)"
        );
    }
    info!("--local: watching {}", names.join(", "));
    Ok(names)
}

/// `FLAG_LAN_PORT` unless the user said the interfaces are not LAN ports
/// (or named none: NFQUEUE then sees every interface's packets), or they
/// are this machine's own (`--local`: replies arrive on them).
pub(crate) fn lan_port_flag(args: &RunArgs) -> u32 {
    if args.no_spoof_check || args.local || args.ifaces.is_empty() {
        0
    } else {
        vpnfp_common::config::FLAG_LAN_PORT
    }
}

/// What `run` started: the sources, the pipeline fed by them, and the
/// signals that stop them.
struct Running {
    kernel: Option<KernelDriver>,
    kernel_flows: Option<kernel_driver::EndedFlows>,
    nfqueue: Option<NfqueueDriver>,
    pipeline: Pipeline,
    signals: Signals,
}

/// Why the loop ended, beyond a signal or the deadline.
#[derive(Default)]
struct Ended {
    nfqueue_failed: bool,
    /// A watched interface went away.
    vanished: Option<String>,
}

/// Start, loop, stop: what the sources committed before the stop is
/// still reported.
async fn run_modes(
    args: RunArgs,
    settings: Settings,
    timers: Timers,
    verbose: u8,
) -> anyhow::Result<()> {
    let mut running = start(&args, &settings, &timers, verbose)?;
    let ended = watch(&mut running, &args, &timers).await?;
    stop(running, ended).await
}

/// Validated policy first, then NFQUEUE and the kernel programs, the
/// pipeline and its sinks, enforcement and metrics.
fn start(
    args: &RunArgs,
    settings: &Settings,
    timers: &Timers,
    verbose: u8,
) -> anyhow::Result<Running> {
    // Signals first: a signal during start-up is handled once started,
    // instead of killing us between installing a rule and removing it.
    let signals = Signals::new()?;
    // Bound before anything is attached: an address in use is refused first.
    let metrics_listener = match args.metrics {
        Some(addr) => Some(
            std::net::TcpListener::bind(addr)
                .with_context(|| format!("--metrics {addr}: cannot listen there"))?,
        ),
        None => None,
    };
    let mut config = settings.kernel_config();
    config.flags |= lan_port_flag(args);
    if args.local {
        config.flags |= vpnfp_common::config::FLAG_LOCAL;
    }
    if verbose > 0 {
        config.flags |= FLAG_LOG_WINDOWS;
    }
    // The policy is validated before anything is attached: enforcement
    // never starts from a policy that does not load.
    let mut enforcer = match &args.policy {
        Some(path) => {
            let e = vpnfp::enforce::Enforcer::new(path)?;
            if e.policy().names_programs() && !args.local {
                bail!(
                    "policy {}: rules with programs need --local (a router does not know the programs behind its hosts' packets)",
                    path.display()
                );
            }
            config.flags |= vpnfp_common::config::FLAG_POLICY;
            Some(e)
        }
        None => None,
    };
    let shared_blocks = enforcer
        .as_ref()
        .map(|_| std::sync::Arc::new(vpnfp::source::nfqueue::SharedBlocks::default()));
    let nfqueue = match args.mode {
        RunMode::Xdp => None,
        RunMode::Nfqueue | RunMode::Both => {
            Some(nfqueue_side::start(args, settings, shared_blocks.clone())?)
        }
    };
    let mut kernel = match args.mode {
        RunMode::Nfqueue => None,
        // If this fails, dropping `nfqueue` stops its thread and rules.
        RunMode::Xdp | RunMode::Both => Some(kernel_side::start(
            args,
            settings.flow_idle_ns,
            &config,
            timers,
        )?),
    };
    log_settings(settings);

    let judging = args.fingerprint.judging(
        settings,
        args.max_flows as usize,
        args.max_hosts as usize,
        args.export.resolve,
    )?;
    let mut pipeline = Pipeline::new(
        settings.thresholds,
        Outputs::new(args.output.json, args.output.all_windows),
        args.mode == RunMode::Both,
        judging,
    );
    if args.local {
        pipeline.processes = Some(vpnfp::judge::processes::Processes::new(
            args.max_flows as usize,
        ));
    }
    pipeline.open_sinks(Sinks {
        store: (!args.no_store).then(|| StoreSink {
            path: args.store.clone(),
            keeping: vpnfp::store::Keeping::Bounded {
                retain: timers.retain,
                max_bytes: timers.store_max_bytes,
            },
            run: vpnfp::store::RunInfo {
                command: "run",
                mode: format!("{:?}", args.mode).to_lowercase(),
                settings: format!("{settings:?}"),
            },
            when_full: vpnfp::store::WhenFull::Drop,
        }),
        store_required: false,
        ipfix: args.export.ipfix,
    })?;
    if let Some(e) = enforcer.take() {
        pipeline.enforcer = Some(enforcement(
            e,
            args,
            kernel.as_mut(),
            shared_blocks.as_ref(),
        )?);
    }
    if let Some(listener) = metrics_listener {
        let addr = listener.local_addr().context("--metrics address")?;
        let mut modes = Vec::new();
        if let Some(k) = &kernel {
            modes.push((Mode::Xdp, k.metrics.clone()));
        }
        if let Some(n) = &nfqueue {
            modes.push((Mode::Nfqueue, n.live.clone()));
        }
        metrics::serve(
            listener,
            MetricsSource {
                modes,
                pipeline: pipeline.counts.clone(),
            },
        )
        .context("starting the metrics server")?;
        info!("metrics: http://{addr}/metrics");
    }
    let kernel_flows = kernel.as_mut().and_then(KernelDriver::take_ended);
    Ok(Running {
        kernel,
        kernel_flows,
        nfqueue,
        pipeline,
        signals,
    })
}

/// The main loop: events first, then samples in turns, flows, NFQUEUE's
/// facts, signals and timers, until a stop.
async fn watch(r: &mut Running, args: &RunArgs, timers: &Timers) -> anyhow::Result<Ended> {
    let Running {
        kernel,
        kernel_flows,
        nfqueue,
        pipeline,
        signals,
    } = r;
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
    // Buffered JSON reaches stdout at least once a second.
    let mut flush = every(Some(Duration::from_secs(1)));
    let mut records_lost_seen = 0;
    let mut ended = Ended::default();
    // Interfaces deleted (or replaced) while vpnfp runs would leave it
    // watching nothing: looked at every second.
    let watched: Vec<(String, u32)> = args
        .ifaces
        .iter()
        .filter_map(|i| if_index(i).ok().map(|n| (i.clone(), n)))
        .collect();
    let mut check_failures = 0u64;

    // Samples are identified in turns of this many, so the event ring is
    // read between turns (events first: `biased`).
    const SAMPLE_TURN: usize = 512;
    let mut samples_waiting = false;
    loop {
        tokio::select! {
            biased;
            ready = kernel_driver::events_ready(kernel) => {
                ready.context("waiting for kernel events")?;
                if let Some(k) = kernel.as_mut() { k.drain_events(&mut |f| pipeline.fact(Mode::Xdp, f)); }
            }
            ready = kernel_driver::samples_ready(kernel), if !samples_waiting => {
                ready.context("waiting for kernel samples")?;
                if let Some(k) = kernel.as_mut() { samples_waiting = k.drain_samples(&mut |f| pipeline.fact(Mode::Xdp, f), SAMPLE_TURN); }
            }
            _ = std::future::ready(()), if samples_waiting => {
                if let Some(k) = kernel.as_mut() { samples_waiting = k.drain_samples(&mut |f| pipeline.fact(Mode::Xdp, f), SAMPLE_TURN); }
            }
            flow = kernel_driver::next_flow(kernel_flows) => {
                if let (Some(flow), Some(k)) = (flow, kernel.as_mut()) { k.ended_flow(flow, &mut |f| pipeline.fact(Mode::Xdp, f)); }
            }
            fact = vpnfp::source::nfqueue::driver::next_fact(nfqueue) => match fact {
                Some(fact) => pipeline.fact(Mode::Nfqueue, fact),
                None => { ended.nfqueue_failed = true; break; }
            },
            name = signals.next() => {
                if name == "SIGHUP" && let Some(e) = pipeline.enforcer.as_mut() {
                    match e.reload() {
                        Ok(reloaded) => {
                            info!("SIGHUP: {}", reloaded.human());
                            for d in &reloaded.programs {
                                log::warn!("{}", d.human());
                                pipeline.outputs.event(d);
                            }
                        }
                        Err(err) => log::error!("SIGHUP: {err:#}; the policy in force is unchanged"),
                    }
                    continue;
                }
                info!("{name}: stopping");
                break;
            }
            _ = &mut deadline => { info!("--duration reached: stopping"); break; }
            _ = tick(&mut stats) => {
                log_stats(kernel.as_ref(), nfqueue.as_ref(), &mut records_lost_seen);
            }
            _ = tick(&mut compare) => pipeline.print_comparison(false),
            _ = tick(&mut flush) => {
                pipeline.tick(vpnfp::clock::unix_now_ns());
                pipeline.outputs.flush();
                pipeline.publish();
                if pipeline.outputs.broken_pipe() {
                    info!("standard output was closed: stopping");
                    break;
                }
                // Gone or replaced counts; a check that failed (no
                // descriptor left) does not: it is said and tried again.
                let gone = watched.iter().find(|(iface, index)| {
                    match if_index_now(iface) {
                        Ok(now) => now != Some(*index),
                        Err(e) => {
                            check_failures += 1;
                            if check_failures % 60 == 1 {
                                log::warn!("cannot check interface {iface} ({e}); it is still watched");
                            }
                            false
                        }
                    }
                });
                if let Some((iface, _)) = gone {
                    log::error!("interface {iface} disappeared (deleted or replaced): stopping, nothing is watched there any more");
                    ended.vanished = Some(iface.clone());
                    break;
                }
            }
        }
        if pipeline.outputs.broken_pipe() {
            info!("standard output was closed: stopping");
            break;
        }
    }
    Ok(ended)
}

/// Stops both sides; what they committed before the stop is still
/// reported (and kept: the store may make the last flows wait for it now).
async fn stop(r: Running, ended: Ended) -> anyhow::Result<()> {
    let Running {
        kernel,
        mut kernel_flows,
        nfqueue,
        mut pipeline,
        signals: _,
    } = r;
    // Stop both sides; what they committed before the stop is still reported
    // (and kept: the store may make the last flows wait for it now).
    if let Some(store) = &mut pipeline.store {
        store.set_when_full(vpnfp::store::WhenFull::Wait);
    }
    let mut result = Ok(());
    if let Some(mut side) = kernel {
        let mut to_pipeline = |f: Fact<'_>| pipeline.fact(Mode::Xdp, f);
        side.drain_events(&mut to_pipeline);
        side.drain_samples(&mut to_pipeline, usize::MAX);
        side.stop(&mut to_pipeline, kernel_flows.take());
        let s = side.stats();
        info!(
            "xdp: {}; {} hosts tracked; {} flows ended ({} evicted over --max-flows); detaching",
            describe(&s.counters),
            s.hosts_tracked,
            s.flows_ended,
            s.flows_evicted
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
        while let Ok(fact) = side.facts.try_recv() {
            pipeline.fact(Mode::Nfqueue, fact);
        }
        match stats {
            Ok(stats) => {
                info!(
                    "nfqueue: {}; rules matched {}, missed {} (passed unseen by fail-open); rules removed",
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
    pipeline.print_comparison(true);
    for line in pipeline.summary() {
        info!("verdict at the end: {line}");
    }
    let store_lost = pipeline.finish();
    pipeline.outputs.flush();
    info!(
        "{} windows closed, {} suspected VPN reports, {} flow records, {} flows named a VPN or tunnel, {} verdict changes",
        pipeline.closes, pipeline.reports, pipeline.flows, pipeline.detections, pipeline.verdicts
    );
    let lost_output = pipeline
        .outputs
        .write_error()
        .filter(|_| !pipeline.outputs.broken_pipe())
        .map(|e| {
            format!(
                "{} JSON records could not be written to standard output ({e})",
                pipeline.outputs.lost()
            )
        });
    if ended.nfqueue_failed && result.is_ok() {
        bail!("NFQUEUE mode stopped unexpectedly");
    }
    if let Some(iface) = ended.vanished
        && result.is_ok()
    {
        bail!(
            "interface {iface} disappeared while vpnfp watched it; start vpnfp again once it is back"
        );
    }
    if let Some(lost) = lost_output
        && result.is_ok()
    {
        bail!(lost);
    }
    if store_lost > 0 && result.is_ok() {
        bail!("{store_lost} records could not be kept in the store (see above)");
    }
    result
}

/// The settings in force, in one line at start.
fn log_settings(settings: &Settings) {
    info!(
        "fingerprinting with COUNT={} WINDOW={} s OVERLAP={} ({} internal ranges{}); flows {}",
        settings.thresholds.count,
        seconds(settings.window_ns),
        settings.thresholds.overlap,
        settings.ranges.len(),
        if settings.internal_hosts_only {
            ", internal hosts only"
        } else {
            ""
        },
        if settings.flows {
            format!(
                "idle {} s, active {} s",
                seconds(settings.flow_idle_ns),
                seconds(settings.flow_active_ns)
            )
        } else {
            "off".to_string()
        }
    );
}

/// The policy's block sinks (the kernel's maps, NFQUEUE's set), and a
/// line saying what it does.
fn enforcement(
    mut e: vpnfp::enforce::Enforcer,
    args: &RunArgs,
    kernel: Option<&mut KernelDriver>,
    shared_blocks: Option<&std::sync::Arc<vpnfp::source::nfqueue::SharedBlocks>>,
) -> anyhow::Result<vpnfp::enforce::Enforcer> {
    if let Some(k) = kernel {
        e.add_sink(Box::new(k.take_blocks()?));
        if args.local {
            e.programs.set_sink(Box::new(k.take_program_blocks()?));
        }
    }
    if let Some(b) = shared_blocks {
        e.add_sink(Box::new(b.clone()));
    }
    let p = e.policy();
    info!(
        "policy {}: mode {}, {} block rule(s), {} allowlisted host range(s), {} peer range(s){}",
        args.policy
            .as_ref()
            .map_or(String::new(), |p| p.display().to_string()),
        p.mode.as_str(),
        p.rules.len(),
        p.allow_hosts.len(),
        p.allow_peers.len(),
        match p.mode {
            vpnfp::enforce::policy::PolicyMode::Enforce =>
                "; blocked pairs are dropped (fail-open otherwise); SIGHUP reloads",
            vpnfp::enforce::policy::PolicyMode::DryRun =>
                "; nothing is dropped, what would be is logged and counted",
            vpnfp::enforce::policy::PolicyMode::Monitor => "; nothing is dropped",
        }
    );
    Ok(e)
}

/// The counters of each side, every `--stats-interval`.
fn log_stats(
    kernel: Option<&KernelDriver>,
    nfqueue: Option<&NfqueueDriver>,
    records_lost_seen: &mut u64,
) {
    if let Some(side) = kernel {
        let s = side.stats();
        if s.counters.records_lost > *records_lost_seen {
            warn!(
                "{} kernel event records lost: the event ring was full (vpnfp read too slowly; raise --ring-bytes if this repeats)",
                s.counters.records_lost - *records_lost_seen
            );
            *records_lost_seen = s.counters.records_lost;
        }
        info!(
            "xdp: {}; {} hosts, {} flows tracked",
            describe(&s.counters),
            s.hosts_tracked,
            s.flows_tracked
        );
    }
    if let Some(side) = nfqueue {
        let live = *side.live.lock().expect("counters lock");
        info!(
            "nfqueue: {}; {} hosts, {} flows tracked",
            describe(&live.counters),
            live.hosts_tracked,
            live.flows_tracked
        );
    }
}

/// The signals that stop vpnfp cleanly (rules removed, counters printed):
/// SIGINT, SIGTERM, SIGHUP (a closed terminal) and SIGQUIT.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        let on =
            |kind, name| signal(kind).with_context(|| format!("installing the {name} handler"));
        Ok(Self {
            int: on(SignalKind::interrupt(), "SIGINT")?,
            term: on(SignalKind::terminate(), "SIGTERM")?,
            hup: on(SignalKind::hangup(), "SIGHUP")?,
            quit: on(SignalKind::quit(), "SIGQUIT")?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "SIGINT",
            _ = self.term.recv() => "SIGTERM",
            _ = self.hup.recv() => "SIGHUP",
            _ = self.quit.recv() => "SIGQUIT",
        }
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

pub fn describe(c: &Counters) -> String {
    let outcomes: Vec<String> = Outcome::ALL
        .iter()
        .filter(|&&o| o != Outcome::Analysed && c.outcome(o) > 0)
        .map(|&o| format!("{} {}", o.name(), c.outcome(o)))
        .collect();
    format!(
        "frames: {} seen ({} on egress), {} analysed, {} ignored, {} malformed{}; windows closed {}, records lost {}; flows created {}, table full {}",
        c.seen,
        c.seen_egress,
        c.analysed(),
        c.ignored(),
        c.malformed(),
        if outcomes.is_empty() {
            String::new()
        } else {
            format!(" ({})", outcomes.join(", "))
        },
        c.windows_closed,
        c.records_lost,
        c.flows_created,
        c.flow_table_full
    ) + &if c.unowned > 0 {
        format!(
            "; {} packets out without a socket (forwarded: no process)",
            c.unowned
        )
    } else {
        String::new()
    }
}
