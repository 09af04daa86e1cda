//! `--pin`: the XDP program's state maps live in a BPF filesystem so a
//! restarted controller continues every window where the last one stopped.
//! Pins left by another vpnfp version, or made for other capacities, are
//! refused with an explanation instead of being misread.

use std::{
    ffi::CString,
    path::{Path, PathBuf},
};

use aya::maps::MapInfo;
use vpnfp_common::{Counters, FlowCounters, FlowKey, HostState, KernelConfig, maps};

use super::Capacities;

/// Where `--pin` keeps the maps unless told otherwise.
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/vpnfp";
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error(
        "{0} is not on a BPF filesystem: mount one there (mount -t bpf bpf DIR) or pick another --pin directory"
    )]
    NotBpfFs(PathBuf),
    #[error("mounting the BPF filesystem at /sys/fs/bpf failed")]
    Mount(#[source] std::io::Error),
    #[error("creating {0}")]
    CreateDir(PathBuf, #[source] std::io::Error),
    #[error(
        "{path} was pinned by another vpnfp version or another program ({what}); remove the stale pins to start fresh: rm -r {dir}"
    )]
    Stale {
        path: PathBuf,
        dir: PathBuf,
        what: String,
    },
    #[error(
        "{path} holds {pinned} entries but this run asks for {wanted} ({flag}): run with {flag} {pinned} to continue, or remove the pins to start fresh: rm -r {dir}"
    )]
    Capacity {
        path: PathBuf,
        dir: PathBuf,
        pinned: u32,
        wanted: u32,
        flag: &'static str,
    },
}

/// The state maps, with the key and value sizes this version uses.
pub fn pinned_maps() -> [(&'static str, usize, usize); 4] {
    [
        (maps::CONFIG, 4, size_of::<KernelConfig>()),
        (maps::HOSTS, 4, size_of::<HostState>()),
        (maps::FLOWS, size_of::<FlowKey>(), size_of::<FlowCounters>()),
        (maps::COUNTERS, 4, size_of::<Counters>()),
    ]
}

fn fs_type(path: &Path) -> Option<i64> {
    let c = CString::new(path.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: a valid path and a zeroed statfs to fill.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    (unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0).then_some(st.f_type as i64)
}

/// Makes `dir` usable for pins (mounting /sys/fs/bpf if that is where it
/// goes and nothing is mounted there) and checks existing pins against
/// this version's layout and `capacities`. Nothing is created or changed
/// when a check fails.
pub fn prepare(dir: &Path, capacities: &Capacities) -> Result<(), PinError> {
    let parent = dir.parent().unwrap_or(Path::new("/"));
    if fs_type(parent) != Some(BPF_FS_MAGIC) {
        if parent == Path::new("/sys/fs/bpf") {
            let (src, target, fstype) = (c"bpf", c"/sys/fs/bpf", c"bpf");
            // SAFETY: constant NUL-terminated strings, no data.
            let rc = unsafe {
                libc::mount(
                    src.as_ptr(),
                    target.as_ptr(),
                    fstype.as_ptr(),
                    0,
                    std::ptr::null(),
                )
            };
            if rc != 0 {
                return Err(PinError::Mount(std::io::Error::last_os_error()));
            }
            log::info!("mounted a BPF filesystem at /sys/fs/bpf for --pin");
        } else {
            return Err(PinError::NotBpfFs(parent.to_path_buf()));
        }
    }
    for (name, key_size, value_size) in pinned_maps() {
        let path = dir.join(name);
        if !path.exists() {
            continue;
        }
        let stale = |what: String| PinError::Stale {
            path: path.clone(),
            dir: dir.to_path_buf(),
            what,
        };
        let info = MapInfo::from_pin(&path).map_err(|e| stale(format!("not a BPF map: {e}")))?;
        if info.key_size() as usize != key_size || info.value_size() as usize != value_size {
            return Err(stale(format!(
                "key/value {}/{} bytes, this version uses {key_size}/{value_size}",
                info.key_size(),
                info.value_size()
            )));
        }
        let wanted = match name {
            n if n == maps::HOSTS => Some((capacities.max_hosts, "--max-hosts")),
            n if n == maps::FLOWS => Some((capacities.max_flows, "--max-flows")),
            _ => None,
        };
        if let Some((wanted, flag)) = wanted
            && info.max_entries() != wanted
        {
            return Err(PinError::Capacity {
                path,
                dir: dir.to_path_buf(),
                pinned: info.max_entries(),
                wanted,
                flag,
            });
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| PinError::CreateDir(dir.to_path_buf(), e))
}
