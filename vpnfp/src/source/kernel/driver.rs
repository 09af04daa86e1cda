//! The kernel programs as a running part: load, configure, attach (XDP
//! ingress, TC egress), read the ring buffers on the caller's loop, and
//! keep the maps (end flows, count hosts, read counters) on a thread of
//! its own so that the caller's loop never walks a map.

use std::{
    future::pending,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use crate::{
    clock::KernelClock,
    model::{self, Fact, FlowEnded, ModeMetrics},
};
use anyhow::Context;
use aya::maps::{MapData, RingBuf};
use log::{debug, info, warn};
use tokio::io::unix::AsyncFd;

use super::{
    AttachMode, BlockMaps, Capacities, CountersMap, HostMaps, KernelFingerprinter,
    flows::{FlowFlusher, FlowKeeper, FlowMaps},
    local::Attribution,
};
use vpnfp_common::{
    Counters, KernelConfig,
    record::{FlowKeyRecord, kind},
    user::Record,
};

/// What the kernel side needs to start, besides the programs' config.
#[derive(Clone, Debug)]
pub struct KernelOptions {
    pub capacities: Capacities,
    /// LAN-facing interfaces to attach to.
    pub ifaces: Vec<String>,
    pub attach_mode: AttachMode,
    /// TC egress beside XDP (the replies); false: XDP alone.
    pub egress: bool,
    /// A flow idle this long has ended (the config's `flow_idle_ns`).
    pub flow_idle_ns: u64,
    /// How often the keeper looks for idle flows.
    pub sweep_every: Duration,
    /// `--local`: the cgroup whose processes' sockets are attributed.
    pub local: Option<super::local::WatchedCgroup>,
}

/// What the keeper thread last saw.
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelStats {
    pub counters: Counters,
    pub hosts_tracked: u64,
    pub flows_tracked: u64,
    pub flows_ended: u64,
    pub flows_evicted: u64,
}

pub struct KernelDriver {
    /// Holds the programs attached (dropping it detaches them).
    _programs: KernelFingerprinter,
    pub events: AsyncFd<RingBuf<MapData>>,
    pub samples: AsyncFd<RingBuf<MapData>>,
    pub clock: KernelClock,
    pub stats: Arc<Mutex<KernelStats>>,
    /// The same for the metrics thread.
    pub metrics: Arc<Mutex<ModeMetrics>>,
    keeper: Option<Keeper>,
    /// Records of another kind or version seen (a mismatched program).
    pub bad_records: u64,
    /// `--local`: the process behind each flow.
    attribution: Option<Attribution>,
}

struct Keeper {
    stop: Arc<AtomicBool>,
    closing: mpsc::Sender<FlowKeyRecord>,
    thread: JoinHandle<()>,
    /// Taken by the run loop ([`KernelSide::take_ended`]).
    ended: Option<tokio::sync::mpsc::UnboundedReceiver<FlowEnded>>,
}

/// Flows the keeper thread ended.
pub type EndedFlows = tokio::sync::mpsc::UnboundedReceiver<FlowEnded>;

/// Loads, configures and attaches the programs, and starts the keeper.
pub fn start(options: KernelOptions, config: &KernelConfig) -> anyhow::Result<KernelDriver> {
    let max_flows = options.capacities.max_flows;
    let mut fingerprinter = KernelFingerprinter::load(options.capacities, u8::MAX)?;
    spawn_kernel_log_reader(&mut fingerprinter);
    fingerprinter.configure(config)?;
    let attribution = match &options.local {
        Some(cgroup) => {
            let missing = fingerprinter.attach_local(cgroup)?;
            info!(
                "local: the sockets of the processes in cgroup {} are attributed",
                cgroup.path.display()
            );
            if !missing.is_empty() {
                warn!(
                    "local: without the send tracepoint ({}): a socket a process uses without having created or connected it (after fork) keeps its creator",
                    missing.join("; ")
                );
            }
            Some(Attribution::new(fingerprinter.take_local()?))
        }
        None => None,
    };
    for iface in &options.ifaces {
        let attached = fingerprinter.attach(iface, options.attach_mode, options.egress)?;
        info!(
            "xdp: attached to {iface} in {} mode{} (monitor: every packet passes)",
            attached.xdp_mode,
            if attached.egress && options.local.is_some() {
                ", TC egress too (this machine's packets out, each with its socket)"
            } else if attached.egress {
                ", TC egress too (replies to the LAN hosts)"
            } else {
                " (ingress only)"
            }
        );
        if options.local.is_none()
            && let Some(why) = wan_facing_by_route(iface)
        {
            warn!("{iface} looks WAN-facing: {why}; attach vpnfp to the LAN-facing interface(s)");
        }
    }
    let events = watch_readable(fingerprinter.take_events()?).context("watching the event ring")?;
    let samples =
        watch_readable(fingerprinter.take_samples()?).context("watching the sample ring")?;
    let clock = KernelClock::now().context("reading the clocks")?;
    let stats = Arc::new(Mutex::new(KernelStats::default()));
    let metrics = Arc::new(Mutex::new(ModeMetrics::default()));
    let keeper = spawn_keeper(
        (fingerprinter.take_flows()?, fingerprinter.flow_flusher()?),
        fingerprinter.take_hosts()?,
        fingerprinter.take_counters()?,
        KeeperSettings {
            capacity: max_flows,
            idle_ns: options.flow_idle_ns,
            clock,
            stats: stats.clone(),
            metrics: metrics.clone(),
            ifaces: options.ifaces.clone(),
            // This machine's own address is the host in endpoint mode.
            check_wan: options.local.is_none(),
            sweep_every: options.sweep_every.max(Duration::from_millis(200)),
        },
    )?;
    Ok(KernelDriver {
        _programs: fingerprinter,
        events,
        samples,
        clock,
        stats,
        metrics,
        keeper: Some(keeper),
        bad_records: 0,
        attribution,
    })
}

impl KernelDriver {
    /// Reads every committed event record and hands it on.
    pub fn drain_events(&mut self, on_fact: &mut impl FnMut(Fact<'_>)) {
        let clock = self.clock;
        let keeper = self.keeper.as_ref();
        let mut attribution = self.attribution.as_mut();
        let ring = self.events.get_mut();
        while let Some(item) = ring.next() {
            match Record::parse(&item) {
                Ok(Record::WindowClose(r)) => {
                    on_fact(Fact::Window(model::window_from_record(&r, |ns| {
                        clock.to_unix_ns(ns)
                    })))
                }
                Ok(Record::Concentration(r)) => on_fact(Fact::Concentration(
                    model::concentration_from_record(&r, |ns| clock.to_unix_ns(ns)),
                )),
                Ok(Record::FlowClosing(r)) => {
                    if let Some(k) = keeper {
                        let _ = k.closing.send(r.key);
                    }
                }
                Ok(Record::FlowDelta(r) | Record::FlowIdle(r)) => {
                    let end = if r.header.kind == kind::FLOW_IDLE {
                        model::EndReason::Idle
                    } else {
                        model::EndReason::ActiveTimeout
                    };
                    let mut value = r.value;
                    value.first_seen_ns = clock.to_unix_ns(value.first_seen_ns);
                    value.last_seen_ns = clock.to_unix_ns(value.last_seen_ns);
                    let id = model::FlowId::from_record(&r.key);
                    let ended = end != model::EndReason::ActiveTimeout;
                    if let Some(found) = attribution
                        .as_deref_mut()
                        .and_then(|a| a.record(&id, ended))
                    {
                        on_fact(Fact::Attributed(id, found));
                    }
                    on_fact(Fact::Flow(FlowEnded { id, value, end }));
                }
                Ok(Record::Owner(r)) => {
                    if let Some(process) = attribution.as_deref_mut().and_then(|a| a.owner(&r)) {
                        on_fact(Fact::Process(process));
                    }
                }
                Ok(Record::Sample(_)) => debug!("a sample record in the event ring"),
                Err(e) => {
                    if self.bad_records == 0 {
                        warn!("{e}");
                    }
                    self.bad_records += 1;
                }
            }
        }
    }

    /// The block maps, for an enforcement policy.
    pub fn take_blocks(&mut self) -> anyhow::Result<BlockMaps> {
        Ok(self._programs.take_blocks()?)
    }

    /// Reads up to `budget` payload samples and hands them on; true if
    /// the budget ran out first (more may wait). Identification is the
    /// costliest thing the loop does per record, so it takes turns with
    /// the event ring: a burst of new flows may lose samples (counted), never
    /// the research's window closes.
    pub fn drain_samples(&mut self, on_fact: &mut impl FnMut(Fact<'_>), budget: usize) -> bool {
        let clock = self.clock;
        let mut attribution = self.attribution.as_mut();
        let ring = self.samples.get_mut();
        let mut taken = 0;
        while taken < budget {
            let Some(item) = ring.next() else {
                return false;
            };
            taken += 1;
            match Record::parse(&item) {
                Ok(Record::Sample(r)) => {
                    debug_assert_eq!(r.header.kind, kind::SAMPLE);
                    let id = model::FlowId::from_record(&r.key);
                    if let Some(found) = attribution.as_deref_mut().and_then(|a| a.sample(&id)) {
                        on_fact(Fact::Attributed(id, found));
                    }
                    on_fact(Fact::Sample(model::Sample {
                        id,
                        direction: r.direction(),
                        ts_ns: clock.to_unix_ns(r.ts_ns),
                        payload_len: r.payload_len,
                        payload: std::borrow::Cow::Borrowed(r.payload()),
                        flags: r.flags,
                        scope: vpnfp_common::Scope::from_u8(r.scope),
                        sender: r.sender(),
                    }));
                }
                Ok(_) => debug!("a non-sample record in the sample ring"),
                Err(e) => {
                    if self.bad_records == 0 {
                        warn!("{e}");
                    }
                    self.bad_records += 1;
                }
            }
        }
        true
    }

    /// A flow the keeper ended, with its process first (`--local`).
    pub fn ended_flow(&mut self, flow: FlowEnded, on_fact: &mut impl FnMut(Fact<'_>)) {
        if let Some(found) = self
            .attribution
            .as_mut()
            .and_then(|a| a.record(&flow.id, flow.end != model::EndReason::ActiveTimeout))
        {
            on_fact(Fact::Attributed(flow.id, found));
        }
        on_fact(Fact::Flow(flow));
    }

    /// The per-program block map (`--local` with a policy).
    pub fn take_program_blocks(
        &mut self,
    ) -> anyhow::Result<aya::maps::HashMap<MapData, u32, vpnfp_common::local::ProgramBlock>> {
        Ok(self._programs.take_program_blocks()?)
    }

    /// The flows the keeper thread ends, for the run loop to receive.
    pub fn take_ended(&mut self) -> Option<EndedFlows> {
        self.keeper.as_mut().and_then(|k| k.ended.take())
    }

    pub fn stats(&self) -> KernelStats {
        *self.stats.lock().expect("stats lock")
    }

    /// Stops the keeper, which ends every flow (`exit`); hands them on.
    pub fn stop(&mut self, on_fact: &mut impl FnMut(Fact<'_>), mut ended: Option<EndedFlows>) {
        let Some(mut keeper) = self.keeper.take() else {
            return;
        };
        keeper.stop.store(true, Ordering::Relaxed);
        if keeper.thread.join().is_err() {
            warn!("the kernel maps' keeper thread panicked");
        }
        let mut ended = ended.take().or(keeper.ended.take());
        if let Some(ended) = ended.as_mut() {
            while let Ok(flow) = ended.try_recv() {
                self.ended_flow(flow, on_fact);
            }
        }
    }
}

impl Drop for KernelDriver {
    fn drop(&mut self) {
        if let Some(keeper) = self.keeper.take() {
            keeper.stop.store(true, Ordering::Relaxed);
            let _ = keeper.thread.join();
        }
    }
}

struct KeeperSettings {
    capacity: u32,
    idle_ns: u64,
    clock: KernelClock,
    stats: Arc<Mutex<KernelStats>>,
    metrics: Arc<Mutex<ModeMetrics>>,
    ifaces: Vec<String>,
    check_wan: bool,
    sweep_every: Duration,
}

/// How often the keeper ends closed flows and reads the counters.
const KEEPER_TICK: Duration = Duration::from_millis(250);
/// How often it counts hosts (a walk over the host maps).
const HOST_COUNT_EVERY: Duration = Duration::from_secs(1);

fn spawn_keeper(
    flows: (FlowMaps, FlowFlusher),
    hosts: HostMaps,
    counters: CountersMap,
    s: KeeperSettings,
) -> anyhow::Result<Keeper> {
    let stop = Arc::new(AtomicBool::new(false));
    let (closing_tx, closing_rx) = mpsc::channel::<FlowKeyRecord>();
    let (ended_tx, ended_rx) = tokio::sync::mpsc::unbounded_channel();
    let thread = {
        let stop = stop.clone();
        std::thread::Builder::new()
            .name("vpnfp-maps".into())
            .spawn(move || keeper_loop(flows, hosts, counters, s, stop, closing_rx, ended_tx))
            .context("starting the kernel maps' keeper thread")?
    };
    Ok(Keeper {
        stop,
        closing: closing_tx,
        thread,
        ended: Some(ended_rx),
    })
}

fn keeper_loop(
    (flows, flusher): (FlowMaps, FlowFlusher),
    hosts: HostMaps,
    counters: CountersMap,
    s: KeeperSettings,
    stop: Arc<AtomicBool>,
    closing: mpsc::Receiver<FlowKeyRecord>,
    ended: tokio::sync::mpsc::UnboundedSender<FlowEnded>,
) {
    let mut keeper = FlowKeeper::new(flows, flusher, s.capacity, s.idle_ns, s.clock);
    let mut out = |f: FlowEnded| {
        let _ = ended.send(f);
    };
    let started = Instant::now();
    let mut last_sweep = Instant::now();
    let mut last_host_count: Option<Instant> = None;
    let mut hosts_tracked = 0;
    let mut wan_checked = false;
    while !stop.load(Ordering::Relaxed) {
        match closing.recv_timeout(KEEPER_TICK) {
            Ok(key) => {
                let now = KernelClock::kernel_now_ns().unwrap_or(0);
                keeper.closing(key, now);
                while let Ok(key) = closing.try_recv() {
                    keeper.closing(key, now);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => std::thread::sleep(KEEPER_TICK),
        }
        let now = KernelClock::kernel_now_ns().unwrap_or(0);
        keeper.end_closed(now, &mut out);
        if last_sweep.elapsed() >= s.sweep_every {
            keeper.sweep(now, &mut out);
            last_sweep = Instant::now();
        }
        if last_host_count.is_none_or(|t| t.elapsed() >= HOST_COUNT_EVERY) {
            hosts_tracked = hosts.count();
            last_host_count = Some(Instant::now());
        }
        if s.check_wan && !wan_checked && started.elapsed() >= Duration::from_secs(5) {
            wan_checked = true;
            if let Some(why) = wan_facing_by_nat(&hosts, &s.ifaces) {
                warn!("{why}");
            }
        }
        let snapshot = KernelStats {
            counters: counters.read().unwrap_or_default(),
            hosts_tracked,
            flows_tracked: keeper.tracked,
            flows_ended: keeper.ended,
            flows_evicted: keeper.evicted,
        };
        *s.stats.lock().expect("stats lock") = snapshot;
        *s.metrics.lock().expect("metrics lock") = ModeMetrics {
            counters: snapshot.counters,
            hosts_tracked: snapshot.hosts_tracked,
            // The kernel's LRU evicts silently: evicted = created - tracked.
            hosts_evicted: snapshot
                .counters
                .hosts_created
                .saturating_sub(snapshot.hosts_tracked),
            flows_tracked: snapshot.flows_tracked,
            missed: None,
        };
    }
    keeper.drain(&mut out);
    let mut stats = s.stats.lock().expect("stats lock");
    stats.counters = counters.read().unwrap_or(stats.counters);
    stats.flows_ended = keeper.ended;
    stats.flows_tracked = 0;
}

/// An interface that holds the default route faces the WAN.
fn wan_facing_by_route(iface: &str) -> Option<String> {
    super::ifaces::with_default_route4()
        .iter()
        .any(|i| i == iface)
        .then(|| "the default route goes out through it".to_string())
}

/// Behind NAT, replies on the WAN side are addressed to the router itself:
/// if one of this machine's own addresses is being followed as a host, the
/// interface faces the WAN.
fn wan_facing_by_nat(hosts: &HostMaps, ifaces: &[String]) -> Option<String> {
    let own = super::ifaces::addresses();
    own.iter().find_map(|addr| {
        let (count, _) = hosts.get(*addr)?;
        (count > 0).then(|| {
            format!(
                "this machine's own address {addr} is being followed as a host: {} looks WAN-facing (replies to NAT are addressed to the router); attach vpnfp to the LAN-facing interface(s)",
                ifaces.join(", ")
            )
        })
    })
}

/// Waits until the event ring has records; clears the readiness first (the
/// ring wakes us again for anything committed after that).
pub async fn events_ready(side: &Option<KernelDriver>) -> std::io::Result<()> {
    match side {
        Some(s) => s.events.readable().await.map(|mut g| g.clear_ready()),
        None => pending().await,
    }
}

/// The same for the sample ring.
pub async fn samples_ready(side: &Option<KernelDriver>) -> std::io::Result<()> {
    match side {
        Some(s) => s.samples.readable().await.map(|mut g| g.clear_ready()),
        None => pending().await,
    }
}

/// The next flow the keeper ended.
pub async fn next_flow(ended: &mut Option<EndedFlows>) -> Option<FlowEnded> {
    match ended {
        Some(rx) => rx.recv().await,
        None => pending().await,
    }
}

/// Registers a map-backed reader (ring buffer) with the runtime.
pub fn watch_readable<T: std::os::fd::AsRawFd>(inner: T) -> std::io::Result<AsyncFd<T>> {
    // SAFETY: aya's RingBuf and EbpfLogger own their map fd and keep it open
    // and unchanged until dropped, which is when the AsyncFd drops them.
    unsafe { AsyncFd::register_with_interest(inner, tokio::io::Interest::READABLE) }
        .map_err(|e| std::io::Error::other(e.to_string()))
}

/// aya-log lines from the programs (window closes with -v) go to our logger.
fn spawn_kernel_log_reader(fingerprinter: &mut KernelFingerprinter) {
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
