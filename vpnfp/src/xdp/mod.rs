//! Loading, configuring and attaching the XDP program, and reading its maps.
//! Map names and record layouts are `vpnfp_common::maps`'.

use std::net::Ipv4Addr;

use aya::{
    Ebpf, EbpfLoader, Pod,
    maps::{Array, HashMap, Map, MapData, MapError, PerCpuArray, RingBuf},
    programs::{ProgramError, Xdp, XdpMode},
};
use vpnfp_common::{
    Counters, FlowCounters, FlowKey, HostState, KernelConfig, config::CONFIG_MAGIC, maps,
};

pub mod pin;

/// The object `cargo xtask build` compiled, embedded by build.rs (empty when
/// the crate was built without it).
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/vpnfp-ebpf.o"));

/// The embedded XDP object, or `None` in a build without it.
pub fn embedded_object() -> Option<&'static [u8]> {
    (!OBJECT.is_empty()).then_some(OBJECT)
}

#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error(
        "this vpnfp binary was built without the XDP program; build it with `cargo xtask build` (or run `cargo xtask run`)"
    )]
    NoEmbeddedObject,
    #[error("loading the eBPF object failed")]
    Load(#[source] aya::EbpfError),
    #[error(
        "the kernel's verifier rejected the XDP program ({io_error}); run with -v to see the verifier log"
    )]
    Verifier {
        io_error: std::io::Error,
        verifier_log: String,
    },
    #[error("loading the XDP program failed")]
    Program(#[source] ProgramError),
    #[error("unknown network interface '{0}' (see `ip link`)")]
    UnknownInterface(String),
    #[error("attaching XDP to {iface} in {mode} mode failed")]
    Attach {
        iface: String,
        mode: &'static str,
        #[source]
        source: ProgramError,
    },
    #[error("the object has no map {0}: it does not match this vpnfp")]
    MissingMap(&'static str),
    #[error("the object has no XDP program {0}: it does not match this vpnfp")]
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

impl XdpError {
    /// The verifier's log, for `-v`.
    pub fn verifier_log(&self) -> Option<&str> {
        match self {
            XdpError::Verifier { verifier_log, .. } => Some(verifier_log),
            _ => None,
        }
    }
}

/// How to attach: `Auto` tries native (driver) XDP and falls back to generic.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AttachMode {
    Auto,
    Native,
    Skb,
}

/// Map sizes, fixed at load time, and where the state maps are pinned.
#[derive(Clone, Debug)]
pub struct Capacities {
    pub max_hosts: u32,
    pub max_flows: u32,
    pub ring_bytes: u32,
    /// `Some(dir)`: keep config, hosts, flows and counters pinned there, and
    /// continue from what is pinned.
    pub pin_dir: Option<std::path::PathBuf>,
}

impl Default for Capacities {
    fn default() -> Self {
        Self {
            max_hosts: maps::DEFAULT_MAX_HOSTS,
            max_flows: maps::DEFAULT_MAX_FLOWS,
            ring_bytes: maps::DEFAULT_RING_BYTES,
            pin_dir: None,
        }
    }
}

/// The loaded program and its maps. Dropping it detaches from every
/// interface and unloads the program.
pub struct XdpFingerprinter {
    ebpf: Ebpf,
}

fn map_err(name: &'static str) -> impl FnOnce(MapError) -> XdpError {
    move |source| XdpError::Map { name, source }
}

impl XdpFingerprinter {
    /// Loads the embedded object. `kernel_log_level` is aya-log's level for
    /// the program's own log lines (0 = off).
    pub fn load(capacities: Capacities, kernel_log_level: u8) -> Result<Self, XdpError> {
        let object = embedded_object().ok_or(XdpError::NoEmbeddedObject)?;
        Self::load_object(object, capacities, kernel_log_level)
    }

    pub fn load_object(
        object: &[u8],
        capacities: Capacities,
        kernel_log_level: u8,
    ) -> Result<Self, XdpError> {
        let mut loader = EbpfLoader::new();
        loader
            .map_max_entries(maps::HOSTS, capacities.max_hosts)
            .map_max_entries(maps::FLOWS, capacities.max_flows)
            .map_max_entries(maps::WINDOW_CLOSES, capacities.ring_bytes)
            .override_global(aya_log::LEVEL, &kernel_log_level, false);
        if let Some(dir) = &capacities.pin_dir {
            pin::prepare(dir, &capacities)?;
            for (name, _, _) in pin::pinned_maps() {
                loader.map_pin_path(name, dir.join(name));
            }
        }
        let mut ebpf = loader.load(object).map_err(XdpError::Load)?;
        let program = program_mut(&mut ebpf)?;
        program.load().map_err(|e| match e {
            ProgramError::LoadError {
                io_error,
                verifier_log,
            } => XdpError::Verifier {
                io_error,
                verifier_log: verifier_log.to_string(),
            },
            other => XdpError::Program(other),
        })?;
        let fingerprinter = Self { ebpf };
        if let Some(dir) = &capacities.pin_dir {
            // A pinned config written by another layout version is refused
            // (a zero magic is a fresh map).
            let found = fingerprinter.pinned_config_magic()?;
            if found != 0 && found != CONFIG_MAGIC {
                return Err(XdpError::StaleConfig {
                    dir: dir.display().to_string(),
                    found,
                });
            }
        }
        Ok(fingerprinter)
    }

    fn pinned_config_magic(&self) -> Result<u32, XdpError> {
        let array: Array<_, KernelConfig> =
            Array::try_from(self.map(maps::CONFIG)?).map_err(map_err(maps::CONFIG))?;
        Ok(array.get(&0, 0).map_err(map_err(maps::CONFIG))?.magic)
    }

    /// Writes the config the program reads on every packet (no reload).
    pub fn configure(&mut self, config: &KernelConfig) -> Result<(), XdpError> {
        let map = self
            .ebpf
            .map_mut(maps::CONFIG)
            .ok_or(XdpError::MissingMap(maps::CONFIG))?;
        let mut array: Array<_, KernelConfig> =
            Array::try_from(map).map_err(map_err(maps::CONFIG))?;
        array.set(0, config, 0).map_err(map_err(maps::CONFIG))
    }

    /// Attaches to `iface`; returns the mode actually used.
    pub fn attach(&mut self, iface: &str, mode: AttachMode) -> Result<&'static str, XdpError> {
        let index = if_index(iface)?;
        let program = program_mut(&mut self.ebpf)?;
        let try_mode = |program: &mut Xdp, mode: XdpMode, name: &'static str| {
            program
                .attach_to_if_index(index, mode)
                .map(|_| name)
                .map_err(|source| XdpError::Attach {
                    iface: iface.to_string(),
                    mode: name,
                    source,
                })
        };
        match mode {
            AttachMode::Native => try_mode(program, XdpMode::Driver, "native"),
            AttachMode::Skb => try_mode(program, XdpMode::Skb, "skb"),
            AttachMode::Auto => match try_mode(program, XdpMode::Driver, "native") {
                Ok(used) => Ok(used),
                Err(native) => {
                    log::warn!("{native:#}; falling back to skb (generic) mode");
                    try_mode(program, XdpMode::Skb, "skb")
                }
            },
        }
    }

    pub fn program_mut(&mut self) -> Result<&mut Xdp, XdpError> {
        program_mut(&mut self.ebpf)
    }

    /// Another XDP program of the same object (the benchmark's baseline and
    /// transmitter), loaded on first use with the same maps.
    pub fn other_program_mut(&mut self, name: &'static str) -> Result<&mut Xdp, XdpError> {
        let program: &mut Xdp = self
            .ebpf
            .program_mut(name)
            .ok_or(XdpError::MissingProgram(name))?
            .try_into()
            .map_err(XdpError::Program)?;
        match program.load() {
            Ok(()) | Err(ProgramError::AlreadyLoaded) => Ok(program),
            Err(e) => Err(XdpError::Program(e)),
        }
    }

    pub fn ebpf_mut(&mut self) -> &mut Ebpf {
        &mut self.ebpf
    }

    /// The window-close ring buffer, to be read by one consumer.
    pub fn take_window_closes(&mut self) -> Result<RingBuf<MapData>, XdpError> {
        let map = self
            .ebpf
            .take_map(maps::WINDOW_CLOSES)
            .ok_or(XdpError::MissingMap(maps::WINDOW_CLOSES))?;
        RingBuf::try_from(map).map_err(map_err(maps::WINDOW_CLOSES))
    }

    fn map(&self, name: &'static str) -> Result<&Map, XdpError> {
        self.ebpf.map(name).ok_or(XdpError::MissingMap(name))
    }

    fn hash_map<K: Pod, V: Pod>(
        &self,
        name: &'static str,
    ) -> Result<HashMap<&MapData, K, V>, XdpError> {
        HashMap::try_from(self.map(name)?).map_err(map_err(name))
    }

    /// Kernel memory a map uses, in bytes (what fdinfo reports as memlock).
    pub fn map_memory(&self, name: &'static str) -> Result<u64, XdpError> {
        use std::os::fd::{AsFd, AsRawFd};
        let data = match self.map(name)? {
            Map::LruHashMap(d) | Map::HashMap(d) | Map::Array(d) | Map::PerCpuArray(d) => d,
            Map::RingBuf(d) => d,
            _ => return Err(XdpError::MissingMap(name)),
        };
        let fd = data.fd().as_fd().as_raw_fd();
        std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}"))
            .ok()
            .and_then(|info| {
                info.lines()
                    .find_map(|l| l.strip_prefix("memlock:"))
                    .and_then(|v| v.trim().parse().ok())
            })
            .ok_or(XdpError::MissingMap(name))
    }

    /// Counters summed over CPUs.
    pub fn counters(&self) -> Result<Counters, XdpError> {
        let array: PerCpuArray<_, Counters> =
            PerCpuArray::try_from(self.map(maps::COUNTERS)?).map_err(map_err(maps::COUNTERS))?;
        let per_cpu = array.get(&0, 0).map_err(map_err(maps::COUNTERS))?;
        let mut total = Counters::default();
        for c in per_cpu.iter() {
            total.add(c);
        }
        Ok(total)
    }

    pub fn host_state(&self, host: Ipv4Addr) -> Result<Option<HostState>, XdpError> {
        match self
            .hash_map::<u32, HostState>(maps::HOSTS)?
            .get(&u32::from(host), 0)
        {
            Ok(state) => Ok(Some(state)),
            Err(MapError::KeyNotFound) => Ok(None),
            Err(e) => Err(map_err(maps::HOSTS)(e)),
        }
    }

    /// Every tracked host (a snapshot; entries may change while iterating).
    pub fn hosts(&self) -> Result<Vec<(Ipv4Addr, HostState)>, XdpError> {
        self.hash_map::<u32, HostState>(maps::HOSTS)?
            .iter()
            .map(|r| r.map(|(k, v)| (Ipv4Addr::from(k), v)))
            .collect::<Result<_, _>>()
            .map_err(map_err(maps::HOSTS))
    }

    pub fn flows(&self) -> Result<Vec<(FlowKey, FlowCounters)>, XdpError> {
        self.hash_map::<FlowKey, FlowCounters>(maps::FLOWS)?
            .iter()
            .collect::<Result<_, _>>()
            .map_err(map_err(maps::FLOWS))
    }
}

fn program_mut(ebpf: &mut Ebpf) -> Result<&mut Xdp, XdpError> {
    ebpf.program_mut(maps::PROGRAM)
        .ok_or(XdpError::MissingProgram(maps::PROGRAM))?
        .try_into()
        .map_err(XdpError::Program)
}

/// The interface's index, or a clear error before anything is loaded.
pub fn if_index(iface: &str) -> Result<u32, XdpError> {
    let name =
        std::ffi::CString::new(iface).map_err(|_| XdpError::UnknownInterface(iface.to_string()))?;
    // SAFETY: valid NUL-terminated string.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } {
        0 => Err(XdpError::UnknownInterface(iface.to_string())),
        index => Ok(index),
    }
}
