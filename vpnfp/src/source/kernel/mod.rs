//! Loading, configuring and attaching the kernel programs (XDP on ingress,
//! TC on egress), and reading their maps. Map names and record layouts are
//! `vpnfp_common::maps`' and `vpnfp_common::record`'s.

pub mod driver;
pub mod flows;
pub mod ifaces;
pub mod local;
pub mod pin;
pub mod sys;

use std::net::{Ipv4Addr, Ipv6Addr};

use aya::{
    Ebpf, EbpfLoader, Pod,
    maps::{Array, HashMap, Map, MapData, MapError, PerCpuArray, RingBuf},
    programs::{
        ProgramError, SchedClassifier, TcAttachType, Xdp, XdpMode,
        tc::{self, TcError},
    },
};
use vpnfp_common::{
    Counters, FlowKey, FlowValue, HostEntry, KernelConfig, V6, config::CONFIG_MAGIC, maps,
};

/// The object `cargo xtask build` compiled, embedded by build.rs (empty when
/// the crate was built without it).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vpnfp-ebpf.o"));

/// The embedded object, or `None` in a build without it.
pub fn embedded_object() -> Option<&'static [u8]> {
    (!OBJECT.is_empty()).then_some(OBJECT)
}

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(
        "this vpnfp binary was built without its eBPF programs; build it with `cargo xtask build` (or run `cargo xtask run`)"
    )]
    NoEmbeddedObject,
    #[error("loading the eBPF object failed")]
    Load(#[source] aya::EbpfError),
    #[error(
        "the kernel's verifier rejected the {program} program ({io_error}); run with -v to see the verifier log"
    )]
    Verifier {
        program: &'static str,
        io_error: std::io::Error,
        verifier_log: String,
    },
    #[error("loading the {program} program failed")]
    Program {
        program: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("unknown network interface '{0}' (see `ip link`)")]
    UnknownInterface(String),
    #[error("attaching XDP to {iface} in {mode} mode failed")]
    Attach {
        iface: String,
        mode: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error(
        "attaching the TC egress program to {iface} failed (use --ingress-only to watch arriving packets only)"
    )]
    AttachTc {
        iface: String,
        #[source]
        source: ProgramError,
    },
    #[error("adding the clsact qdisc to {iface} for the TC egress program failed")]
    Clsact {
        iface: String,
        #[source]
        source: TcError,
    },
    #[error("attaching the {program} program to cgroup {cgroup} failed")]
    AttachCgroup {
        program: &'static str,
        cgroup: String,
        #[source]
        source: ProgramError,
    },
    #[error("the object has no map {0}: it does not match this vpnfp")]
    MissingMap(&'static str),
    #[error("the object has no program {0}: it does not match this vpnfp")]
    MissingProgram(&'static str),
    #[error(transparent)]
    Pin(#[from] pin::PinError),
    #[error(
        "{dir}/VPNFP_CONFIG holds a config of layout {found:#x}, this vpnfp writes {CONFIG_MAGIC:#x}: the pins come from another version; remove them to start fresh: rm -r {dir}"
    )]
    StaleConfig { dir: String, found: u32 },
    #[error("map {name}")]
    Map {
        name: &'static str,
        #[source]
        source: MapError,
    },
}

impl KernelError {
    /// The verifier's log, for `-v`.
    pub fn verifier_log(&self) -> Option<&str> {
        match self {
            KernelError::Verifier { verifier_log, .. } => Some(verifier_log),
            _ => None,
        }
    }
}

/// How to attach XDP: `Auto` tries native (driver) XDP and falls back to
/// generic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttachMode {
    Auto,
    Native,
    Skb,
}

/// Map sizes, fixed at load time, and where the state maps are pinned.
#[derive(Clone, Debug)]
pub struct Capacities {
    /// Hosts per family (the IPv4 and the IPv6 map each hold this many).
    pub max_hosts: u32,
    /// Flows per family.
    pub max_flows: u32,
    pub ring_bytes: u32,
    pub sample_ring_bytes: u32,
    /// `Some(dir)`: keep config, hosts, flows and counters pinned there, and
    /// continue from what is pinned.
    pub pin_dir: Option<std::path::PathBuf>,
    /// `cargo xtask bench` only: the floor program's map size (its own
    /// default otherwise), to measure the floor at a million hosts.
    pub bench_floor_entries: Option<u32>,
}

impl Default for Capacities {
    fn default() -> Self {
        Self {
            max_hosts: maps::DEFAULT_MAX_HOSTS,
            max_flows: maps::DEFAULT_MAX_FLOWS,
            ring_bytes: maps::DEFAULT_RING_BYTES,
            sample_ring_bytes: maps::DEFAULT_SAMPLE_RING_BYTES,
            pin_dir: None,
            bench_floor_entries: None,
        }
    }
}

/// What one interface got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attached {
    /// The XDP mode used: "native" or "skb".
    pub xdp_mode: &'static str,
    /// Whether the TC egress program was attached too.
    pub egress: bool,
}

/// The loaded programs and their maps. Dropping it detaches from every
/// interface (XDP and TCX attachments are links that go with their file
/// descriptors) and unloads the programs.
pub struct KernelFingerprinter {
    ebpf: Ebpf,
    /// Runs `vpnfp_flush_flows` on every CPU (made once, at load).
    flusher: flows::FlowFlusher,
    _pin_lock: Option<pin::PinLock>,
}

fn map_err(name: &'static str) -> impl FnOnce(MapError) -> KernelError {
    move |source| KernelError::Map { name, source }
}

/// Loads a program, again when a signal interrupted the verifier: the
/// kernel then answers EAGAIN (since 4.20), and libbpf and cilium/ebpf
/// retry too. Seen once in CI: a `--mode both` run whose NFQUEUE side had
/// just started its threads got EAGAIN for the XDP program.
fn retrying_interrupts(
    mut load: impl FnMut() -> Result<(), ProgramError>,
) -> Result<(), ProgramError> {
    for _ in 0..4 {
        match load() {
            Err(ProgramError::LoadError { io_error, .. })
                if io_error.raw_os_error() == Some(libc::EAGAIN) =>
            {
                continue;
            }
            other => return other,
        }
    }
    load()
}

fn flush_error(e: std::io::Error) -> KernelError {
    KernelError::Program {
        program: "flow flush",
        source: ProgramError::SyscallError(aya::sys::SyscallError {
            call: "flush",
            io_error: e,
        }),
    }
}

fn load_error(program: &'static str) -> impl FnOnce(ProgramError) -> KernelError {
    move |e| match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => KernelError::Verifier {
            program,
            io_error,
            verifier_log: verifier_log.to_string(),
        },
        other => KernelError::Program {
            program,
            source: other,
        },
    }
}

impl KernelFingerprinter {
    /// Loads the embedded object. `kernel_log_level` is aya-log's level for
    /// the programs' own log lines (0 = off).
    pub fn load(capacities: Capacities, kernel_log_level: u8) -> Result<Self, KernelError> {
        let object = embedded_object().ok_or(KernelError::NoEmbeddedObject)?;
        Self::load_object(object, capacities, kernel_log_level)
    }

    pub fn load_object(
        object: &[u8],
        capacities: Capacities,
        kernel_log_level: u8,
    ) -> Result<Self, KernelError> {
        let mut loader = EbpfLoader::new();
        loader
            .map_max_entries(maps::HOSTS4, capacities.max_hosts)
            .map_max_entries(maps::HOSTS6, capacities.max_hosts)
            .map_max_entries(maps::FLOWS4, capacities.max_flows)
            .map_max_entries(maps::FLOWS6, capacities.max_flows)
            .map_max_entries(maps::EVENTS, capacities.ring_bytes)
            .map_max_entries(maps::SAMPLES, capacities.sample_ring_bytes)
            .override_global(aya_log::LEVEL, &kernel_log_level, false);
        if let Some(entries) = capacities.bench_floor_entries {
            loader.map_max_entries(maps::BENCH_FLOOR_MAP, entries);
        }
        let mut pin_lock = None;
        let pin_dir = capacities.pin_dir.as_deref().map(pin::absolute);
        if let Some(dir) = &pin_dir {
            pin_lock = Some(pin::PinLock::take(dir)?);
            pin::prepare(dir, &capacities)?;
            for (name, _, _) in pin::pinned_maps() {
                loader.map_pin_path(name, dir.join(name));
            }
        }
        let mut ebpf = loader.load(object).map_err(KernelError::Load)?;
        let xdp = xdp_mut(&mut ebpf)?;
        retrying_interrupts(|| xdp.load()).map_err(load_error("XDP"))?;
        let tc = tc_mut(&mut ebpf)?;
        retrying_interrupts(|| tc.load()).map_err(load_error("TC"))?;
        let flush: &mut Xdp = program_as(&mut ebpf, maps::FLUSH_FLOWS, "flow flush")?;
        retrying_interrupts(|| flush.load()).map_err(load_error("flow flush"))?;
        let flusher = {
            use std::os::fd::AsFd;
            let fd = flush.fd().map_err(|source| KernelError::Program {
                program: "flow flush",
                source,
            })?;
            fd.as_fd()
                .try_clone_to_owned()
                .and_then(flows::FlowFlusher::new)
                .map_err(flush_error)?
        };
        let fingerprinter = Self {
            ebpf,
            flusher,
            _pin_lock: pin_lock,
        };
        if let Some(dir) = &pin_dir {
            // A pinned config written by another layout version is refused
            // (a zero magic is a fresh map).
            let found = fingerprinter.pinned_config_magic()?;
            if found != 0 && found != CONFIG_MAGIC {
                return Err(KernelError::StaleConfig {
                    dir: dir.display().to_string(),
                    found,
                });
            }
        }
        Ok(fingerprinter)
    }

    fn pinned_config_magic(&self) -> Result<u32, KernelError> {
        let array: Array<_, KernelConfig> =
            Array::try_from(self.map(maps::CONFIG)?).map_err(map_err(maps::CONFIG))?;
        Ok(array.get(&0, 0).map_err(map_err(maps::CONFIG))?.magic)
    }

    /// Writes the config the programs read on every packet (no reload).
    pub fn configure(&mut self, config: &KernelConfig) -> Result<(), KernelError> {
        let map = self
            .ebpf
            .map_mut(maps::CONFIG)
            .ok_or(KernelError::MissingMap(maps::CONFIG))?;
        let mut array: Array<_, KernelConfig> =
            Array::try_from(map).map_err(map_err(maps::CONFIG))?;
        array.set(0, config, 0).map_err(map_err(maps::CONFIG))
    }

    /// Attaches XDP (ingress) to `iface`, and with `egress` the TC program
    /// to its egress too; returns what was attached.
    pub fn attach(
        &mut self,
        iface: &str,
        mode: AttachMode,
        egress: bool,
    ) -> Result<Attached, KernelError> {
        let index = if_index(iface)?;
        // TC egress first: once XDP shows on the interface, both directions
        // are counted (tests and operators wait for exactly that).
        if egress {
            // Before 6.6 TC programs attach through the clsact qdisc (and,
            // unlike TCX links, outlive a killed process).
            let tcx = aya::util::KernelVersion::current()
                .is_ok_and(|v| v >= aya::util::KernelVersion::new(6, 6, 0));
            if !tcx
                && let Err(source) = tc::qdisc_add_clsact(iface)
                && !matches!(&source, TcError::NetlinkError(e) if e.raw_os_error() == Some(libc::EEXIST))
            {
                return Err(KernelError::Clsact {
                    iface: iface.to_string(),
                    source,
                });
            }
            tc_mut(&mut self.ebpf)?
                .attach(iface, TcAttachType::Egress)
                .map_err(|source| KernelError::AttachTc {
                    iface: iface.to_string(),
                    source,
                })?;
        }
        let program = xdp_mut(&mut self.ebpf)?;
        let try_mode = |program: &mut Xdp, mode: XdpMode, name: &'static str| {
            program
                .attach_to_if_index(index, mode)
                .map(|_| name)
                .map_err(|source| KernelError::Attach {
                    iface: iface.to_string(),
                    mode: name,
                    source,
                })
        };
        let xdp_mode = match mode {
            AttachMode::Native => try_mode(program, XdpMode::Driver, "native")?,
            AttachMode::Skb => try_mode(program, XdpMode::Skb, "skb")?,
            AttachMode::Auto => match try_mode(program, XdpMode::Driver, "native") {
                Ok(used) => used,
                Err(native) => {
                    log::warn!("{native:#}; falling back to skb (generic) mode");
                    try_mode(program, XdpMode::Skb, "skb")?
                }
            },
        };
        Ok(Attached { xdp_mode, egress })
    }

    pub fn program_mut(&mut self) -> Result<&mut Xdp, KernelError> {
        xdp_mut(&mut self.ebpf)
    }

    pub fn tc_program_mut(&mut self) -> Result<&mut SchedClassifier, KernelError> {
        tc_mut(&mut self.ebpf)
    }

    /// Another program of the same object, loaded on first use with the
    /// same maps (`load` is its kind's loader).
    fn other<P>(
        &mut self,
        name: &'static str,
        load: fn(&mut P) -> Result<(), ProgramError>,
    ) -> Result<&mut P, KernelError>
    where
        for<'a> &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
    {
        let program: &mut P = program_as(&mut self.ebpf, name, name)?;
        match load(program) {
            Ok(()) | Err(ProgramError::AlreadyLoaded) => Ok(program),
            Err(source) => Err(KernelError::Program {
                program: name,
                source,
            }),
        }
    }

    /// Another XDP program of the same object (the benchmark's baseline,
    /// floor and transmitter).
    pub fn other_program_mut(&mut self, name: &'static str) -> Result<&mut Xdp, KernelError> {
        self.other(name, Xdp::load)
    }

    /// Another TC program of the same object (the benchmark's baseline).
    pub fn other_tc_program_mut(
        &mut self,
        name: &'static str,
    ) -> Result<&mut SchedClassifier, KernelError> {
        self.other(name, SchedClassifier::load)
    }

    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    fn take_ring(&mut self, name: &'static str) -> Result<RingBuf<MapData>, KernelError> {
        let map = self
            .ebpf
            .take_map(name)
            .ok_or(KernelError::MissingMap(name))?;
        RingBuf::try_from(map).map_err(map_err(name))
    }

    /// The events ring buffer (window closes, concentration, flow events),
    /// to be read by one consumer.
    pub fn take_events(&mut self) -> Result<RingBuf<MapData>, KernelError> {
        self.take_ring(maps::EVENTS)
    }

    /// The payload-sample ring buffer.
    pub fn take_samples(&mut self) -> Result<RingBuf<MapData>, KernelError> {
        self.take_ring(maps::SAMPLES)
    }

    /// Another handle on the flow flush (see [`flows::FlowFlusher`]), for
    /// the thread that ends flows.
    pub fn flow_flusher(&self) -> Result<flows::FlowFlusher, KernelError> {
        self.flusher.try_clone().map_err(flush_error)
    }

    /// Flushes every CPU's flow cache into the flow maps now.
    pub fn flush_flows(&self) -> Result<(), KernelError> {
        self.flusher.flush().map_err(flush_error)
    }

    /// The flow maps, for the thread that ends flows (see [`flows`]).
    pub fn take_flows(&mut self) -> Result<flows::FlowMaps, KernelError> {
        Ok(flows::FlowMaps {
            v4: self.take_flow_map(maps::FLOWS4)?,
            v6: self.take_flow_map(maps::FLOWS6)?,
        })
    }

    fn take_flow_map<A>(&mut self, name: &'static str) -> Result<flows::FlowMap<A>, KernelError>
    where
        FlowKey<A>: Pod,
    {
        use std::os::fd::AsFd;
        let map = self
            .ebpf
            .take_map(name)
            .ok_or(KernelError::MissingMap(name))?;
        let fd = match &map {
            Map::HashMap(data) => {
                data.fd()
                    .as_fd()
                    .try_clone_to_owned()
                    .map_err(|e| KernelError::Map {
                        name,
                        source: MapError::SyscallError(aya::sys::SyscallError {
                            call: "dup",
                            io_error: e,
                        }),
                    })?
            }
            _ => return Err(KernelError::MissingMap(name)),
        };
        let map = HashMap::try_from(map).map_err(map_err(name))?;
        Ok(flows::FlowMap { map, fd })
    }

    /// Takes one hash map out of the object, typed.
    fn take_hash<K: aya::Pod, V: aya::Pod>(
        &mut self,
        name: &'static str,
    ) -> Result<HashMap<MapData, K, V>, KernelError> {
        let map = self
            .ebpf
            .take_map(name)
            .ok_or(KernelError::MissingMap(name))?;
        HashMap::try_from(map).map_err(map_err(name))
    }

    /// The block maps, for the enforcer.
    pub fn take_blocks(&mut self) -> Result<BlockMaps, KernelError> {
        Ok(BlockMaps {
            v4: self.take_hash(maps::BLOCK4)?,
            v6: self.take_hash(maps::BLOCK6)?,
        })
    }

    /// The host maps, for a thread that counts hosts off the main loop.
    pub fn take_hosts(&mut self) -> Result<HostMaps, KernelError> {
        Ok(HostMaps {
            v4: self.take_hash(maps::HOSTS4)?,
            v6: self.take_hash(maps::HOSTS6)?,
        })
    }

    /// The counters map, for a thread that reads it off the main loop.
    pub fn take_counters(&mut self) -> Result<CountersMap, KernelError> {
        let map = self
            .ebpf
            .take_map(maps::COUNTERS)
            .ok_or(KernelError::MissingMap(maps::COUNTERS))?;
        Ok(CountersMap(
            PerCpuArray::try_from(map).map_err(map_err(maps::COUNTERS))?,
        ))
    }

    fn map(&self, name: &'static str) -> Result<&Map, KernelError> {
        self.ebpf.map(name).ok_or(KernelError::MissingMap(name))
    }

    fn hash_map<K: Pod, V: Pod>(
        &self,
        name: &'static str,
    ) -> Result<HashMap<&MapData, K, V>, KernelError> {
        HashMap::try_from(self.map(name)?).map_err(map_err(name))
    }

    /// Kernel memory a map uses, in bytes (what fdinfo reports as memlock).
    pub fn map_memory(&self, name: &'static str) -> Result<u64, KernelError> {
        let data = match self.map(name)? {
            Map::LruHashMap(d) | Map::HashMap(d) | Map::Array(d) | Map::PerCpuArray(d) => d,
            Map::RingBuf(d) => d,
            _ => return Err(KernelError::MissingMap(name)),
        };
        memlock(data).ok_or(KernelError::MissingMap(name))
    }

    /// Counters summed over CPUs.
    pub fn counters(&self) -> Result<Counters, KernelError> {
        let array: PerCpuArray<_, Counters> =
            PerCpuArray::try_from(self.map(maps::COUNTERS)?).map_err(map_err(maps::COUNTERS))?;
        let per_cpu = array.get(&0, 0).map_err(map_err(maps::COUNTERS))?;
        let mut total = Counters::default();
        for c in per_cpu.iter() {
            total.add(c);
        }
        Ok(total)
    }

    pub fn host4(&self, host: Ipv4Addr) -> Result<Option<HostEntry<u32>>, KernelError> {
        lookup(
            &self.hash_map(maps::HOSTS4)?,
            &u32::from(host),
            maps::HOSTS4,
        )
    }

    pub fn host6(&self, host: Ipv6Addr) -> Result<Option<HostEntry<V6>>, KernelError> {
        lookup(&self.hash_map(maps::HOSTS6)?, &V6::from(host), maps::HOSTS6)
    }

    /// Every tracked IPv4 host (a snapshot; entries may change meanwhile).
    pub fn hosts4(&self) -> Result<Vec<(Ipv4Addr, HostEntry<u32>)>, KernelError> {
        self.hash_map::<u32, HostEntry<u32>>(maps::HOSTS4)?
            .iter()
            .map(|r| r.map(|(k, v)| (Ipv4Addr::from(k), v)))
            .collect::<Result<_, _>>()
            .map_err(map_err(maps::HOSTS4))
    }

    pub fn hosts6(&self) -> Result<Vec<(Ipv6Addr, HostEntry<V6>)>, KernelError> {
        self.hash_map::<V6, HostEntry<V6>>(maps::HOSTS6)?
            .iter()
            .map(|r| r.map(|(k, v)| (Ipv6Addr::from(k), v)))
            .collect::<Result<_, _>>()
            .map_err(map_err(maps::HOSTS6))
    }

    /// Hosts tracked in both families (walks the maps' keys).
    pub fn host_count(&self) -> Result<u64, KernelError> {
        let v4 = self
            .hash_map::<u32, HostEntry<u32>>(maps::HOSTS4)?
            .keys()
            .count();
        let v6 = self
            .hash_map::<V6, HostEntry<V6>>(maps::HOSTS6)?
            .keys()
            .count();
        Ok((v4 + v6) as u64)
    }

    /// Every flow still in the maps (not available once taken), with every
    /// CPU's cached counts flushed into them first.
    pub fn flows4(&self) -> Result<Vec<(FlowKey<u32>, FlowValue)>, KernelError> {
        self.flush_flows()?;
        self.hash_map::<FlowKey<u32>, FlowValue>(maps::FLOWS4)?
            .iter()
            .collect::<Result<_, _>>()
            .map_err(map_err(maps::FLOWS4))
    }

    pub fn flows6(&self) -> Result<Vec<(FlowKey<V6>, FlowValue)>, KernelError> {
        self.flush_flows()?;
        self.hash_map::<FlowKey<V6>, FlowValue>(maps::FLOWS6)?
            .iter()
            .collect::<Result<_, _>>()
            .map_err(map_err(maps::FLOWS6))
    }
}

/// The host maps, owned.
/// The block maps an enforcement policy writes (see `enforce`).
pub struct BlockMaps {
    pub v4: HashMap<MapData, vpnfp_common::block::PairKey<u32>, vpnfp_common::block::BlockValue>,
    pub v6: HashMap<MapData, vpnfp_common::block::PairKey<V6>, vpnfp_common::block::BlockValue>,
}

pub struct HostMaps {
    pub v4: HashMap<MapData, u32, HostEntry<u32>>,
    pub v6: HashMap<MapData, V6, HostEntry<V6>>,
}

impl HostMaps {
    /// Hosts tracked in both families (walks the keys).
    pub fn count(&self) -> u64 {
        (self.v4.keys().count() + self.v6.keys().count()) as u64
    }

    /// The state of `host`, if tracked.
    pub fn get(&self, host: std::net::IpAddr) -> Option<(u64, u64)> {
        match host {
            std::net::IpAddr::V4(a) => self
                .v4
                .get(&u32::from(a), 0)
                .ok()
                .map(|e| (e.research.count_this, e.research.count_prev)),
            std::net::IpAddr::V6(a) => self
                .v6
                .get(&V6::from(a), 0)
                .ok()
                .map(|e| (e.research.count_this, e.research.count_prev)),
        }
    }
}

/// The per-CPU counters map, owned.
pub struct CountersMap(PerCpuArray<MapData, Counters>);

impl CountersMap {
    /// Summed over CPUs.
    pub fn read(&self) -> Result<Counters, KernelError> {
        let per_cpu = self.0.get(&0, 0).map_err(map_err(maps::COUNTERS))?;
        let mut total = Counters::default();
        for c in per_cpu.iter() {
            total.add(c);
        }
        Ok(total)
    }
}

fn lookup<K: Pod, V: Pod>(
    map: &HashMap<&MapData, K, V>,
    key: &K,
    name: &'static str,
) -> Result<Option<V>, KernelError> {
    match map.get(key, 0) {
        Ok(v) => Ok(Some(v)),
        Err(MapError::KeyNotFound) => Ok(None),
        Err(e) => Err(map_err(name)(e)),
    }
}

/// A map's kernel memory as fdinfo reports it (memlock).
pub fn memlock(data: &MapData) -> Option<u64> {
    use std::os::fd::{AsFd, AsRawFd};
    let fd = data.fd().as_fd().as_raw_fd();
    std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("memlock:"))
                .and_then(|v| v.trim().parse().ok())
        })
}

/// The program `name` of the object, as its kind `P`; `label` names it in
/// errors.
fn program_as<'a, P>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
    label: &'static str,
) -> Result<&'a mut P, KernelError>
where
    &'a mut P: TryFrom<&'a mut aya::programs::Program, Error = ProgramError>,
{
    ebpf.program_mut(name)
        .ok_or(KernelError::MissingProgram(name))?
        .try_into()
        .map_err(|source| KernelError::Program {
            program: label,
            source,
        })
}

fn xdp_mut(ebpf: &mut Ebpf) -> Result<&mut Xdp, KernelError> {
    program_as(ebpf, maps::PROGRAM, "XDP")
}

fn tc_mut(ebpf: &mut Ebpf) -> Result<&mut SchedClassifier, KernelError> {
    program_as(ebpf, maps::PROGRAM_TC, "TC")
}

/// The interface's index now: `Ok(None)` when it is gone, an error when the
/// check itself failed (no file descriptor left, no memory), which says
/// nothing about the interface.
pub fn if_index_now(iface: &str) -> std::io::Result<Option<u32>> {
    let name = std::ffi::CString::new(iface).map_err(std::io::Error::other)?;
    // SAFETY: valid NUL-terminated string.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => {
            let e = std::io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::ENODEV) | Some(libc::ENXIO) => Ok(None),
                _ => Err(e),
            }
        }
        index => Ok(Some(index)),
    }
}

/// The interface's index, or a clear error before anything is loaded.
pub fn if_index(iface: &str) -> Result<u32, KernelError> {
    let name = std::ffi::CString::new(iface)
        .map_err(|_| KernelError::UnknownInterface(iface.to_string()))?;
    // SAFETY: valid NUL-terminated string.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(KernelError::UnknownInterface(iface.to_string())),
        index => Ok(index),
    }
}
