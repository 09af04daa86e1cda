//! `--pin`: the programs' state maps live in a BPF filesystem so a
//! restarted controller continues every window where the last one stopped.
//! Pins left by another vpnfp version, or made for other capacities, are
//! refused with an explanation instead of being misread; a pin directory
//! has one owner at a time.

use std::{
    ffi::CString,
    path::{Path, PathBuf},
};

use aya::maps::MapInfo;
use vpnfp_common::{Counters, FlowKey, FlowValue, HostEntry, KernelConfig, V6, maps};

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
        "{dir} holds {found}, which this vpnfp does not pin: the pins come from another vpnfp version; remove them to start fresh: rm -r {dir}"
    )]
    Foreign { dir: PathBuf, found: String },
    #[error(
        "--pin {dir} is in use by another vpnfp{owner}: one instance per pin directory (pick another --pin directory, or stop the other one)"
    )]
    InUse { dir: PathBuf, owner: String },
    #[error("--pin {0}: cannot take its lock")]
    Lock(PathBuf, #[source] std::io::Error),
    #[error(
        "--pin {0}: this vpnfp runs in a mount namespace of its own (as under `ip netns exec`), where /sys/fs/bpf is not the machine's BPF filesystem; pins made here would vanish with this run and a restart would start from nothing. Mount a BPF filesystem every run sees, outside /sys (in the root namespace: mkdir -p /run/vpnfp/bpf && mount -t bpf bpf /run/vpnfp/bpf), and pass --pin /run/vpnfp/bpf/vpnfp"
    )]
    PrivateNamespace(PathBuf),
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
pub fn pinned_maps() -> [(&'static str, usize, usize); 6] {
    [
        (maps::CONFIG, 4, size_of::<KernelConfig>()),
        (maps::HOSTS4, 4, size_of::<HostEntry<u32>>()),
        (maps::HOSTS6, 16, size_of::<HostEntry<V6>>()),
        (
            maps::FLOWS4,
            size_of::<FlowKey<u32>>(),
            size_of::<FlowValue>(),
        ),
        (
            maps::FLOWS6,
            size_of::<FlowKey<V6>>(),
            size_of::<FlowValue>(),
        ),
        (maps::COUNTERS, 4, size_of::<Counters>()),
    ]
}

/// The pin directory as an absolute path (a relative one is taken from the
/// current directory).
pub fn absolute(dir: &Path) -> PathBuf {
    if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|cwd| cwd.join(dir))
            .unwrap_or_else(|_| dir.to_path_buf())
    }
}

/// Whether this process runs in a mount namespace of its own, as under
/// `ip netns exec` (which unshares the mounts and mounts a fresh sysfs,
/// named after the network namespace). Any of three signs will do: another
/// mount namespace than PID 1's (when that can be read), a /sys mounted
/// from a source other than "sysfs", or a network namespace that `ip netns`
/// named.
fn private_mount_namespace() -> bool {
    if let (Ok(mine), Ok(init)) = (
        std::fs::read_link("/proc/self/ns/mnt"),
        std::fs::read_link("/proc/1/ns/mnt"),
    ) && mine != init
    {
        return true;
    }
    let sys_source = std::fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|info| {
            info.lines().rev().find_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                let dash = fields.iter().position(|f| *f == "-")?;
                (fields.get(4) == Some(&"/sys"))
                    .then(|| fields.get(dash + 2).map(|s| s.to_string()))?
            })
        });
    if sys_source.is_some_and(|s| s != "sysfs") {
        return true;
    }
    named_network_namespace()
}

/// Whether this process's network namespace is one `ip netns` created
/// (bind-mounted under /var/run/netns).
fn named_network_namespace() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(mine) = std::fs::metadata("/proc/self/ns/net") else {
        return false;
    };
    std::fs::read_dir("/var/run/netns").is_ok_and(|entries| {
        entries.flatten().any(|e| {
            std::fs::metadata(e.path())
                .is_ok_and(|m| m.ino() == mine.ino() && m.dev() == mine.dev())
        })
    })
}

/// The lock that makes one vpnfp the owner of a pin directory. It is an
/// flock on a file outside the BPF filesystem (which holds no regular
/// files): the kernel releases it when the owner dies, so a killed instance
/// never blocks the next one.
pub struct PinLock {
    _file: std::fs::File,
}

/// Where the locks live: root's own directories, never a world-writable
/// one (in /tmp another user's symlink could aim root's write elsewhere).
fn lock_base() -> PathBuf {
    if Path::new("/run").is_dir() {
        PathBuf::from("/run/vpnfp")
    } else {
        PathBuf::from("/var/lib/vpnfp/run")
    }
}

fn lock_name(dir: &Path) -> String {
    let name: String = dir
        .to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("pin{name}.lock")
}

/// `base`, made 0700 if missing, and refused unless it is a real
/// directory (no symlink) of ours that nobody else may write to.
fn private_dir(base: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    if std::fs::symlink_metadata(base).is_err() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(base)?;
    }
    let meta = std::fs::symlink_metadata(base)?;
    // SAFETY: no arguments.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != me || meta.mode() & 0o022 != 0 {
        return Err(std::io::Error::other(format!(
            "{} is not a directory of this user's that only it can write to",
            base.display()
        )));
    }
    Ok(())
}

impl PinLock {
    pub fn take(dir: &Path) -> Result<Self, PinError> {
        Self::take_in(&lock_base(), dir)
    }

    fn take_in(base: &Path, dir: &Path) -> Result<Self, PinError> {
        use std::{
            io::{Read, Seek, Write},
            os::{fd::AsRawFd, unix::fs::OpenOptionsExt},
        };
        let lock_err = |e| PinError::Lock(dir.to_path_buf(), e);
        private_dir(base).map_err(lock_err)?;
        let path = base.join(lock_name(dir));
        // O_NOFOLLOW: a symlink in place of the lock is refused.
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(lock_err)?;
        // SAFETY: a valid open file descriptor.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut owner = String::new();
                let _ = file.read_to_string(&mut owner);
                let owner = owner.trim();
                return Err(PinError::InUse {
                    dir: dir.to_path_buf(),
                    owner: if owner.is_empty() {
                        String::new()
                    } else {
                        format!(" (pid {owner})")
                    },
                });
            }
            return Err(lock_err(e));
        }
        file.set_len(0).map_err(lock_err)?;
        file.rewind().map_err(lock_err)?;
        write!(file, "{}", std::process::id()).map_err(lock_err)?;
        Ok(Self { _file: file })
    }
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
            if private_mount_namespace() {
                return Err(PinError::PrivateNamespace(dir.to_path_buf()));
            }
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
    if let Ok(entries) = std::fs::read_dir(dir) {
        let ours: Vec<&str> = pinned_maps().iter().map(|m| m.0).collect();
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !ours.contains(&name.as_str()) {
                return Err(PinError::Foreign {
                    dir: dir.to_path_buf(),
                    found: name,
                });
            }
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
            n if n == maps::HOSTS4 || n == maps::HOSTS6 => {
                Some((capacities.max_hosts, "--max-hosts"))
            }
            n if n == maps::FLOWS4 || n == maps::FLOWS6 => {
                Some((capacities.max_flows, "--max-flows"))
            }
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

#[cfg(test)]
mod lock_tests {
    use super::*;

    #[test]
    fn the_lock_never_follows_a_planted_symlink() {
        use std::os::unix::fs::PermissionsExt;
        let root = std::env::temp_dir().join(format!("vpnfp-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let dir = Path::new("/sys/fs/bpf/vpnfp");
        // A fresh base is made private, and the lock works (and is held).
        let base = root.join("run");
        let lock = PinLock::take_in(&base, dir).unwrap();
        let mode = std::fs::metadata(&base).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert!(PinLock::take_in(&base, dir).is_err(), "one owner at a time");
        drop(lock);
        // A symlink where the lock goes: refused, its target untouched.
        let target = root.join("victim");
        std::fs::write(&target, "precious").unwrap();
        let other = Path::new("/sys/fs/bpf/other");
        std::os::unix::fs::symlink(&target, base.join(lock_name(other))).unwrap();
        assert!(PinLock::take_in(&base, other).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious");
        // A base others may write to, or a symlinked base: refused.
        let open = root.join("open");
        std::fs::create_dir_all(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(PinLock::take_in(&open, dir).is_err());
        let linked = root.join("linked");
        std::os::unix::fs::symlink(&base, &linked).unwrap();
        assert!(PinLock::take_in(&linked, dir).is_err());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
