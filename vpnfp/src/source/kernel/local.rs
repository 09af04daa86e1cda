//! Endpoint mode (`vpnfp run --local`): attaching the socket programs to a
//! cgroup, and naming the process behind each flow from their maps
//! (`vpnfp_common::local`).
//!
//! A socket's owner is sent by the kernel when it changes; its executable
//! and cgroup path are read from /proc at that moment, while the process
//! still runs, and kept (a short-lived curl is named after it exited).

use std::{
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, Instant},
};

use aya::{
    maps::{HashMap, MapData, MapError},
    programs::{CgroupAttachMode, CgroupSock, CgroupSockAddr, RawTracePoint},
};
use hashlink::LruCache;
use vpnfp_common::{
    FlowKey, V6,
    local::{self, LocalConfig, Owner, OwnerRecord},
};

use super::{KernelError, KernelFingerprinter, map_err, program_as};
use crate::model::{FlowId, Process, ProcessField};

/// The cgroup v2 hierarchy's mount point (`/sys/fs/cgroup` on a unified
/// system, `/sys/fs/cgroup/unified` in hybrid mode).
pub fn cgroup2_root() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mounts.lines().find_map(|line| {
        // ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS... - FSTYPE SOURCE ...
        let (left, right) = line.split_once(" - ")?;
        (right.split_whitespace().next() == Some("cgroup2"))
            .then(|| left.split_whitespace().nth(4).map(PathBuf::from))
            .flatten()
    })
}

/// The cgroup the socket programs watch: its directory, id and depth.
#[derive(Clone, Debug)]
pub struct WatchedCgroup {
    pub path: PathBuf,
    pub config: LocalConfig,
}

impl WatchedCgroup {
    /// `path` must be a directory of the cgroup v2 hierarchy.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let root = cgroup2_root().ok_or_else(|| {
            anyhow::anyhow!(
                "no cgroup v2 hierarchy is mounted here (see `mount -t cgroup2`); --local needs one. Under `ip netns exec`, /sys is mounted afresh without it: use `nsenter --net=/run/netns/NAME` instead"
            )
        })?;
        let path = path
            .canonicalize()
            .map_err(|e| anyhow::anyhow!("--cgroup {}: {e}", path.display()))?;
        let below = path.strip_prefix(&root).map_err(|_| {
            anyhow::anyhow!(
                "--cgroup {}: not in the cgroup v2 hierarchy ({})",
                path.display(),
                root.display()
            )
        })?;
        let meta = std::fs::metadata(&path)
            .map_err(|e| anyhow::anyhow!("--cgroup {}: {e}", path.display()))?;
        Ok(Self {
            config: LocalConfig {
                cgroup_id: meta.ino(),
                cgroup_level: below.components().count() as u32,
                cookie_offset: 0,
            },
            path,
        })
    }
}

impl KernelFingerprinter {
    /// Loads the socket programs and attaches them to `cgroup` (beside any
    /// other program there); the send tracepoint too, where the kernel
    /// allows (without it a socket used after fork keeps its creator).
    /// Returns why the tracepoint is missing. They detach when the
    /// fingerprinter is dropped.
    pub fn attach_local(&mut self, cgroup: &WatchedCgroup) -> Result<Vec<String>, KernelError> {
        let mut missing = Vec::new();
        let mut local = cgroup.config;
        match std::fs::read("/sys/kernel/btf/vmlinux")
            .map_err(|e| e.to_string())
            .and_then(|btf| {
                btf_member_offset(&btf, "sock_common", "skc_cookie")
                    .ok_or_else(|| "no sock_common.skc_cookie in the kernel's BTF".to_string())
            }) {
            Ok(offset) => local.cookie_offset = offset,
            Err(why) => missing.push(why),
        }
        let mut config: aya::maps::Array<_, LocalConfig> = aya::maps::Array::try_from(
            self.ebpf
                .map_mut(local::LOCAL)
                .ok_or(KernelError::MissingMap(local::LOCAL))?,
        )
        .map_err(map_err(local::LOCAL))?;
        config.set(0, local, 0).map_err(map_err(local::LOCAL))?;
        let file = std::fs::File::open(&cgroup.path).map_err(|e| KernelError::Program {
            program: "cgroup",
            source: aya::programs::ProgramError::IOError(e),
        })?;
        // A link (5.7+) never excludes the cgroup's other programs; the
        // kernel refuses the multi flag on links.
        let cgroup_name = cgroup.path.display().to_string();
        let attach_error = |program: &'static str| {
            let cgroup = cgroup_name.clone();
            move |source| KernelError::AttachCgroup {
                program,
                cgroup,
                source,
            }
        };
        let sock: &mut CgroupSock =
            program_as(&mut self.ebpf, local::PROGRAM_SOCK_CREATE, "sock_create")?;
        sock.load().map_err(super::load_error("sock_create"))?;
        sock.attach(&file, CgroupAttachMode::Single)
            .map_err(attach_error("sock_create"))?;
        for name in [
            local::PROGRAM_CONNECT4,
            local::PROGRAM_CONNECT6,
            local::PROGRAM_SENDMSG4,
            local::PROGRAM_SENDMSG6,
        ] {
            let program: &mut CgroupSockAddr = program_as(&mut self.ebpf, name, name)?;
            program.load().map_err(super::load_error(name))?;
            program
                .attach(&file, CgroupAttachMode::Single)
                .map_err(attach_error(name))?;
        }
        if local.cookie_offset == 0 {
            return Ok(missing);
        }
        let attached = (|| {
            let program: &mut RawTracePoint =
                program_as(&mut self.ebpf, local::PROGRAM_SOCK_SEND, "sock_send")
                    .map_err(|e| e.to_string())?;
            program.load().map_err(|e| e.to_string())?;
            program
                .attach(local::SOCK_SEND_TRACEPOINT)
                .map(|_| ())
                .map_err(|e| e.to_string())
        })();
        if let Err(why) = attached {
            missing.push(format!("tracepoint {}: {why}", local::SOCK_SEND_TRACEPOINT));
        }
        Ok(missing)
    }

    /// The maps the attribution reads.
    pub fn take_local(&mut self) -> Result<LocalMaps, KernelError> {
        Ok(LocalMaps {
            owners: self.take_hash(local::OWNERS)?,
            sockets4: self.take_hash(local::SOCKETS4)?,
            sockets6: self.take_hash(local::SOCKETS6)?,
        })
    }

    /// The per-program block map, for the enforcer.
    pub fn take_program_blocks(
        &mut self,
    ) -> Result<HashMap<MapData, u32, local::ProgramBlock>, KernelError> {
        self.take_hash(local::PROGRAM_BLOCKS)
    }
}

pub struct LocalMaps {
    owners: HashMap<MapData, u64, Owner>,
    sockets4: HashMap<MapData, FlowKey<u32>, u64>,
    sockets6: HashMap<MapData, FlowKey<V6>, u64>,
}

/// A process read from /proc is taken as the same while its (pid, comm)
/// is, for this long (pids are reused only after the kernel wraps them).
const PROCESS_FRESH: Duration = Duration::from_secs(60);

/// Names the process behind flows from the kernel's maps and owner records.
pub struct Attribution {
    maps: LocalMaps,
    /// Socket cookie to its owner, resolved.
    sockets: LruCache<u64, Arc<Process>>,
    /// (pid, comm) to the process read from /proc, and when.
    processes: LruCache<(u32, [u8; 16]), (Arc<Process>, Instant)>,
    /// Flows already attributed from one of their samples: their later
    /// samples need no map lookup (a syscall each); their records look
    /// again, the socket may have changed hands since.
    sampled: LruCache<FlowId, ()>,
}

impl Attribution {
    pub fn new(maps: LocalMaps) -> Self {
        let size = local::MAX_OWNERS as usize;
        Self {
            maps,
            sockets: LruCache::new(size),
            processes: LruCache::new(size),
            sampled: LruCache::new(local::MAX_SOCKET_FLOWS as usize),
        }
    }

    /// A socket's new owner: the process, read now. `Some` the first time
    /// this process is seen (a policy may have a rule for it).
    pub fn owner(&mut self, record: &OwnerRecord) -> Option<Arc<Process>> {
        let (process, new) = self.process(&record.owner);
        self.sockets.insert(record.cookie, process.clone());
        new.then_some(process)
    }

    /// For a sample: the process behind its flow, unless an earlier sample
    /// already gave it.
    pub fn sample(&mut self, id: &FlowId) -> Option<ProcessField> {
        if self.sampled.contains_key(id) {
            return None;
        }
        let found = self.flow(id)?;
        self.sampled.insert(*id, ());
        Some(found)
    }

    /// For a flow record: the process behind the flow, looked up again;
    /// an ended flow is forgotten.
    pub fn record(&mut self, id: &FlowId, ended: bool) -> Option<ProcessField> {
        if ended {
            self.sampled.remove(id);
        }
        self.flow(id)
    }

    /// The process behind a flow, if a watched socket sent its packets;
    /// `NoSocket` if its packets left without one.
    fn flow(&mut self, id: &FlowId) -> Option<ProcessField> {
        let cookie = self.cookie(id)?;
        if cookie == local::NO_SOCKET {
            return Some(ProcessField::NoSocket);
        }
        if let Some(p) = self.sockets.get(&cookie) {
            return Some(ProcessField::Known(p.clone()));
        }
        // The owner record may still wait in the ring, or was lost: the
        // map holds the owner too.
        let owner = self.maps.owners.get(&cookie, 0).ok()?;
        let (process, _) = self.process(&owner);
        self.sockets.insert(cookie, process.clone());
        Some(ProcessField::Known(process))
    }

    fn cookie(&self, id: &FlowId) -> Option<u64> {
        let key = id.record();
        let found: Result<u64, MapError> = if let Some(k) = key.key::<u32>() {
            self.maps.sockets4.get(&k, 0)
        } else {
            self.maps.sockets6.get(&key.key::<V6>()?, 0)
        };
        found.ok().filter(|&c| c != 0)
    }

    fn process(&mut self, owner: &Owner) -> (Arc<Process>, bool) {
        let key = (owner.pid(), owner.comm);
        if let Some((p, at)) = self.processes.get(&key)
            && at.elapsed() < PROCESS_FRESH
        {
            return (p.clone(), false);
        }
        let process = Arc::new(read_process(owner));
        self.processes
            .insert(key, (process.clone(), Instant::now()));
        (process, true)
    }
}

/// The byte offset of `member` in struct `name`, from raw BTF (the
/// kernel's /sys/kernel/btf/vmlinux). Hand-written: aya reads BTF but
/// keeps its types to itself, and this is one lookup at start.
fn btf_member_offset(btf: &[u8], name: &str, member: &str) -> Option<u32> {
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(btf.get(at..at + 4)?.try_into().ok()?))
    };
    if btf.get(0..2)? != [0x9f, 0xeb] {
        return None;
    }
    let hdr_len = u32_at(4)? as usize;
    let (type_off, type_len) = (u32_at(8)? as usize, u32_at(12)? as usize);
    let str_off = u32_at(16)? as usize;
    let strings = hdr_len + str_off;
    let name_at = |off: u32| -> Option<&[u8]> {
        let start = strings + off as usize;
        let rest = btf.get(start..)?;
        Some(&rest[..rest.iter().position(|&b| b == 0)?])
    };
    let mut at = hdr_len + type_off;
    let end = at + type_len;
    while at + 12 <= end {
        let (name_off, info) = (u32_at(at)?, u32_at(at + 4)?);
        let (kind, vlen) = ((info >> 24) & 0x1f, (info & 0xffff) as usize);
        let kind_flag = info >> 31 == 1;
        at += 12;
        // Each kind's data after the common 12 bytes (BTF_KIND_*).
        let extra = match kind {
            1 | 14 | 17 => 4,
            3 => 12,
            4 | 5 | 15 | 19 => vlen * 12,
            6 | 13 => vlen * 8,
            _ => 0,
        };
        if kind == 4 && name_at(name_off)? == name.as_bytes() {
            for i in 0..vlen {
                let m = at + i * 12;
                if name_at(u32_at(m)?)? == member.as_bytes() {
                    let bits = u32_at(m + 8)?;
                    let bits = if kind_flag { bits & 0xff_ffff } else { bits };
                    return Some(bits / 8);
                }
            }
            return None;
        }
        at += extra;
    }
    None
}

/// The process as /proc shows it now; what the kernel noted where /proc
/// no longer has it.
fn read_process(owner: &Owner) -> Process {
    let dir = PathBuf::from(format!("/proc/{}", owner.pid()));
    let comm_len = owner.comm.iter().position(|&b| b == 0).unwrap_or(16);
    let exe = std::fs::read_link(dir.join("exe")).ok().map(|p| {
        p.to_string_lossy()
            .trim_end_matches(" (deleted)")
            .to_string()
    });
    let cgroup = std::fs::read_to_string(dir.join("cgroup"))
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("0::").map(str::to_string))
        });
    Process {
        pid: owner.pid(),
        comm: String::from_utf8_lossy(&owner.comm[..comm_len]).into_owned(),
        exe,
        uid: owner.uid(),
        cgroup,
    }
}
